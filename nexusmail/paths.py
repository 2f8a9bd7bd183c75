"""Where nexusmail keeps its files under the data dir: one place, so the daemon and the
offline commands of the CLI always open the same database and blob tree."""

from __future__ import annotations

from pathlib import Path

from nexusmail.config import Settings

DATABASE_NAME = "nexusmail.sqlite3"
BLOBS_DIR = "blobs"


def database_path(settings: Settings) -> Path:
    """The SQLite database file."""
    return settings.storage.data_dir / DATABASE_NAME


def blobs_path(settings: Settings) -> Path:
    """The root of the content-addressed attachment files (see tickets.blobs)."""
    return settings.storage.data_dir / BLOBS_DIR
