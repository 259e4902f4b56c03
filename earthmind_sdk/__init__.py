"""earthmind-sdk: multi-sensor Earth-observation multimodal models."""
__version__ = "0.1.0"
