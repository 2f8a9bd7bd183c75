"""`nexusmail schedule ...`: the offline schedule commands against a real store in a
temp dir (the CLI reads the system clock, so dates here are relative to today)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nexusmail.cli.main import main
from nexusmail.tickets.recurrence import local_date

TODAY = local_date(datetime.now(UTC), "Europe/Rome")



@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "nexusmail.toml"
    path.write_text(f'[storage]\ndata_dir = "{(tmp_path / "data").as_posix()}"\n',
                    encoding="utf-8")
    return str(path)


def run(config: str, *args: str) -> int:
    return main([*args, "--config", config])


def test_add_list_show_preview_pause_resume(config: str, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    """add, list, show, preview, pause and resume agree with each other."""
    first = TODAY + timedelta(days=40)
    assert run(config, "schedule", "add", "condominio@example.it", "--subject", "Caldaia",
               "--interval", "monthly", "--first-date", first.isoformat(),
               "--lead-days", "3", "--contract-ref", "C-17") == 0
    opens = (first - timedelta(days=3)).isoformat()
    assert f"next {first.isoformat()}, opens {opens}" in capsys.readouterr().out
    assert run(config, "schedule", "list", "--json") == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["id"], listed["interval"], listed["active"]) == (1, "monthly", True)
    assert run(config, "schedule", "show", "1") == 0
    shown = capsys.readouterr().out
    assert "contract:   C-17" in shown
    assert "(none yet)" in shown
    assert run(config, "schedule", "preview", "1", "--count", "2", "--json") == 0
    preview = json.loads(capsys.readouterr().out)
    assert preview[0] == {"date": first.isoformat(), "opens_on": opens,
                          "intervention_number": None}
    assert run(config, "schedule", "pause", "1") == 0
    assert "Schedule 1 paused." in capsys.readouterr().out
    assert run(config, "schedule", "list") == 0
    assert "paused" in capsys.readouterr().out
    assert run(config, "schedule", "resume", "1") == 0
    assert f"resumed; next {first.isoformat()}" in capsys.readouterr().out


def test_errors_name_the_field_and_exit_non_zero(config: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input names the field and exits 2; an unknown schedule exits 1."""
    base = ["schedule", "add", "c@example.it", "--subject", "S", "--interval", "weekly",
            "--first-date", TODAY.isoformat(), "--lead-days", "1"]
    assert run(config, *base, "--day-rule", "last_day") == 2
    assert "day_rule:" in capsys.readouterr().err
    assert run(config, *base, "--assignee", "nobody@firm.test") == 2
    assert "assignees: no employee with address nobody@firm.test" in capsys.readouterr().err
    assert run(config, *base[:-1], "-1") == 2
    assert "lead_days:" in capsys.readouterr().err
    assert run(config, "schedule", "pause", "7") == 1
    assert "schedule 7 does not exist" in capsys.readouterr().err
    assert run(config, "schedule", "preview", "7") == 1


def test_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    """`schedule add --help` carries worked examples."""
    assert main(["schedule", "add", "--help"]) == 0
    assert "--interval monthly --first-date" in capsys.readouterr().out
