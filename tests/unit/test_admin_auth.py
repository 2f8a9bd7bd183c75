"""Admin page safety pieces as plain functions: rate limit, CSRF, redirects, secrets."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from nexusmail.admin.auth import (
    FIRST_FAILURE_DELAY_S,
    MAX_FAILURE_DELAY_S,
    KnownDevices,
    LoginLimiter,
    csrf_matches,
    csrf_token,
)
from nexusmail.admin.pages.base import safe_next
from nexusmail.admin.pages.thread import mail_frame_document
from nexusmail.admin.secret_file import load_or_create_secret
from nexusmail.clock import FakeClock
from nexusmail.mail.html import sanitize_html
from nexusmail.tickets.operators import (
    Operator,
    check_password_rules,
    hash_password,
    verify_password,
)


def limiter(clock: FakeClock) -> LoginLimiter:
    return LoginLimiter(clock, per_ip=4, per_account=2, window_s=60)


def test_account_is_held_after_its_failures_until_the_window_passes(clock: FakeClock) -> None:
    """Two failures hold the account; the wait counts from the oldest that still counts."""
    limits = limiter(clock)
    limits.failed("10.0.0.1", "Anna@firm.test")
    clock.advance(timedelta(seconds=10))
    limits.failed("10.0.0.2", "anna@firm.test")
    assert limits.retry_after_s("10.0.0.3", "anna@firm.test") == 50
    assert limits.retry_after_s("10.0.0.3", "ion@firm.test") == 0
    clock.advance(timedelta(seconds=50))
    assert limits.retry_after_s("10.0.0.3", "anna@firm.test") == 0


def test_address_is_held_across_accounts(clock: FakeClock) -> None:
    """Four failures from one address on four accounts hold that address only."""
    limits = limiter(clock)
    for n in range(4):
        limits.failed("10.0.0.1", f"user{n}@firm.test")
    assert limits.retry_after_s("10.0.0.1", "anna@firm.test") == 60
    assert limits.retry_after_s("10.0.0.2", "anna@firm.test") == 0


def test_success_clears_the_accounts_failures(clock: FakeClock) -> None:
    """The owner's own typo no longer counts once they got in."""
    limits = limiter(clock)
    limits.failed("10.0.0.1", "anna@firm.test")
    limits.succeeded("anna@firm.test")
    limits.failed("10.0.0.1", "anna@firm.test")
    assert limits.retry_after_s("10.0.0.1", "anna@firm.test") == 0


def test_csrf_token_is_made_once_and_compared_exactly() -> None:
    """One token per session; anything else (missing, other, a file) does not match."""
    session: dict[str, object] = {}
    token = csrf_token(session)
    assert csrf_token(session) == token
    assert len(token) >= 40
    assert csrf_matches(session, token)
    assert not csrf_matches(session, token[:-1])
    assert not csrf_matches(session, None)
    assert not csrf_matches(session, object())
    assert not csrf_matches({}, "")


@pytest.mark.parametrize(("value", "expected"), [
    ("/interventions/4?q=x", "/interventions/4?q=x"),
    ("//evil.example/", "/"),
    ("https://evil.example/", "/"),
    ("/\\evil.example", "/"),
    ("", "/"),
    (None, "/"),
])
def test_safe_next_stays_on_the_site(value: str | None, expected: str) -> None:
    """Only a local path survives as the after-login target."""
    assert safe_next(value) == expected


def test_secret_is_created_private_once_and_reused(tmp_path: Path) -> None:
    """The session key is made with mode 0600 and read back unchanged."""
    path = tmp_path / "data" / "admin-session.key"
    first = load_or_create_secret(path)
    assert load_or_create_secret(path) == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first) == 64


def test_password_rules_and_verification() -> None:
    """Short passwords are refused; verify accepts only the right password of a real
    operator."""
    with pytest.raises(ValueError, match="at least 10"):
        check_password_rules("short")
    operator = Operator(1, "anna@firm.test", "Anna", hash_password("long enough pw"))
    assert verify_password(operator, "long enough pw")
    assert not verify_password(operator, "long enough pW")
    assert not verify_password(None, "long enough pw")
    assert "long enough" not in repr(operator)
    assert operator.password_hash not in repr(operator)


def test_mail_frame_keeps_text_and_drops_what_runs_or_loads() -> None:
    """The frame document carries its own CSP; scripts, handlers, remote images go."""
    document = mail_frame_document(sanitize_html(
        '<p onclick="x()">Salve</p><script>alert(1)</script>'
        '<img src="https://tracker.example/p.gif"><a href="javascript:alert(1)">link</a>'))
    assert "Salve" in document
    assert "default-src 'none'" in document
    for gone in ("onclick", "<script", "tracker.example", "javascript:"):
        assert gone not in document


def test_failed_logins_wait_longer_each_time_up_to_a_cap() -> None:
    """No wait for a first failure, then a doubling wait, never more than the cap; the
    larger count of the address and the account decides."""
    limiter = LoginLimiter(FakeClock(), per_ip=100, per_account=100, window_s=600)
    delays = []
    for _ in range(8):
        limiter.failed("192.0.2.1", "anna@firm.test")
        delays.append(limiter.failure_delay_s("192.0.2.1", "anna@firm.test"))
    assert delays[0] == 0
    assert delays[1:4] == [FIRST_FAILURE_DELAY_S, 2 * FIRST_FAILURE_DELAY_S,
                           4 * FIRST_FAILURE_DELAY_S]
    assert max(delays) == MAX_FAILURE_DELAY_S
    assert limiter.failure_delay_s("198.51.100.1", "anna@firm.test") == MAX_FAILURE_DELAY_S


def test_a_known_device_skips_the_accounts_limit_but_not_the_addresss() -> None:
    """A browser the operator used before may try a locked account; its own address's
    limit still holds."""
    limiter = LoginLimiter(FakeClock(), per_ip=5, per_account=2, window_s=600)
    for _ in range(2):
        limiter.failed("198.51.100.1", "anna@firm.test")
    assert limiter.retry_after_s("192.0.2.1", "anna@firm.test") > 0
    assert limiter.retry_after_s("192.0.2.1", "anna@firm.test", known_device=True) == 0
    for _ in range(5):
        limiter.failed("192.0.2.1", "x@firm.test")
    assert limiter.retry_after_s("192.0.2.1", "anna@firm.test", known_device=True) > 0


def test_known_device_cookie_is_signed_and_per_account() -> None:
    """The cookie proves a login as that account only; tampering or another key fails."""
    devices = KnownDevices(b"k" * 32)
    cookie = devices.cookie_for("Anna@Firm.test")
    assert devices.is_known(cookie, "anna@firm.test")
    assert not devices.is_known(cookie, "marco@firm.test")
    assert not devices.is_known(cookie[:-2] + "xx", "anna@firm.test")
    assert not KnownDevices(b"o" * 32).is_known(cookie, "anna@firm.test")
    assert not devices.is_known(None, "anna@firm.test")
