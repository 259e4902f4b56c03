"""Tasks: prompt builders and answer parsers, looked up by registry name.

    >>> from earthmind_sdk.tasks import get_task
    >>> t = get_task("multiple_choice")
    >>> t.parse("The answer is B.", options=["A. harbor", "B. airport"]).value
    'B'
"""
from .base import Parsed, Task

__all__ = ["Parsed", "Task", "get_task", "task_names"]


def get_task(name: str, **kwargs) -> Task:
    """A task instance by registry name (built-in or from a plugin)."""
    from ..plugins import registry

    return registry("tasks").build(name, **kwargs)


def task_names() -> list[str]:
    """Every registered task name."""
    from ..plugins import registry

    return list(registry("tasks").names())
