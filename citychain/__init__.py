"""The citychain tool around nodes: the command line (``cli``), scenario loading and
the shipped scenarios, building a genesis, the simulated world (``sim/``), audit,
query, summary and export, and benchmarking (``bench/``).

It may import ``consensus``, ``apps`` and ``node``; nothing imports it but its own
modules, the tests and the benchmark scripts.
"""
