"""Benchmarking: parameter sweeps, plots and the HTML report."""
