"""What a page says about a form it refuses, in the operator's language.

The API answers pydantic's own English (stable for its clients); a page names the
field and says what is wrong in one of a few catalogued sentences instead.
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from nexusmail.i18n import Msg, msg


def validation_message(exc: ValidationError) -> Msg:
    """Everything wrong with a form, each naming its field."""
    problems = [_problem(error) for error in exc.errors(include_url=False,
                                                         include_input=False)]
    shown = problems[0]
    for more in problems[1:]:
        shown = msg("{one} {other}", one=shown, other=more)
    return shown


def _problem(error: ErrorDetails) -> Msg:
    field = ".".join(str(part) for part in error["loc"]) or "form"
    kind = str(error["type"])
    context = error.get("ctx") or {}
    if kind == "missing":
        return msg("{field}: is required.", field=field)
    if kind == "extra_forbidden":
        return msg("{field}: is not a field of this form.", field=field)
    if kind in ("string_too_long", "too_long"):
        return msg("{field}: is too long (at most {limit}).", field=field,
                   limit=context.get("max_length", "?"))
    if kind in ("string_too_short", "too_short"):
        return msg("{field}: may not be empty.", field=field)
    if kind.startswith(("int_", "float_", "decimal_")) or kind in (
            "greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return msg("{field}: should be a number in the allowed range.", field=field)
    if kind.startswith(("date_", "datetime_", "time_")):
        return msg("{field}: should be a date (day/month/year) or a date and time.",
                   field=field)
    if kind in ("literal_error", "enum"):
        return msg("{field}: should be one of {expected}.", field=field,
                   expected=context.get("expected", "?"))
    # A check of our own (an address, a period): its words name the problem.
    problem = str(error["msg"]).removeprefix("Value error, ")
    head, colon, rest = problem.partition(": ")
    if not error["loc"] and colon and head.isidentifier():
        # A check across fields names the one at fault itself ("desired_to: ...").
        field, problem = head, rest
    return msg("{field}: is not valid ({problem}).", field=field, problem=problem)
