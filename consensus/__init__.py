"""PBFT (Castro & Liskov, OSDI'99) as a pure state machine.

Nothing in this package performs I/O, reads a clock or draws random numbers:
``Replica.step(event)`` returns the effects its caller must carry out. It imports
nothing of ours: not ``apps``, ``node`` or ``citychain``.
"""
