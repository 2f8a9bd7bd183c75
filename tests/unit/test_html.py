"""Mail HTML: sanitized for the admin page, and turned into readable text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexusmail.mail.html import MAX_SANITIZED_HTML_CHARS, html_to_text, sanitize_html


@pytest.mark.parametrize(
    ("html", "absent"),
    [
        ("<p>a<script>alert(1)</script></p>", "alert"),
        ("<style>p{color:red}</style><p>a</p>", "color:red"),
        ("<iframe src='https://x.example'></iframe>", "iframe"),
        ("<object data='x.swf'></object>", "object"),
        ("<form action='https://x'><input name=p></form>", "<form"),
        ("<img src=x onerror='alert(1)'>", "onerror"),
        ("<div onclick='x()'>a</div>", "onclick"),
        ("<a href='javascript:alert(1)'>a</a>", "javascript"),
        ("<a href=' jav&#x09;ascript:alert(1)'>a</a>", "script"),
        ("<a href='vbscript:x'>a</a>", "vbscript"),
        ("<a href='data:text/html,<script>'>a</a>", "data:"),
        ("<a href='//evil.example/x'>a</a>", "evil"),
        ("<img src='https://tracker.example/p.gif'>", "<img"),
        ("<img src='//tracker.example/p.gif'>", "<img"),
        ("<img src='data:image/png;base64,AAAA'>", "<img"),
        ("<img alt='a>b' src='https://tracker.example/p.gif'>", "tracker"),
        ("<div style='background:url(https://tracker.example/x)'>a</div>", "tracker"),
        ("<div style='position:fixed'>a</div>", "position"),
        ("<svg onload='alert(1)'></svg>", "onload"),
    ],
)
def test_sanitize_html_removes(html: str, absent: str) -> None:
    """Scripts, handlers, frames, forms, non-web links and remote images are removed."""
    assert absent not in sanitize_html(html).lower()


@pytest.mark.parametrize(
    ("html", "present"),
    [
        ("<a href='https://x.example/a'>a</a>", 'href="https://x.example/a"'),
        ("<a href='https://x.example/a'>a</a>", 'rel="noopener noreferrer"'),
        ("<a href='mailto:a@b.it'>a</a>", 'href="mailto:a@b.it"'),
        ("<a href='tel:+390111234'>a</a>", 'href="tel:+390111234"'),
        ("<img src='cid:image001.png@01DA' alt='logo'>", 'src="cid:image001.png@01DA"'),
        ("<p style='color: red'>a</p>", 'style="color:red"'),
        ("<table><tr><td>x</td></tr></table>", "<td>x</td>"),
        ("<b>bold</b> <i>it</i>", "<b>bold</b>"),
    ],
)
def test_sanitize_html_keeps(html: str, present: str) -> None:
    """Web and mail links (with rel), cid: images, tables and harmless styles stay."""
    assert present in sanitize_html(html)


_TAGS = st.sampled_from(["script", "img", "a", "div", "svg", "iframe", "p", "style", "body"])
_ATTRS = st.sampled_from(["onerror", "onload", "onclick", "href", "src", "style", "ONMOUSEOVER"])
_VALUES = st.sampled_from(["javascript:alert(1)", "x", "https://t.example/p.gif", "alert(1)"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), st.tuples(_TAGS, _ATTRS, _VALUES)), max_size=12))
def test_sanitize_html_never_lets_scripts_or_handlers_through(
    pieces: list[str | tuple[str, str, str]],
) -> None:
    """Whatever the input, the output has no <script and no on…= attribute."""
    html = "".join(
        p if isinstance(p, str) else f"<{p[0]} {p[1]}='{p[2]}'>x</{p[0]}>" for p in pieces
    )
    cleaned = sanitize_html(html)
    assert "<script" not in cleaned.lower()
    assert not re.search(r"<[^>]*\son\w+\s*=", cleaned, re.IGNORECASE)
    assert "javascript:" not in cleaned.lower()


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>Uno</p><p>Due</p>", "Uno\n\nDue"),
        ("riga uno<br>riga due<br/>riga tre", "riga uno\nriga due\nriga tre"),
        ("<div>a</div><div>b</div>", "a\nb"),
        ("<ul><li>uno</li><li>due</li></ul>", "- uno\n- due"),
        ("<a href='https://x.it/a'>il sito</a>", "il sito (https://x.it/a)"),
        ("<a href='https://x.it/a'>https://x.it/a</a>", "https://x.it/a"),
        ("<a href='mailto:a@b.it'>a@b.it</a>", "a@b.it"),
        ("<a href='javascript:x()'>clic</a>", "clic"),
        ("&egrave; &amp; &#259; &nbsp;x", "è & ă x"),
        ("<p>  molti    spazi\n  qui </p>", "molti spazi qui"),
        ("<head><title>T</title><style>p{}</style></head><script>x()</script>testo", "testo"),
        ("<blockquote>vecchio<br>testo</blockquote>nuovo", "> vecchio\n> testo\nnuovo"),
        ("<pre>a  b\n c</pre>", "a  b\n c"),
        ("<table><tr><td>a</td><td>b</td></tr></table>", "a\tb"),
        ("<p>Bună ziua,</p><p>Mulțumesc</p>", "Bună ziua,\n\nMulțumesc"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    """Blocks and <br> become newlines, lists "- ", links "text (url)", entities decoded."""
    assert html_to_text(html) == expected


@given(st.text(max_size=300))
def test_html_to_text_never_raises(html: str) -> None:
    """Any string, however broken as HTML, gives text."""
    assert isinstance(html_to_text(html), str)


def test_sanitize_html_cuts_what_is_shown_of_a_huge_mail() -> None:
    """HTML beyond the cap is cut before nh3, marked, and a tag cut in half stays out."""
    html = "<p>parola</p>" * (MAX_SANITIZED_HTML_CHARS // 13) + '<a onclick="x()" href="ja'
    html += "vascript:alert(1)'>dopo</a>" + "<p>oltre</p>" * 1_000
    cleaned = sanitize_html(html)
    assert len(cleaned) <= MAX_SANITIZED_HTML_CHARS + 100
    assert cleaned.endswith("<p>[…]</p>")
    assert "oltre" not in cleaned
    assert "onclick" not in cleaned
    assert "javascript" not in cleaned
