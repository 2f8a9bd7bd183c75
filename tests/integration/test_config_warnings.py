"""The daemon says at start what in its settings will bounce or hold real mail."""

from __future__ import annotations

from pathlib import Path

from daemon_harness import running_daemon
from structlog.testing import capture_logs

from nexusmail.config import Settings


async def test_lmtp_with_the_default_support_address_is_warned_at_start(
    tmp_path: Path,
) -> None:
    """LMTP behind an MTA with the placeholder support address and no relay starts, but
    logs one `config.warning` per key at fault."""
    settings = Settings.model_validate({
        "storage": {"data_dir": str(tmp_path / "data")},
        "smtp": {"port": 0, "protocol": "lmtp"}, "web": {"port": 0},
        "ingest": {"parse_processes": 0}})
    with capture_logs() as logs:
        async with running_daemon(settings):
            pass
    warned = [entry["key"] for entry in logs if entry["event"] == "config.warning"]
    assert warned == ["[mail] support_addresses", "[outbound] host"]
