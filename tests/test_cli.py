"""The CLI: success paths, and one-line errors with exit code 2 on bad input (never a traceback)."""

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnlemma.cli import main
from nnlemma.ir import Builder, save
from nnlemma.kernels import same_bits


@pytest.fixture
def model_json(tmp_path):
    b = Builder()
    x = b.input((1, 3), "x")
    w = b.param(np.arange(6, dtype=np.float32).reshape(2, 3) / 7, "W")
    y = b.eqn("relu", [b.eqn("linear", [x, w], name="fc")], name="act")
    p = tmp_path / "m.json"
    save(b.build([y]), p)
    return p


def _onnx(tmp_path, nodes, inits, name="m.onnx"):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    p = tmp_path / name
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), p)
    return p


def test_inspect_prints_ir_params_and_coverage(model_json, capsys, tmp_path):
    assert main(["inspect", str(model_json), "--save-ir", str(tmp_path / "out.json")]) == 0
    out = capsys.readouterr().out
    assert "= linear(%0, %1)  # node 'fc'" in out
    assert "parameters: 6 in 1 tensors" in out
    assert "linear" in out and "float32-kernel=rule" in out
    assert (tmp_path / "out.json").read_text() == model_json.read_text()


def test_run_writes_output_and_accepts_other_batch(model_json, tmp_path, capsys):
    x = np.array([[1, -2, 3], [0.5, 0.25, -1]], np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(model_json), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    y = np.load(tmp_path / "y.npy")
    w = np.arange(6, dtype=np.float32).reshape(2, 3) / np.float32(7)
    expect = np.zeros((2, 2), np.float32)
    for i in range(2):
        for j in range(2):
            acc = np.float32(0)
            for k in range(3):
                acc = np.float32(acc + np.float32(x[i, k] * w[j, k]))
            expect[i, j] = max(acc, np.float32(0))
    assert same_bits(y, expect)


@pytest.mark.parametrize("args,match", [
    (["inspect", "missing.onnx"], "missing.onnx: no such model file"),
    (["inspect", "{json}"], None),
    (["run", "{model}", "--input", "nope.npy"], "nope.npy: no such input file"),
    (["run", "{model}", "--input", "{wrong_shape}"], r"input shape \[1, 4\] does not match the model input \[1, 3\]"),
    (["run", "{model}", "--input", "{garbage}"], "not a readable .npy"),
    (["inspect", "{txt}"], "unknown model format '.txt'"),
    (["inspect", "{bad_json}"], "not valid JSON"),
    (["ops", "--explain", "nosuchop"], "unknown op 'nosuchop'"),
])
def test_bad_input_one_line_exit_2(args, match, model_json, tmp_path, capsys):
    np.save(tmp_path / "wrong.npy", np.zeros((1, 4), np.float32))
    (tmp_path / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "m.txt").write_text("hi")
    (tmp_path / "bad.json").write_text("{")
    subst = {"{model}": str(model_json), "{json}": str(tmp_path / "missing.json"),
             "{wrong_shape}": str(tmp_path / "wrong.npy"), "{garbage}": str(tmp_path / "garbage.npy"),
             "{txt}": str(tmp_path / "m.txt"), "{bad_json}": str(tmp_path / "bad.json")}
    assert main([subst.get(a, a) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnlemma: error: ") and err.count("\n") == 1
    if match:
        import re
        assert re.search(match, err), err


def test_onnx_errors_exit_2(tmp_path, capsys):
    good = _onnx(tmp_path, [helper.make_node("Relu", ["x"], ["y"], name="r")], {})
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    unsup = _onnx(tmp_path, [helper.make_node("Softmax", ["x"], ["h"], name="sm"),
                             helper.make_node("Erf", ["h"], ["y"], name="erf1")], {}, "unsup.onnx")
    nan = _onnx(tmp_path, [helper.make_node("Add", ["x", "c"], ["y"], name="add")],
                {"c": np.array([1, np.nan, 2], np.float32)}, "nan.onnx")
    for path, match in [(trunc, "trunc.onnx"), (unsup, "Softmax 'sm'.*Erf 'erf1'|Erf 'erf1'.*Softmax 'sm'"),
                        (nan, "nan.onnx.*'c'")]:
        assert main(["inspect", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        import re
        assert re.search(match, err), err
    assert main(["inspect", str(nan), "--allow-nonfinite"]) == 0


def test_console_script_no_traceback(tmp_path):
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"\x00\x01garbage")
    r = subprocess.run([sys.executable, "-m", "nnlemma.cli", "run", str(p), "--input", "x.npy"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stderr.startswith("nnlemma: error:")
