"""What a page says about a form it refuses, in the operator's language.

The API answers pydantic's own English (stable for its clients); a page names the
field and says what is wrong in one of a few catalogued sentences instead: pydantic's
error types map to our phrases, a check of our own raises its catalogued message, and
anything else reads "is not valid" rather than pydantic's English.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from nexusmail.i18n import N_, Msg, message_of, msg

_NUMBER_TYPES = ("int_", "float_", "decimal_")
_DATE_TYPES = ("date_", "datetime_", "time_")
# pydantic's range errors: the context key holding the limit, and our phrase.
_BOUNDS = {
    "greater_than_equal": ("ge", N_("should be at least {limit}.")),
    "greater_than": ("gt", N_("should be more than {limit}.")),
    "less_than_equal": ("le", N_("should be at most {limit}.")),
    "less_than": ("lt", N_("should be less than {limit}.")),
}


def validation_message(exc: ValidationError) -> Msg:
    """Everything wrong with a form, each naming its field."""
    problems = [problem_of(error) for error in errors_of(exc)]
    shown = problems[0]
    for more in problems[1:]:
        shown = msg("{one} {other}", one=shown, other=more)
    return shown


def errors_of(exc: ValidationError) -> list[ErrorDetails]:
    return exc.errors(include_url=False, include_input=False)


def problem_of(error: ErrorDetails, where: Sequence[int | str] | None = None) -> Msg:
    """One error as a sentence naming the field at `where` (default: the error's own
    place); with no field (a check of the whole form), the problem alone."""
    loc = error["loc"] if where is None else where
    field = ".".join(str(part) for part in loc)
    problem = _phrase(str(error["type"]), error.get("ctx") or {})
    if not field:
        return problem
    return msg("{field}: {problem}", field=field, problem=problem)


def _phrase(kind: str, context: dict[str, Any]) -> Msg:
    """What is wrong, without the field."""
    if kind == "missing":
        return msg("is required.")
    if kind == "extra_forbidden":
        return msg("is not a field of this form.")
    if kind in ("string_too_long", "too_long"):
        return msg("is too long (at most {limit}).", limit=context.get("max_length", "?"))
    if kind in ("string_too_short", "too_short"):
        return msg("may not be empty.")
    bound = _bound(kind, context)
    if bound is not None:
        return bound
    if kind.startswith(_NUMBER_TYPES):
        return msg("should be a number.")
    if kind.startswith(_DATE_TYPES):
        return msg("should be a date (day/month/year).")
    if kind.startswith("bool_"):
        return msg("should be yes or no.")
    if kind in ("literal_error", "enum"):
        return msg("should be one of the choices offered.")
    if kind in ("value_error", "assertion_error"):
        # A check of our own raises its catalogued message (nexusmail.i18n.msg).
        cause = message_of(context["error"]) if "error" in context else None
        if isinstance(cause, Msg):
            return cause
    return msg("is not valid.")


def _bound(kind: str, context: dict[str, Any]) -> Msg | None:
    """A number out of its range, saying the limit."""
    if kind not in _BOUNDS:
        return None
    key, text = _BOUNDS[kind]
    limit = context.get(key, "?")
    return msg(text, limit=f"{limit:g}" if isinstance(limit, float) else limit)
