"""Postfix in front: a real Postfix delivers the support domain to the daemon over LMTP.

One Postfix per module (it takes ~2.5 s to start); each test runs its own daemon on
the LMTP port Postfix was configured with.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon
from polling import eventually
from postfix_relay import PostfixRelay, Recipe, free_port
from store_faults import writes_refused

from nexusmail.config import Settings

pytestmark = pytest.mark.skipif(
    shutil.which("postfix") is None or os.geteuid() != 0,
    reason="needs the Debian postfix package and root (make system-deps)")

DOMAIN = SUPPORT.rpartition("@")[2]
WAIT_S = 15.0
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def lmtp_port() -> int:
    """The port every test's daemon listens on with LMTP (Postfix's transport)."""
    return free_port()


@pytest.fixture(scope="module")
def postfix(lmtp_port: int) -> Iterator[PostfixRelay]:
    """A throwaway Postfix relaying the support domain to 127.0.0.1:lmtp_port."""
    relay = PostfixRelay(lmtp_port, domain=DOMAIN, recipients=(SUPPORT,)).start()
    try:
        yield relay
    finally:
        relay.stop()


def customer_mail(message_id: str, *, body: str = "The printer in room 2 is jammed.") -> bytes:
    return (f"From: Ana Rossi <ana@example.it>\r\nTo: {SUPPORT}\r\n"
            f"Subject: Printer jammed\r\nMessage-ID: <{message_id}>\r\n\r\n{body}\r\n").encode()


async def send_via_postfix(postfix: PostfixRelay, raw: bytes) -> None:
    await aiosmtplib.send(raw, sender="ana@example.it", recipients=[SUPPORT],
                          hostname="127.0.0.1", port=postfix.smtp_port, timeout=10)




async def inbound_for(daemon: Daemon, message_id: str) -> list[tuple[object, ...]]:
    return await daemon.query(
        "SELECT source, outcome, intervention_number FROM inbound WHERE message_id = ?",
        message_id)


async def test_postfix_delivers_to_the_daemon_over_lmtp(
    tmp_path: Path, postfix: PostfixRelay, lmtp_port: int, relay: Controller
) -> None:
    """Mail sent to Postfix reaches the daemon by LMTP and opens an intervention; plus
    addresses pass, unknown recipients are refused by Postfix at RCPT."""
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             smtp={"port": lmtp_port, "protocol": "lmtp"})
    async with running_daemon(settings) as daemon:
        await send_via_postfix(postfix, customer_mail("pf-1@example.it"))

        async def arrived() -> bool:
            return bool(await inbound_for(daemon, "pf-1@example.it"))

        await eventually(arrived, "the mail through Postfix", timeout_s=WAIT_S)
        assert await inbound_for(daemon, "pf-1@example.it") == [("lmtp", "new_request", 1)]
        subjects = await daemon.query("SELECT subject FROM interventions")
        assert subjects == [("Printer jammed",)]
        await relay.handler.wait_for_async(1)  # the acknowledgement left through the outbox
        plus = SUPPORT.replace("@", "+tok@")
        await aiosmtplib.send(customer_mail("pf-2@example.it"), sender="ana@example.it",
                              recipients=[plus], hostname="127.0.0.1", port=postfix.smtp_port)

        async def plus_arrived() -> bool:
            return bool(await inbound_for(daemon, "pf-2@example.it"))

        await eventually(plus_arrived, "the mail to a plus address", timeout_s=WAIT_S)
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await aiosmtplib.send(customer_mail("pf-3@example.it"), sender="ana@example.it",
                                  recipients=[f"nobody@{DOMAIN}"], hostname="127.0.0.1",
                                  port=postfix.smtp_port)
        assert refused.value.recipients[0].code == 550  # by Postfix, before any queueing
    await eventually(lambda: not postfix.queued_ids(), "an empty Postfix queue", timeout_s=WAIT_S)
    assert re.search(r"to=<support@firm\.test>.*status=sent \(250 2\.0\.0 Ok", postfix.log_text())


async def test_postfix_holds_and_retries_after_451(
    tmp_path: Path, postfix: PostfixRelay, lmtp_port: int, relay: Controller
) -> None:
    """When storage fails the daemon answers 451: Postfix keeps the mail queued and
    retries; once storage recovers the mail is stored exactly once."""
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             smtp={"port": lmtp_port, "protocol": "lmtp"})
    message_id = "pf-451@example.it"
    async with running_daemon(settings) as daemon:
        # A real SQLITE_FULL (the database may not grow by a single page), or a
        # read-only PostgreSQL session.
        async with writes_refused(daemon.running.store):
            await send_via_postfix(postfix, customer_mail(message_id, body="x" * 100_000))

            def deferred_twice() -> bool:
                return postfix.log_text().count(
                    "status=deferred (host 127.0.0.1[127.0.0.1] said: "
                    "451 4.3.0 Temporary storage failure") >= 2

            await eventually(deferred_twice, "two deferred LMTP attempts", timeout_s=WAIT_S)
            assert postfix.queued_ids()  # held by Postfix, not bounced
            assert await daemon.query("SELECT count(*) FROM inbound") == [(0,)]
            assert await daemon.query("SELECT count(*) FROM interventions") == [(0,)]

        async def stored() -> bool:
            return bool(await inbound_for(daemon, message_id))

        await eventually(stored, "the retried mail", timeout_s=WAIT_S)
        await eventually(lambda: not postfix.queued_ids(), "an empty Postfix queue",
                         timeout_s=WAIT_S)
        assert await inbound_for(daemon, message_id) == [("lmtp", "new_request", 1)]
        assert await daemon.query("SELECT count(*) FROM interventions") == [(1,)]
        assert "bounced" not in postfix.log_text()


def readme_postfix_recipe() -> tuple[Recipe, dict[str, Any]]:
    """The "Postfix in front" section of the README, as written: its Postfix block split
    into main.cf lines and lookup tables, and its TOML block parsed."""
    section = README.read_text(encoding="utf-8").split("## Postfix in front", 1)[1]
    section = section.split("\n## ", 1)[0]
    postfix_block, toml_block = re.findall(r"```[a-z]*\n(.*?)```", section, re.DOTALL)[:2]
    files: dict[str, str] = {}
    for chunk in re.split(r"^# /etc/postfix/", postfix_block, flags=re.MULTILINE)[1:]:
        heading, _, body = chunk.partition("\n")
        files[heading.split()[0]] = body.strip() + "\n"
    main_cf = files.pop("main.cf")
    return Recipe(main_cf=main_cf, tables=files), tomllib.loads(toml_block)


async def test_readme_postfix_recipe_as_written(tmp_path: Path, relay: Controller) -> None:
    """The README's Postfix and nexusmail snippets, used verbatim (only ports and
    directories of this machine swapped in): a customer's mail reaches the daemon, is
    not bounced, and the acknowledgement leaves through that same Postfix."""
    recipe, config = readme_postfix_recipe()
    readme_lmtp_port = config["smtp"]["port"]
    lmtp_port = free_port()
    recipe = Recipe(main_cf=recipe.main_cf, tables={
        name: content.replace(f"127.0.0.1:{readme_lmtp_port}", f"127.0.0.1:{lmtp_port}")
        for name, content in recipe.tables.items()})
    [support] = config["mail"]["support_addresses"]
    postfix = PostfixRelay(lmtp_port, recipe=recipe, relayhost_port=relay.port).start()
    try:
        config["smtp"]["port"] = lmtp_port
        config["outbound"]["port"] = postfix.smtp_port
        config["storage"] = {"data_dir": str(tmp_path / "data")}
        config["web"] = {"port": 0}
        config["ingest"] = {"parse_processes": 0}
        async with running_daemon(Settings.model_validate(config)) as daemon:
            raw = customer_mail("pf-readme@example.it").replace(SUPPORT.encode(),
                                                                support.encode())
            await aiosmtplib.send(raw, sender="ana@example.it", recipients=[support],
                                  hostname="127.0.0.1", port=postfix.smtp_port, timeout=10)

            async def arrived() -> bool:
                return bool(await inbound_for(daemon, "pf-readme@example.it"))

            await eventually(arrived, "the mail through the README's Postfix", timeout_s=WAIT_S)
            await relay.handler.wait_for_async(1)  # the acknowledgement, relayed by Postfix
            [ack] = relay.handler.messages
            assert ack.rcpt_tos == ["ana@example.it"]
        assert "bounced" not in postfix.log_text()
        assert re.search(r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent",
                         postfix.log_text())
        maildir = tmp_path / "data" / "outgoing"  # the Maildir used without [outbound]
        assert not maildir.exists() or not any(maildir.rglob("*/new/*"))
    finally:
        postfix.stop()
