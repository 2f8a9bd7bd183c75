"""What became of an inbound mail, as the CLI names it (`import mbox`, `quarantine`)."""

from __future__ import annotations

from nexusmail.cli.language import speech
from nexusmail.i18n import N_

# inbound.outcome, and the mbox import's own counts ("closed", "failed").
_OUTCOMES = {
    "new_request": N_("new request"), "follow_up": N_("follow-up"),
    "technician_reply": N_("technician reply"), "noise": N_("noise (auto-reply, bounce)"),
    "unmatched": N_("unmatched"), "duplicate": N_("duplicate"),
    "quarantined": N_("quarantined"), "held": N_("held (muted sender)"),
    "closed": N_("closed"), "failed": N_("not imported"),
}


def outcome_word(value: str) -> str:
    """An outcome in the running command's language; in English as stored, which is
    what scripts reading the output look for."""
    if speech().is_source or value not in _OUTCOMES:
        return value
    return speech().label(_OUTCOMES[value])
