"""Chasing with nobody to tell is said at start: each [sla]/[contracts] key that would
alert the operators is named when [mail] operator_addresses is empty."""

from __future__ import annotations

from nexusmail.config import Settings
from nexusmail.config_warnings import config_warnings


def test_alerts_without_operator_addresses_are_warned() -> None:
    """Escalation and the low-hours alert without operators: two warnings naming the
    keys; with an operator address: none."""
    raw = {"sla": {"escalate_after_hours": 4, "remind_after_hours": 2},
           "contracts": {"low_hours_alert": 5}}
    keys = [w.key for w in config_warnings(Settings.model_validate(raw))]
    assert keys == ["[sla] escalate_after_hours", "[contracts] low_hours_alert"]
    told = Settings.model_validate({**raw, "mail": {"operator_addresses": ["d@firm.test"]}})
    assert config_warnings(told) == []
