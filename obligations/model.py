"""The obligation record: one lemma, its formula and where it comes from.

The formula stored is the lemma's **negation** (the violation): ``unsat`` means the lemma holds.
``id`` is ``model/node/kind/index``; ``provenance`` names the model, node (equation), op and the
element or multiply-add the lemma is about; ``replay`` holds what a counterexample needs to be
re-run on the float32 kernel (or in exact rationals for real-arithmetic lemmas), keyed by kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from encoders.smtlib import script
from encoders.terms import Term, digest

KINDS = ("fp-transfer", "transcendental-transfer", "relaxation", "composition", "library",
         "encoder-agreement")
LOGICS = ("QF_FP", "QF_LRA", "QF_FPLRA", "QF_BVFP")


@dataclass(frozen=True)
class Obligation:
    id: str
    kind: str
    op: str
    logic: str
    violation: Term
    statement: str
    provenance: dict[str, Any] = field(default_factory=dict)
    replay: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"obligation {self.id}: unknown kind {self.kind!r}")
        if self.logic not in LOGICS:
            raise ValueError(f"obligation {self.id}: unknown logic {self.logic!r}")

    @cached_property
    def smt2(self) -> str:
        """The self-contained SMT-LIB2 script asserting the violation (``unsat`` = proved)."""
        return script(self.violation, (f"nnlemma obligation {self.id}", f"kind: {self.kind}, op: {self.op}",
                                       f"lemma: {self.statement}",
                                       "this script asserts the lemma's negation: unsat means proved"),
                      logic=self.logic)

    @cached_property
    def formula_hash(self) -> str:
        """Hash of the violation alone (comments excluded), so equal lemmas share a cache entry."""
        return digest(script(self.violation, logic=self.logic))
