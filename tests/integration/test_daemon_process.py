"""The real `nexusmail run` process: JSON logs, mail in, SIGTERM drains and exits 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import aiosmtplib
import pytest
from smtp_sink import free_port


def _read_events(stream: IO[str], until: str, timeout_s: float = 15.0) -> list[dict[str, Any]]:
    """Read JSON lines until one whose event is `until`; every line must be JSON."""
    events = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        events.append(json.loads(line))
        if events[-1]["event"] == until:
            return events
    raise AssertionError(f"no {until!r} event; got {[e['event'] for e in events]}")


@pytest.fixture
def daemon_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    smtp_port = free_port()
    config = tmp_path / "nexusmail.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
        f"[smtp]\nport = {smtp_port}\n[web]\nport = {free_port()}\n"
        '[mail]\nsupport_addresses = ["assistenza@firm.test"]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUSMAIL_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "nexusmail", "--config", str(config), "run"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )
    try:
        yield process, smtp_port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()
        process.stderr.close()


async def test_logs_sigterm_and_exit(daemon_process: tuple[subprocess.Popen[str], int]) -> None:
    """Every stdout line is JSON; a mail's line carries intervention and Message-ID;
    SIGTERM stops the daemon in order with exit code 0."""
    process, smtp_port = daemon_process
    assert process.stdout is not None
    _read_events(process.stdout, "daemon.started")
    raw = (b"From: Ana Pop <ana@example.ro>\r\nTo: assistenza@firm.test\r\n"
           b"Subject: Imprimanta\r\nMessage-ID: <m1@example.ro>\r\n\r\nNu merge.\r\n")
    await aiosmtplib.send(raw, sender="ana@example.ro", recipients=["assistenza@firm.test"],
                          hostname="127.0.0.1", port=smtp_port)
    accepted = _read_events(process.stdout, "mail.accepted")[-1]
    assert accepted["intervention"] == 1
    assert accepted["message_id"] == "m1@example.ro"
    assert accepted["outcome"] == "new_request"
    assert accepted["trace_id"]
    process.send_signal(signal.SIGTERM)
    stopped = _read_events(process.stdout, "daemon.stopped")[-1]
    assert stopped["mails_accepted"] == 1
    assert process.wait(15) == 0


def test_help_lists_the_subcommands() -> None:
    """`nexusmail --help` names what the command can do."""
    result = subprocess.run([sys.executable, "-m", "nexusmail", "--help"],
                            capture_output=True, text=True, check=True)
    for word in ("run", "token", "employee", "check-config"):
        assert word in result.stdout


@pytest.mark.parametrize("section", ["smtp", "web"])
def test_a_taken_port_fails_at_once_naming_the_key(tmp_path: Path, section: str) -> None:
    """A port already in use stops `nexusmail run` within seconds with exit 1, and the
    failure names the `[section] port` to change, not only "Address already in use"."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = {"smtp": free_port(), "web": free_port()}
        ports[section] = taken.getsockname()[1]
        config = tmp_path / "nexusmail.toml"
        config.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
                          f"[smtp]\nport = {ports['smtp']}\n[web]\nport = {ports['web']}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUSMAIL_")}
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "nexusmail", "--config", str(config),
                                 "run"], capture_output=True, text=True, env=env, timeout=60,
                                check=False)
        elapsed_s = time.monotonic() - started
    assert result.returncode == 1
    [failed] = [json.loads(line) for line in result.stdout.splitlines()
                if '"daemon.failed"' in line]
    assert f"[{section}] port: 127.0.0.1:{ports[section]} is already in use" in failed["error"]
    assert elapsed_s < 9  # a start and a stop; before, each started task waited 10 s
