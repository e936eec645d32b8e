"""Exception types whose message is meant for the user, printed as one line by the command line."""


class HeldoutError(Exception):
    """An error caused by the user's input: a path, a config value or a data folder.

    The message names the path or config key, the value, what was expected and what to do.
    """


class ConfigError(HeldoutError, ValueError):
    """A config value outside its valid range or of the wrong form."""


class DataError(HeldoutError):
    """A data folder, image file or manifest that cannot be used as given."""


class CheckpointError(HeldoutError):
    """A checkpoint or weights file that is missing or does not fit the model."""
