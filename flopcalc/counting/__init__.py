"""Counting FLOPs: a registry of per-op formulas, a counter that runs the model, frozen reports."""
