"""What `load_settings` says about a configuration it refuses: one line per key at
fault, in words the CLI can translate.

The value checks are pydantic's. Its commonest messages are rebuilt here from templates
that reproduce its English exactly, so the catalogues can hold them; a message these
templates do not reproduce (another error type, or a pydantic that words one
differently) is passed on as pydantic wrote it.
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from nexusmail.i18n import N_, Msg, msg

# Keys whose value may carry a password: refused, but not repeated on the terminal.
_SECRET_KEYS = ("database_url", "password", "endpoint_url")
_PYDANTIC_WORDS = {
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional"
                         " part"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "greater_than": N_("Input should be greater than {gt}"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "less_than": N_("Input should be less than {lt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "literal_error": N_("Input should be {expected}"),
    "missing": N_("Field required"),
}


def describe_invalid(source: str | Msg, exc: ValidationError) -> Msg:
    """The refusal: where the settings came from, then each key and its problem."""
    described = msg("invalid configuration in {source}:", source=source)
    for error in exc.errors():
        described = msg("{above}\n  {line}", above=described, line=_line(error))
    return described


def _line(error: ErrorDetails) -> Msg | str:
    loc = [str(part) for part in error["loc"]]
    key = f"[{loc[0]}] {'.'.join(loc[1:])}" if len(loc) > 1 else (loc[0] if loc else "")
    if not key:  # a check across sections names its keys itself
        return str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return msg("{key}: unknown key", key=key)
    got = error.get("input")
    secret = bool(loc) and loc[-1] in _SECRET_KEYS
    if isinstance(got, dict) or error["type"] == "missing" or secret:
        return msg("{key}: {problem}", key=key, problem=pydantic_words(error))
    return msg("{key}: {problem} (got {value})", key=key, problem=pydantic_words(error),
               value=repr(got))


def pydantic_words(error: ErrorDetails) -> Msg | str:
    """pydantic's message for `error`, as a translatable Msg when a template says
    exactly the same in English."""
    template = _PYDANTIC_WORDS.get(error["type"])
    if template is None:
        return error["msg"]
    context = {name: str(value) for name, value in (error.get("ctx") or {}).items()}
    try:
        worded = msg(template, **context)
        same = str(worded) == error["msg"]
    except (KeyError, IndexError):
        return error["msg"]
    return worded if same else error["msg"]
