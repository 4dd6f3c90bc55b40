"""The simulated world: the virtual-clock event engine, the network model, client
workload, the fault plan, the CPU model, and the run that wires nodes
(``node.node.Node``) into them. Nodes never import it; only ``citychain`` does.
"""
