"""One node and its parts, the same in the simulator and as a process over a broker:
identity, reading the genesis, signing, the node loop, ledger, state, execution, state
transfer and the chain checker, the transport interface, Byzantine wrappers.

It imports only ``consensus`` and ``apps``; scenarios, the simulator and the CLI are
``citychain``'s, and nothing here imports them.
"""
