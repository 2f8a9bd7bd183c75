"""A real SMTP server (aiosmtpd) that captures what nexusmail sends, for tests.

    sink = CaptureHandler()
    controller = start_sink(sink)               # a started Controller on 127.0.0.1
    ... send to controller.hostname, controller.port ...
    got = await sink.wait_for_async(1)          # or sink.wait_for(1) in sync code
    got[0].message()["Message-ID"], got[0].rcpt_tos, got[0].data (raw bytes)
    sink.refuse_next(2, code=451)               # the next 2 mails get "451 ..." at DATA
    controller.stop()

The Controller runs its own event loop in a thread, so the sink works from sync and
async tests alike; the handler is thread-safe. With `users` it requires AUTH, with
`tls_context` it offers STARTTLS (see REAL-COMPONENTS section 3 for trustme).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Stage = Literal["rcpt", "data"]


def free_port() -> int:
    """A loopback port free right now (Controller(port=0) cannot be used: it probes
    its own port to know it is ready)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Captured:
    """One accepted mail, exactly as received."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes                 # raw message bytes
    auth_login: str | None      # the AUTH user, None without AUTH

    def message(self) -> EmailMessage:
        """The parsed mail (modern email API)."""
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        """The Message-ID header without angle brackets ("" when absent)."""
        return str(self.message().get("Message-ID", "")).strip().strip("<>")


class CaptureHandler:
    """aiosmtpd handler recording every accepted mail; can refuse the next N mails."""

    def __init__(self) -> None:
        self._messages: list[Captured] = []
        self._cond = threading.Condition()
        self._refusals: list[tuple[Stage, str]] = []
        self._listeners: list[Callable[[], None]] = []
        self.refused = 0  # how many mails (or recipients) were refused so far

    @property
    def messages(self) -> list[Captured]:
        with self._cond:
            return list(self._messages)

    def refuse_next(
        self, n: int, *, code: int = 451, stage: Stage = "data", text: str | None = None
    ) -> None:
        """Answer `code` to the next `n` mails, at RCPT or at end of DATA
        (451: try again later; 550: refused for good)."""
        reply = f"{code} {text or ('4.3.0 Try again later' if code < 500 else '5.1.1 Refused')}"
        with self._cond:
            self._refusals.extend([(stage, reply)] * n)

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()

    def wait_for(self, n: int = 1, timeout: float = 10.0) -> list[Captured]:
        """Block until at least `n` mails were accepted; return all of them."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= n, timeout):
                raise TimeoutError(f"got {len(self._messages)} messages, wanted {n}")
            return list(self._messages)

    async def wait_for_async(self, n: int = 1, *, within_s: float = 10.0) -> list[Captured]:
        """`wait_for` without blocking the caller's event loop (TimeoutError after
        `within_s`)."""
        loop = asyncio.get_running_loop()
        arrived = asyncio.Event()

        def wake() -> None:  # called in the controller's thread
            with contextlib.suppress(RuntimeError):  # the waiting loop has closed
                loop.call_soon_threadsafe(arrived.set)

        with self._cond:
            self._listeners.append(wake)
        try:
            async with asyncio.timeout(within_s):
                while len(got := self.messages) < n:
                    await arrived.wait()
                    arrived.clear()
                return got
        except TimeoutError:
            raise TimeoutError(f"got {len(self.messages)} messages, wanted {n}") from None
        finally:
            with self._cond:
                self._listeners.remove(wake)

    # -- aiosmtpd hooks (run in the controller's thread) ------------------------------

    def _take_refusal(self, stage: Stage) -> str | None:
        with self._cond:
            if self._refusals and self._refusals[0][0] == stage:
                self.refused += 1
                return self._refusals.pop(0)[1]
            return None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self._take_refusal("rcpt")
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refusal = self._take_refusal("data")
        if refusal is not None:
            return refusal
        login = session.auth_data if session.authenticated else None
        raw = envelope.original_content or envelope.content or b""
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
        with self._cond:
            self._messages.append(
                Captured(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=data,
                    auth_login=login if isinstance(login, str) else None,
                )
            )
            self._cond.notify_all()
            for wake in self._listeners:
                wake()
        return "250 Message accepted for delivery"


def authenticator(users: dict[str, str]) -> Callable[..., AuthResult]:
    """An aiosmtpd authenticator accepting these login → password pairs."""

    def _auth(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if (
            isinstance(auth_data, LoginPassword)
            and users.get(auth_data.login.decode()) == auth_data.password.decode()
        ):
            return AuthResult(success=True, auth_data=auth_data.login.decode())
        return AuthResult(success=False, handled=False)

    return _auth


def start_sink(
    handler: CaptureHandler | None = None,
    *,
    users: dict[str, str] | None = None,
    tls_context: ssl.SSLContext | None = None,
    require_starttls: bool = False,
    port: int | None = None,
) -> Controller:
    """Start a sink on a free 127.0.0.1 port; `controller.handler` is the CaptureHandler.

    users: require AUTH (LOGIN/PLAIN) with these credentials (over TLS when
    tls_context is given). tls_context: offer STARTTLS with this server context.
    port: listen there (e.g. to restart a stopped sink); default a free port.
    Stop it with `controller.stop()` (blocking; `await asyncio.to_thread(...)` in
    async code).
    """
    kwargs: dict[str, Any] = {}
    if users is not None:
        kwargs.update(
            authenticator=authenticator(users),
            auth_required=True,
            auth_require_tls=tls_context is not None,
        )
    if tls_context is not None:
        kwargs.update(tls_context=tls_context, require_starttls=require_starttls)
    controller = Controller(
        handler or CaptureHandler(),
        hostname="127.0.0.1",
        port=port or free_port(),
        server_hostname="sink.test",
        ready_timeout=5,
        **kwargs,
    )
    controller.start()
    return controller
