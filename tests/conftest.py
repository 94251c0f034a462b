"""Shared pytest fixtures.

``shared_benchmarks``: the benchmark folder shared by the team, ``../shared/benchmarks`` next to
the repository. If it is missing the test is skipped locally but fails in CI (``CI=true``), so CI
can never pass vacuously.
"""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_benchmarks() -> Path:
    path = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks"
    if not path.is_dir():
        msg = f"shared benchmark folder {path} is missing"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path
