"""Tasks: prompt builders and answer parsers, looked up by registry name."""


def get_task(name: str, **kwargs):
    """A task instance by registry name (built-in or from a plugin)."""
    from ..plugins import registry

    return registry("tasks").build(name, **kwargs)
