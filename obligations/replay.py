"""Replay a solver's counterexample on the float32 kernel before anything is reported.

A ``sat`` answer to an obligation's violation formula claims operand values inside their domains
whose result leaves the claimed domain. :func:`replay` recomputes that result with the kernel's
own functions (the op's kernel rule, or the fold's step ``fl(acc + fl(x·w))``) from the model's
bit patterns and checks both halves. Only a replayed violation is reported as ``refuted``; a model
that does not replay means the encoding and the kernel disagree — an encoder (or solver) bug,
reported as such and never as a result about the model.
"""

from __future__ import annotations

import numpy as np

from nnlemma.kernels import KERNEL_RULES
from nnlemma.kernels import elementwise as ew
from nnlemma.kernels.float32 import canon

from .fp_transfer import Dom

F32 = np.float32


def _f(b: int) -> np.float32:
    return np.array(b, np.uint32).view(F32)[()]


def _step(step: str, op: str, attrs: dict, args: list[np.float32]) -> np.float32:
    with np.errstate(all="ignore"):
        if step == "mac":
            acc, x, w = args
            y = ew.add(acc, ew.mul(x, w))  # the fold's step, as nnlemma.kernels.fold does it
        elif step == "add":
            y = ew.add(*args)
        elif step == "id":
            y = args[0]
        elif op == "batch_norm":  # one element of channel-wise op: x as [1, 1], the rest per channel
            x, *per_channel = (np.asarray(a, F32) for a in args)
            y = KERNEL_RULES[op](x.reshape(1, 1), *(a.reshape(1) for a in per_channel), **attrs)
        else:
            y = KERNEL_RULES[op](*(np.asarray(a, F32) for a in args), **attrs)
    return canon(np.asarray(y, F32)).reshape(())[()]


def replay(data: dict, model: dict) -> tuple[bool | None, str]:
    """``(True, detail)`` if the model is a genuine violation on the kernel (or, for composition
    lemmas, in exact rationals), else ``(False, why)`` — or ``(None, why)`` for a lemma proved
    through a reduction (tanh/sigmoid lines) whose failure need not be a violation: undecided."""
    if "fallback" in data:
        from .fallback import replay_fallback
        return replay_fallback(data, model)
    if data.get("step") is None:
        return False, "no replay rule for this obligation"
    if data["step"] == "transcendental":  # ground formula: the kernel's endpoint values
        claim = Dom.from_json(data["claim"])
        if "points" in data:  # recompute the kernel's values at the spanning points
            values = [canon(np.asarray(KERNEL_RULES[data["op"]](np.array(_f(b))), F32)).reshape(())[()]
                      for b in data["points"]] + [_f(b) for b in data["constants"]]
        else:  # manifests written before points were recorded: the values at the two ends
            values = [_f(b) for b in data["ends"]]
        outside = [v for v in values if not claim.contains(v)]
        if Dom.from_json(data["operands"][0]).nan and not claim.nan:
            outside.append(F32(np.nan))
        return (True, f"kernel values {', '.join(map(str, outside))} at the spanning points lie outside "
                      "the claim") if outside else (False, "the kernel's values at the spanning points lie inside "
                                                           "the claim")
    if data["step"] == "composition":
        from .composition import replay_composition
        return replay_composition(data, model)
    if data["step"] == "relaxation":
        from .relaxation import replay_relaxation
        return replay_relaxation(data, model)
    doms = [Dom.from_json(d) for d in data["operands"]]
    args = []
    for i, d in enumerate(doms):
        if d.const is not None:
            args.append(_f(d.const))
            continue
        name = f"x{i}"
        if name not in model:
            return False, f"the model has no value for {name}"
        v = _f(model[name])
        if not d.contains(v):
            return False, f"{name} = {str(v)} (0x{model[name]:08x}) is outside its domain"
        args.append(v)
    y = _step(data["step"], data["op"], data.get("attrs", {}), args)
    claim = Dom.from_json(data["claim"])
    shown = ", ".join(str(a) for a in args)
    if claim.contains(y):
        return False, f"kernel gives {str(y)} for ({shown}), inside the claimed domain"
    return True, f"kernel gives {str(y)} (0x{int(np.asarray(y).view(np.uint32)):08x}) for ({shown})"
