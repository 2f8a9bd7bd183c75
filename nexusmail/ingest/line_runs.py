"""Runs of body lines taken out of a mail before the stdlib parses it, and put back.

The stdlib parser reads a multipart mail one line at a time in Python, matching each
line against every enclosing boundary: ~1.5 us a line, most of a multipart mail's
parse, and ~5 ms for a 200 KB attachment's 2,700 lines. Yet most lines can only ever
be added to the text they stand in. A run of such lines is cut out, replaced by one
marker line, and put back, unchanged, into the parsed tree.

What the parser does with a line depends only on whether it is blank, starts with
"-" (a boundary can), or reads as a header field ("Name:", a leading blank, "From ");
it ends a line at LF, CRLF or a lone CR. A header block starts only at the top of the
mail or right after a blank or "-" line, and ends at the first line that is no header
field. So between two blank or "-" lines, every line
from the first that is no header field on can only add to a body (or a preamble): a
run. The marker line is no header field, not blank, and starts with no "-": the
parser reads it the way it reads the run's first line, and the run's other lines only
add to the same text.
"""

from __future__ import annotations

import re
import secrets
from email.message import Message
from itertools import pairwise

# At least this many lines: a shorter run saves less than its marker costs.
MIN_RUN_LINES = 8
# The parser ends a line at LF, CRLF or a lone CR. What starts a blank line or a line
# starting with "-", after any of those; each pattern starts with one literal byte, so
# the regex engine skips to it at C speed (one pattern for both, or bytes.find of each
# two-byte sequence, cost more than the lines this module spares the parser).
_BREAKS = (re.compile(rb"\n(?=[-\r\n])"), re.compile(rb"\r(?=[-\r])"))
# A line the parser reads as a header field (the stdlib's own pattern, in bytes).
_HEADER_LINE = re.compile(rb"From |[\041-\071\073-\176]*:|[\t ]")
_MARKER = "NEXUSMAIL-SKIMMED-RUN-{}-{}"
_MARKER_LINE = re.compile(r"(NEXUSMAIL-SKIMMED-RUN-[0-9a-f]{16}-\d+)(\r?\n)?")
_MARKED = "NEXUSMAIL-SKIMMED-RUN-"


def cut_runs(raw: bytes) -> tuple[bytes, dict[str, str]]:
    """`raw` with its runs replaced by marker lines, and each marker's run as text."""
    starts = sorted({0, len(raw), *_break_lines(raw)})  # stretches between them
    runs: dict[str, str] = {}
    nonce = secrets.token_hex(8)  # a marker no sender can guess
    pieces: list[bytes] = []
    kept_from = 0
    for start, end in pairwise(starts):
        run_start, run_end = _run_in(raw, start, end)
        if raw.count(b"\n", run_start, run_end) < MIN_RUN_LINES:
            continue
        run = raw[run_start:run_end]
        marker = _MARKER.format(nonce, len(runs))
        # As BytesParser decodes: raw 8-bit bytes kept as surrogate escapes.
        runs[marker] = run.decode("ascii", "surrogateescape")
        newline = b"\r\n" if run.endswith(b"\r\n") else b"\n"
        pieces += (raw[kept_from:run_start], marker.encode("ascii"), newline)
        kept_from = run_end
    if not runs:
        return raw, {}
    pieces.append(raw[kept_from:])
    return b"".join(pieces), runs


def _break_lines(raw: bytes) -> list[int]:
    """Where each blank line and each line starting with "-" begins."""
    return [found.end() for pattern in _BREAKS for found in pattern.finditer(raw)]


def _run_in(raw: bytes, start: int, end: int) -> tuple[int, int]:
    """The run of the stretch raw[start:end]: from its first line that is no header
    field to its last whole line (empty when there is none)."""
    if start < end and raw[start : start + 1] in (b"-", b"\r", b"\n"):
        start = raw.find(b"\n", start, end) + 1 or end  # the blank or "-" line itself
    while start < end and _HEADER_LINE.match(raw, start) is not None:
        start = raw.find(b"\n", start, end) + 1 or end
    last_newline = raw.rfind(b"\n", start, end)
    return start, (last_newline + 1 if last_newline >= 0 else start)


def put_back_runs(message: Message, runs: dict[str, str]) -> None:
    """Every marker in the parsed tree `message` replaced by its run again."""

    def put_back(match: re.Match[str]) -> str:
        run = runs.get(match.group(1))
        if run is None:
            return match.group()  # the sender's own text that only looks like a marker
        if match.group(2):
            return run  # the marker line's newline stood for the run's last one
        # Last line before a boundary: the newline before it belongs to the boundary.
        return run[:-2] if run.endswith("\r\n") else run[:-1]

    def restored(text: str) -> str:
        return _MARKER_LINE.sub(put_back, text) if _MARKED in text else text

    for part in message.walk():
        # The payload as the parser stored it: get_payload() would hand back a text
        # with any raw 8-bit bytes already decoded (lossily) in the part's charset.
        payload = part._payload  # type: ignore[attr-defined]
        if isinstance(payload, str) and _MARKED in payload:
            part.set_payload(restored(payload))
        if part.preamble is not None:
            part.preamble = restored(part.preamble)
        if part.epilogue is not None:
            part.epilogue = restored(part.epilogue)
