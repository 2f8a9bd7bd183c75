"""Races between two daemons' writers on one PostgreSQL database, made to happen.

Each test runs the same write unit twice at once, on two connections (two daemons'
writers), and holds both at the statement that writes what their lookups decided
(tests/support/race_gate.py) until both have looked. Without the guard the two lookups
see the same nothing and both write; with it, the second waits and sees the first's
commit. The guards are listed in docs/CONCURRENCY.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
import store_choice
from daemon_harness import SUPPORT, make_settings
from postgres_server import PostgresCluster
from race_gate import Outcome, RaceGate

from nexusmail.clock import iso
from nexusmail.config import Settings
from nexusmail.ingest.prepare import prepare
from nexusmail.mail.reply_reading import ReplyReading, Verdict
from nexusmail.records.customers import create_customer, set_domains
from nexusmail.records.request_types import create_request_type
from nexusmail.storage.pg_store import WriteConnection
from nexusmail.storage.postgresql import connect
from nexusmail.tickets.apply_mail import InboundMail, IngestResult, apply_inbound, quarantine
from nexusmail.tickets.assignments import (
    apply_reply_as_operator,
    assign,
    assign_team,
    assignment_context,
)
from nexusmail.tickets.cases import add_employee, close_intervention
from nexusmail.tickets.models import AssignmentStatus, Source
from nexusmail.tickets.models import Outcome as MailOutcome
from nexusmail.tickets.new_requests import Opened, OpenRequest, open_case
from nexusmail.tickets.operator_reads import mark_read
from nexusmail.tickets.operators import add_operator
from nexusmail.tickets.reply_tokens import make_token, reply_address
from nexusmail.tickets.reports import apply_report
from nexusmail.tickets.teams import after_rejection, claim_job, create_team

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
KEYS = [b"k" * 32]
LUCA, ION = "luca@firm.test", "ion@firm.test"
OPERATOR = "ops@firm.test"


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


def rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


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


def test_two_retries_of_one_quarantined_mail_have_one_effect(database: str,
                                                             settings: Settings) -> None:
    """`nexusmail quarantine retry` run for one mail on two daemons at once: the mail is
    processed once, and the other retry reports that result."""
    sender = "mario@rossi.test"
    mail = inbound(mail_bytes(sender=sender, subject="Caldaia", hop="relay1",
                              message_id="q1"), sender)
    kept = write(database, partial(quarantine, inbound=mail, reason="parse failed",
                                   now=NOW))
    retry = replace(mail, retry_of=kept.inbound_id)
    gate = RaceGate(database, pause_before="UPDATE inbound SET message_id")
    results = values(gate.run(applying(retry, settings), applying(retry, settings)))
    assert [r.outcome for r in results] == [MailOutcome.NEW_REQUEST] * 2
    assert rows(database, "SELECT count(*) FROM interventions") == [(1,)]


def test_two_requests_of_a_new_address_make_one_customer(database: str,
                                                         settings: Settings) -> None:
    """Two requests for an address nobody knows are opened at once on two daemons (by
    mail, or entered by operators): one customer with one contact is made, and both
    cases are theirs. (By mail the loop guard's count also orders them.)"""
    gate = RaceGate(database, pause_before="INSERT INTO customers")
    values(gate.run(opening("nuovo@bianchi.test", settings),
                    opening("nuovo@bianchi.test", settings)))
    assert rows(database, "SELECT count(*) FROM customers") == [(1,)]
    assert rows(database, "SELECT count(DISTINCT customer_id), count(*)"
                          " FROM interventions") == [(1, 2)]


def request_of(email: str) -> OpenRequest:
    return OpenRequest(customer_email=email, customer_name="", subject="Caldaia",
                       description="Non parte.", source=Source.EMAIL)


def opening(email: str, settings: Settings) -> partial[Opened]:
    return partial(open_case, request=request_of(email), now=NOW, settings=settings)


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


def write(url: str, fn: Any) -> Any:
    """One unit, committed, on its own connection (the set-up before a race)."""
    with connect(url) as conn, conn.transaction():
        return fn(WriteConnection(conn))


def staffed_case(url: str, settings: Settings, *, team: bool) -> dict[str, int]:
    """Case 1 for a customer, assigned to Luca and Ion as a team (or to Luca alone);
    each assignment's id by the member's address."""
    def unit(tx: Any) -> dict[str, int]:
        for email, name in ((LUCA, "Luca"), (ION, "Ion")):
            add_employee(tx, email=email, name=name, language="it", now=NOW)
        number = open_case(tx, request_of("mario@rossi.test"), now=NOW,
                           settings=settings).number
        if not team:
            return {LUCA: assign(tx, number, LUCA, now=NOW, settings=settings,
                                 reply_keys=KEYS)}
        create_team(tx, "Caldaie", [LUCA, ION], now=NOW)
        ids = assign_team(tx, number, "Caldaie", now=NOW, settings=settings, reply_keys=KEYS)
        return dict(zip(sorted([ION, LUCA]), ids, strict=True))
    return dict(write(url, unit))


def reply(member: str, assignment_id: int, body: str, *, written: str) -> InboundMail:
    """A member's answer to their assignment mail, through its signed Reply-To."""
    to = reply_address(SUPPORT, make_token(KEYS[0], assignment_id, 1, member))
    raw = (f"From: <{member}>\r\nTo: <{to}>\r\nSubject: Re: [#1] Caldaia\r\n"
           f"Message-ID: <{member}.{written}@firm.test>\r\n"
           f"Date: Mon, 2 Mar 2026 {written}:00 +0000\r\n\r\n{body}\r\n").encode()
    prepared = prepare(raw, member, ["firm.test"], 100_000, 20, [to])
    return InboundMail(raw=raw, raw_sha256=prepared.raw_sha256,
                       content_sha256=prepared.content_sha256, mail=prepared.mail,
                       source="smtp", envelope_from=member, envelope_to=[to],
                       noise_reason=None, attachments=(), reading=prepared.reading)


def answering(mail: InboundMail, settings: Settings) -> partial[IngestResult]:
    return partial(apply_inbound, inbound=mail, now=NOW, settings=settings, reply_keys=KEYS)


def statuses(url: str) -> dict[str, str]:
    return dict(rows(url, "SELECT e.email, a.status FROM assignments a"  # type: ignore[arg-type]
                          " JOIN employees e ON e.id = a.employee_id"))


def test_two_team_confirmations_at_once_give_the_job_once(database: str,
                                                          settings: Settings) -> None:
    """Both members of a team confirm at once on two daemons: the UPDATE guarded on
    taken_by being empty lets one take the job; the other's assignment is `taken`."""
    ids = staffed_case(database, settings, team=True)
    gate = RaceGate(database, pause_before="UPDATE team_dispatches SET taken_by")
    results = values(gate.run(answering(reply(LUCA, ids[LUCA], "Confermo.",
                                              written="09:20"), settings),
                              answering(reply(ION, ids[ION], "Confermo.",
                                              written="09:21"), settings)))
    assert sorted(bool(r.acted) for r in results) == [False, True]
    assert sorted(statuses(database).values()) == ["confirmed", "taken"]


def test_the_last_two_team_rejections_at_once_alert_the_operators(
        database: str, tmp_path: Path) -> None:
    """Both members of a team reject at once on two daemons: the second to decide sees
    the first's rejection, so the operators are told that nobody will go."""
    settings = make_settings(tmp_path / "data", mail={"operator_addresses": [OPERATOR]})
    ids = staffed_case(database, settings, team=True)
    gate = RaceGate(database, pause_before="UPDATE team_dispatches SET all_rejected_at")
    values(gate.run(answering(reply(LUCA, ids[LUCA], "Rifiuto, sono in ferie.",
                                    written="09:20"), settings),
                    answering(reply(ION, ids[ION], "Rifiuto, non posso.",
                                    written="09:21"), settings)))
    assert sorted(statuses(database).values()) == ["rejected", "rejected"]
    assert rows(database, "SELECT count(*) FROM outbox WHERE recipient = 'ops@firm.test'"
                ) == [(1,)]


def test_all_rejected_is_seen_by_the_second_rejection_whatever_else_it_wrote(
        database: str, tmp_path: Path) -> None:
    """The check alone, without the case's row that a reply also updates (and which
    orders two replies on one case as a side effect): of two members' rejections
    written at once, exactly one finds the whole team has said no."""
    settings = make_settings(tmp_path / "data", mail={"operator_addresses": [OPERATOR]})
    ids = staffed_case(database, settings, team=True)

    def rejecting(assignment_id: int) -> Any:
        def unit(tx: Any) -> bool:
            tx.execute("UPDATE assignments SET status = ? WHERE id = ?",
                       (AssignmentStatus.REJECTED, assignment_id))
            return after_rejection(tx, assignment_id, now=NOW, settings=settings,
                                   case_context=assignment_context)
        return unit

    gate = RaceGate(database, pause_before="UPDATE team_dispatches SET all_rejected_at")
    told = values(gate.run(rejecting(ids[LUCA]), rejecting(ids[ION])))
    assert sorted(told) == [False, True]


def test_a_colleague_who_declined_meanwhile_is_not_released(database: str,
                                                           settings: Settings) -> None:
    """Luca takes the team's job while Ion's rejection lands on another daemon after
    Luca's writer read Ion as still open: Ion's `rejected` stands, and he gets no
    notice that the job he declined was taken."""
    ids = staffed_case(database, settings, team=True)

    def declining(tx: Any) -> None:
        tx.execute("UPDATE assignments SET status = ? WHERE id = ?",
                   (AssignmentStatus.REJECTED, ids[ION]))

    taking = partial(claim_job, assignment_id=ids[LUCA], now=NOW, settings=settings,
                     case_context=assignment_context)
    gate = RaceGate(database, pause_before="UPDATE assignments SET status", ordered=True)
    _, colleague = values(gate.run(declining, taking))
    assert colleague == ""
    assert statuses(database)[ION] == "rejected"
    assert rows(database, "SELECT count(*) FROM outbox WHERE recipient = 'ion@firm.test'"
                " AND kind = 'taken_notice'") == [(0,)]


def test_two_operators_applying_one_kept_reply_apply_it_once(database: str,
                                                             settings: Settings) -> None:
    """Luca's "yes" was kept (it names the case only by its tag); two operators apply it
    by hand at once on two daemons: it is applied once, the other is told so."""
    staffed_case(database, settings, team=False)
    raw = (f"From: <{LUCA}>\r\nTo: <{SUPPORT}>\r\nSubject: Re: [#1] Caldaia\r\n"
           "Message-ID: <tag-only@firm.test>\r\nDate: Mon, 2 Mar 2026 09:20:00 +0000"
           "\r\n\r\nConfermo.\r\n").encode()
    kept = write(database, applying(inbound(raw, LUCA), settings))
    assert kept.acted is False
    [(message_id,)] = rows(database, "SELECT id FROM messages WHERE kind = 'technician_reply'")
    gate = RaceGate(database, pause_before="UPDATE assignments SET status")
    outcomes = gate.run(
        partial(apply_reply_as_operator, message_id=message_id, operator="anna",
                now=NOW, settings=settings),
        partial(apply_reply_as_operator, message_id=message_id, operator="bruno",
                now=NOW, settings=settings))
    assert sorted(type(o.error).__name__ for o in outcomes) == ["Conflict", "NoneType"]
    assert statuses(database) == {LUCA: "confirmed"}
    assert rows(database, "SELECT count(*) FROM outbox WHERE kind = 'decision_echo'") == [(1,)]


def test_an_older_answer_landing_second_does_not_undo_a_newer_one(
        database: str, settings: Settings) -> None:
    """Luca's "no" (written 09:25) and his earlier "yes" (09:20) reach two daemons at
    once: whichever is ruled first, the second is ruled on the first's decision, so the
    newer "no" stands, as with one daemon. (Without that, the "yes" ruled on a stale
    read and written last would confirm.)"""
    ids = staffed_case(database, settings, team=False)
    # Before the first write the two share (the case's thread): both have read.
    gate = RaceGate(database, pause_before="INSERT INTO messages", ordered=True)
    refused, _ = values(gate.run(
        answering(reply(LUCA, ids[LUCA], "Rifiuto, non posso.", written="09:25"), settings),
        answering(reply(LUCA, ids[LUCA], "Confermo.", written="09:20"), settings)))
    assert refused.acted
    assert statuses(database) == {LUCA: "rejected"}


def closed_case(url: str, settings: Settings) -> None:
    """Case 1, Mario's, opened and closed."""
    def unit(tx: Any) -> None:
        open_case(tx, request_of("mario@rossi.test"), now=NOW, settings=settings)
        close_intervention(tx, 1, now=NOW, author="ops")
    write(url, unit)


def status_entries(url: str, status: str) -> int:
    found = rows(url, "SELECT count(*) FROM messages WHERE kind = 'status_change'"
                      " AND extra LIKE %s", (f'%"status": "{status}"%',))
    return int(found[0][0])


def test_two_follow_ups_to_a_closed_case_reopen_it_once(database: str,
                                                        settings: Settings) -> None:
    """Mario writes twice about his closed case and the mails reach two daemons at
    once: the case is reopened once, with one entry, and both mails join it (neither
    fails on finding it reopened)."""
    closed_case(database, settings)
    sender = "mario@rossi.test"
    again = [inbound(mail_bytes(sender=sender, subject=f"Re: [#1] Caldaia {n}", hop="r",
                                message_id=f"f{n}"), sender) for n in (1, 2)]
    gate = RaceGate(database, pause_before="UPDATE interventions SET status")
    results = values(gate.run(applying(again[0], settings), applying(again[1], settings)))
    assert [r.outcome for r in results] == [MailOutcome.FOLLOW_UP] * 2
    assert rows(database, "SELECT status FROM interventions") == [("open",)]
    assert status_entries(database, "open") == 1


def test_two_operators_closing_at_once_close_once(database: str, settings: Settings) -> None:
    """Two operators close the same case on two daemons' pages at once: one closing is
    written, the other is told the case is already closed."""
    write(database, lambda tx: open_case(tx, request_of("mario@rossi.test"), now=NOW,
                                         settings=settings))
    gate = RaceGate(database, pause_before="UPDATE interventions SET status")
    outcomes = gate.run(partial(close_intervention, number=1, now=NOW, author="anna"),
                        partial(close_intervention, number=1, now=NOW, author="bruno"))
    assert sorted(type(o.error).__name__ for o in outcomes) == ["Conflict", "NoneType"]
    assert status_entries(database, "closed") == 1


def test_an_older_look_landing_last_does_not_mark_a_case_unread(
        database: str, settings: Settings) -> None:
    """An operator's two looks at a case are written at once by two daemons, the later
    look first: the case's read time stays the later one."""
    def unit(tx: Any) -> int:
        open_case(tx, request_of("mario@rossi.test"), now=NOW, settings=settings)
        return add_operator(tx, email="anna@firm.test", name="Anna", password_hash="x",
                            now=NOW)
    operator_id = write(database, unit)
    later = NOW + timedelta(minutes=5)
    gate = RaceGate(database, pause_before="INSERT INTO operator_reads", ordered=True)
    values(gate.run(partial(mark_read, operator_id=operator_id, number=1, now=later),
                    partial(mark_read, operator_id=operator_id, number=1, now=NOW)))
    assert rows(database, "SELECT read_at FROM operator_reads") == [(iso(later),)]


def test_the_last_two_done_reports_at_once_resolve_the_case(database: str,
                                                            settings: Settings) -> None:
    """Luca and Ion, both confirmed on one case, report it done at once on two daemons:
    the second to count sees the first's report, so the case is resolved (once)."""
    ids = staffed_case(database, settings, team=False)

    def second_technician(tx: Any) -> int:
        assignment_id = assign(tx, 1, ION, now=NOW, settings=settings, reply_keys=KEYS)
        tx.execute("UPDATE assignments SET status = 'confirmed'")
        return assignment_id
    ids[ION] = write(database, second_technician)
    [(message_row,)] = rows(database, "SELECT min(id) FROM messages")

    def reporting(member: str) -> partial[None]:
        return partial(apply_report, number=1, assignment_id=ids[member],
                       employee={"email": member, "name": member, "language": "it"},
                       reading=ReplyReading(Verdict.DONE, "", "Fatto."),
                       message_row=message_row, reply_message_id=None, written_at=NOW,
                       now=NOW, settings=settings)

    gate = RaceGate(database, pause_before="UPDATE interventions SET status")
    values(gate.run(reporting(LUCA), reporting(ION)))
    assert rows(database, "SELECT status FROM interventions") == [("resolved",)]
    assert status_entries(database, "resolved") == 1


def test_one_domain_given_to_two_customers_at_once_goes_to_one(database: str) -> None:
    """Two operators give rossi.it to two different customers at once on two daemons:
    one customer gets it, the other is refused with a Conflict naming the holder."""
    def unit(tx: Any) -> list[int]:
        return [create_customer(tx, {"name": name}, now=NOW) for name in ("Rossi", "Rossi2")]
    first, second = write(database, unit)
    gate = RaceGate(database, pause_before="DELETE FROM customer_domains")
    outcomes = gate.run(partial(set_domains, customer_id=first, domains=["rossi.it"]),
                        partial(set_domains, customer_id=second, domains=["rossi.it"]))
    assert sorted(type(o.error).__name__ for o in outcomes) == ["Conflict", "NoneType"]
    assert rows(database, "SELECT count(*) FROM customer_domains") == [(1,)]


def test_one_request_type_code_added_twice_at_once_is_added_once(database: str) -> None:
    """Two operators add the request type `caldaia` at once on two daemons: one adds
    it, the other is refused with a Conflict (not a database error)."""
    gate = RaceGate(database, pause_before="INSERT INTO request_types")
    outcomes = gate.run(partial(create_request_type, values={"code": "caldaia"}),
                        partial(create_request_type, values={"code": "caldaia"}))
    assert sorted(type(o.error).__name__ for o in outcomes) == ["Conflict", "NoneType"]
