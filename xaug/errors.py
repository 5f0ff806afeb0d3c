"""One exception type for bad input, so stage scripts can print a one-line message and exit."""


class ConfigError(ValueError):
    """Bad input: a parameter, file or field that is not what the pipeline expects.

    The message is a single line naming the culprit and what was expected.
    """
