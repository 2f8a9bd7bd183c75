"""Admin page safety: the login rate limit, sessions and CSRF tokens.

Sessions live in a signed cookie (Starlette's SessionMiddleware, itsdangerous): it
holds a random session id, which must still be in the store (tickets.operator_sessions,
so logout ends every copy of the cookie), and a per-session CSRF token. The cookie is
HttpOnly and SameSite=Lax; the CSRF token on every form is the second lock, for
browsers that ignore SameSite.

Failed logins are slowed down and counted per client address and per account. An
account under attack is locked for new browsers only: a browser its operator logged in
from before carries a signed "known device" cookie, and may still try the password, so
guessing from elsewhere cannot lock the real operator out.
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import itsdangerous

from nexusmail.clock import Clock

SESSION_COOKIE = "nexusmail_admin"
DEVICE_COOKIE = "nexusmail_device"
DEVICE_MAX_AGE_S = 180 * 24 * 3600
# A failed login waits before its answer, doubling from the second failure in the
# window: a guesser on one connection gets a few tries a second at most.
FIRST_FAILURE_DELAY_S = 0.125
MAX_FAILURE_DELAY_S = 2.0
CSRF_FIELD = "csrf_token"
# Bounds the limiter's memory when someone sprays many addresses or accounts.
MAX_TRACKED_KEYS = 10_000


@dataclass
class LoginLimiter:
    """Failed logins per client address and per account in a sliding window.

    In memory: a restart forgets the counts, which costs an attacker nothing worth
    having (the daemon restarts rarely) and keeps the store out of the login path.
    """

    clock: Clock
    per_ip: int
    per_account: int
    window_s: float
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after_s(self, ip: str, account: str, *, known_device: bool = False) -> int:
        """0 when a login may be tried now, else the seconds until one may. The
        account's own limit does not apply to a browser its operator used before."""
        now = self.clock.monotonic()
        waits = [self._wait(f"ip:{ip}", self.per_ip, now)]
        if not known_device:
            waits.append(self._wait(f"account:{account.strip().lower()}", self.per_account, now))
        return max(waits)

    def failure_delay_s(self, ip: str, account: str) -> float:
        """How long the answer to a failed login waits, from the recent failures of its
        address or account (whichever has more)."""
        recent = max(len(self._failures.get(f"ip:{ip}", ())),
                     len(self._failures.get(f"account:{account.strip().lower()}", ())))
        if recent < 2:
            return 0.0
        return float(min(MAX_FAILURE_DELAY_S, FIRST_FAILURE_DELAY_S * 2 ** (recent - 2)))

    def failed(self, ip: str, account: str) -> None:
        now = self.clock.monotonic()
        for key in (f"ip:{ip}", f"account:{account.strip().lower()}"):
            if key not in self._failures and len(self._failures) >= MAX_TRACKED_KEYS:
                self._forget_oldest()
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, account: str) -> None:
        # The account's owner is back: their own typos no longer count against it.
        self._failures.pop(f"account:{account.strip().lower()}", None)

    def _wait(self, key: str, limit: int, now: float) -> int:
        times = self._failures.get(key)
        if not times:
            return 0
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0
        if len(times) < limit:
            return 0
        return max(1, int(times[-limit] + self.window_s - now + 0.999))

    def _forget_oldest(self) -> None:
        oldest = min(self._failures, key=lambda k: self._failures[k][-1])
        del self._failures[oldest]


class KnownDevices:
    """Signed cookies saying "this browser logged in as this account before"."""

    def __init__(self, secret: bytes) -> None:
        self._signer = itsdangerous.URLSafeTimedSerializer(secret, salt="known-device")

    def cookie_for(self, account: str) -> str:
        return self._signer.dumps(account.strip().lower())

    def is_known(self, cookie: str | None, account: str) -> bool:
        if not cookie:
            return False
        try:
            signed = self._signer.loads(cookie, max_age=DEVICE_MAX_AGE_S)
        except itsdangerous.BadData:
            return False
        return isinstance(signed, str) and signed == account.strip().lower()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token, made on first use (a visitor's session too: the login
    form carries one, against logging a victim into the attacker's account)."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = new_csrf_token()
        session["csrf"] = token
    return token


def csrf_matches(session: dict[str, Any], submitted: object) -> bool:
    expected = session.get("csrf")
    return (
        isinstance(expected, str)
        and isinstance(submitted, str)
        and bool(expected)
        and hmac.compare_digest(expected.encode(), submitted.encode())
    )
