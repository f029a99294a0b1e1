"""Error types whose messages name the problem and the fix; the CLI prints them without a traceback."""


class RecuxError(Exception):
    """Base class: a problem the user can fix (bad input, config, plugin, unreachable data)."""


class ConfigError(RecuxError, ValueError):
    """An impossible or inconsistent setting."""


class PluginError(RecuxError, LookupError):
    """An unknown, duplicate or broken plugin."""


class DataError(RecuxError, ValueError):
    """A malformed, missing or empty data file or dataset."""


class DataUnavailableError(RecuxError, OSError):
    """No source could provide a dataset; the message lists each source tried and how to use a local copy."""
