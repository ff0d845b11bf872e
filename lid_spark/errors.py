"""The project's error types: one for bad parameters, one for bad input data."""


class ParameterError(ValueError):
    """A configuration value or function argument is invalid. The message names the key."""


class InputError(ValueError):
    """An input table or file does not meet the data contract. The message says how to fix it."""
