"""nexusmail as a systemd service, without systemd as PID 1 (REAL-COMPONENTS section 5).

The unit file goes through `systemd-analyze verify` (any output fails: unknown keys only
warn with rc 0) and `systemd-analyze security --offline=yes` (a score threshold). The
daemon runs as a real process (`python -m nexusmail run`) with NOTIFY_SOCKET pointing
at a datagram socket the test reads, which is all Type=notify needs from systemd.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from aiosmtpd.controller import Controller
from daemon_harness import config_toml
from dovecot_server import ANY_USER_PASSWORD, Dovecot, dovecot_binary, new_user
from smtp_sink import CaptureHandler, free_port

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "nexusmail.service"
# Where the README installs the daemon: a virtualenv, since Debian 12's Python refuses pip.
VENV_PREFIX = "/opt/nexusmail"
SUPPORT = "support@firm.test"
# On the 0-100 scale of --threshold (the table shows it /10). Measured 11 ("1.1 OK");
# raising it needs a reason in the unit file, and README's number must be updated.
EXPOSURE_THRESHOLD = 12

# Runs the daemon with the kernel's "no memory both writable and executable" flag
# (PR_SET_MDWE, Linux >= 6.3; inherited by children and kept across exec), the
# per-process equivalent of the unit's MemoryDenyWriteExecute=yes. Older kernels: as is.
_MDWE_LAUNCHER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(65, 1, 0, 0, 0)  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""


def _systemd_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package: systemd)")
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True,
                          timeout=30, check=False)


def test_unit_verifies_without_a_word(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit and prints nothing (warnings fail too).

    verify also checks that ExecStart's program exists: the unit runs from the
    virtualenv the README creates in /opt/nexusmail, so the copy checked here points at
    this test run's own virtualenv, which has the same layout (bin/nexusmail)."""
    text = UNIT.read_text(encoding="utf-8")
    assert f"ExecStart={VENV_PREFIX}/bin/nexusmail " in text
    assert f"python3 -m venv {VENV_PREFIX}" in (REPO / "README.md").read_text(encoding="utf-8")
    venv = Path(sys.prefix)
    if not (venv / "bin" / "nexusmail").exists():
        pytest.skip("the tests do not run from a virtualenv with nexusmail installed")
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace(f"{VENV_PREFIX}/", f"{venv}/"), encoding="utf-8")
    result = _systemd_analyze("verify", "--man=no", str(unit))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_blobs_gc_timer_and_its_service_verify_without_a_word(tmp_path: Path) -> None:
    """The daily orphan sweep's timer and oneshot service pass `systemd-analyze verify`
    silently, and the service runs `blobs gc` from the same virtualenv as the daemon."""
    venv = Path(sys.prefix)
    if not (venv / "bin" / "nexusmail").exists():
        pytest.skip("the tests do not run from a virtualenv with nexusmail installed")
    units = []
    for name in ("nexusmail-blobs-gc.service", "nexusmail-blobs-gc.timer"):
        text = (REPO / "systemd" / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace(f"{VENV_PREFIX}/", f"{venv}/"), "utf-8")
        units.append(str(tmp_path / name))
    assert f"ExecStart={VENV_PREFIX}/bin/nexusmail " in (
        REPO / "systemd" / "nexusmail-blobs-gc.service").read_text(encoding="utf-8")
    result = _systemd_analyze("verify", "--man=no", *units)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_security_exposure_stays_low() -> None:
    """The offline exposure score stays under the threshold and matches the README."""
    result = _systemd_analyze("security", "--offline=yes", f"--threshold={EXPOSURE_THRESHOLD}",
                              "--no-pager", str(UNIT))
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert found, result.stdout + result.stderr
    assert result.returncode == 0, f"exposure {found[1]} is above {EXPOSURE_THRESHOLD / 10}"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"exposure level for nexusmail.service: {found[1]}" in readme


def test_sysusers_snippet_creates_the_units_user(tmp_path: Path) -> None:
    """systemd/nexusmail.sysusers creates the User= and Group= the unit runs as."""
    if shutil.which("systemd-sysusers") is None:
        pytest.skip("systemd-sysusers is not installed (Debian package: systemd)")
    (tmp_path / "etc").mkdir()
    # --root: the users go to tmp_path/etc, not to this machine's /etc.
    result = subprocess.run(["systemd-sysusers", f"--root={tmp_path}",
                             str(REPO / "systemd" / "nexusmail.sysusers")],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    unit = UNIT.read_text(encoding="utf-8")
    user = re.search(r"^User=(\S+)$", unit, re.MULTILINE)
    group = re.search(r"^Group=(\S+)$", unit, re.MULTILINE)
    assert user
    assert group
    passwd = (tmp_path / "etc" / "passwd").read_text()
    assert re.search(rf"^{user[1]}:x:\d+:\d+:.*:/var/lib/nexusmail:", passwd, re.MULTILINE)
    assert re.search(rf"^{group[1]}:x:", (tmp_path / "etc" / "group").read_text(), re.MULTILINE)


class Notifications:
    """The test's side of NOTIFY_SOCKET: an AF_UNIX datagram socket, as systemd binds."""

    def __init__(self, address: str) -> None:
        self.address = address  # as the daemon gets it ("@..." is abstract)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.seen: list[str] = []

    def next(self, prefix: str, timeout_s: float = 20.0) -> str:
        """The next datagram starting with `prefix`, skipping others (watchdog pings)."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                state = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.seen.append(state)
            if state.startswith(prefix):
                return state
        raise AssertionError(f"no {prefix!r} within {timeout_s} s; got {self.seen}")


class Events:
    """The daemon's JSON log lines, read by a thread so a silent daemon cannot hang us."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(json.loads(line))

    def wait_for(self, event: str, timeout_s: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                got = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if got["event"] == event:
                return got
        raise AssertionError(f"no {event!r} event within {timeout_s} s")


class DaemonProcess:
    def __init__(self, tmp_path: Path, notify_address: str, config: dict[str, dict[str, Any]],
                 extra_env: dict[str, str]) -> None:
        self.smtp_port = free_port()
        self.config_path = tmp_path / "nexusmail.toml"
        self.config: dict[str, dict[str, Any]] = {
            "storage": {"data_dir": str(tmp_path / "data")},
            "smtp": {"port": self.smtp_port},
            "web": {"port": free_port()},
            "mail": {"support_addresses": [SUPPORT], "company_name": "Firm"},
            **config,
        }
        self.write_config()
        self.notifications = Notifications(notify_address)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("NEXUSMAIL_", "NOTIFY_SOCKET", "WATCHDOG_"))}
        env.update(NOTIFY_SOCKET=notify_address, **extra_env)
        self.stderr = (tmp_path / "stderr.txt").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _MDWE_LAUNCHER, "-m", "nexusmail",
             "--config", str(self.config_path), "run"],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env,
            start_new_session=True)
        assert self.process.stdout is not None
        self.events = Events(self.process.stdout)

    def write_config(self, text: str | None = None) -> None:
        self.config_path.write_text(config_toml(self.config) if text is None else text,
                                    encoding="utf-8")

    def send(self, sender: str, subject: str, body: str = "My printer does not print.") -> str:
        """Send one mail; "250", or the refusal as "code text"."""
        raw = (f"From: {sender}\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n"
               f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\n\r\n{body}\r\n")
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=20) as client:
            try:
                client.sendmail(sender, [SUPPORT], raw.encode())
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:  # SIZE or DATA
                error = exc.smtp_error
                return f"{exc.smtp_code} {error.decode() if isinstance(error, bytes) else error}"
        return "250"

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        self.stderr.close()
        self.notifications.sock.close()


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Any]:
    started: list[DaemonProcess] = []

    def start(notify_address: str, config: dict[str, dict[str, Any]] | None = None,
              **extra_env: str) -> DaemonProcess:
        daemon = DaemonProcess(tmp_path, notify_address, config or {}, extra_env)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.close()


def test_notify_protocol(start_daemon: Any, tmp_path: Path) -> None:
    """READY=1 once SMTP answers, WATCHDOG=1 pings, RELOADING=1/READY=1 around SIGHUP,
    STOPPING=1 on SIGTERM, exit code 0 (under PR_SET_MDWE where the kernel has it)."""
    daemon: DaemonProcess = start_daemon(
        str(tmp_path / "notify.sock"), {"ingest": {"parse_processes": 1}},
        WATCHDOG_USEC="300000")
    notes = daemon.notifications
    ready = notes.next("READY=1")
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=5) as client:
        assert client.noop()[0] == 250  # already listening when READY=1 arrived
    assert re.fullmatch(r"READY=1\nSTATUS=serving: SMTP on port \d+, web on port \d+", ready)
    # >= 32 KB goes to the parse worker process: MDWE holds there too.
    assert daemon.send("ana@example.org", "Printer", "x" * 40_000) == "250"
    started = time.monotonic()
    for _ in range(3):
        assert notes.next("WATCHDOG=1", timeout_s=2) == "WATCHDOG=1"
    assert time.monotonic() - started < 2  # every 0.15 s, half of WATCHDOG_USEC

    daemon.process.send_signal(signal.SIGHUP)
    assert re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=\d+", notes.next("RELOADING=1"))
    assert notes.next("READY=1").startswith("READY=1\nSTATUS=serving")

    daemon.process.send_signal(signal.SIGTERM)
    assert notes.next("STOPPING=1") == "STOPPING=1"
    assert daemon.process.wait(20) == 0


def test_sighup_reloads_templates_and_limits(start_daemon: Any, tmp_path: Path,
                                             relay: Controller) -> None:
    """After SIGHUP the next acknowledgement uses the new templates_dir, the new size
    limit answers 552, a port change is reported as needing a restart, and a broken
    config is logged by key while the daemon keeps serving on its settings."""
    sink: CaptureHandler = relay.handler
    old_templates, new_templates = tmp_path / "templates-1", tmp_path / "templates-2"
    for directory, words in ((old_templates, "First"), (new_templates, "Second")):
        (directory / "mail" / "en").mkdir(parents=True)
        (directory / "mail" / "en" / "acknowledgement.subject.j2").write_text(
            words + " template {{ tag }}\n")
    daemon: DaemonProcess = start_daemon("@nexusmail-test-" + uuid.uuid4().hex, {
        "mail": {"support_addresses": [SUPPORT], "templates_dir": str(old_templates)},
        "limits": {"max_message_bytes": 100_000},
        "outbound": {"host": "127.0.0.1", "port": relay.port, "poll_interval_s": 0.2},
    })
    daemon.notifications.next("READY=1")
    assert daemon.send("ana@example.org", "Printer") == "250"
    assert sink.wait_for(1)[0].message()["Subject"].startswith("First template")

    daemon.config["mail"]["templates_dir"] = str(new_templates)
    daemon.config["limits"]["max_message_bytes"] = 2048
    daemon.config["smtp"]["port"] = free_port()
    daemon.write_config()
    daemon.process.send_signal(signal.SIGHUP)
    reloaded = daemon.events.wait_for("daemon.reloaded")
    assert reloaded["reloaded"] == [
        "templates", "[mail] templates_dir", "[limits] max_message_bytes"]
    assert reloaded["needs_restart"] == ["[smtp] port"]
    assert reloaded["note"] == "changed, takes effect after restart"
    daemon.notifications.next("READY=1")
    assert daemon.send("bob@example.org", "Scanner") == "250"  # the old port still serves
    assert sink.wait_for(2)[1].message()["Subject"].startswith("Second template")
    assert daemon.send("eva@example.org", "Big", "x" * 3000).startswith("552")

    daemon.write_config(daemon.config_path.read_text().replace(
        "max_message_bytes = 2048", 'max_message_bytes = "lots"'))
    daemon.process.send_signal(signal.SIGHUP)
    failed = daemon.events.wait_for("daemon.reload_failed")
    assert "[limits] max_message_bytes" in failed["error"]
    assert daemon.notifications.next("READY=1").endswith(
        "(reload failed, running on the previous settings)")
    assert daemon.send("eva@example.org", "Big", "x" * 3000).startswith("552")
    assert daemon.send("eva@example.org", "Small") == "250"

    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(20) == 0


def test_sighup_adds_and_removes_imap_accounts(start_daemon: Any) -> None:
    """An account added to the config and reloaded starts collecting; removed and
    reloaded, it stops (mail appended afterwards stays on the server)."""
    if dovecot_binary() is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    with Dovecot() as dovecot:
        user = new_user()
        dovecot.append(user, [_mail("ana@example.org", "Boiler")])
        daemon: DaemonProcess = start_daemon("@nexusmail-test-" + uuid.uuid4().hex)
        daemon.notifications.next("READY=1")
        daemon.config["imap"] = {"reconnect_min_s": 0.1, "accounts": [{
            "name": "support", "host": dovecot.host, "port": dovecot.port, "tls": "none",
            "username": user, "password": ANY_USER_PASSWORD}]}
        daemon.write_config()
        daemon.process.send_signal(signal.SIGHUP)
        reloaded = daemon.events.wait_for("daemon.reloaded")
        assert (reloaded["reloaded"], reloaded["imap_restarted"]) == (
            ["templates", "[imap] accounts", "[imap] reconnect_min_s"], True)
        accepted = daemon.events.wait_for("mail.accepted")
        assert (accepted["source"], accepted["outcome"]) == ("imap:support", "new_request")

        del daemon.config["imap"]
        daemon.write_config()
        daemon.process.send_signal(signal.SIGHUP)
        assert daemon.events.wait_for("daemon.reloaded")["imap_restarted"] is True
        daemon.notifications.next("READY=1")
        dovecot.append(user, [_mail("bob@example.org", "Scanner")])
        time.sleep(1.5)  # the old collector (IDLE) would have taken it by now
        assert dovecot.status(user)["messages"] == 1
        daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(20) == 0


def _mail(sender: str, subject: str) -> bytes:
    return (f"From: {sender}\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\n\r\nIt stopped.\r\n").encode()
