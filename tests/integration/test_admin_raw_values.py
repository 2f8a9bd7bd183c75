"""No stored word shown raw on a page: a case's reason for being on hold or closed reads
as its label on the thread and on the machine's history, in the operator's language."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from admin_harness import csrf_of, logged_in
from admin_languages import operator_speaking, seed_desk
from daemon_harness import Daemon, make_settings, running_daemon

LABELS = {"it": ("in attesa di ricambi", "non riparabile"),
          "ro": ("în așteptarea pieselor", "nu se poate repara")}


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with running_daemon(make_settings(tmp_path / "data")) as running:
        await seed_desk(running)
        await running.running.store.write(lambda tx: tx.execute(
            "UPDATE interventions SET equipment_id = 1 WHERE number = 1"))
        yield running


@pytest.mark.parametrize("language", ["it", "ro"])
async def test_hold_and_close_reasons_read_as_labels(daemon: Daemon, language: str) -> None:
    """Put on hold waiting for parts, the thread says so in words; closed as not
    repairable, the thread and the machine's card say so in words; `waiting_parts`
    and `not_repairable` appear on neither page."""
    on_hold, closed = LABELS[language]
    await operator_speaking(daemon, "op@firm.test", language)
    async with logged_in(daemon, "op@firm.test") as client:
        token = csrf_of((await client.get("/interventions/1")).text)
        held = await client.post("/interventions/1/hold",
                                 data={"csrf_token": token, "reason": "waiting_parts"})
        assert held.status_code == 303
        thread = (await client.get("/interventions/1")).text
        assert f"<dd>{on_hold}</dd>" in thread
        assert "waiting_parts" not in thread.replace('value="waiting_parts"', "")
        token = csrf_of(thread)
        done = await client.post("/interventions/1/close",
                                 data={"csrf_token": token, "reason": "not_repairable"})
        assert done.status_code == 303
        for page in ("/interventions/1", "/equipment/1"):
            shown = (await client.get(page)).text
            assert closed in shown, page
            assert "not_repairable" not in shown.replace('value="not_repairable"', ""), page
