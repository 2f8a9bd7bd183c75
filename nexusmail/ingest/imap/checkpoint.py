"""What IMAP collection remembers between runs: checkpoints and oversize mails (0004_imap).

Plain functions over a write transaction, run by `Store.write`, so each change is
committed before the caller acts on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from nexusmail.clock import iso
from nexusmail.ingest.imap.lease import Lease
from nexusmail.storage.connections import WriteTx


@dataclass(frozen=True)
class Checkpoint:
    """Every mail with a UID up to `highest_uid` in this UIDVALIDITY was stored
    (or recorded as oversize)."""

    uidvalidity: int
    highest_uid: int


@dataclass(frozen=True)
class OversizeMail:
    uid: int
    size: int
    message_id: str | None
    sender: str
    subject: str


def load_checkpoint(tx: WriteTx, account: str, folder: str) -> Checkpoint | None:
    row = tx.execute(
        "SELECT uidvalidity, highest_uid FROM imap_checkpoints WHERE account = ? AND folder = ?",
        (account, folder),
    ).fetchone()
    return None if row is None else Checkpoint(int(row[0]), int(row[1]))


def save_checkpoint(tx: WriteTx, checkpoint: Checkpoint, lease: Lease, now: datetime) -> bool:
    """Save the checkpoint for the lease's folder, only while `lease` (owner and epoch)
    still holds it, and never backwards within one UIDVALIDITY (a new UIDVALIDITY is a
    new mailbox and starts over). False when refused: the folder has another holder, or
    a later checkpoint is already saved."""
    cursor = tx.execute(
        "INSERT INTO imap_checkpoints (account, folder, uidvalidity, highest_uid, updated_at)"
        " SELECT account, folder, ?, ?, ? FROM imap_leases"
        " WHERE account = ? AND folder = ? AND owner = ? AND epoch = ?"
        " ON CONFLICT (account, folder) DO UPDATE SET"
        " uidvalidity = excluded.uidvalidity, highest_uid = excluded.highest_uid,"
        " updated_at = excluded.updated_at"
        " WHERE imap_checkpoints.uidvalidity <> excluded.uidvalidity"
        " OR imap_checkpoints.highest_uid <= excluded.highest_uid",
        (checkpoint.uidvalidity, checkpoint.highest_uid, iso(now), lease.account,
         lease.folder, lease.owner, lease.epoch),
    )
    return cursor.rowcount == 1


def record_oversize(tx: WriteTx, account: str, folder: str, uidvalidity: int,
                    mails: Iterable[OversizeMail], now: datetime) -> list[OversizeMail]:
    """Record mails left on the server; return those not recorded before (to report)."""
    new = []
    for mail in mails:
        cursor = tx.execute(
            "INSERT INTO imap_oversize (account, folder, uidvalidity, uid, size,"
            " message_id, sender, subject, found_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (account, folder, uidvalidity, mail.uid, mail.size, mail.message_id, mail.sender,
             mail.subject[:1000], iso(now)),
        )
        if cursor.rowcount:
            new.append(mail)
    return new


def oversize_uids(tx: WriteTx, account: str, folder: str,
                  uidvalidity: int) -> set[int]:
    rows = tx.execute(
        "SELECT uid FROM imap_oversize WHERE account = ? AND folder = ? AND uidvalidity = ?",
        (account, folder, uidvalidity),
    ).fetchall()
    return {int(row[0]) for row in rows}


def known_mails(tx: WriteTx,
                keys: Iterable[tuple[str, str, int]]) -> set[tuple[str, str, int]]:
    """Which (Message-ID, sender, size in bytes) the inbound log already holds: a mail
    the server lists with all three is the one stored (a mail reusing the Message-ID
    with other content differs in size, and is fetched for ingest to judge)."""
    return {
        (message_id, sender, size) for message_id, sender, size in keys
        if tx.execute("SELECT 1 FROM inbound WHERE message_id = ? AND sender = ?"
                      " AND size = ?", (message_id, sender, size)).fetchone() is not None
    }
