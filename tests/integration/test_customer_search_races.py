"""Two daemons writing one customer's search row at once, on PostgreSQL: the second
writer waits for the first's commit and its lines join the first's, whether each
appends (a new contact) or rebuilds the row (a contact renamed)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
import store_choice
from postgres_server import PostgresCluster

NOW = "2026-12-04T09:00:00+00:00"
Step = Callable[[psycopg.Connection[tuple[object, ...]]], object]


@pytest.fixture
def database(postgres_cluster: PostgresCluster,
             postgres_databases: store_choice.PostgresDatabases) -> Iterator[str]:
    """An empty, migrated PostgreSQL database of the running cluster; its URL."""
    url = postgres_databases.copy()
    yield url
    postgres_databases.give_back(url)


def add_contact(name: str) -> Step:
    return lambda conn: conn.execute(
        "INSERT INTO contacts (customer_id, name, created_at) VALUES (1, %s, %s)",
        (name, NOW))


def rename_contact(old: str, new: str) -> Step:
    return lambda conn: conn.execute("UPDATE contacts SET name = %s WHERE name = %s",
                                     (new, old))


def lines(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT body FROM customer_search WHERE customer_id = 1").fetchone()
    assert row is not None
    return sorted(str(row[0]).split("\n"))


def waits_on_a_lock(conn: psycopg.Connection[tuple[object, ...]], pid: int) -> bool:
    row = conn.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity"
                       " WHERE pid = %s", (pid,)).fetchone()
    return bool(row and row[0])


def race(url: str, first: Step, second: Step) -> None:
    """`first` writes and holds its transaction open while `second` runs on another
    connection, until `second` waits on a lock; then both commit, first first."""
    with psycopg.connect(url) as one, psycopg.connect(url) as two:
        first(one)
        waiter_pid = two.info.backend_pid
        failed: list[BaseException] = []

        def run_second() -> None:
            try:
                second(two)
                two.commit()
            except BaseException as error:  # reported by the test below
                failed.append(error)

        thread = threading.Thread(target=run_second)
        thread.start()
        deadline = time.monotonic() + 10
        while not waits_on_a_lock(one, waiter_pid):
            assert thread.is_alive(), "the second writer did not wait"
            assert time.monotonic() < deadline, "the second writer did not wait"
            time.sleep(0.02)
        one.commit()
        thread.join(10)
        assert not failed, failed


@pytest.mark.parametrize(("first", "second", "names"), [
    (add_contact("anna"), add_contact("bruno"), {"zoe", "yann", "anna", "bruno"}),
    (rename_contact("zoe", "zita"), add_contact("bruno"), {"zita", "yann", "bruno"}),
    (add_contact("anna"), rename_contact("zoe", "zita"), {"zita", "yann", "anna"}),
    (rename_contact("zoe", "zita"), rename_contact("yann", "yves"), {"zita", "yves"}),
], ids=["append-append", "rebuild-append", "append-rebuild", "rebuild-rebuild"])
def test_two_writers_of_one_row_both_leave_their_lines(
        database: str, first: Step, second: Step, names: set[str]) -> None:
    """Whichever the two writes, the committed row holds both writers' lines: the same
    lines a rebuild from the three tables writes."""
    with psycopg.connect(database) as conn:
        conn.execute("INSERT INTO customers (id, name, verified, created_at)"
                     " VALUES (1, 'Rossi Srl', 1, %s)", (NOW,))
        for name in ("zoe", "yann"):
            conn.execute("INSERT INTO contacts (customer_id, name, created_at)"
                         " VALUES (1, %s, %s)", (name, NOW))
    race(database, first, second)
    written = lines(database)
    with psycopg.connect(database) as conn:
        conn.execute("SELECT nexusmail_customer_search_refresh(1)")
        conn.execute("UPDATE customer_search SET body = '' WHERE customer_id = 1")
        conn.execute("SELECT nexusmail_customer_search_refresh(1)")
    assert written == lines(database)
    assert names == set(written) - {"", "rossi srl"}
