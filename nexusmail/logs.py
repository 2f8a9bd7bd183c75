"""structlog set-up: JSON lines on stdout (console lines on a terminal if asked).

Context (trace_id, message_id, intervention) is bound per mail with contextvars, so
every line a mail causes carries it. Secrets are never passed to a logger.
"""

from __future__ import annotations

import logging
import sys

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the standard library (uvicorn, aiosmtpd) go to stderr,
    # warnings and up only, so stdout stays pure JSON lines.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
