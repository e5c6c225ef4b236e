"""The typed refusals of the services the JSON API and the console share.

A service says what went wrong in the service's own terms, never in HTTP's: the web layer maps each class to its
status (hub/web/errors.py) and the console catches the class it can answer itself. Every error has a stable
``code`` (for callers and logs) and a ``detail``: a sentence, or a dict such as ``{"problems": [...]}``, naming
fields, never a value sent (no ID number, no name).
"""

from __future__ import annotations


class ServiceError(Exception):
    """A service's refusal; ``code`` is stable, ``detail`` is what may be shown to the caller."""

    code = "service_error"

    def __init__(self, detail: str | dict):
        self.detail = detail
        super().__init__(detail if isinstance(detail, str) else self.code)


class NotFound(ServiceError):
    """No such object for this client: the same answer whether it exists or not."""

    code = "not_found"


class NotEntitled(NotFound):
    """The client may not read this object (no open case, no policy rule). Answered as NotFound, so that a refusal
    does not tell whether the object exists."""

    code = "not_entitled"


class Invalid(ServiceError):
    """The input is not acceptable; ``problems`` lists every reason (field names, never values)."""

    code = "invalid"

    def __init__(self, detail: str | dict, problems: list[str] | None = None):
        self.problems = problems if problems is not None else [detail] if isinstance(detail, str) else []
        super().__init__(detail)


class Conflict(ServiceError):
    """The object is not in the state the operation needs (yet)."""

    code = "conflict"
