"""The SDK version, on its own so that any layer can read it (``run.json`` records it)."""
__version__ = "0.1.0"
