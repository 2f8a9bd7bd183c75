"""What an acknowledgement repeats of a sender's words: short, and no links."""

from __future__ import annotations

import pytest

from nexusmail.tickets.new_requests import quotable


@pytest.mark.parametrize(("text", "shown"), [
    ("Caldaia guasta", "Caldaia guasta"),
    ("Buy now at http://spam.example/x cheap", "Buy now at [link] cheap"),
    ("Visit www.cheap.example today", "Visit [link] today"),
    ("Offerta su pillole.ru/buy subito", "Offerta su [link] subito"),
    ("Sig.Rossi: il rubinetto perde.Grazie", "Sig.Rossi: il rubinetto perde.Grazie"),
    ("  Centrala\n  nu pornește ", "Centrala nu pornește"),
])
def test_links_go_and_words_stay(text: str, shown: str) -> None:
    """Schemes, www. and domains under link-making TLDs become [link]; prose stays."""
    assert quotable(text, 80) == shown


def test_long_text_is_cut_with_an_ellipsis() -> None:
    """At most the limit, the cut marked; a huge input costs no more than a short one."""
    assert quotable("parola " * 100_000, 40) == ("parola " * 6)[:39].rstrip() + "…"
    assert len(quotable("x" * 500, 40)) == 40
