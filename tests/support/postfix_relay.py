"""A throwaway Postfix (Debian package `postfix`) delivering one domain over LMTP.

    relay = PostfixRelay(lmtp_port=2525, domain="firm.test").start()
    ... send to 127.0.0.1:relay.smtp_port, rcpt anything@firm.test ...
    relay.log_text(), relay.queued_ids()
    relay.stop()

Own config dir, queue and data dir under a temporary directory, its SMTP port on
127.0.0.1, short retry backoff (1-2 s) so a `451` is retried within the test. Postfix's
master calls setsid(), so its children (qmgr, smtpd, lmtp...) are in the master's
process group, not in ours: `stop` waits for that group to empty (SIGKILL after a
grace period) and removes the directory. Recipe: REAL-COMPONENTS.md section 3.4.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTQUEUE = shutil.which("postqueue") or "/usr/sbin/postqueue"
POSTMAP = shutil.which("postmap") or "/usr/sbin/postmap"

MASTER_CF = """\
127.0.0.1:{smtp_port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
lmtp      unix  - - n -  - lmtp
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

# The README's "Postfix in front" recipe, plus what a throwaway instance needs: its own
# directories, no local delivery, no outbound mail, the log on stdout (no syslog here),
# and retries after 1-2 s instead of Postfix's minutes.
MAIN_CF = """\
compatibility_level = 3.7
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.nexus.test
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
{recipe}
{outbound}
maillog_file = /dev/stdout
smtputf8_enable = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""

# The README's recipe, written inline (a Recipe replaces it with the README's own text).
DEFAULT_RECIPE = """\
relay_domains = {domain}
relay_recipient_maps = {recipient_map}
recipient_delimiter = +
transport_maps = inline:{{ {domain}=lmtp:inet:127.0.0.1:{lmtp_port} }}"""
NO_OUTBOUND = "default_transport = error:no outbound delivery in tests"
ETC_POSTFIX = "/etc/postfix/"


@dataclass(frozen=True)
class Recipe:
    """main.cf lines and lookup tables as an administrator writes them: paths under
    /etc/postfix/ land in the instance's own config dir, `hash:` tables are postmap'ed."""

    main_cf: str
    tables: dict[str, str]  # file name under /etc/postfix -> content

START_TIMEOUT_S = 15.0
STOP_GRACE_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostfixRelay:
    """One Postfix instance relaying `domain` to an LMTP server on 127.0.0.1."""

    def __init__(self, lmtp_port: int, domain: str = "nexus.test",
                 recipients: tuple[str, ...] = (), *, recipe: Recipe | None = None,
                 relayhost_port: int | None = None) -> None:
        self.lmtp_port = lmtp_port
        self.domain = domain
        self.recipients = recipients  # empty: any address of the domain is relayed
        self.recipe = recipe
        # Mail for other domains goes to this loopback port (a test's SMTP sink).
        self.relayhost_port = relayhost_port
        self.root = Path(tempfile.mkdtemp(prefix="nm-postfix-"))
        self.conf = self.root / "conf"
        self.smtp_port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._master_pgid: int | None = None

    def start(self) -> PostfixRelay:
        """Write the config, start the master in the foreground, wait for its 220."""
        # Postfix daemons drop to the postfix user and must reach their queue below it.
        os.chmod(self.root, 0o755)  # noqa: S103
        self.smtp_port = free_port()
        self.conf.mkdir()
        (self.root / "queue").mkdir()
        (self.root / "data").mkdir()
        # Postfix refuses a data_directory it does not own.
        os.chown(self.root / "data", pwd.getpwnam("postfix").pw_uid, -1)
        (self.conf / "main.cf").write_text(
            MAIN_CF.format(root=self.root, recipe=self._recipe_lines(),
                           outbound=self._outbound_lines()))
        self._write_tables()
        (self.conf / "master.cf").write_text(MASTER_CF.format(smtp_port=self.smtp_port))
        # start-fg runs postfix-script's checks and creates the queue directories.
        self._log = (self.root / "maillog").open("wb")
        self._proc = subprocess.Popen([POSTFIX, "-c", str(self.conf), "start-fg"],
                                      stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        try:
            self._wait_for_greeting()
        except BaseException:
            self.stop()
            raise
        return self

    def _recipe_lines(self) -> str:
        if self.recipe is None:
            return DEFAULT_RECIPE.format(domain=self.domain, lmtp_port=self.lmtp_port,
                                         recipient_map=self._recipient_map())
        return self.recipe.main_cf.replace(ETC_POSTFIX, f"{self.conf}/")

    def _write_tables(self) -> None:
        """The recipe's lookup tables, compiled by postmap (which reads main.cf)."""
        for name, content in (self.recipe.tables if self.recipe else {}).items():
            table = self.conf / name
            table.write_text(content)
            result = subprocess.run([POSTMAP, "-c", str(self.conf), f"hash:{table}"],
                                    capture_output=True, text=True, timeout=30, check=False)
            assert result.returncode == 0, result.stderr

    def _outbound_lines(self) -> str:
        if self.relayhost_port is None:
            return NO_OUTBOUND
        return f"relayhost = [127.0.0.1]:{self.relayhost_port}\ndefault_transport = smtp"

    def _recipient_map(self) -> str:
        if not self.recipients:
            return ""
        return "inline:{ " + ", ".join(f"{r}=OK" for r in self.recipients) + " }"

    def _wait_for_greeting(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=0.5) as s:
                    if s.recv(100).startswith(b"220"):
                        pid_file = self.root / "queue" / "pid" / "master.pid"
                        self._master_pgid = int(pid_file.read_text())
                        return
            except OSError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("postfix did not start:\n" + self.log_text())
            time.sleep(0.05)

    def log_text(self) -> str:
        """Postfix's log so far (maillog_file on stdout)."""
        return (self.root / "maillog").read_text(errors="replace")

    def queued_ids(self) -> list[str]:
        """Queue ids of the mails Postfix still holds (active, deferred...)."""
        result = subprocess.run([POSTQUEUE, "-c", str(self.conf), "-j"],
                                capture_output=True, text=True, check=True)
        # One JSON object per line, one line per queued mail.
        return [json.loads(line)["queue_id"] for line in result.stdout.splitlines() if line]

    def stop(self) -> None:
        """Stop the master and wait for its whole process group; remove the files."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            try:
                subprocess.run([POSTFIX, "-c", str(self.conf), "stop"], capture_output=True,
                               check=False, timeout=STOP_GRACE_S * 2)
                self._wait_group_gone(proc, self._master_pgid or proc.pid)
                if proc.poll() is None:  # `postfix start-fg` itself, if not the master
                    self._wait_group_gone(proc, proc.pid)
            finally:
                # Whatever went wrong above, the child is killed and waited for here: a
                # Popen collected while its process runs warns, and under the test
                # suite's filter that warning fails whichever test runs at that moment.
                if proc.poll() is None:
                    proc.kill()
                proc.wait(STOP_GRACE_S)
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def _wait_group_gone(proc: subprocess.Popen[bytes], pgid: int) -> None:
        # pickup, qmgr, smtpd, lmtp outlive the master by ~1.5 s.
        deadline = time.monotonic() + STOP_GRACE_S
        killed = False
        while True:
            proc.poll()  # reap the master: a zombie would keep its group alive
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            if time.monotonic() > deadline:
                if killed:
                    raise RuntimeError(f"postfix process group {pgid} did not exit")
                os.killpg(pgid, signal.SIGKILL)
                if proc.poll() is None:
                    proc.kill()
                deadline, killed = time.monotonic() + STOP_GRACE_S, True
            time.sleep(0.05)
