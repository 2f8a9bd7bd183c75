"""What a SIGHUP applies live and what it leaves for a restart (nexusmail.service.reload)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from nexusmail.config import ImapAccount, Settings
from nexusmail.service.reload import plan_reload

OLD = Settings.model_validate({"mail": {"support_addresses": ["support@firm.test"]}})
ACCOUNT = ImapAccount(name="inbox", host="imap.firm.test", username="u",
                      password=SecretStr("p"))


def _changed(**sections: dict[str, Any]) -> Settings:
    return OLD.model_copy(update={
        name: getattr(OLD, name).model_copy(update=values) for name, values in sections.items()})


def test_nothing_changed_reloads_templates_only() -> None:
    """Template files may change without a key changing: they are always re-read."""
    plan = plan_reload(OLD, OLD)
    assert (plan.reloaded, plan.needs_restart, plan.restart_imap) == (("templates",), (), False)
    assert plan.settings == OLD


@pytest.mark.parametrize(("sections", "reloaded", "needs_restart", "restart_imap"), [
    ({"limits": {"max_body_chars": 500}}, ["[limits] max_body_chars"], [], False),
    ({"limits": {"max_message_bytes": 4096}}, ["[limits] max_message_bytes"], [], False),
    ({"imap": {"accounts": (ACCOUNT,)}}, ["[imap] accounts"], [], True),
    ({"mail": {"templates_dir": Path("/srv/t")}}, ["[mail] templates_dir"], [], False),
    ({"mail": {"company_name": "Other"}}, [], ["[mail] company_name"], False),
    ({"mail": {"max_acks_per_hour_per_domain": 3, "mute_after_new_cases": 2}},
     ["[mail] max_acks_per_hour_per_domain", "[mail] mute_after_new_cases"], [], False),
    ({"smtp": {"port": 25}, "storage": {"data_dir": Path("/srv/d")}}, [],
     ["[storage] data_dir", "[smtp] port"], False),
    ({"outbound": {"password": SecretStr("new")}}, [], ["[outbound] password"], False),
])
def test_plan_names_each_changed_key(sections: dict[str, dict[str, Any]], reloaded: list[str],
                                     needs_restart: list[str], restart_imap: bool) -> None:
    """Live keys are applied, the others named as needing a restart and left as they were."""
    new = _changed(**sections)
    plan = plan_reload(OLD, new)
    assert plan.reloaded == ("templates", *reloaded)
    assert plan.needs_restart == tuple(needs_restart)
    assert plan.restart_imap is restart_imap
    applied = _changed(**{name: values for name, values in sections.items()
                          if name in ("limits", "imap") or "templates_dir" in values
                          or "mute_after_new_cases" in values})
    assert plan.settings == applied
