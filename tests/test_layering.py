"""Only ``solvers/`` imports a solver; the core never imports encoders, obligations or solvers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLVER_MODULES = {"z3", "bitwuzla", "cvc5", "pysmt"}
# the CLI builds the `obligations` subcommands from obligations.cli (which imports no solver)
ALLOWED = {"nnlemma": {"cli.py": {"obligations"}}}


def imported_roots(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package,forbidden", [
    ("nnlemma", SOLVER_MODULES | {"encoders", "obligations", "solvers"}),
    ("encoders", SOLVER_MODULES | {"obligations", "solvers"}),
    ("obligations", SOLVER_MODULES),
])
def test_no_solver_imports_outside_solvers(package, forbidden):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"package {package} has no modules"
    allowed = ALLOWED.get(package, {})
    bad = [(str(f.relative_to(ROOT)), sorted(imported_roots(f) & forbidden - allowed.get(f.name, set())))
           for f in files if imported_roots(f) & forbidden - allowed.get(f.name, set())]
    assert not bad, f"forbidden imports: {bad}"
