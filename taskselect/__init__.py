"""taskselect: pick the training data for one task from a large pool, and prove the choice."""

__version__ = "0.1.0"
