"""Races between two daemons' writers on one PostgreSQL database, made to happen.

Each test runs the same write unit twice at once, on two connections (two daemons'
writers), and holds both at the statement that writes what their lookups decided
(tests/support/race_gate.py) until both have looked. Without the guard the two lookups
see the same nothing and both write; with it, the second waits and sees the first's
commit. The guards are listed in docs/CONCURRENCY.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
import store_choice
from daemon_harness import SUPPORT, make_settings
from postgres_server import PostgresCluster
from race_gate import Outcome, RaceGate

from nexusmail.config import Settings
from nexusmail.ingest.prepare import prepare
from nexusmail.tickets.apply_mail import InboundMail, IngestResult, apply_inbound
from nexusmail.tickets.models import Outcome as MailOutcome
from nexusmail.tickets.models import Source
from nexusmail.tickets.new_requests import Opened, OpenRequest, open_case

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def database(postgres_cluster: PostgresCluster,
             postgres_databases: store_choice.PostgresDatabases) -> Iterator[str]:
    """An empty, migrated PostgreSQL database of the running cluster; its URL."""
    url = postgres_databases.copy()
    yield url
    postgres_databases.give_back(url)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def values(outcomes: tuple[Outcome, Outcome]) -> list[Any]:
    """Both units' values; a unit that raised fails the test with its error."""
    for outcome in outcomes:
        if outcome.error is not None:
            raise AssertionError(f"a racing unit failed: {outcome.error!r}")
    return [outcome.value for outcome in outcomes]


def mail_bytes(*, sender: str, subject: str, hop: str, message_id: str) -> bytes:
    return (f"Received: from {hop} by mx.firm.test; Mon, 2 Mar 2026 09:29:00 +0000\r\n"
            f"From: Mario Rossi <{sender}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{message_id}@rossi.test>\r\n"
            "Date: Mon, 2 Mar 2026 09:28:00 +0000\r\n\r\n"
            "La caldaia non parte, potete mandare qualcuno?\r\n").encode()


def inbound(raw: bytes, sender: str) -> InboundMail:
    prepared = prepare(raw, sender, ["firm.test"], 100_000, 20, [SUPPORT])
    return InboundMail(raw=raw, raw_sha256=prepared.raw_sha256,
                       content_sha256=prepared.content_sha256, mail=prepared.mail,
                       source="smtp", envelope_from=sender, envelope_to=[SUPPORT],
                       noise_reason=prepared.noise, attachments=(),
                       language=prepared.language, reading=prepared.reading,
                       serial_candidates=prepared.serial_candidates)


def applying(mail: InboundMail, settings: Settings) -> partial[IngestResult]:
    return partial(apply_inbound, inbound=mail, now=NOW, settings=settings)


def test_two_deliveries_of_one_mail_have_one_effect(database: str, settings: Settings) -> None:
    """One mail reaching two daemons at once (two relays, other Received lines): one
    opens the case, the other is recorded as its copy."""
    sender = "mario@rossi.test"
    first = inbound(mail_bytes(sender=sender, subject="Caldaia", hop="relay1",
                               message_id="m1"), sender)
    second = inbound(mail_bytes(sender=sender, subject="Caldaia", hop="relay2",
                                message_id="m1"), sender)
    assert first.raw_sha256 != second.raw_sha256
    assert first.content_sha256 == second.content_sha256
    gate = RaceGate(database, pause_before="INSERT INTO inbound")
    results = values(gate.run(applying(first, settings), applying(second, settings)))
    assert sorted(r.outcome for r in results) == [MailOutcome.DUPLICATE,
                                                  MailOutcome.NEW_REQUEST]
    assert rows(database, "SELECT count(*) FROM interventions") == [(1,)]


def test_two_mails_of_a_new_sender_make_one_customer(database: str,
                                                     settings: Settings) -> None:
    """Two different requests from an address nobody knows reach two daemons at once:
    one customer with one contact is made, and both cases are theirs."""
    sender = "nuovo@bianchi.test"
    boiler = inbound(mail_bytes(sender=sender, subject="Caldaia", hop="relay1",
                                message_id="b1"), sender)
    pump = inbound(mail_bytes(sender=sender, subject="Pompa", hop="relay2",
                              message_id="b2"), sender)
    gate = RaceGate(database, pause_before="INSERT INTO customers")
    results = values(gate.run(applying(boiler, settings), applying(pump, settings)))
    assert [r.outcome for r in results] == [MailOutcome.NEW_REQUEST] * 2
    assert rows(database, "SELECT count(*) FROM customers") == [(1,)]
    assert rows(database, "SELECT count(DISTINCT customer_id), count(*)"
                          " FROM interventions") == [(1, 2)]


def opening(email: str, settings: Settings) -> partial[Opened]:
    request = OpenRequest(customer_email=email, customer_name="", subject="Caldaia",
                          description="Non parte.", source=Source.EMAIL)
    return partial(open_case, request=request, now=NOW, settings=settings)


def test_the_last_acknowledgement_of_the_hour_goes_out_once(database: str,
                                                            tmp_path: Path) -> None:
    """With one acknowledgement left in the hour's total budget, two daemons opening a
    case each at once send one: the other case is opened unacknowledged."""
    settings = make_settings(tmp_path / "data", mail={"max_acks_per_hour_total": 1})
    gate = RaceGate(database, pause_before="INSERT INTO peer_events")
    opened = values(gate.run(opening("anna@verdi.test", settings),
                             opening("luca@neri.test", settings)))
    assert sorted(str(o.ack_skipped) for o in opened) == ["None", "total_budget"]
    assert rows(database, "SELECT count(*) FROM outbox") == [(1,)]


def test_a_domain_over_its_case_limit_is_muted_even_across_daemons(
        database: str, tmp_path: Path) -> None:
    """A robot's domain may open one case in the window: two of its mails reaching two
    daemons at once open one case, and the other mail is held."""
    settings = make_settings(tmp_path / "data", mail={"mute_after_new_cases": 0,
                                                      "mute_domain_after_new_cases": 1})
    robot_a, robot_b = "a1@robot.test", "b2@robot.test"
    first = inbound(mail_bytes(sender=robot_a, subject="Alert 1", hop="relay1",
                               message_id="r1"), robot_a)
    second = inbound(mail_bytes(sender=robot_b, subject="Alert 2", hop="relay2",
                                message_id="r2"), robot_b)
    gate = RaceGate(database, pause_before="INSERT INTO peer_events")
    results = values(gate.run(applying(first, settings), applying(second, settings)))
    assert sorted(r.outcome for r in results) == [MailOutcome.HELD, MailOutcome.NEW_REQUEST]
    assert rows(database, "SELECT count(*) FROM interventions") == [(1,)]
