"""The imperative shell around ``consensus``: identities, ledger, state, transports,
the discrete-event simulator, scenarios, metrics and the CLI."""
