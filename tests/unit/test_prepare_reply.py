"""The parse step reads a reply by its HTML quote markers, which sanitizing removes."""

from __future__ import annotations

from email.message import EmailMessage

from nexusmail.ingest.prepare import prepare

_ASSIGNMENT = "Intervento #42 assegnato a te\n\nRispondi CONFERMO o RIFIUTO."


def _reply(text: str, html: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Luca <luca@firm.test>"
    message["To"] = "support@firm.test"
    message["Subject"] = "Re: [#42] Intervento assegnato"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


def test_reply_read_by_the_html_quote_the_text_rules_miss() -> None:
    """An unknown attribution in the text part: Gmail's quote div still tells the reply."""
    text = f"Confermo, giovedì.\n\nIl 3 marzo Dispatch scrisse\n\n{_ASSIGNMENT}\n"
    html = ('<div dir="ltr">Confermo, giovedì.</div><div class="gmail_quote">'
            "<div>Il 3 marzo Dispatch scrisse</div><div>"
            f"{_ASSIGNMENT.replace(chr(10), '<br>')}</div></div>")
    prepared = prepare(_reply(text, html), "luca@firm.test", ("firm.test",), 100_000, 20)
    assert prepared.reading is not None
    assert prepared.reading.verdict == "confirmed"
    assert prepared.reading.body == "Confermo, giovedì."
    assert prepared.mail.html_as_sent is None  # not carried back to the ingest process
    assert prepared.mail.body_html is not None
