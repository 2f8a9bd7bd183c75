"""`nexusmail intervention show`: a case as lines for a terminal, in the running
command's language, times in the company's time zone."""

from __future__ import annotations

from nexusmail.cli.language import speech, text
from nexusmail.i18n import N_, msg
from nexusmail.tickets import queries
from nexusmail.tickets.sequence_queries import SequenceRunView

# What the thread's entries are, as the admin page's thread names them.
_KINDS = {
    "customer_mail": N_("Customer mail"), "acknowledgement": N_("Acknowledgement sent"),
    "assignment_mail": N_("Assignment mail"), "technician_reply": N_("Technician reply"),
    "note": N_("Note"), "status_change": N_("Status change"), "outbound_mail": N_("Mail sent"),
    "operator_reply": N_("Reply to the customer"), "activity": N_("Activity"),
}
_DIRECTIONS = {"in": N_("incoming"), "out": N_("outgoing"), "internal": N_("internal")}


def format_intervention(d: queries.InterventionDetail) -> list[str]:
    """An intervention as lines for a terminal: header, assignments, then the thread."""
    say, when, word = speech(), speech().moment, speech().word
    period = " – ".join(_day_or_moment(x) for x in (d["desired_from"], d["desired_to"]) if x)
    created = text(msg("created:    {created}   updated: {updated}",
                       created=when(d["created_at"]), updated=when(d["updated_at"])))
    if d["closed_at"]:
        created += text(msg("   closed: {when}", when=when(d["closed_at"])))
    lines = [
        f"[#{d['number']}] {d['subject']}  ({word(d['status'])})",
        text(msg("customer:   {name} <{email}>", name=d["customer"]["name"],
                 email=d["customer"]["email"])),
        text(msg("type:       {type}   priority: {priority}   desired: {period}",
                 type=d["request_type"] or "-", priority=word(d["priority"]),
                 period=period or "-")),
        created,
    ]
    if d["needs_attention"]:
        lines.append(text(msg("attention:  {flags}",
                              flags=", ".join(word(f) for f in d["needs_attention"]))))
    lines += ["", text(msg("description:")), *_indented(d["description"]), "",
              text(msg("assignments:"))]
    for a in d["assignments"]:
        decided = f" {when(a['decided_at'])}" if a["decided_at"] else ""
        reason = f": {a['reason']}" if a["reason"] else ""
        lines.append(f"  {a['employee_name']} <{a['employee_email']}>  "
                     f"{word(a['status'])}{decided}{reason}")
    if not d["assignments"]:
        lines.append("  " + text(msg("(none)")))
    lines += sequence_lines(d["sequence"])
    lines += ["", text(msg("thread ({count} messages):",
                           count=say.number(len(d["messages"]))))]
    for m in d["messages"]:
        lines += _message_lines(m)
    return lines


def _message_lines(m: queries.MessageView) -> list[str]:
    say, word = speech(), speech().word
    # Our own mails all come "from nexusmail": who they went to says more.
    who = (text(msg("to {addresses}", addresses=", ".join(m["to"]))) if m["direction"] == "out"
           else m["from"] or m["author"])
    marks = [word(m["verdict"] or ""), "" if m["verified"] else text(msg("UNVERIFIED"))]
    marks += [f"{k}={v}" for k, v in m["extra"].items() if k == "register_ref"]
    if say.is_source:  # the stored words, as scripts reading the English output know them
        kind = f"{m['kind']} ({m['direction']})"
    else:
        kind = (f"{say.label(_KINDS.get(m['kind'], m['kind']))} "
                f"({say.label(_DIRECTIONS.get(m['direction'], m['direction']))})")
    lines = [f"--- #{m['id']} {say.moment(m['created_at'])}  {kind}  "
             f"{who}  {' '.join(x for x in marks if x)}".rstrip()]
    if m["subject"]:
        lines.append(text(msg("  subject: {subject}", subject=m["subject"])))
    lines += _indented(m["body_text"])
    for f in m["attachments"]:
        lines.append(text(msg("  [attachment {id}] {filename} ({content_type}, {size} bytes)",
                              id=f["id"], filename=f["filename"],
                              content_type=f["content_type"], size=say.number(f["size"]))))
    return lines


def sequence_lines(run: SequenceRunView | None) -> list[str]:
    """The case's action sequence, step by step; none without a run."""
    if run is None:
        return []
    say, word = speech(), speech().word
    lines = ["", text(msg("sequence {code}:  {state}", code=run["code"],
                          state=word(run["state"])))]
    for step in run["steps"]:
        who = (text(msg("team {name}", name=step["team"])) if step["team"]
               else step["employee_email"] or "-")
        due = text(msg("  due {day}", day=say.day(step["due"]))) if step["due"] else ""
        problem = f"  ({step['problem']})" if step["problem"] else ""
        lines.append(f"  {step['number']}. {word(step['action'])}  {who}  "
                     f"{word(step['status'])}{due}{problem}")
    return lines


def _day_or_moment(value: str) -> str:
    """A desired period's end: a calendar day, or a moment when it has a time (in
    English as stored)."""
    if speech().is_source:
        return value
    return speech().day(value) if len(value) <= 10 else speech().moment(value)


def _indented(body: str) -> list[str]:
    return ["  " + line for line in body.splitlines()]
