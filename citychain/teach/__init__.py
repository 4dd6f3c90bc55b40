"""Teaching: diagrams, narration, replica state plots and "why not committed" from a recorded run."""
