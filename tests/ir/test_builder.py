"""The builder rejects every malformed equation with an error naming it."""

import numpy as np
import pytest

from nnlemma.errors import IRError, ShapeError
from nnlemma.ir import Builder


def _b():
    b = Builder()
    x = b.input((2, 3), "x")
    return b, x


def test_unknown_op_named():
    b, x = _b()
    with pytest.raises(IRError, match=r"%1 = frobnicate\(%0\).*unknown op 'frobnicate'"):
        b.eqn("frobnicate", [x])


def test_arity_checked():
    b, x = _b()
    with pytest.raises(IRError, match="op 'add' takes 2 inputs, got 1"):
        b.eqn("add", [x])


def test_use_before_definition():
    b, x = _b()
    with pytest.raises(IRError, match="operand %7 is used before it is defined"):
        b.eqn("relu", [7])


def test_single_assignment_for_explicit_ids():
    b, x = _b()
    with pytest.raises(IRError, match="defined twice"):
        b.eqn("relu", [x], vid=0)


def test_attribute_schema():
    b, x = _b()
    with pytest.raises(IRError, match="missing required attribute 'alpha'"):
        b.eqn("leaky_relu", [x])
    with pytest.raises(IRError, match="unknown attribute"):
        b.eqn("relu", [x], {"alpha": 0.1})
    with pytest.raises(IRError, match="alpha=2.0 is invalid"):
        b.eqn("leaky_relu", [x], {"alpha": 2.0})
    with pytest.raises(IRError, match="clamp.*lo=nan"):
        b.eqn("clamp", [x], {"lo": float("nan")})


def test_float_attrs_are_stored_as_float32_values():
    b, x = _b()
    y = b.eqn("leaky_relu", [x], {"alpha": 0.1})
    g = b.build([y])
    assert g.equations[0].attr_dict["alpha"] == float(np.float32(0.1))


def test_shape_errors_name_the_equation():
    b, x = _b()
    w = b.param(np.zeros((4, 5)), "W")
    with pytest.raises(ShapeError, match=r"%2 = linear\(%0, %1\) \[node 'fc'\].*in_features=5"):
        b.eqn("linear", [x, w], name="fc")
    v = b.input((4,), "v")
    with pytest.raises(ShapeError, match="do not broadcast"):
        b.eqn("add", [x, v])


@pytest.mark.parametrize("op,attrs,in_shape,out_shape", [
    ("sum", {"axes": (1,)}, (2, 3), (2,)),
    ("mean", {"axes": (0, 1), "keepdims": 1}, (2, 3), (1, 1)),
    ("reshape", {"shape": (0, -1)}, (2, 3, 4), (2, 12)),
    ("transpose", {"perm": (1, 0)}, (2, 3), (3, 2)),
    ("slice", {"index": ((None, None, None), (0,))}, (2, 3), (2,)),
    ("slice", {"index": ((1, None, None),)}, (2, 3), (1, 3)),
    ("avg_pool2d", {"kernel": (2, 2)}, (1, 1, 4, 4), (1, 1, 2, 2)),
    ("max_pool2d", {"kernel": (3, 3), "stride": (1, 1), "pads": (1, 1, 1, 1)}, (1, 2, 4, 4), (1, 2, 4, 4)),
])
def test_shape_rules(op, attrs, in_shape, out_shape):
    b = Builder()
    x = b.input(in_shape)
    assert b.eqn(op, [x], attrs).shape == out_shape


@pytest.mark.parametrize("op,attrs,in_shape", [
    ("sum", {"axes": (2,)}, (2, 3)),
    ("sum", {"axes": (0, 0)}, (2, 3)),
    ("reshape", {"shape": (5, -1)}, (2, 3)),
    ("reshape", {"shape": (-1, -1)}, (2, 3)),
    ("transpose", {"perm": (0, 0)}, (2, 3)),
    ("slice", {"index": ((5,),)}, (2, 3)),
    ("slice", {"index": ((3, None, None),)}, (2, 3)),
    ("avg_pool2d", {"kernel": (5, 5)}, (1, 1, 4, 4)),
    ("max_pool2d", {"kernel": (2, 2), "pads": (2, 0, 0, 0)}, (1, 1, 4, 4)),
])
def test_bad_shapes_rejected(op, attrs, in_shape):
    b = Builder()
    x = b.input(in_shape)
    with pytest.raises(IRError):
        b.eqn(op, [x], attrs)


def test_conv_shape():
    b = Builder()
    x = b.input((1, 3, 8, 8))
    w = b.param(np.zeros((4, 3, 3, 3)))
    y = b.eqn("conv2d", [x, w], {"stride": (2, 2), "pads": (1, 1, 1, 1)})
    assert y.shape == (1, 4, 4, 4)
    w2 = b.param(np.zeros((4, 2, 3, 3)))
    with pytest.raises(ShapeError, match="3 channels"):
        b.eqn("conv2d", [x, w2])


def test_params_are_read_only_float32_copies():
    b = Builder()
    src = np.array([1.0, 0.1], dtype=np.float64)
    v = b.param(src)
    g = b.build([v])
    assert g.params[0].data.dtype == np.float32
    assert g.params[0].data[1] == np.float32(0.1)
    with pytest.raises(ValueError):
        g.params[0].data[0] = 2
