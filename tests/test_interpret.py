"""The interpreter loop: env results, input checks, and errors that name the equation."""

import numpy as np
import pytest

import nnlemma as nl
from nnlemma.errors import InputError, KernelError
from nnlemma.interpret import interpret
from nnlemma.ir import Builder, rebuild
from nnlemma.kernels import KERNEL_RULES


def _graph():
    b = Builder()
    x = b.input((2, 2), "x")
    y = b.eqn("relu", [x], name="r1", source="model.py:12")
    z = b.eqn("exp", [y], name="e1")
    return b.build([z])


def test_env_holds_every_value_and_graph_is_untouched():
    g = _graph()
    env = interpret(g, KERNEL_RULES, [np.ones((2, 2), np.float32)])
    assert sorted(env) == [0, 1, 2]
    assert not hasattr(g.equations[0], "result")


def test_rule_failure_names_equation_and_source():
    def boom(x):
        raise RuntimeError("kaboom")

    with pytest.raises(KernelError, match=r"%1 = relu\(%0\) \[node 'r1'\] \(from model.py:12\): RuntimeError: kaboom"):
        interpret(_graph(), {**KERNEL_RULES, "relu": boom}, [np.ones((2, 2), np.float32)])


def test_missing_rule_is_an_error_not_a_skip():
    rules = {k: v for k, v in KERNEL_RULES.items() if k != "exp"}
    with pytest.raises(KernelError, match="no rule for op 'exp'"):
        interpret(_graph(), rules, [np.ones((2, 2), np.float32)])


def test_run_checks_inputs():
    g = _graph()
    with pytest.raises(InputError, match="takes 1 input"):
        nl.run(g)
    with pytest.raises(InputError, match=r"input x: expected shape \[2, 2\], got \[3, 2\]"):
        nl.run(g, np.ones((3, 2)))
    with pytest.raises(InputError, match="not numeric"):
        nl.run(g, np.array([["a", "b"], ["c", "d"]]))


def test_rebuild_changes_batch_and_keeps_bits():
    g = _graph()
    g5 = rebuild(g, [(5, 2)])
    x = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    out5 = nl.run(g5, x)[0]
    out2 = nl.run(g, x[:2])[0]
    assert np.array_equal(out5[:2].view(np.uint32), out2.view(np.uint32))
