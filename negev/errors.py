"""The errors negev raises on purpose: a user's input, data, checkpoint or plugin is at fault.

Anything else escaping negev is a bug (in negev or in a plugin): the command line tells the two
apart. The classes that replace a ``ValueError`` of earlier versions still subclass it, so code
catching ``ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["CheckpointError", "ConfigError", "DataError", "NegevError", "PluginError"]


class NegevError(Exception):
    """Base of the errors that describe a problem with the user's input, not a bug."""


class ConfigError(NegevError, ValueError):
    """An option, a configuration file or a registry name is invalid."""


class DataError(NegevError, ValueError):
    """The dataset has items that cannot be used."""


class CheckpointError(NegevError, ValueError):
    """A checkpoint or run directory is missing, incomplete or does not fit the model."""


class PluginError(NegevError):
    """A plugin (modality, pooling, loss) is unknown, broken, registered twice or breaks the
    contract."""
