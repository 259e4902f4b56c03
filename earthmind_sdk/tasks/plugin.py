"""Built-in components of this package area, registered through the plugin hooks."""
from earthmind_sdk.hookspecs import hookimpl  # noqa: F401
