"""Deterministic corpus of inbound customer mails for the SMTP ingest benchmark.

The same seed and count always give the same bytes, so runs on different days and
machines send the same load. Mails are built by hand (not with `email.generator`) so
that every charset / transfer-encoding pair is exactly the one we chose, the way real
clients get them wrong or right.

    python bench/corpus.py --mails 2000 --seed 7     # writes the cache, prints a summary
"""

from __future__ import annotations

import argparse
import base64
import json
import quopri
import random
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any

# Bump when the generator changes, so a stale cache is never reused.
GENERATOR_VERSION = 5
DEFAULT_MAILS = 2000
DEFAULT_SEED = 20240601
SUPPORT_ADDRESS = "support@firm.test"
OUT_DIR = Path(__file__).resolve().parent / "out"

# The daemon limits acknowledgements per address (ping-pong guard, default 10/hour).
# Capping new requests per customer below it keeps "acks sent == new requests" checkable.
MAX_NEW_REQUESTS_PER_CUSTOMER = 8

REPLY_SHARE = 0.15
ATTACHMENT_SHARE = 0.20
HTML_SHARE = 0.25

CRLF = "\r\n"

# Word lists with the diacritics the daemon must survive: Romanian comma-below ș/ț
# (and ă, â, î), Italian accented vowels.
WORDS: dict[str, str] = {
    "en": (
        "the boiler stopped working this morning and the display shows error code "
        "please send a technician as soon as possible we are available from monday to "
        "friday between nine and five the heating unit in the basement makes a loud noise "
        "when it starts our office address is on the invoice thank you for your help "
        "regards kind the pump seems to leak water near the valve pressure dropped again "
        "after the last service visit could you check warranty contract maintenance"
    ),
    "it": (
        "buongiorno la caldaia si è fermata stamattina e il display mostra un errore "
        "perché non funziona più il riscaldamento vorrei fissare un intervento città "
        "lunedì martedì mercoledì giovedì venerdì disponibilità però è urgente già "
        "chiamato qualità servizio tecnico può passare entro la settimana grazie mille "
        "cordiali saluti perdita d'acqua vicino alla valvola pressione bassa caffè "
        "società attività manutenzione contratto garanzia così virtù"
    ),
    "ro": (
        "bună ziua centrala s-a oprit în această dimineață și afișajul arată o eroare "
        "vă rugăm să trimiteți un tehnician cât mai repede suntem disponibili de luni "
        "până vineri între orele nouă și cinci pompa pierde apă lângă robinet presiunea "
        "a scăzut după ultima revizie mulțumesc pentru ajutor cu stimă întreținere "
        "contract garanție încălzire țeavă școală ștergător îngrijorați urgență"
    ),
}

SUBJECTS: dict[str, list[str]] = {
    "en": ["Boiler not working", "Heating unit noise", "Water leak near the pump",
           "Request for maintenance visit", "Error code on display", "Warranty repair"],
    "it": ["Caldaia non funziona più", "Perdita d'acqua", "Richiesta intervento urgente",
           "Manutenzione caldaia è scaduta", "Errore sul display", "Riparazione in garanzia"],
    "ro": ["Centrala nu mai funcționează", "Pierdere de apă la țeavă",
           "Cerere intervenție urgentă", "Revizie anuală încălzire", "Eroare pe afișaj",
           "Reparație în garanție"],
}

FIRST_NAMES = {
    "en": ["John", "Mary", "Peter", "Susan", "David", "Emma", "Tom", "Alice"],
    "it": ["Giuseppe", "Niccolò", "Lucia", "Francesca", "Mattia", "Chiara", "Nicolò"],
    "ro": ["Ștefan", "Ioana", "Mihaela", "Răzvan", "Țurcanu", "Andreea", "Bogdan"],
}
LAST_NAMES = {
    "en": ["Smith", "Brown", "Taylor", "Wilson", "Evans", "Walker"],
    "it": ["Rossi", "Bianchi", "Ferrà", "Esposito", "Romano", "Colombo"],
    "ro": ["Popescu", "Ionescu", "Constantinescu", "Dumitrașcu", "Stănescu", "Țiriac"],
}

# (charset, body transfer encoding, share); each mix is realistic for its language.
CHARSETS: dict[str, list[tuple[str, str, int]]] = {
    "en": [("utf-8", "quoted-printable", 4), ("utf-8", "base64", 2),
           ("windows-1252", "quoted-printable", 2), ("us-ascii", "7bit", 2)],
    "it": [("utf-8", "quoted-printable", 4), ("utf-8", "base64", 2),
           ("windows-1252", "quoted-printable", 3), ("iso-8859-1", "base64", 1)],
    "ro": [("utf-8", "quoted-printable", 3), ("utf-8", "base64", 2),
           ("iso-8859-2", "quoted-printable", 3), ("windows-1250", "base64", 2)],
}

# iso-8859-2 and cp1250 have only the cedilla forms ş/ţ; old Romanian clients sent those.
CEDILLA = str.maketrans("șțȘȚ", "şţŞŢ")

ATTACHMENT_TYPES = [("application/pdf", "pdf"), ("image/jpeg", "jpg"),
                    ("application/zip", "zip"), ("image/png", "png")]


@dataclass(frozen=True)
class MailMeta:
    """Where a mail sits in the blob file and what the load client needs to send it."""

    offset: int
    size: int
    sender: str
    message_id: str
    language: str
    charset: str
    kind: str  # "new" | "reply"
    thread: int  # index of the first mail of its thread (itself for a new request)
    has_attachment: bool
    html: bool


@dataclass(frozen=True)
class Corpus:
    metas: list[MailMeta]
    blob_path: Path

    def load(self) -> list[bytes]:
        data = self.blob_path.read_bytes()
        return [data[m.offset:m.offset + m.size] for m in self.metas]


@dataclass
class _Customer:
    address: str
    name: str
    language: str
    new_requests: int = 0


def _pick_weighted(rng: random.Random, options: list[tuple[str, str, int]]) -> tuple[str, str]:
    charset, cte, _ = rng.choices(options, weights=[w for _, _, w in options])[0]
    return charset, cte


def _encodable(text: str, charset: str) -> str:
    if charset in ("iso-8859-2", "windows-1250"):
        text = text.translate(CEDILLA)
    # Lossy on purpose: a us-ascii mail simply has no diacritics, like the real ones.
    return text.encode(charset, "replace").decode(charset)


def _paragraphs(rng: random.Random, language: str, target_bytes: int) -> str:
    words = WORDS[language].split()
    out: list[str] = []
    size = 0
    while size < target_bytes:
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(8, 18)))
        line = sentence[0].upper() + sentence[1:] + "."
        # Short lines like a mail client's, so no line nears the 998-octet limit.
        chunk = textwrap.fill(line, 72)
        out.append(chunk)
        size += len(chunk.encode()) + 2
        if rng.random() < 0.3:
            out.append("")
    return "\n".join(out)


def _encode_body(text: str, charset: str, cte: str) -> bytes:
    data = text.replace("\n", CRLF).encode(charset)
    if cte == "quoted-printable":
        # quopri keeps CRLF line ends as hard breaks when given binary input.
        return quopri.encodestring(data.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
    if cte == "base64":
        return base64.encodebytes(data).replace(b"\n", b"\r\n")
    return data


def _text_part(text: str, subtype: str, charset: str, cte: str) -> bytes:
    head = (f"Content-Type: text/{subtype}; charset=\"{charset}\"{CRLF}"
            f"Content-Transfer-Encoding: {cte}{CRLF}{CRLF}")
    body = _encode_body(text, charset, cte)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return head.encode("ascii") + body


def _html_of(text: str, charset: str) -> str:
    paragraphs = "".join(f"<p>{p.replace(chr(10), ' ')}</p>\n" for p in text.split("\n\n"))
    return (f"<html><head><meta charset=\"{charset}\"></head><body>\n"
            f"<div style=\"font-family:Arial\">\n{paragraphs}</div>\n</body></html>")


def _multipart(subtype: str, boundary: str, parts: list[bytes]) -> tuple[str, bytes]:
    body = b"".join(f"--{boundary}{CRLF}".encode() + p for p in parts)
    body += f"--{boundary}--{CRLF}".encode()
    return f"multipart/{subtype}; boundary=\"{boundary}\"", body


def _attachment(rng: random.Random, index: int) -> bytes:
    content_type, ext = rng.choice(ATTACHMENT_TYPES)
    payload = rng.randbytes(rng.randint(50 * 1024, 200 * 1024))
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    name = f"doc_{index:05d}.{ext}"
    head = (f"Content-Type: {content_type}; name=\"{name}\"{CRLF}"
            f"Content-Transfer-Encoding: base64{CRLF}"
            f"Content-Disposition: attachment; filename=\"{name}\"{CRLF}{CRLF}")
    return head.encode("ascii") + encoded


def _header_words(value: str, charset: str) -> str:
    """An RFC 2047 header value in the mail's own charset, as older clients send it."""
    if value.isascii():
        return value
    return Header(_encodable(value, charset), charset).encode()


def _make_customers(rng: random.Random, count: int) -> list[_Customer]:
    customers: list[_Customer] = []
    for i in range(count):
        language = rng.choices(["en", "it", "ro"], weights=[3, 4, 3])[0]
        name = f"{rng.choice(FIRST_NAMES[language])} {rng.choice(LAST_NAMES[language])}"
        domain = rng.choice(["gmail.test", "outlook.test", "libero.test", "yahoo.test",
                             "firma.test", "clienti.test"])
        customers.append(_Customer(f"customer{i:04d}@{domain}", name, language))
    return customers


def generate(mails: int = DEFAULT_MAILS,
             seed: int = DEFAULT_SEED) -> list[tuple[dict[str, Any], bytes]]:
    """Return (metadata, raw bytes) per mail; same arguments, same bytes."""
    rng = random.Random(seed)
    # A few hundred customers for 2,000 mails, enough that none reaches the ack limit.
    n_customers = max(20, mails // 6)
    customers = _make_customers(rng, n_customers)
    base_time = 1_717_200_000.0  # fixed, so Date headers are reproducible
    out: list[tuple[dict[str, Any], bytes]] = []
    # (index, customer, subject) of every earlier mail, for replies to pick from.
    sent: list[tuple[int, _Customer, str, str, int]] = []
    new_ordinal = 0
    for i in range(mails):
        is_reply = bool(sent) and rng.random() < REPLY_SHARE
        if is_reply:
            _parent, customer, root_subject, parent_mid, thread = rng.choice(sent)
            # The tag is a plausible number only: the daemon numbers in arrival order,
            # which differs per run; In-Reply-To is what threads the reply.
            subject = f"Re: [#{thread + 1}] {root_subject}"
        else:
            candidates = [c for c in customers if c.new_requests < MAX_NEW_REQUESTS_PER_CUSTOMER]
            customer = rng.choice(candidates)
            customer.new_requests += 1
            new_ordinal += 1
            root_subject = rng.choice(SUBJECTS[customer.language])
            subject = root_subject
            thread = i
            parent_mid = ""
        language = customer.language
        charset, cte = _pick_weighted(rng, CHARSETS[language])
        domain = customer.address.split("@")[1]
        message_id = f"<bench.{seed}.{i:06d}.{rng.getrandbits(40):010x}@{domain}>"
        has_attachment = rng.random() < ATTACHMENT_SHARE
        html = rng.random() < HTML_SHARE

        # Mostly 1-10 KB of text; replies are short and quote a little.
        target = rng.randint(300, 1500) if is_reply else rng.randint(1000, 10_000)
        text = _encodable(_paragraphs(rng, language, target), charset)
        if is_reply:
            quoted = _encodable(_paragraphs(rng, language, 400), charset)
            text += "\n\n" + "\n".join("> " + line for line in quoted.split("\n"))
        text += f"\n\n-- \n{_encodable(customer.name, charset)}\n"

        if html:
            html_charset = "utf-8" if charset == "us-ascii" else charset
            content_type, body = _multipart("alternative", f"=_alt_{i:06d}", [
                _text_part(text, "plain", charset, cte),
                _text_part(_html_of(text, html_charset), "html", html_charset, "quoted-printable"),
            ])
        else:
            part = _text_part(text, "plain", charset, cte)
            head, _, body = part.partition(b"\r\n\r\n")
            content_type = ""
        if has_attachment:
            first = (f"Content-Type: {content_type}{CRLF}{CRLF}".encode() + body
                     if content_type else head + b"\r\n\r\n" + body)
            content_type, body = _multipart("mixed", f"=_mix_{i:06d}",
                                            [first, _attachment(rng, i)])

        date = format_datetime(datetime.fromtimestamp(base_time + i * 37.0, UTC))
        from_value = formataddr((_header_words(customer.name, charset), customer.address))
        headers = [
            f"Received: from client.{domain} by mx.firm.test; {date}",
            f"From: {from_value}",
            f"To: Support <{SUPPORT_ADDRESS}>",
            f"Subject: {_header_words(subject, charset)}",
            f"Date: {date}",
            f"Message-ID: {message_id}",
            "MIME-Version: 1.0",
        ]
        if is_reply:
            headers += [f"In-Reply-To: {parent_mid}", f"References: {parent_mid}"]
        if content_type:
            headers.append(f"Content-Type: {content_type}")
            raw = (CRLF.join(headers) + CRLF + CRLF).encode("ascii") + body
        else:
            raw = (CRLF.join(headers) + CRLF).encode("ascii") + head + b"\r\n\r\n" + body

        meta = {"sender": customer.address, "message_id": message_id, "language": language,
                "charset": charset, "kind": "reply" if is_reply else "new", "thread": thread,
                "has_attachment": has_attachment, "html": html}
        out.append((meta, raw))
        sent.append((i, customer, root_subject, message_id, thread))
    return out


def corpus_paths(mails: int, seed: int, out_dir: Path = OUT_DIR) -> tuple[Path, Path]:
    stem = f"corpus-v{GENERATOR_VERSION}-{mails}-{seed}"
    return out_dir / f"{stem}.json", out_dir / f"{stem}.bin"


def build(mails: int = DEFAULT_MAILS, seed: int = DEFAULT_SEED, out_dir: Path = OUT_DIR) -> Corpus:
    """The cached corpus, generated on first use (a few seconds for 2,000 mails)."""
    index_path, blob_path = corpus_paths(mails, seed, out_dir)
    if index_path.exists() and blob_path.exists():
        return read_index(index_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    metas: list[dict[str, Any]] = []
    offset = 0
    tmp_blob = blob_path.with_suffix(".bin.tmp")
    with tmp_blob.open("wb") as f:
        for meta, raw in generate(mails, seed):
            f.write(raw)
            metas.append({"offset": offset, "size": len(raw), **meta})
            offset += len(raw)
    tmp_blob.replace(blob_path)
    # The index is written last: its presence means the blob is complete.
    tmp_index = index_path.with_suffix(".json.tmp")
    tmp_index.write_text(json.dumps({"blob": blob_path.name, "mails": metas}))
    tmp_index.replace(index_path)
    return read_index(index_path)


def read_index(index_path: Path) -> Corpus:
    doc = json.loads(index_path.read_text())
    return Corpus([MailMeta(**m) for m in doc["mails"]], index_path.parent / doc["blob"])


def summary(corpus: Corpus) -> dict[str, Any]:
    metas = corpus.metas
    sizes = sorted(m.size for m in metas)
    return {
        "mails": len(metas),
        "bytes_total": sum(sizes),
        "size_p50_kb": round(sizes[len(sizes) // 2] / 1024, 1),
        "size_max_kb": round(sizes[-1] / 1024, 1),
        "replies": sum(m.kind == "reply" for m in metas),
        "with_attachment": sum(m.has_attachment for m in metas),
        "html": sum(m.html for m in metas),
        "senders": len({m.sender for m in metas}),
        "languages": dict(Counter(m.language for m in metas)),
        "charsets": dict(Counter(m.charset for m in metas)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=DEFAULT_MAILS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--dump", type=int, metavar="I", help="print mail I and exit")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    corpus = build(args.mails, args.seed)
    if args.dump is not None:
        sys.stdout.buffer.write(corpus.load()[args.dump])
        return 0
    print(json.dumps({**summary(corpus), "index": corpus_paths(args.mails, args.seed)[0].name,
                      "seconds": round(time.perf_counter() - started, 2)}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
