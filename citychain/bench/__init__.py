"""Benchmarking (``citychain bench``): parameter sweeps over simulated runs, their
plots and the self-contained HTML report.

Built on ``citychain.sim``; only the CLI and the tests import it.
"""
