"""Solver-neutral SMT encodings of nnlemma's semantics.

``terms`` is a small immutable term language (FloatingPoint, Real and Bool sorts), ``smtlib``
prints it as self-contained SMT-LIB2 text, and ``fp32`` holds the rule table giving each op's IEEE
binary32 meaning (as the float32 kernel defines it) as terms. Nothing here imports a solver:
``solvers/`` translates terms for Z3 or hands the SMT-LIB text to other solvers.
"""
