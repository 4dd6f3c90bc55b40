"""The citychain tool: the command line, scenarios, the simulated world and the benchmarks."""
