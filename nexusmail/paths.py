"""Where nexusmail keeps its files under the data dir: one place, so the daemon and the
offline commands of the CLI always open the same database and blob tree."""

from __future__ import annotations

from pathlib import Path

from nexusmail.config import Settings

DATABASE_NAME = "nexusmail.sqlite3"
BLOBS_DIR = "blobs"
# The reply-address signing key and the admin session key, when generated (mode 0600).
REPLY_KEY_FILE = "reply-signing.key"
SESSION_KEY_FILE = "admin-session.key"
# Where outgoing mail goes when no relay is configured: a Maildir any mail client opens.
OUTGOING_MAILDIR = "outgoing"
# Large SMTP mails while they are received (removed once stored or refused).
SPOOL_DIR = "spool"


def database_path(settings: Settings) -> Path:
    """The SQLite database file."""
    return settings.storage.data_dir / DATABASE_NAME


def blobs_path(settings: Settings) -> Path:
    """The default root of the content-addressed attachment files (see blobs.local)."""
    return settings.storage.data_dir / BLOBS_DIR


def reply_key_path(settings: Settings) -> Path:
    """The generated reply-address signing key (used when none is configured)."""
    return settings.storage.data_dir / REPLY_KEY_FILE


def session_key_path(settings: Settings) -> Path:
    """The generated key that signs admin session cookies."""
    return settings.storage.data_dir / SESSION_KEY_FILE


def spool_path(settings: Settings) -> Path:
    """Where SMTP DATA past the spool threshold is written while it is received."""
    return settings.storage.data_dir / SPOOL_DIR
