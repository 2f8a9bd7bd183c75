"""messages.extra read and written through one typed helper."""

from __future__ import annotations

import json

from nexusmail.tickets.message_extra import MessageExtra, dump_extra, load_extra
from nexusmail.tickets.models import MatchedBy, OutboxStatus


def test_round_trip_keeps_values_and_readable_text() -> None:
    """Enum members are stored as their plain strings; non-ASCII stays readable."""
    extra: MessageExtra = {"matched_by": MatchedBy.TOKEN, "delivery": OutboxStatus.SENT,
                           "reason": "non posso, sono a Brașov", "acted": False}
    text = dump_extra(extra)
    assert "Brașov" in text
    assert json.loads(text) == {"matched_by": "token", "delivery": "sent",
                                "reason": "non posso, sono a Brașov", "acted": False}
    assert load_extra(text) == extra


def test_empty_broken_or_non_object_json_reads_as_empty() -> None:
    """Old rows (NULL), a damaged value or a JSON list never break a reader."""
    assert load_extra(None) == {}
    assert load_extra("") == {}
    assert load_extra("{not json") == {}
    assert load_extra("[1, 2]") == {}
