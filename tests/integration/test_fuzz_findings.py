"""Inputs the fuzzer (bench/fuzz_ingest.py) found breaking ingest, kept as regressions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from daemon_harness import SUPPORT, make_settings
from store_choice import store_at

from nexusmail.blobs.digest import sha256_hex
from nexusmail.blobs.local import LocalBlobStore
from nexusmail.clock import SystemClock
from nexusmail.ingest.accept import Envelope, Ingest
from nexusmail.paths import blobs_path
from nexusmail.storage.connections import Storage
from nexusmail.tickets.models import Outcome

FINDINGS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "fuzz"


async def kept_row(store: Storage, raw: bytes) -> tuple[int, str] | None:
    """The inbound row holding these exact bytes (its id and outcome), if any."""
    async with store.read() as conn:
        rows = list(await conn.execute_fetchall(
            "SELECT i.id, i.outcome FROM inbound i JOIN raw_messages r"
            " ON r.sha256 = i.raw_sha256 WHERE i.raw_sha256 = ?", (sha256_hex(raw),)))
    row = rows[0] if rows else None
    return None if row is None else (int(row[0]), str(row[1]))


@pytest.mark.parametrize("path", sorted(FINDINGS_DIR.glob("*.eml")), ids=lambda p: p.name)
async def test_fuzz_findings_are_processed_not_quarantined(tmp_path: Path, path: Path) -> None:
    """Inputs the fuzzer once broke ingest with (8-bit bytes in Message-ID/References
    could be neither stored nor quarantined: 451 forever) are now processed and kept."""
    settings_ = make_settings(tmp_path / "d")
    raw = await asyncio.to_thread(path.read_bytes)
    async with store_at(settings_.storage.data_dir) as store:
        ingest = Ingest(store, LocalBlobStore(blobs_path(settings_)), settings_, SystemClock())
        result = await ingest.accept(raw, Envelope("x@example.org", [SUPPORT]), "smtp")
        assert result.outcome is not Outcome.QUARANTINED, result.reason
        assert await kept_row(store, raw) == (result.inbound_id, str(result.outcome))
