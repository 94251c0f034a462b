"""Cross-checking: the same formula through several solvers, and a loud report if they disagree.

Every backend answers ``sat``, ``unsat`` or ``unknown``. An ``unknown`` (timeout, unsupported
theory, crash) is no answer and never conflicts with anything. But one solver saying ``sat`` while
another says ``unsat`` about the same formula means a bug in an encoder (the solvers were given
different meanings) or in a solver: neither answer can be trusted, so the disagreement is logged
as an error and returned in the result for the caller to fail on.
"""

from __future__ import annotations

import logging

from encoders.smtlib import script
from encoders.terms import Term, digest

from .outcome import Outcome

log = logging.getLogger(__name__)


def cross_check(formula: Term, solvers: list, timeout_s: float = 10.0) -> dict:
    """``{"statuses": {name: status}, "agree": bool, "disagreement": str | None,
    "outcomes": {name: Outcome}}``; ``agree`` is False only for sat against unsat."""
    outcomes: dict[str, Outcome] = {}
    for s in solvers:
        name = s.name if s.name not in outcomes else f"{s.name}#{len(outcomes)}"
        try:
            outcomes[name] = s.check(formula, timeout_s)
        except Exception as exc:  # a backend that raises has given no answer
            outcomes[name] = Outcome("unknown", 0.0, name, reason=f"raised {exc!r}")
    statuses = {n: o.status for n, o in outcomes.items()}
    sat = [n for n, st in statuses.items() if st == "sat"]
    unsat = [n for n, st in statuses.items() if st == "unsat"]
    disagreement = None
    if sat and unsat:
        models = "; ".join(f"{n}: {outcomes[n].model}" for n in sat)
        disagreement = (f"SOLVER DISAGREEMENT (a bug in an encoder or a solver): "
                        f"{', '.join(sat)} say sat, {', '.join(unsat)} say unsat on formula "
                        f"{digest(script(formula))[:16]}; sat models: {models}")
        log.error(disagreement)
    return {"statuses": statuses, "agree": disagreement is None, "disagreement": disagreement,
            "outcomes": outcomes}
