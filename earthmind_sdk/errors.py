"""Exception types users catch: each names what was wrong and where."""


class EarthMindError(Exception):
    """Base of every error the SDK raises on purpose."""


class UnknownComponentError(EarthMindError, KeyError):
    """A registry name that nothing registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateComponentError(EarthMindError):
    """Two plugins registered the same name for one component kind."""


class RecipeError(EarthMindError, ValueError):
    """A recipe or model spec that does not validate."""


class CheckpointError(EarthMindError):
    """A checkpoint directory that cannot be loaded as asked."""


class RasterError(EarthMindError, ValueError):
    """A raster that cannot be read or prepared for a sensor."""


class AlignmentError(RasterError):
    """Two rasters of a pair that cannot be put on one grid."""


def name_list(names, limit: int = 10) -> str:
    """``"a, b, c"``, or the first ``limit`` names then ``"… and N more"``: error lines stay one
    readable line when a raster has 128 bands or a registry holds hundreds of names."""
    names = [str(n) for n in names]
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} … and {len(names) - limit} more"


class OutputError(EarthMindError):
    """An output path that cannot be written, or a folder holding files the SDK did not write."""


class JobInterrupted(EarthMindError):
    """Ctrl-C (or SIGTERM) during a job; what finished was kept. The CLI exits with 130."""


class DataError(EarthMindError, ValueError):
    """A training or evaluation data entry that cannot be read as its format says."""


class PluginError(EarthMindError):
    """A plugin's component that cannot be imported or used; names the plugin."""
