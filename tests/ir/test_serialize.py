"""Printer is stable; JSON round trip is bit-exact; malformed JSON gets a clear error."""

import json

import numpy as np
import pytest

from nnlemma.errors import ModelLoadError
from nnlemma.ir import Builder, dumps, format_graph, load, loads, save, to_networkx
from nnlemma.kernels import bits

EDGE = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38,
                 1.0, np.nextafter(np.float32(1), np.float32(2))], dtype=np.float32)


def _graph():
    b = Builder()
    x = b.input((2, 11), "x")
    w = b.param(EDGE, "edge")
    payload = np.array([0x7FC00001, 0xFFC00000], dtype=np.uint32).view(np.float32)
    p = b.param(payload, "nan_payloads")
    y = b.eqn("mul", [x, w], name="scale")
    z = b.eqn("clamp", [y], {"lo": -np.inf, "hi": 0.1})
    s = b.eqn("sum", [z], {"axes": (1,), "keepdims": 1})
    return b.build([z, s, p])


def test_printer_golden():
    b = Builder()
    x = b.input((1, 2), "x")
    w = b.param(np.ones((3, 2)), "W")
    y = b.eqn("linear", [x, w], name="fc")
    z = b.eqn("leaky_relu", [y], {"alpha": 0.01})
    assert format_graph(b.build([z])) == (
        "graph(%0:f32[1,2] 'x') {\n"
        "  param %1:f32[3,2] 'W'\n"
        "  %2:f32[1,3] = linear(%0, %1)  # node 'fc'\n"
        "  %3:f32[1,3] = leaky_relu(%2; alpha=0.009999999776482582)\n"
        "  return %3\n"
        "}")


def test_json_round_trip_bit_exact(tmp_path):
    g = _graph()
    text = dumps(g)
    g2 = loads(text)
    assert dumps(g2) == text
    assert str(g2) == str(g)
    for p, q in zip(g.params, g2.params):
        assert np.array_equal(bits(p.data), bits(q.data))
    save(g, tmp_path / "g.json")
    assert dumps(load(tmp_path / "g.json")) == text


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.update(format="other"), "not an nnlemma-ir"),
    (lambda d: d["equations"][0].update(inputs=[99, 1]), "used before it is defined"),
    (lambda d: d["equations"][1].update(id=0), "defined twice"),
    (lambda d: d["params"][0].update(f32le="AAAAAA=="), "has 1 values"),
    (lambda d: d["equations"][0].pop("op"), "malformed"),
    (lambda d: d["equations"][1]["attrs"].update(lo="nan"), "invalid|malformed"),
])
def test_malformed_json(mutate, match):
    d = json.loads(dumps(_graph()))
    mutate(d)
    with pytest.raises(ModelLoadError, match=match):
        loads(json.dumps(d), "bad.json")


def test_not_json():
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        loads("{", "x.json")


def test_networkx_view_keeps_operand_order():
    b = Builder()
    x = b.input((2,))
    y = b.eqn("mul", [x, x])
    g = to_networkx(b.build([y]))
    assert g.number_of_edges(0, 1) == 2
    assert sorted(d["operand"] for _, _, d in g.edges(data=True)) == [0, 1]
    assert g.nodes[1]["op"] == "mul" and g.nodes[1]["output"]
