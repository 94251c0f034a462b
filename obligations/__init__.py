"""Per-model proof obligations: what must hold for a claim, each with its provenance.

An obligation is a lemma about one node (or one multiply-add of a node's fold, or one library
fact), stated as a solver-neutral formula whose *negation* is asserted: ``unsat`` means proved.
"""
