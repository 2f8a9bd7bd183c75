"""A throwaway Dovecot IMAP server for tests: own config, port and Maildir in a temp dir.

Never reads /etc/dovecot and is never a system service. The gotchas it works around
(each one hit for real): uid 0 is refused for mail access (Debian's `mail` user is used
when we are root), pytest's tmp_path is 0700 (the imap processes run as that user), unix
socket paths must stay short, plaintext auth and the auth-failure penalty must be
switched off, and the whole process group must be stopped, not only the master.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from imapclient import IMAPClient

ANY_USER_PASSWORD = "anypw"  # every user name starting with "tmp-" logs in with this


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot",) if Path(p).exists()), None)


CONF_TEMPLATE = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = nexusmail-test-{port}
log_path = /dev/stderr
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~/Maildir
mailbox_idle_check_interval = 1 secs
{nonroot}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
# a fresh mailbox per test without reloading the passwd-file (re-read once a second)
passdb {{
  driver = static
  args = password={any_pw}
  username_filter = tmp-*
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  {chroot}
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service anvil {{
  {chroot}
  # no growing auth-failure penalty (a wrong-password test would slow later logins)
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Dovecot:
    users: dict[str, str] = field(default_factory=lambda: {"alice": "alicepw"})
    tls_pem: bytes | None = None  # key + certificate chain: STARTTLS and an IMAPS port
    host: str = "127.0.0.1"
    port: int = 0
    imaps_port: int = 0
    root: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def conf(self) -> str:
        assert self.root is not None
        return str(self.root / "dovecot.conf")

    def start(self, timeout_s: float = 10.0) -> Dovecot:
        binary = dovecot_binary()
        if binary is None:
            raise RuntimeError("dovecot is not installed (apt-get install dovecot-imapd)")
        # Not tmp_path (0700, long): the mail user must traverse it; sockets < 108 bytes.
        self.root = root = Path(tempfile.mkdtemp(prefix="nm-dovecot-"))
        os.chmod(root, 0o755)  # noqa: S103 (the mail user must traverse it)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("mail")
            uid, gid, nonroot, chroot = pw.pw_uid, pw.pw_gid, "", ""
        else:
            uid, gid = os.getuid(), os.getgid()
            me, group = pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name
            nonroot = (f"default_internal_user = {me}\ndefault_login_user = {me}\n"
                       f"default_internal_group = {group}")
            chroot = "chroot ="
        (root / "mail").mkdir()
        os.chown(root / "mail", uid, gid)
        (root / "passwd").write_text(
            "".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self.users.items()))
        self.port = self.port or free_port()
        ssl = "ssl = no"
        if self.tls_pem is not None:
            (root / "tls.pem").write_bytes(self.tls_pem)
            os.chmod(root / "tls.pem", 0o600)
            ssl = f"ssl = yes\nssl_cert = <{root}/tls.pem\nssl_key = <{root}/tls.pem"
            self.imaps_port = self.imaps_port or free_port()
        (root / "dovecot.conf").write_text(CONF_TEMPLATE.format(
            root=root, port=self.port, uid=uid, gid=gid, nonroot=nonroot, chroot=chroot,
            any_pw=ANY_USER_PASSWORD, ssl=ssl, imaps_port=self.imaps_port))
        self._log = open(root / "dovecot.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([binary, "-F", "-c", self.conf], stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                log = self.log_text()
                self.stop()
                raise RuntimeError("dovecot exited:\n" + log)
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2) as s:
                    if s.recv(100).startswith(b"* OK"):  # the greeting, not just the port
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                log = self.log_text()
                self.stop()
                raise TimeoutError("dovecot did not start:\n" + log)
            time.sleep(0.05)

    def log_text(self) -> str:
        assert self.root is not None
        return (self.root / "dovecot.log").read_text(errors="replace")

    def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM the whole process group, SIGKILL after `grace_s`: children (log,
        stats, imap) outlive a signalled master while a client is connected."""
        if self.proc is not None:
            pgid = self.proc.pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            deadline, killed = time.monotonic() + grace_s, False
            while True:
                self.proc.poll()
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    break
                if time.monotonic() > deadline:
                    if killed:
                        break
                    os.killpg(pgid, signal.SIGKILL)
                    deadline, killed = time.monotonic() + grace_s, True
                time.sleep(0.02)
            self.proc.wait()
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tests --------------------------------------------------------

    def client(self, user: str, password: str = ANY_USER_PASSWORD) -> IMAPClient:
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        client.login(user, password)
        return client

    def append(self, user: str, raws: list[bytes], *, folder: str = "INBOX",
               flags: tuple[bytes, ...] = ()) -> None:
        with self.client(user) as c:
            for raw in raws:
                c.append(folder, raw, flags=flags)

    def doveadm(self, *args: str, input_bytes: bytes | None = None) -> str:
        done = subprocess.run(["doveadm", "-c", self.conf, *args], input=input_bytes,
                              capture_output=True, check=True)
        return done.stdout.decode()

    def status(self, user: str, folder: str = "INBOX") -> dict[str, int]:
        """messages and uidvalidity of a folder, read by doveadm (no IMAP session)."""
        out = self.doveadm("mailbox", "status", "-u", user, "messages uidvalidity", folder)
        return {k: int(v) for k, v in (p.split("=") for p in out.split()[1:])}

    def folder_uids(self, user: str, folder: str = "INBOX") -> dict[int, tuple[Any, ...]]:
        """UID -> flags, read without changing anything."""
        with self.client(user) as c:
            if not c.folder_exists(folder):
                return {}
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            data = c.fetch(uids, ["FLAGS"]) if uids else {}
            return {int(uid): tuple(d[b"FLAGS"]) for uid, d in data.items()}


def new_user() -> str:
    return "tmp-" + uuid.uuid4().hex[:10]
