"""Every (op x rule table) cell is a rule or an explicit reason; no table has rules for unknown ops."""

import pytest

from nnlemma.coverage import RULE_TABLES, coverage, explain
from nnlemma.ops import OPS


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_op_is_covered_or_explained(op):
    cov = coverage(op)
    assert "MISSING" not in cov.values(), f"{op}: {cov}"
    assert OPS[op].doc
    assert op in explain(op)


@pytest.mark.parametrize("table", sorted(RULE_TABLES))
def test_tables_only_know_ops_of_the_op_table(table):
    rules, reasons = RULE_TABLES[table]
    assert set(rules) | set(reasons) <= set(OPS)
    assert not set(rules) & set(reasons)
