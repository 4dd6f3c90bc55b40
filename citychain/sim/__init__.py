"""The deterministic discrete-event simulator: virtual clock, network and CPU model."""
