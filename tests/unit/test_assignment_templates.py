"""The assignment-by-reply mails (assignment, decision_echo, assignment_rejected) render
in en/it/ro, text and HTML, with every fact the reader needs."""

from __future__ import annotations

import hashlib
import html as html_module
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from nexusmail.clock import FakeClock
from nexusmail.config import MailSettings
from nexusmail.dispatch.compose import Composer, OutboxRow

SETTINGS = MailSettings(company_name="Termoidraulica Rossi S.r.l.",
                        support_addresses=("assistenza@rossi.example",))
PHOTO = b"\xff\xd8\xff\xe0 a small jpeg"
PHOTO_SHA = hashlib.sha256(PHOTO).hexdigest()
VIDEO_SHA = "b" * 64
REPLY_TO = "assistenza+a7n42s0123456789abcdef0123@rossi.example"

# What tickets.assignments.assignment_context() returns, plus what assign() adds.
CASE: dict[str, Any] = {
    "number": 42, "tag": "[#42]", "subject": "Caldaia in blocco",
    "description": "La caldaia va in blocco ogni mattina.\nCodice errore E133.",
    "request_type": "guasto", "priority": "urgent",
    "desired_from": "2026-03-05", "desired_to": "2026-03-06",
    "customer": {"name": "Condominio Verdi", "email": "amministrazione@verdi.example",
                 "phone": "+39 02 555 0101", "address": "Via Roma 12, 20121 Milano"},
    "contact": {"name": "Anna Bianchi", "email": "anna.bianchi@verdi.example",
                "phone": "+39 333 555 0202"},
    "case_attachments": [
        {"sha256": PHOTO_SHA, "filename": "caldaia.jpg", "content_type": "image/jpeg",
         "size": len(PHOTO)},
        {"sha256": VIDEO_SHA, "filename": "rumore.mp4", "content_type": "video/mp4",
         "size": 48_000_000},
    ],
    "employee_name": "Ion Popescu", "company_name": "Termoidraulica Rossi S.r.l.",
    "reply_to": REPLY_TO,
    "attachments": [{"sha256": PHOTO_SHA, "filename": "caldaia.jpg",
                     "content_type": "image/jpeg"}],
}
DECISION: dict[str, Any] = {
    **{k: v for k, v in CASE.items() if k not in ("reply_to", "attachments")},
    "employee_email": "ion.popescu@rossi.example", "verdict": "rejected",
    "reason": "sono in ferie fino al 10",
}


def compose(template: str, language: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """Subject, text part and HTML part as a receiver parses them off the wire."""
    composer = Composer(SETTINGS, blob_loader={PHOTO_SHA: PHOTO}.__getitem__, clock=FakeClock())
    row = OutboxRow(id=1, message_id="nm.1@rossi.example", kind=template,
                    recipient="ion.popescu@rossi.example", language=language,
                    template=template, context=context)
    composed = composer.compose(row)
    assert composed.language == language
    msg = message_from_bytes(composed.message.as_bytes(policy=policy.SMTP),
                             policy=policy.default)
    assert isinstance(msg, EmailMessage)
    parts = []
    for subtype in ("plain", "html"):
        body = msg.get_body(preferencelist=(subtype,))
        assert body is not None
        parts.append(str(body.get_content()).replace("\r\n", "\n"))
    return str(msg["Subject"]), parts[0], parts[1]


ASSIGNMENT_WORDS = {
    "en": ["[#42] Assignment: Caldaia in blocco", "Reply CONFIRM or REJECT, with a reason if "
           "you like.", "URGENT", "5 March 2026 – 6 March 2026", "Contact person"],
    "it": ["[#42] Assegnazione: Caldaia in blocco", "Rispondi CONFERMO oppure RIFIUTO, con un "
           "motivo se vuoi.", "URGENTE", "5 marzo 2026 – 6 marzo 2026", "Persona di riferimento"],
    "ro": ["[#42] Alocare: Caldaia in blocco", "Răspundeți CONFIRM sau REFUZ, cu un motiv dacă "
           "doriți.", "URGENTĂ", "5 martie 2026 – 6 martie 2026", "Persoană de contact"],
}
CASE_FACTS = ["#42", "Caldaia in blocco", "guasto", "Codice errore E133", "Condominio Verdi",
              "Via Roma 12, 20121 Milano", "+39 02 555 0101", "amministrazione@verdi.example",
              "Anna Bianchi", "+39 333 555 0202", "anna.bianchi@verdi.example", "caldaia.jpg",
              "rumore.mp4"]


@pytest.mark.parametrize("language", ["en", "it", "ro"])
def test_assignment_carries_every_case_detail(language: str) -> None:
    """The assignment mail has the tagged subject, the answer line and all case facts."""
    subject, text, html = compose("assignment", language, CASE)
    tagged_subject, answer_line, priority, period, contact_heading = ASSIGNMENT_WORDS[language]
    assert subject == tagged_subject
    for part in (text, html):
        for fact in [*CASE_FACTS, answer_line, priority, period]:
            assert fact in part, (language, fact)
        assert contact_heading.lower() in part.lower()
    # One line on how to answer, not a lecture.
    assert text.count(answer_line) == 1


@pytest.mark.parametrize("language", ["en", "it", "ro"])
def test_assignment_attaches_small_files_and_lists_large_ones(language: str) -> None:
    """A file in `attachments` travels on the mail; one only in case_attachments is
    listed as not attached, pointing to the admin page."""
    composer = Composer(SETTINGS, blob_loader={PHOTO_SHA: PHOTO}.__getitem__, clock=FakeClock())
    row = OutboxRow(id=1, message_id="nm.1@rossi.example", kind="assignment",
                    recipient="ion@rossi.example", language=language, template="assignment",
                    context=CASE)
    msg = message_from_bytes(composer.compose(row).message.as_bytes(), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() == "caldaia.jpg"
    assert attachment.get_content() == PHOTO
    assert msg["Reply-To"] == REPLY_TO
    text = composer.compose(row).body_text
    video_line = next(line for line in text.splitlines() if "rumore.mp4" in line)
    photo_line = next(line for line in text.splitlines() if "caldaia.jpg" in line)
    admin = {"en": "admin page", "it": "pannello di amministrazione",
             "ro": "pagina de administrare"}[language]
    assert admin in video_line
    assert admin not in photo_line


def test_assignment_without_optional_facts() -> None:
    """No contact, period, phone, type or attachments: those lines are simply absent."""
    bare = {**CASE, "desired_from": None, "desired_to": None, "request_type": "",
            "priority": "normal", "case_attachments": [],
            "customer": {"name": "Mario Rossi", "email": "mario@example.it", "phone": "",
                         "address": ""},
            # the requester himself: not repeated as a separate contact person
            "contact": {"name": "Mario Rossi", "email": "mario@example.it", "phone": ""}}
    del bare["attachments"]
    _, text, _ = compose("assignment", "en", bare)
    for absent in ("Desired period", "Request type", "Phone", "Address", "CONTACT", "ATTACHMENTS"):
        assert absent not in text
    assert "Priority: normal" in text


@pytest.mark.parametrize(("desired_from", "desired_to", "shown"), [
    ("2026-03-05", None, "dal 5 marzo 2026"),
    (None, "2026-03-06", "entro il 6 marzo 2026"),
    ("2026-12-01", "2026-12-01", "Periodo desiderato: 1 dicembre 2026\n"),
])
def test_open_ended_and_one_day_periods(
    desired_from: str | None, desired_to: str | None, shown: str
) -> None:
    """A period with only one end, or of one day, reads naturally."""
    context = {**CASE, "desired_from": desired_from, "desired_to": desired_to}
    _, text, _ = compose("assignment", "it", context)
    assert shown in text


ECHO_LINES = {
    ("en", "confirmed"): "Recorded: confirmed for #42",
    ("en", "rejected"): "Recorded: rejected for #42",
    ("en", "unclear"): "We could not tell whether you confirm or reject #42; reply CONFIRM or "
                       "REJECT",
    ("it", "confirmed"): "Registrato: confermato per #42",
    ("it", "rejected"): "Registrato: rifiutato per #42",
    ("it", "unclear"): "Non abbiamo capito se confermi o rifiuti #42; rispondi CONFERMO oppure "
                       "RIFIUTO",
    ("ro", "confirmed"): "Înregistrat: confirmat pentru #42",
    ("ro", "rejected"): "Înregistrat: refuzat pentru #42",
    ("ro", "unclear"): "Nu am putut stabili dacă confirmați sau refuzați #42; răspundeți CONFIRM "
                       "sau REFUZ",
}


@pytest.mark.parametrize(("language", "verdict"), sorted(ECHO_LINES))
def test_decision_echo_says_what_was_recorded(language: str, verdict: str) -> None:
    """The echo names the verdict and the intervention, and repeats the reason given."""
    subject, text, html = compose("decision_echo", language, {**DECISION, "verdict": verdict})
    assert subject.startswith("[#42] ")
    for part in (text, html):
        assert ECHO_LINES[(language, verdict)] in part
        assert "sono in ferie fino al 10" in part
        assert "Caldaia in blocco" in part


def test_decision_echo_without_reason() -> None:
    """A bare one-word answer gives an echo without an empty reason line."""
    _, text, _ = compose("decision_echo", "en", {**DECISION, "verdict": "confirmed",
                                                  "reason": ""})
    assert "Recorded: confirmed for #42." in text
    assert "Your note" not in text


@pytest.mark.parametrize(("language", "line"), [
    ("en", "#42: Ion Popescu rejected the assignment: sono in ferie fino al 10; the "
           "intervention needs reassignment."),
    ("it", "#42: Ion Popescu ha rifiutato l'assegnazione: sono in ferie fino al 10; "
           "l'intervento va riassegnato."),
    ("ro", "#42: Ion Popescu a refuzat alocarea: sono in ferie fino al 10; intervenția trebuie "
           "realocată."),
])
def test_rejection_notice_tells_operators_to_reassign(language: str, line: str) -> None:
    """Operators read who rejected, why, and that the intervention needs reassignment."""
    subject, text, html = compose("assignment_rejected", language, DECISION)
    assert subject.startswith("[#42] ")
    assert "Ion Popescu" in subject
    assert line in text
    assert line in html_module.unescape(html)
    for part in (text, html):
        assert "ion.popescu@rossi.example" in part
        assert "Via Roma 12, 20121 Milano" in part


def test_rejection_without_reason_reads_cleanly() -> None:
    """No reason given: the sentence has no dangling colon."""
    _, text, _ = compose("assignment_rejected", "en", {**DECISION, "reason": ""})
    assert ("#42: Ion Popescu rejected the assignment; the intervention needs reassignment."
            in text)


@pytest.mark.parametrize("template", ["assignment", "decision_echo", "assignment_rejected"])
def test_customer_text_is_escaped_in_html(template: str) -> None:
    """Text from customers and technicians is escaped in the HTML part."""
    context = {**(CASE if template == "assignment" else DECISION),
               "description": "<script>x</script>", "subject": "<b>caldaia</b>",
               "reason": "<img src=x>"}
    _, _, html = compose(template, "en", context)
    assert "<script>" not in html
    assert "<b>caldaia</b>" not in html
    assert "<img" not in html


@pytest.mark.parametrize("template", ["assignment", "decision_echo", "assignment_rejected"])
def test_romanian_uses_comma_below(template: str) -> None:
    """Romanian wording uses ș/ț, never the cedilla look-alikes."""
    _, text, html = compose(template, "ro", CASE if template == "assignment" else DECISION)
    assert "ş" not in text + html
    assert "ţ" not in text + html
