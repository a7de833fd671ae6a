"""culpa: evidence-based attribution of disputed and unclaimed attacks in armed conflicts."""

__version__ = "0.1.0"
