"""The private parts of libraries our fast SMTP path relies on: an upgrade that renames
or reshapes one fails here, by name, instead of breaking mail in production."""

from __future__ import annotations

import asyncio
import inspect

import aiosmtpd
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

# What ingest.smtp_server overrides or calls on aiosmtpd's SMTP, and the parameters it
# passes: (attribute, parameter names after self, or None for a plain attribute).
AIOSMTPD_SURFACE = {
    "smtp_DATA": ["arg"],
    "_getaddr": ["arg"],
    "_set_post_data_state": [],
    "_call_handler_hook": ["command", "args"],
    "check_helo_needed": ["helo"],
    "check_auth_needed": ["caller_method"],
    "push": ["status"],
    "_reset_timeout": ["duration"],
    "connection_made": ["transport"],
    "connection_lost": ["error"],
    "line_length_limit": None,
    "local_part_limit": None,
}


def test_aiosmtpd_keeps_what_our_data_path_overrides() -> None:
    """Every hook and attribute we override or call exists with the parameters we use."""
    for name, parameters in AIOSMTPD_SURFACE.items():
        assert hasattr(SMTP, name), f"aiosmtpd {aiosmtpd.__version__} has no SMTP.{name}"
        if parameters is None:
            continue
        found = list(inspect.signature(getattr(SMTP, name)).parameters)[1:]
        assert found[:len(parameters)] == parameters, (
            f"aiosmtpd {aiosmtpd.__version__}: SMTP.{name}{found} is not {parameters}")
    assert issubclass(LMTP, SMTP)


def test_aiosmtpd_creates_its_reader_with_the_line_length_limit() -> None:
    """aiosmtpd sizes its StreamReader from line_length_limit at construction (we set
    the command line limit there, and raise it for DATA only)."""
    source = inspect.getsource(SMTP.__init__)
    assert "StreamReader(" in source
    assert "limit=self.line_length_limit" in source


async def test_stream_reader_keeps_its_limit_in_a_private_attribute() -> None:
    """asyncio.StreamReader stores its read limit as `_limit`, which DATA raises."""
    reader = asyncio.StreamReader(limit=1234)
    assert reader._limit == 1234


def test_aiosmtpd_keeps_its_stream_reader_in_reader() -> None:
    """Our DATA read uses aiosmtpd's `_reader` directly: aiosmtpd must still store it there."""
    source = inspect.getsource(SMTP._cb_client_connected)
    assert "self._reader = reader" in source, (
        f"aiosmtpd {aiosmtpd.__version__} no longer keeps its StreamReader in SMTP._reader")


def test_aiosmtpd_exports_the_names_our_data_path_imports() -> None:
    """`syntax` still marks a command's HELP text and `MISSING` is still the no-hook status."""
    from aiosmtpd import smtp

    @smtp.syntax("DATA")
    async def command(arg: str) -> None:
        """A stand-in SMTP command."""

    assert getattr(command, "__smtp_syntax__", None) == "DATA", (
        f"aiosmtpd {aiosmtpd.__version__}: syntax() no longer sets __smtp_syntax__")
    assert "MISSING" in inspect.getsource(SMTP._call_handler_hook), (
        f"aiosmtpd {aiosmtpd.__version__}: a missing DATA hook no longer returns MISSING")
