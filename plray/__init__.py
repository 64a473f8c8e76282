"""plray: extract world models from goal-conditioned agents' Q-values and serve them to planners."""

__version__ = "0.1.0"
