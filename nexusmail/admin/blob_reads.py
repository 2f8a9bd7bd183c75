"""Reading an attachment's bytes for a download, the same way for the API and the pages:
off the event loop, checked against its SHA-256 by the store, and each failure named.

A missing blob (the row outlived its file) and a corrupt one (its bytes no longer match)
are logged for an operator to look into; neither is ever served in place of the file.
"""

from __future__ import annotations

import asyncio

import structlog

from nexusmail.blobs.store import BlobCorrupt, BlobStore, BlobUnavailable
from nexusmail.tickets.queries import RawMail

log = structlog.get_logger(__name__)


class BlobReadFailed(Exception):
    """Why the bytes cannot be handed out, and the HTTP status that says so."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason  # "missing", "corrupt" or "unavailable"

    def describe(self, attachment_id: int) -> str:
        """The API's message for it (the pages say it in the operator's language)."""
        return {
            "missing": f"the content of attachment {attachment_id} is missing",
            "corrupt": f"the content of attachment {attachment_id} fails its integrity "
                       "check and is not served",
            "unavailable": "the attachment store cannot be reached; try again later",
        }[self.reason]


async def read_attachment(blobs: BlobStore, attachment_id: int, sha256: str, *,
                          event_prefix: str, kind: str = "attachment") -> bytes:
    """The attachment's bytes, or BlobReadFailed; `event_prefix` ("api", "admin") names
    the log events as each door names its own. `kind` "raw_mail" for a message's
    original mail, `attachment_id` then the message's id."""
    try:
        return await asyncio.to_thread(blobs.get, sha256)
    except FileNotFoundError:
        log.error(f"{event_prefix}.{kind}_blob_missing", id=attachment_id, sha256=sha256)
        raise BlobReadFailed(404, "missing") from None
    except BlobCorrupt:  # already logged by the store, with both digests
        raise BlobReadFailed(500, "corrupt") from None
    except BlobUnavailable:  # logged by the store: a moment's outage, try again
        raise BlobReadFailed(503, "unavailable") from None


async def raw_mail_bytes(blobs: BlobStore, raw: RawMail, message_id: int, *,
                         event_prefix: str) -> bytes:
    """An inbound mail's original bytes: from its row, or from the blob store (checked
    like an attachment's); BlobReadFailed as for attachments."""
    if not raw.in_blobs:
        return raw.data
    return await read_attachment(blobs, message_id, raw.sha256, event_prefix=event_prefix,
                                 kind="raw_mail")
