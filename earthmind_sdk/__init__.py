"""earthmind-sdk: multi-sensor Earth-observation multimodal models."""
__version__ = "0.1.0"


def __getattr__(name):
    """Lazy ``earthmind_sdk.load`` / ``earthmind_sdk.save``: importing the package imports no torch."""
    if name in ("load", "save"):
        from . import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'earthmind_sdk' has no attribute {name!r}")
