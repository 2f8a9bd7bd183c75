"""A refused configuration names each key at fault; pydantic's commonest messages are
rebuilt from catalogued templates, word for word the same in English."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from nexusmail.config import ConfigError, Settings, load_settings
from nexusmail.config_errors import pydantic_words
from nexusmail.i18n import Msg


@pytest.mark.parametrize(("raw", "english"), [
    ({"smtp": {"port": "abc"}}, "unable to parse string as an integer"),
    ({"smtp": {"port": -5}}, "greater than or equal to 0"),
    ({"smtp": {"port": 99999999}}, "less than or equal to 65535"),
    ({"limits": {"max_message_bytes": 1.5}}, "fractional part"),
    ({"tickets": {"reopen_on_customer_reply": "maybe"}}, "valid boolean"),
    ({"web": {"default_language": "de"}}, "'en', 'it' or 'ro'"),
])
def test_common_value_errors_become_translatable(raw: dict[str, Any], english: str) -> None:
    """Each template says exactly what pydantic says (a pydantic that rewords one fails
    here, instead of the CLI quietly falling back to English)."""
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate(raw)
    (error,) = caught.value.errors()
    worded = pydantic_words(error)
    assert isinstance(worded, Msg)
    assert str(worded) == error["msg"]
    assert english in str(worded)
    assert worded.translated("it") != str(worded)


def test_the_refusal_names_the_source_and_the_key() -> None:
    """The English refusal reads as before: where the settings came from, then
    `[section] key: problem (got value)`; an unknown key is named as such."""
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"NEXUSMAIL_SMTP__PORT": "abc", "NEXUSMAIL_SMTP__BOGUS": "1"})
    assert str(caught.value).splitlines() == [
        "invalid configuration in embedded defaults + environment (NEXUSMAIL_SMTP__BOGUS,"
        " NEXUSMAIL_SMTP__PORT):",
        "  [smtp] port: Input should be a valid integer, unable to parse string as an"
        " integer (got 'abc')",
        "  [smtp] bogus: unknown key"]
