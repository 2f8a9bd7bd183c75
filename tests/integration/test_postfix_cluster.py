"""The README's "Running several daemons" transport line, with a real Postfix.

A throwaway Postfix delivers the support domain by LMTP to a list of next hops, as the
README writes it; two daemons share one PostgreSQL database. With the first daemon
down, Postfix hands the mail to the second; with both up, mail lands in the one
database once, whichever daemon took it."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import aiosmtplib
import pytest
from daemon_harness import SUPPORT, make_settings, running_daemon
from polling import eventually
from postfix_relay import PostfixRelay, Recipe, free_port
from postgres_server import PostgresCluster
from test_postfix_lmtp import customer_mail, readme_postfix_recipe

from nexusmail.config import Settings

pytestmark = pytest.mark.skipif(
    shutil.which("postfix") is None or os.geteuid() != 0,
    reason="needs the Debian postfix package and root (make system-deps)")

README = Path(__file__).resolve().parents[2] / "README.md"
WAIT_S = 20.0
REPLY_KEY = "0123456789abcdef" * 4  # the same on every daemon, as the README asks


def readme_cluster_transport() -> str:
    """The transport table of the README's "Running several daemons" section."""
    section = README.read_text(encoding="utf-8").split("## Running several daemons", 1)[1]
    section = section.split("\n## ", 1)[0]
    block = re.search(r"# /etc/postfix/transport\n(.*?)```", section, re.DOTALL)
    assert block is not None, "no transport table in the README's cluster section"
    return block.group(1).strip() + "\n"


async def test_postfix_fails_over_between_daemons_as_the_readme_says(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """The README's next-hop list, its addresses swapped for two loopback ports (the
    third hop left pointing nowhere): the first daemon down, mail reaches the second;
    both up, each mail is stored once in the shared database."""
    transport = readme_cluster_transport()
    hops = re.findall(r"\[([\d.]+)\]:(\d+)", transport)
    assert len(hops) >= 2
    ports = [free_port(), free_port(), free_port()]
    for (address, port), mine in zip(hops, ports, strict=False):
        transport = transport.replace(f"[{address}]:{port}", f"[127.0.0.1]:{mine}")
    readme_recipe, config = readme_postfix_recipe()
    domain = SUPPORT.rpartition("@")[2]
    readme_domain = config["mail"]["support_addresses"][0].rpartition("@")[2]
    recipe = Recipe(
        main_cf=readme_recipe.main_cf.replace(readme_domain, domain),
        tables={**{name: text.replace(readme_domain, domain)
                   for name, text in readme_recipe.tables.items()},
                "transport": transport.replace(readme_domain, domain)})
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    postfix = PostfixRelay(ports[0], recipe=recipe).start()

    def daemon_settings(name: str, port: int) -> Settings:
        return make_settings(tmp_path / name, storage={"database_url": url},
                             smtp={"port": port, "protocol": "lmtp"},
                             replies={"secret_keys": [REPLY_KEY]})

    async def send(message_id: str) -> None:
        await aiosmtplib.send(customer_mail(message_id), sender="ana@example.it",
                              recipients=[SUPPORT], hostname="127.0.0.1",
                              port=postfix.smtp_port, timeout=10)

    try:
        async with running_daemon(daemon_settings("second", ports[1])) as second:
            await send("cluster-1@example.it")

            async def stored(message_id: str) -> bool:
                return bool(await second.query(
                    "SELECT 1 FROM inbound WHERE message_id = ?", message_id))

            await eventually(lambda: stored("cluster-1@example.it"),
                             "the mail through the second hop", timeout_s=WAIT_S)
            assert re.search(rf"relay=127\.0\.0\.1\[127\.0\.0\.1\]:{ports[1]}.*status=sent",
                             postfix.log_text())
            async with running_daemon(daemon_settings("first", ports[0])):
                for n in range(2, 6):
                    await send(f"cluster-{n}@example.it")
                for n in range(2, 6):
                    await eventually(lambda n=n: stored(f"cluster-{n}@example.it"),
                                     "every mail stored", timeout_s=WAIT_S)
            rows = await second.query(
                "SELECT message_id, COUNT(*) FROM inbound GROUP BY message_id")
            assert sorted(rows) == [(f"cluster-{n}@example.it", 1) for n in range(1, 6)]
            numbers = await second.query("SELECT number FROM interventions ORDER BY number")
            assert numbers == [(n,) for n in range(1, 6)]
        assert "bounced" not in postfix.log_text()
    finally:
        postfix.stop()
