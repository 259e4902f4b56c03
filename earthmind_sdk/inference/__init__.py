"""Batched inference: samples in, answers, parsed values, masks and fusion weights out.

:class:`~earthmind_sdk.contracts.Sample` and :class:`~earthmind_sdk.contracts.Result` are core
contracts (``from earthmind_sdk.contracts import Sample``)."""

__all__ = ["Pipeline"]


def __getattr__(name):  # Pipeline imports torch; keep `import earthmind_sdk.inference` light
    if name == "Pipeline":
        from .pipeline import Pipeline

        return Pipeline
    raise AttributeError(name)
