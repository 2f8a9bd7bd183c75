"""`nexusmail operator add --role/--own-customers-only` and `token create --operator`
against a real store in a temp dir."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path

import pytest

from nexusmail.admin.tokens import find_token
from nexusmail.cli.main import main
from nexusmail.config import load_settings
from nexusmail.paths import database_path
from nexusmail.tickets.store import Store

PASSWORD = "una password lunga\n"


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "nexusmail.toml"
    path.write_text(f'[storage]\ndata_dir = "{(tmp_path / "data").as_posix()}"\n',
                    encoding="utf-8")
    return str(path)


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def operators_in(config: str) -> list[tuple[str, str, int]]:
    async def read() -> list[tuple[str, str, int]]:
        async with Store(database_path(load_settings(Path(config)))) as store, store.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT email, role, own_customers_only FROM operators ORDER BY id")
            return [(r[0], r[1], r[2]) for r in rows]

    return asyncio.run(read())


def test_roles_default_and_chosen(monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str], config: str) -> None:
    """The first operator is admin, the next dispatcher unless --role says otherwise;
    --own-customers-only is stored; list shows both; an unknown role is a usage error."""
    assert run(monkeypatch, capsys, "operator", "add", "a@firm.test", "--config", config
               )[0] == 0
    code, out, _ = run(monkeypatch, capsys, "operator", "add", "b@firm.test",
                       "--config", config)
    assert code == 0
    assert "Role: dispatcher" in out
    assert run(monkeypatch, capsys, "operator", "add", "c@firm.test", "--role", "viewer",
               "--language", "ro", "--own-customers-only", "--config", config)[0] == 0
    assert run(monkeypatch, capsys, "operator", "add", "d@firm.test", "--role", "boss",
               "--config", config)[0] == 2
    assert operators_in(config) == [("a@firm.test", "admin", 0),
                                    ("b@firm.test", "dispatcher", 0),
                                    ("c@firm.test", "viewer", 1)]
    listing = run(monkeypatch, capsys, "operator", "list", "--config", config)[1]
    assert "viewer  own customers only" in listing


def test_token_create_for_an_operator(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str], config: str) -> None:
    """`token create --operator` makes a token that acts as that operator; an unknown
    operator fails (1) and makes no token; without --operator the token stands alone."""
    run(monkeypatch, capsys, "operator", "add", "a@firm.test", "--config", config)
    run(monkeypatch, capsys, "operator", "add", "v@firm.test", "--role", "viewer",
        "--config", config)
    code, out, _ = run(monkeypatch, capsys, "token", "create", "--name", "wall",
                       "--operator", "V@firm.test", "--config", config)
    assert code == 0
    acting = out.strip().splitlines()[-1]
    code, _, err = run(monkeypatch, capsys, "token", "create", "--name", "x",
                       "--operator", "nobody@firm.test", "--config", config)
    assert code == 1
    assert "nobody@firm.test" in err
    plain = run(monkeypatch, capsys, "token", "create", "--name", "ci", "--config", config
                )[1].strip().splitlines()[-1]

    async def look() -> tuple[str | None, str | None, int]:
        async with Store(database_path(load_settings(Path(config)))) as store, store.read() as conn:
            found, alone = await find_token(conn, acting), await find_token(conn, plain)
            count = (await conn.execute_fetchall("SELECT count(*) FROM api_tokens"))[0][0]
            assert found is not None
            assert alone is not None
            return (found.operator.role if found.operator else None,
                    alone.operator.role if alone.operator else None, count)

    assert asyncio.run(look()) == ("viewer", None, 2)
