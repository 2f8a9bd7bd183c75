"""How the API and the admin pages hand out a stored file: one set of headers for both.

A file a customer mailed us is hostile: the browser must save it, never render or run
it, under a name that can neither climb directories nor break the header.
"""

from __future__ import annotations

import re
from urllib.parse import quote

# Types a browser would execute or render as a page: served as opaque bytes instead.
_ACTIVE_TYPES = frozenset({
    "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml",
    "text/javascript", "application/javascript", "application/ecmascript", "text/ecmascript",
    "multipart/x-mixed-replace", "application/pdf+html",
})
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
# Should a browser render a download anyway, nothing in it may run or load.
DOWNLOAD_CSP = "default-src 'none'; sandbox"


def safe_media_type(stored: str) -> str:
    """The stored content type, unless a browser could run it or it is malformed."""
    base = stored.partition(";")[0].strip().lower()
    if not _MEDIA_TYPE.match(base) or base in _ACTIVE_TYPES:
        return "application/octet-stream"
    return base


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact UTF-8 one (RFC 6266
    section 4.3, the `filename*` form of RFC 5987), for browsers old and new."""
    cleaned = "".join(c for c in filename if c.isprintable() and c not in "/\\") or "attachment"
    fallback = "".join(c if c.isascii() and c not in '"%' else "_" for c in cleaned)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(cleaned, safe='')}"


def download_headers(filename: str) -> dict[str, str]:
    """Headers for a file saved under `filename`: never sniffed, rendered or cached
    beyond the operator's own browser session."""
    return {
        "Content-Disposition": content_disposition(filename),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": DOWNLOAD_CSP,
        "Cache-Control": "private, no-store",
    }
