"""Exceptions that cross layers: configuration, plugins, data conflicts."""


class CrmError(Exception):
    """Base class of the framework's own errors."""


class ConfigError(CrmError):
    """A configuration value is missing or wrong.

    ``problems`` is a list of ``(variable, message)``; the string form names
    every variable and what was expected, so an operator can fix all at once.
    """

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(
            "Invalid configuration:\n"
            + "\n".join(f"  {name}: {message}" for name, message in self.problems)
        )


class PluginError(CrmError):
    """A plugin cannot be loaded: unknown, missing requirement, cycle, bad manifest."""


class RegistryError(CrmError):
    """Two providers registered the same name, or a registration is malformed."""


class MigrationError(CrmError):
    """A migration file is malformed or failed to apply."""


class VersionConflict(CrmError):
    """A conditional write found another version than the one it expected."""

    def __init__(self, model, pk, expected, current=None):
        self.model, self.pk, self.expected, self.current = model, pk, expected, current
        super().__init__(
            f"{model.__name__} {pk}: expected version {expected}, found {current}"
        )


class FieldValueError(ValueError):
    """A value a record cannot take; ``field`` names it, ``message`` may be a lazy translation.

    The API answers it as a 422 with the message under the field's name.
    """

    def __init__(self, field, message):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


class UserError(ValueError):
    """A refused change; ``field`` names the input it is about, ``message`` is translatable;
    ``fields`` holds a message per input when several are wrong at once.

    The API answers it as a 422 (a 409 for a name already taken or a record still in
    use), with the messages under the inputs' names; pages show them beside the inputs.
    """

    CONFLICTS = ("duplicate", "has_children", "changed", "possible_duplicates", "stale")

    def __init__(self, message, field=None, code="invalid", fields=None):
        self.message, self.field, self.code = message, field, code
        self.fields = fields or {field or "_schema": message}
        super().__init__(str(message))
