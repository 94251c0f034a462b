"""Write ``examples/models/tiny_robust.vnnlib``: local robustness of the bundled tiny classifier
around ``tiny_input.npy`` (every input within EPS in the max norm keeps the class the kernel
predicts at the centre). Run from the repository root: ``python examples/make_tiny_spec.py``."""

from decimal import Decimal
from pathlib import Path

import numpy as np

import nnlemma as nl

HERE = Path(__file__).resolve().parent / "models"
EPS = Decimal("0.05")


def main() -> None:
    g = nl.load_model(HERE / "tiny_classifier.onnx")
    x = np.load(HERE / "tiny_input.npy").astype(np.float32)
    y = nl.run(g, x)[0][0]
    label = int(np.argmax(y))
    n_in, n_out = x.size, y.size
    lines = [f"; local robustness of tiny_classifier.onnx at tiny_input.npy, eps {EPS}, class {label}"]
    lines += [f"(declare-const X_{i} Real)" for i in range(n_in)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    for i, v in enumerate(x.ravel()):
        c = Decimal(float(v))  # exact
        lines += [f"(assert (>= X_{i} {c - EPS}))", f"(assert (<= X_{i} {c + EPS}))"]
    others = " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(n_out) if j != label)
    lines.append(f"(assert (or {others}))")  # unsafe: some other class scores at least as high
    (HERE / "tiny_robust.vnnlib").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
