"""The one file-name rule for files entered by hand (nexusmail.tickets.entry)."""

from __future__ import annotations

import pytest

from nexusmail.tickets.entry import MAX_FILENAME_CHARS, NoteFile, clean_filename


@pytest.mark.parametrize(("sent", "stored"), [
    ("foto.jpg", "foto.jpg"),
    ("C:\\Users\\anna\\Desktop\\foto.jpg", "foto.jpg"),
    ("../../etc/passwd", "passwd"),
    ("in\x00voice\x1b\u202efdp.exe", "invoicefdp.exe"),
    ("  spazi.pdf  ", "spazi.pdf"),
    ("", "attachment"),
    ("..", "attachment"),
    ("dir/", "attachment"),
    ("preventivo – 2026 €.pdf", "preventivo – 2026 €.pdf"),
])
def test_clean_filename(sent: str, stored: str) -> None:
    """Last path segment, no unprintable characters, never empty or dots only."""
    assert clean_filename(sent) == stored


def test_long_names_are_bounded_and_types_defaulted() -> None:
    """A name is cut to what the store takes; a missing type is octet-stream."""
    file = NoteFile.upload("a" * 1000 + ".pdf", None, b"x")
    assert len(file.filename) == MAX_FILENAME_CHARS
    assert file.content_type == "application/octet-stream"
