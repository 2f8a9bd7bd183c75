"""Backscatter and mail loops over real sockets: the acknowledgement budgets, and the
loop guard muting a robot that keeps opening cases (alert, admin page, /metrics,
restart, unmute). Nothing is ever lost: every mail keeps its inbound row and bytes."""

from __future__ import annotations

import asyncio
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_harness import add_operator, csrf_of, logged_in
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon
from postgres_server import PostgresCluster
from prometheus_client.parser import text_string_to_metric_families
from smtp_sink import Captured, CaptureHandler

from nexusmail.config import Settings

DISPATCH = "dispatch@firm.test"
ROBOT = "robot@robot.example"


def mail(sender: str, subject: str, *, name: str = "Someone",
         body: str = "Please call me back.") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@{sender.rpartition('@')[2]}>"
    msg.set_content(body)
    return msg.as_bytes()


async def metric(daemon: Daemon, name: str, **labels: str) -> float | None:
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"{daemon.web_url}/metrics")
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


async def nothing_lost(daemon: Daemon, sent: int) -> None:
    """Every mail sent has its inbound row and its raw bytes."""
    [(rows, with_bytes)] = await daemon.query(
        "SELECT count(*), count(r.sha256) FROM inbound i"
        " LEFT JOIN raw_messages r ON r.sha256 = i.raw_sha256")
    assert (rows, with_bytes) == (sent, sent)


async def test_thirty_forged_senders_of_one_domain_get_the_domain_budget(
    tmp_path: Path, relay: Controller, sink: CaptureHandler
) -> None:
    """Thirty mails with forged From: addresses of one domain open thirty cases, but
    only [mail] max_acks_per_hour_per_domain acknowledgements go out; the rest are
    skipped, counted in /metrics, and another domain is still answered."""
    settings = make_settings(tmp_path / "d", relay_port=relay.port,
                             mail={"max_acks_per_hour_per_domain": 4})
    async with running_daemon(settings) as daemon:
        for i in range(30):
            raw = mail(f"victim{i}@victim.example", f"Cheap pills {i} www.spam.example",
                       name="Buy now at spam.example")
            assert (await daemon.send(raw, sender=f"victim{i}@victim.example"))[0] == 250
        assert (await daemon.send(mail("ana@customer.example", "Boiler")))[0] == 250
        acks = await sink.wait_for_async(5)
        await asyncio.sleep(0.6)
        assert len(sink.messages) == 5
        domains = sorted(m.rcpt_tos[0].rpartition("@")[2] for m in sink.messages)
        assert domains == ["customer.example"] + ["victim.example"] * 4
        assert all("spam.example" not in str(m.message()["Subject"]) for m in acks)
        assert await daemon.query("SELECT count(*) FROM interventions") == [(31,)]
        await nothing_lost(daemon, 31)
        assert await metric(daemon, "nexusmail_acks_skipped_total",
                            reason="domain_budget") == 26.0


async def test_the_total_budget_and_plus_addresses_are_counted_as_one(
    tmp_path: Path, relay: Controller, sink: CaptureHandler
) -> None:
    """bob+1@ and BOB+2@ count as bob@ against the per-address budget; across domains,
    [mail] max_acks_per_hour_total caps the answers in all; every case is opened."""
    settings = make_settings(tmp_path / "d", relay_port=relay.port,
                             mail={"max_acks_per_hour": 2, "max_acks_per_hour_total": 4})
    async with running_daemon(settings) as daemon:
        for i, sender in enumerate(["bob+1@a.example", "BOB+2@A.example", "bob+3@a.example",
                                    "eve@b.example", "joe@c.example", "kim@d.example"]):
            assert (await daemon.send(mail(sender, f"Request {i}")))[0] == 250
        await sink.wait_for_async(4)
        await asyncio.sleep(0.6)
        assert sorted(m.rcpt_tos[0].lower() for m in sink.messages) == [
            "bob+1@a.example", "bob+2@a.example", "eve@b.example", "joe@c.example"]
        assert await daemon.query("SELECT count(*) FROM interventions") == [(6,)]
        assert await metric(daemon, "nexusmail_acks_skipped_total",
                            reason="address_budget") == 1.0
        assert await metric(daemon, "nexusmail_acks_skipped_total",
                            reason="total_budget") == 1.0


async def run_robot(daemon: Daemon, sink: CaptureHandler, *, first: int = 0,
                    max_mails: int = 30) -> int:
    """A robot that answers every acknowledgement it gets, from a new plus-address each
    time and without In-Reply-To (so each answer reads as a new request); it stops when
    no acknowledgement comes. Returns how many mails it sent."""
    answered: set[str] = set()
    sent = 0
    raw = mail(f"robot+{first}@robot.example", "Hello", name="Auto Responder")
    while sent < max_mails:
        assert (await daemon.send(raw, sender="bounces@robot.example"))[0] == 250
        sent += 1
        try:
            ack = await _next_ack(sink, answered)
        except TimeoutError:
            return sent
        answered.add(ack.message_id)
        raw = mail(f"robot+{first + sent}@robot.example", f"Re: {ack.message()['Subject']}",
                   name="Auto Responder", body="Thank you, your message was received.")
    return sent


async def _next_ack(sink: CaptureHandler, answered: set[str]) -> Captured:
    async with asyncio.timeout(2.0):
        while True:
            for captured in sink.messages:
                if (captured.rcpt_tos[0].startswith("robot+")
                        and captured.message_id not in answered):
                    return captured
            await asyncio.sleep(0.05)


def robot_settings(tmp_path: Path, relay: Controller, **storage: Any) -> Settings:
    return make_settings(tmp_path / "d", relay_port=relay.port, storage=storage,
                         mail={"operator_addresses": [DISPATCH], "mute_after_new_cases": 5})


async def test_a_robot_on_plus_addresses_is_muted_after_five_cases(
    tmp_path: Path, relay: Controller, sink: CaptureHandler
) -> None:
    """A robot answering every acknowledgement from a new plus-address opens five cases,
    then is muted: its sixth mail is held, unanswered, and the loop stops; the operators
    get one alert, the page lists the mute (in the operator's language), /metrics counts
    it. The mute survives a restart; after an operator unmutes it (a CSRF-checked POST)
    its next mail opens a case again. Every mail is kept."""
    settings = robot_settings(tmp_path, relay)
    async with running_daemon(settings) as daemon:
        sent = await run_robot(daemon, sink)
        assert sent == 6, "five cases acknowledged, the sixth answer held: loop over"
        for i in range(3):  # the robot keeps writing anyway
            assert (await daemon.send(mail(f"Robot+x{i}@Robot.example", f"Again {i}")))[0] == 250
        sent += 3
        assert await daemon.query("SELECT count(*) FROM interventions") == [(5,)]
        assert await daemon.query("SELECT outcome, count(*) FROM inbound GROUP BY outcome"
                                  " ORDER BY outcome") == [("held", 4), ("new_request", 5)]
        await nothing_lost(daemon, sent)
        alerts = [m for m in sink.messages if m.rcpt_tos == [DISPATCH]]
        assert len(alerts) == 1
        assert ROBOT in str(alerts[0].message()["Subject"])
        assert await metric(daemon, "nexusmail_muted_peers") == 1.0
        assert await metric(daemon, "nexusmail_peer_guard_held_total") == 4.0
        await add_operator(daemon, "anna@firm.test")
        async with logged_in(daemon, "anna@firm.test") as client:
            page = (await client.get("/")).text
            italian = (await client.get("/", headers={"Accept-Language": "it"})).text
        assert "Muted senders" in page
        assert ROBOT in page
        assert "4 held" in page
        assert "4 trattenuti" in italian, "the banner speaks the operator's language"

    async with running_daemon(settings) as daemon:  # a restart keeps the mute
        assert (await daemon.send(mail("robot+later@robot.example", "Once more")))[0] == 250
        sent += 1
        assert await daemon.query("SELECT count(*) FROM interventions") == [(5,)]
        assert await metric(daemon, "nexusmail_muted_peers") == 1.0
        async with logged_in(daemon, "anna@firm.test") as client:
            token = csrf_of((await client.get("/")).text)
            forged = await client.post("/muted-peers/unmute",
                                       data={"scope": "address", "peer": ROBOT})
            assert forged.status_code == 403
            assert await metric(daemon, "nexusmail_muted_peers") == 1.0
            lifted = await client.post("/muted-peers/unmute", data={
                "csrf_token": token, "scope": "address", "peer": ROBOT})
            assert lifted.status_code == 303
            page = (await client.get("/")).text
        assert "Muted senders" not in page
        assert "is unmuted" in page
        assert await metric(daemon, "nexusmail_muted_peers") == 0.0
        assert (await daemon.send(mail("robot+new@robot.example", "After unmute")))[0] == 250
        sent += 1
        assert await daemon.query("SELECT count(*) FROM interventions") == [(6,)]
        await nothing_lost(daemon, sent)
        await asyncio.sleep(0.5)
        assert len([m for m in sink.messages if m.rcpt_tos == [DISPATCH]]) == 1


async def test_a_domain_rotating_local_parts_is_muted(
    tmp_path: Path, relay: Controller, sink: CaptureHandler
) -> None:
    """A robot that changes its whole local part each time is muted by its domain
    at [mail] mute_domain_after_new_cases; other domains are untouched."""
    settings = make_settings(tmp_path / "d", relay_port=relay.port,
                             mail={"mute_domain_after_new_cases": 3})
    async with running_daemon(settings) as daemon:
        for i in range(5):
            assert (await daemon.send(mail(f"r{i}x@loop.example", f"Case {i}")))[0] == 250
        assert (await daemon.send(mail("ana@customer.example", "Boiler")))[0] == 250
        assert await daemon.query(
            "SELECT outcome, count(*) FROM inbound GROUP BY outcome ORDER BY outcome") == [
            ("held", 2), ("new_request", 4)]
        assert await daemon.query("SELECT kind, peer, held FROM muted_peers") == [
            ("domain", "loop.example", 2)]


async def test_the_loop_guard_on_postgresql(
    tmp_path: Path, relay: Controller, sink: CaptureHandler,
    postgres_cluster: PostgresCluster
) -> None:
    """The same robot against PostgreSQL: muted after five cases, one alert, held
    mails kept, the gauge in /metrics."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    async with running_daemon(robot_settings(tmp_path, relay, database_url=url)) as daemon:
        sent = await run_robot(daemon, sink)
        assert sent == 6
        assert await daemon.query("SELECT count(*) FROM interventions") == [(5,)]
        await nothing_lost(daemon, sent)
        assert len([m for m in sink.messages if m.rcpt_tos == [DISPATCH]]) == 1
        assert await metric(daemon, "nexusmail_muted_peers") == 1.0


@pytest.mark.parametrize("scope", ["address", "nonsense"])
async def test_unmuting_what_is_not_muted_changes_nothing(
    tmp_path: Path, relay: Controller, scope: str
) -> None:
    """An unmute for a sender that is not muted, or a made-up scope, is answered
    plainly and mutes or unmutes nothing."""
    async with running_daemon(make_settings(tmp_path / "d", relay_port=relay.port)) as daemon:
        await add_operator(daemon, "anna@firm.test")
        async with logged_in(daemon, "anna@firm.test") as client:
            token = csrf_of((await client.get("/")).text)
            reply = await client.post("/muted-peers/unmute", data={
                "csrf_token": token, "scope": scope, "peer": ROBOT})
        assert reply.status_code == (303 if scope == "address" else 422)
        assert await daemon.query("SELECT count(*) FROM muted_peers") == [(0,)]


async def test_unmute_and_let_in_lets_the_held_mails_in(
    tmp_path: Path, relay: Controller, sink: CaptureHandler
) -> None:
    """A robot muted by the guard with two held mails: "Unmute and let held mails in"
    lifts the mute and runs both through ingest, each now a case, the flash counting
    them (in Italian for an Italian operator); the page offers it only while mails are
    held."""
    async with running_daemon(robot_settings(tmp_path, relay)) as daemon:
        sent = await run_robot(daemon, sink)
        assert (await daemon.send(mail("Robot+x0@Robot.example", "Again")))[0] == 250
        sent += 1
        assert await daemon.query("SELECT count(*) FROM inbound WHERE outcome = 'held'"
                                  ) == [(2,)]
        await add_operator(daemon, "anna@firm.test")
        async with logged_in(daemon, "anna@firm.test") as client:
            page = (await client.get("/", headers={"Accept-Language": "it"})).text
            assert 'action="/muted-peers/let-in"' in page
            let_in = await client.post("/muted-peers/let-in", headers={
                "Accept-Language": "it"}, data={"csrf_token": csrf_of(page),
                                                "scope": "address", "peer": ROBOT})
            assert let_in.status_code == 303
            after = (await client.get("/", headers={"Accept-Language": "it"})).text
        assert "2 messaggi trattenuti fatti entrare" in after
        assert await daemon.query("SELECT outcome, count(*) FROM inbound GROUP BY outcome"
                                  " ORDER BY outcome") == [("new_request", 7)]
        assert await daemon.query("SELECT count(*) FROM interventions") == [(7,)]
        assert await metric(daemon, "nexusmail_muted_peers") == 0.0
        await nothing_lost(daemon, sent)
