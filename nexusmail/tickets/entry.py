"""Entering an intervention or a note by hand: one sequence for the API and the pages.

Both doors (the JSON API and the admin page) call these with plain values once they
have read their request, so the same input stores the same result whichever door it
came through: addresses checked by one rule, file names cleaned by one rule, files
stored before the row that names them, the case and its assignments (with their
mails in the outbox) in one transaction. Forms, JSON and status codes stay with the
callers; a refusal is an `EntryRefused` they turn into their own answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from nexusmail.blobs.store import BlobStore
from nexusmail.config import Settings
from nexusmail.i18n import Msg, message_of, msg
from nexusmail.storage.connections import Storage, WriteTx
from nexusmail.tickets import operator_replies
from nexusmail.tickets.assignments import assign
from nexusmail.tickets.case_edits import request_type_defaults
from nexusmail.tickets.cases import (
    Conflict,
    NewMessage,
    NotFound,
    StoredAttachment,
    add_message,
    intervention_status,
)
from nexusmail.tickets.models import Direction, MessageKind
from nexusmail.tickets.new_requests import OpenRequest, open_request
from nexusmail.tickets.operator_replies import CustomerReply

# What common file systems and the attachments table take for one name.
MAX_FILENAME_CHARS = 255
MAX_CONTENT_TYPE_CHARS = 255
FALLBACK_FILENAME = "attachment"


class EntryRefused(Exception):
    """The entry is refused as a whole and nothing was stored; the message names why."""

    def __init__(self, message: str | Msg) -> None:
        super().__init__(str(message))
        self.message = message


def clean_filename(name: str) -> str:
    """The name to store for an uploaded file: its last path segment (some clients send
    "C:\\Users\\...\\foto.jpg" or "../../x"), without control or other unprintable
    characters (a right-to-left override can disguise "fdp.exe"), bounded; never empty."""
    base = name.replace("\\", "/").rpartition("/")[2]
    cleaned = "".join(c for c in base if c.isprintable()).strip()
    if cleaned.strip(".") == "":
        return FALLBACK_FILENAME  # "", "." and ".." name no file
    return cleaned[:MAX_FILENAME_CHARS]


@dataclass(frozen=True)
class NoteFile:
    """One uploaded file, its name and type already cleaned (build with `upload`)."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @classmethod
    def upload(cls, filename: str | None, content_type: str | None, data: bytes) -> NoteFile:
        ctype = (content_type or "").strip()[:MAX_CONTENT_TYPE_CHARS]
        return cls(clean_filename(filename or ""), ctype or "application/octet-stream", data)


def open_with_assignees(
    tx: WriteTx,
    entry: OpenRequest,
    assignees: Sequence[str],
    *,
    now: datetime,
    settings: Settings,
    reply_keys: Sequence[bytes],
    assigned_by: str,
) -> int:
    """Open the intervention and assign everyone listed, all in one transaction: an
    unknown or inactive employee refuses the whole entry, nothing is created. With
    nobody listed, a request type of the list brings its active default assignees
    (when assignment mails can be signed)."""
    number = open_request(tx, entry, now=now, settings=settings)
    if not assignees and reply_keys:
        assignees = request_type_defaults(tx, entry.request_type)[1]
    for email in assignees:
        try:
            assign(tx, number, email, now=now, settings=settings, reply_keys=reply_keys,
                   assigned_by=assigned_by)
        except (NotFound, Conflict) as exc:
            raise EntryRefused(msg("assignees: {problem}", problem=message_of(exc))) from None
    return number


async def add_note(store: Storage, blobs: BlobStore, number: int, *, author: str, text: str,
                   register_ref: str, files: Sequence[NoteFile], now: datetime) -> int:
    """Store an internal note with its files on intervention `number`; its message id.

    Files first, the row after: a crash between them leaves an unused file, never a
    row naming bytes that are not there. `NotFound` when the intervention is gone."""
    stored = await store_files(blobs, files)
    note = NewMessage(
        kind=MessageKind.NOTE, direction=Direction.INTERNAL, author=author, body_text=text,
        attachments=stored, extra={"register_ref": register_ref} if register_ref else {},
    )

    def add(tx: WriteTx) -> int:
        intervention_status(tx, number)  # NotFound if it vanished meanwhile
        return add_message(tx, number, note, now=now)

    return await store.write(add)


async def reply_to_customer(store: Storage, blobs: BlobStore, number: int, *, author: str,
                            author_name: str, text: str, files: Sequence[NoteFile],
                            close: bool, now: datetime, settings: Settings) -> int:
    """Mail the operator's answer (with its files) to the customer of intervention
    `number`, on its thread, closing the case after it when `close`; the thread
    message's id. Files first, as for notes. `NotFound`/`Conflict` from
    tickets.operator_replies."""
    reply = CustomerReply(text=text, author=author, author_name=author_name,
                          attachments=await store_files(blobs, files), close=close)
    return await store.write(
        lambda tx: operator_replies.reply_to_customer(tx, number, reply, now=now,
                                                      settings=settings))


async def store_files(blobs: BlobStore, files: Sequence[NoteFile]) -> list[StoredAttachment]:
    """Put each file's bytes in the blob store (off the event loop); their rows to write."""
    stored = []
    for file in files:
        digest = await asyncio.to_thread(blobs.put, file.data)
        stored.append(StoredAttachment(file.filename, file.content_type, len(file.data), digest))
    return stored
