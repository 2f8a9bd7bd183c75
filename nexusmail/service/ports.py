"""Fail at once, naming the setting, when a port the daemon must listen on is taken.

Checked before anything starts: a listener that fails later leaves the outbox, the
collector and the scheduler to be wound down one by one, and the bare "Address already
in use" does not say which of the two ports, or which key to change.
"""

from __future__ import annotations

import errno
import socket

from nexusmail.config import Settings


class PortInUse(OSError):
    """A configured listening address is taken; the message names the key."""


def check_listen_ports(settings: Settings) -> None:
    """Bind and release each configured address (port 0 picks a free one: skipped)."""
    for key, host, port in (("[smtp] port", settings.smtp.host, settings.smtp.port),
                            ("[web] port", settings.web.host, settings.web.port)):
        if port:
            claim(key, host, port).close()


def claim(key: str, host: str, port: int) -> socket.socket:
    """A bound socket on (host, port), as the listeners bind it (SO_REUSEADDR), or
    PortInUse naming `key`. The caller listens on it or closes it."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            reason = "already in use" if exc.errno == errno.EADDRINUSE else "not allowed"
            raise PortInUse(exc.errno, f"{key}: {host}:{port} is {reason} "
                                       f"(another daemon listening there? change {key})"
                            ) from None
        raise
    return sock
