"""Batched inference: samples in, answers, parsed values, masks and fusion weights out."""
from .sample import Result, Sample

__all__ = ["Sample", "Result", "Pipeline"]


def __getattr__(name):  # Pipeline imports torch; keep `import earthmind_sdk.inference` light
    if name == "Pipeline":
        from .pipeline import Pipeline

        return Pipeline
    raise AttributeError(name)
