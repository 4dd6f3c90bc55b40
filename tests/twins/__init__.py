"""A Twins-style systematic search (Bano et al., "Twins: BFT Systems Made Robust"):
scripted views, per-phase cuts, restarts and one Byzantine node, over real nodes."""
