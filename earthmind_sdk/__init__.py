"""earthmind-sdk: multi-sensor Earth-observation multimodal models."""
from ._version import __version__

__all__ = ["__version__", "load", "save"]


def __getattr__(name):
    """Lazy ``earthmind_sdk.load`` / ``earthmind_sdk.save``: importing the package imports no torch."""
    if name in ("load", "save"):
        from . import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'earthmind_sdk' has no attribute {name!r}")
