"""Errors a service raises; the API and the pages turn them into 400 / 403 / 409."""


class Conflict(Exception):
    """The request is valid but the state forbids it (409 {"code", "detail"})."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(detail or code)
        self.code = code
        self.detail = detail or code.replace("_", " ")


class Invalid(Exception):
    """Bad input (400 {"errors": {field: [messages]}}); raised before anything is stored.

    `confirmable` names the fields refused only as implausible (HOLD-RULES §3a INV-PLAUSIBLE): sent again with
    `confirm` and a `confirm_reason` they are stored, so a form offers that confirmation beside them.
    """

    def __init__(
        self,
        errors: dict[str, list[str]] | str,
        field: str = "non_field_errors",
        *,
        confirmable: frozenset[str] | set[str] = frozenset(),
    ):
        if isinstance(errors, str):
            errors = {field: [errors]}
        super().__init__(str(errors))
        self.errors = errors
        self.confirmable = frozenset(confirmable)


class Forbidden(Exception):
    """The user's role may not do this (403)."""
