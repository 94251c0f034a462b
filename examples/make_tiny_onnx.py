"""Write the tiny bundled example model and input (deterministic; rerun to regenerate).

``examples/models/tiny_classifier.onnx``: an MLP classifier 4 -> Gemm 8 -> Relu -> Gemm 8 -> Relu
-> Gemm 3 (transB=1, PyTorch layout), float32 weights from a fixed seed, input ``x`` of shape
[1, 4], output ``logits`` of shape [1, 3]. ``examples/models/tiny_input.npy``: one float32 [1, 4]
input. Both files are byte-for-byte reproducible.

Usage: ``python examples/make_tiny_onnx.py``
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).resolve().parent / "models"
WIDTHS = [4, 8, 8, 3]


def build_model(seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes, inits, prev = [], [], "x"
    layers = list(zip(WIDTHS, WIDTHS[1:]))
    for i, (n_in, n_out) in enumerate(layers):
        w = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
        b = (0.1 * rng.standard_normal(n_out)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"fc{i}.weight"), numpy_helper.from_array(b, f"fc{i}.bias")]
        last = i == len(layers) - 1
        out = "logits" if last else f"fc{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"fc{i}.weight", f"fc{i}.bias"], [out],
                                      name=f"fc{i}", transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"relu{i}"], name=f"relu{i}"))
            prev = f"relu{i}"
    graph = helper.make_graph(
        nodes, "tiny_classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, WIDTHS[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, WIDTHS[-1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="nnlemma-examples")
    model.ir_version = 8  # readable by older onnxruntime releases too
    onnx.checker.check_model(model)
    return model


def main() -> None:
    OUT.mkdir(exist_ok=True)
    (OUT / "tiny_classifier.onnx").write_bytes(build_model().SerializeToString())
    x = np.array([[0.5, -1.0, 0.25, 2.0]], dtype=np.float32)
    np.save(OUT / "tiny_input.npy", x)
    print(f"wrote {OUT / 'tiny_classifier.onnx'} and {OUT / 'tiny_input.npy'}")


if __name__ == "__main__":
    main()
