"""A PostgreSQL store without shared reply-signing keys is said at start: daemons that
share the database would each sign reply addresses with a key of their own."""

from __future__ import annotations

from nexusmail.config import Settings
from nexusmail.config_warnings import config_warnings

PG = {"storage": {"database_url": "postgresql://nexusmail@db.firm.lan/nexusmail"}}


def test_postgresql_without_reply_keys_is_warned_naming_the_key() -> None:
    """On PostgreSQL with generated keys: one warning naming [replies] secret_keys;
    with keys configured, or on the embedded SQLite store: none."""
    keys = [w.key for w in config_warnings(Settings.model_validate(PG))]
    assert keys == ["[replies] secret_keys"]
    shared = Settings.model_validate({**PG, "replies": {"secret_keys": ["k" * 32]}})
    assert config_warnings(shared) == []
    assert config_warnings(Settings()) == []
