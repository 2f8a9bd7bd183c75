"""The customer search against its index: the same answers on SQLite and PostgreSQL
(`--store=postgresql`) whether few or many customers match, the index kept in step with
every change to customers, contacts and mail domains."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nexusmail.records import contacts, customers
from nexusmail.records.customer_search import BROAD_MATCHES, search_customers
from nexusmail.records.merge import merge_customers
from nexusmail.storage.connections import Storage, WriteTx

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


async def names(store: Storage, q: str | None, **kwargs: object) -> tuple[list[str], int]:
    async with store.read() as conn:
        page = await search_customers(conn, q, **kwargs)  # type: ignore[arg-type]
    return [c["name"] for c in page["items"]], page["total"]


async def add(store: Storage, values: dict[str, object]) -> int:
    customer_id: int = await store.write(
        lambda tx: customers.create_customer(tx, values, now=NOW))
    return customer_id


@pytest.mark.parametrize(("q", "expected"), [
    ("ROSSI", ["Rossi Impianti Srl"]),                 # ASCII case aside
    ("srl", ["Popescu Construct SRL", "Rossi Impianti Srl"]),
    ("ro", ["Popescu Construct SRL", "Rossi Impianti Srl"]),   # under three characters
    ("05", ["Bar \"Sport\" 100%"]),
    ("02 1234", ["Rossi Impianti Srl"]),                # a phone, with its space
    ("rossi-srl.it", ["Rossi Impianti Srl"]),           # a mail domain
    ("GIULIA@", ["Rossi Impianti Srl"]),                # a contact's address
    ("333 9", ["Popescu Construct SRL"]),               # a contact's phone
    ('"sport"', ["Bar \"Sport\" 100%"]),                # quotes taken literally
    ("100%", ["Bar \"Sport\" 100%"]),
    ("r_ss", []),                                       # _ is not a wildcard
    ("Srl\nIT0", []),                                   # never across two values
    ("impianti srl popescu", []),
    ("mureșan", ["Ștefan Mureșan"]),                    # non-ASCII, same case
])
async def test_the_search_finds_the_same_on_both_stores(
        store: Storage, q: str, expected: list[str]) -> None:
    """A substring of a name, tax id, email, phone, mail domain or a contact's name,
    email or phone, ASCII case aside, wildcards and quotes taken literally, never
    spanning two values; short text too."""
    rossi = await add(store, {"name": "Rossi Impianti Srl", "tax_id": "IT01234567890",
                              "phone": "+39 02 1234 5678", "mail_domains": ["rossi-srl.it"]})
    popescu = await add(store, {"name": "Popescu Construct SRL", "tax_id": "RO12345678"})
    await add(store, {"name": "Bar \"Sport\" 100%", "work_phone": "0577 000"})
    await add(store, {"name": "Ștefan Mureșan"})
    await store.write(lambda tx: contacts.add_contact(
        tx, rossi, {"name": "Giulia Bianchi", "email": "giulia@rossi-srl.it"}, now=NOW))
    await store.write(lambda tx: contacts.add_contact(
        tx, popescu, {"name": "Ana", "phone": "333 9999"}, now=NOW))
    assert await names(store, q) == (expected, len(expected))


async def test_the_index_follows_every_change(store: Storage) -> None:
    """Renaming a customer, editing or moving a contact, replacing mail domains and
    merging: the search finds the new values, not the old ones, and a merged customer
    no more."""
    keep = await add(store, {"name": "Verdi Srl"})
    dup = await add(store, {"name": "Verdi Duplicato", "mail_domains": ["verdiold.it"]})
    contact = await store.write(lambda tx: contacts.add_contact(
        tx, dup, {"name": "Marco Neri", "email": "marco@verdi.it"}, now=NOW))
    await store.write(lambda tx: customers.update_customer(
        tx, keep, {"name": "Verdi Impianti"}, now=NOW))
    await store.write(lambda tx: contacts.update_contact(tx, contact, {"name": "Marco Bruni"}))
    assert await names(store, "verdi srl") == ([], 0)
    assert await names(store, "neri") == ([], 0)
    assert await names(store, "bruni") == (["Verdi Duplicato"], 1)
    await store.write(lambda tx: customers.update_customer(
        tx, dup, {"mail_domains": ["verdi-dup.it"]}, now=NOW))
    assert await names(store, "verdiold") == ([], 0)
    assert await names(store, "verdi-dup") == (["Verdi Duplicato"], 1)

    await store.write(lambda tx: merge_customers(tx, dup, keep, now=NOW))
    assert await names(store, "bruni") == (["Verdi Impianti"], 1)
    assert await names(store, "duplicato") == ([], 0)
    assert await names(store, "verdi") == (["Verdi Impianti"], 1)


async def test_a_search_most_customers_match_pages_and_counts_like_a_narrow_one(
        store: Storage) -> None:
    """Past the point where the name index is walked instead of the matches sorted,
    pages hold the same customers in the same order, with the same total, as sorting
    every match would; an owner's search too."""
    many = BROAD_MATCHES + 60

    def seed(tx: WriteTx) -> None:
        for n in range(many):
            customers.create_customer(
                tx, {"name": f"Cliente {n:04d} Srl"}, now=NOW,
                default_owner="anna@firm.test" if n % 3 == 0 else None)
        customers.create_customer(tx, {"name": "Altro"}, now=NOW)

    await store.write(seed)
    every = [f"Cliente {n:04d} Srl" for n in range(many)]
    assert await names(store, "srl", limit=50) == (every[:50], many)
    assert await names(store, "SRL", limit=20, offset=1030) == (every[1030:1050], many)
    assert await names(store, "srl", limit=50, offset=many - 10) == (every[-10:], many)
    annas = every[::3]
    assert await names(store, "srl", owner="anna@firm.test", limit=30) == (
        annas[:30], len(annas))
    assert await names(store, "e 10", limit=5) == (every[1000:1005], 60)  # few: sorted
    assert await names(store, "l", limit=3) == (["Altro", *every[:2]], many + 1)


async def test_a_row_built_piece_by_piece_holds_what_a_rebuild_writes(store: Storage) -> None:
    """Contacts and mail domains appended to a customer's row one by one, a no-op edit
    between them, leave it with the same lines as rebuilding it from the three tables."""
    rossi = await add(store, {"name": "Rossi Srl", "tax_id": "IT0001",
                              "mail_domains": ["rossi.it"]})
    await store.write(lambda tx: contacts.add_contact(
        tx, rossi, {"name": "Giulia", "email": "giulia@rossi.it"}, now=NOW))
    await store.write(lambda tx: customers.update_customer(
        tx, rossi, {"mail_domains": ["rossi.it", "rossi-impianti.it"]}, now=NOW))
    await store.write(lambda tx: tx.execute(
        "UPDATE customers SET name = name WHERE id = ?", (rossi,)))
    await store.write(lambda tx: contacts.add_contact(
        tx, rossi, {"name": "Ștefan", "phone": "333 1"}, now=NOW))

    async def lines() -> list[str]:
        async with store.read() as conn:
            cursor = await conn.execute(
                "SELECT body FROM customer_search WHERE customer_id = ?", (rossi,))
            [body] = await cursor.fetchone()
        return sorted(body.split("\n"))

    appended = await lines()
    for name in ("Rebuilt", "Rossi Srl"):  # a rename rebuilds the row
        await store.write(lambda tx, name=name: tx.execute(
            "UPDATE customers SET name = ? WHERE id = ?", (name, rossi)))
    assert appended == await lines()
    assert "333 1" in appended
    assert await names(store, "impianti.it") == (["Rossi Srl"], 1)
