"""The whole fixture corpus through the real daemon over SMTP: nothing lost, noise silent."""

from __future__ import annotations

from pathlib import Path

from aiosmtpd.controller import Controller
from daemon_harness import make_settings, running_daemon
from mail_corpus import cases, load, own_domains


async def test_every_corpus_mail_is_kept_and_noise_opens_nothing(
        tmp_path: Path, relay: Controller) -> None:
    """Each of the corpus mails gets 250 and an inbound-log row; the noisy ones open no
    intervention and cause no mail; the others open or join one; none is quarantined."""
    support = [f"support@{domain}" for domain in own_domains()]
    settings = make_settings(tmp_path / "d", relay_port=relay.port,
                             mail={"support_addresses": support})
    rows = cases()
    async with running_daemon(settings) as daemon:
        for case in rows:
            code, message = await daemon.send(load(case.file), sender=case.from_addr or "x@y.z",
                                              recipients=[support[0]])
            assert code == 250, (case.file, message)
        outcomes = dict(await daemon.query(
            "SELECT subject, outcome FROM inbound ORDER BY id"))
        logged = await daemon.query("SELECT count(*) FROM inbound")
        quarantined = await daemon.query(
            "SELECT subject, reason FROM inbound WHERE outcome = 'quarantined'")
        noisy_ack = await daemon.query(
            "SELECT count(*) FROM outbox o JOIN inbound i ON i.intervention_number ="
            " o.intervention_number WHERE i.outcome = 'noise'")
    assert quarantined == []
    assert noisy_ack == [(0,)]
    assert logged[0][0] == len({load(c.file) for c in rows})
    for case in rows:
        if case.noise and case.subject in outcomes:
            assert outcomes[case.subject] in ("noise", "duplicate"), case.file
