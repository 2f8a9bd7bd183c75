"""Records from libraries and Python's warnings come out as JSON lines like ours."""

from __future__ import annotations

import json
import subprocess
import sys

EMIT = """
import logging, warnings
from nexusmail.logs import configure_logging
configure_logging()
configure_logging()  # a second set-up (a reload) must not double the lines
logging.getLogger("uvicorn.error").warning("port %s busy", 2525)
logging.getLogger("aiosmtpd.smtp").info("chatter below warning is dropped")
warnings.warn("an old API", DeprecationWarning, stacklevel=1)
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("asyncio").exception("task failed")
"""


def test_library_records_and_warnings_are_json_lines_on_stdout() -> None:
    """uvicorn's, asyncio's and Python's warnings reach stdout as JSON lines carrying the
    logger name and level, nothing reaches stderr as plain text, info is dropped."""
    result = subprocess.run([sys.executable, "-W", "default", "-c", EMIT],
                            capture_output=True, text=True, timeout=60, check=True)
    assert result.stderr == ""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["logger"], e["level"]) for e in lines] == [
        ("uvicorn.error", "warning"), ("py.warnings", "warning"), ("asyncio", "error")]
    assert lines[0]["event"] == "port 2525 busy"
    assert "an old API" in lines[1]["event"]
    assert "ZeroDivisionError" in lines[2]["exception"]
