"""Prometheus metrics: one registry per daemon, passed down.

No metric is a module global registered at import (nothing changes process-wide
state): `Metrics()` owns its own CollectorRegistry, the daemon builds one and hands
it to the parts that count, so two daemons in one process (the tests) never share a
count. A part given `metrics=None` counts nothing.

Counters are bumped where an outcome becomes final (after its commit). What the
store and the running parts know (outbox backlog, IMAP accounts, the scheduler's last
tick) is read at scrape time: the /metrics route awaits `refresh` (an aiosqlite read,
never blocking I/O on the loop) and then renders; the custom collector below only
replays that snapshot, since collectors are called synchronously.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from nexusmail import __version__

# Outcomes that are not an Outcome of a stored mail (tickets.models.Outcome).
TEMPORARY_FAILURE = "temporary_failure"   # nothing stored; SMTP answered 451
RECIPIENT_REFUSED = "recipient_refused"   # RCPT answered 550 (counted per recipient)

# Ingest takes milliseconds when the disk is healthy; the upper buckets show a
# group commit waiting on a slow fsync or a big mail parsed in another process.
INGEST_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Backlog:
    """The outbox's pending rows, as the store has them."""

    pending: int
    oldest_pending_age_s: float | None   # None: nothing pending


@dataclass(frozen=True)
class ScrapeState:
    """What is read fresh for each scrape (see Metrics.refresh)."""

    backlog: Backlog | None = None                       # None: the read failed
    imap: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    scheduler_last_tick: datetime | None = None
    muted_peers: int | None = None                       # None: the read failed
    # The daemons sharing the store, as the heartbeat last read them (service.heartbeat).
    cluster: Sequence[Mapping[str, Any]] = ()


class Metrics:
    """The daemon's metrics and the registry /metrics renders."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        Info("nexusmail", "The running nexusmail.", registry=r).info({"version": __version__})
        self.mails = Counter(
            "nexusmail_mails", "Inbound mails by source and outcome (new_request, follow_up,"
            " technician_reply, noise, unmatched, duplicate, quarantined, held,"
            " temporary_failure)"
            " and refused RCPT recipients (recipient_refused).",
            ["source", "outcome"], registry=r)
        self.ingest_seconds = Histogram(
            "nexusmail_ingest_duration_seconds",
            "From the mail's bytes received (SMTP DATA, IMAP fetch) to their commit.",
            ["source"], buckets=INGEST_BUCKETS_S, registry=r)
        self.outbox_sent = Counter("nexusmail_outbox_sent", "Outgoing mails the relay accepted.",
                                   registry=r)
        self.outbox_failed = Counter(
            "nexusmail_outbox_failed", "Outgoing mails given up on, by reason (refused,"
            " attempts, compose, row).", ["reason"], registry=r)
        self.outbox_retries = Counter("nexusmail_outbox_retries",
                                      "Sending attempts rescheduled after a temporary failure.",
                                      registry=r)
        self.assignment_replies = Counter(
            "nexusmail_assignment_replies", "Technicians' replies to assignments by verdict,"
            " and whether they acted on the assignment (acted=false: not its employee, or"
            " the intervention is closed).", ["verdict", "acted"], registry=r)
        self.acks_skipped = Counter(
            "nexusmail_acks_skipped", "Acknowledgements due but not sent, by reason"
            " (address_budget, domain_budget, total_budget, own_address); the case was"
            " opened all the same.", ["reason"], registry=r)
        self.peer_guard_held = Counter(
            "nexusmail_peer_guard_held", "Mails that would have opened a case, held"
            " because their sender (or its domain) is muted by the loop guard.", registry=r)
        self.scheduler_opened = Counter("nexusmail_scheduler_opened",
                                        "Interventions opened by service schedules.", registry=r)
        self.scheduler_late = Counter(
            "nexusmail_scheduler_late",
            "Of those, opened after their opening date (the daemon was down).", registry=r)
        self.scheduler_failed = Counter(
            "nexusmail_scheduler_failed",
            "Schedules whose opening failed in a tick (retried at the next).", registry=r)
        self._scrape = ScrapeState()
        r.register(_ScrapeCollector(self))

    # -- counted by the parts -----------------------------------------------------------

    def mail(self, source: str, outcome: str, *, seconds: float | None = None) -> None:
        """One inbound mail's fate; `seconds` from its bytes to its commit when stored."""
        self.mails.labels(source=source, outcome=str(outcome)).inc()
        if seconds is not None:
            self.ingest_seconds.labels(source=source).observe(max(0.0, seconds))

    def assignment_reply(self, verdict: str, *, acted: bool) -> None:
        self.assignment_replies.labels(verdict=str(verdict), acted=str(acted).lower()).inc()

    def ack_skipped(self, reason: str) -> None:
        self.acks_skipped.labels(reason=str(reason)).inc()

    def held_by_peer_guard(self) -> None:
        self.peer_guard_held.inc()

    def outbox_result(self, result: str) -> None:
        """`sent`, `retry`, or the reason a mail failed for good."""
        if result == "sent":
            self.outbox_sent.inc()
        elif result == "retry":
            self.outbox_retries.inc()
        else:
            self.outbox_failed.labels(reason=result).inc()

    def scheduler_ticked(self, *, opened: int, late: int, failed: int) -> None:
        self.scheduler_opened.inc(opened)
        self.scheduler_late.inc(late)
        self.scheduler_failed.inc(failed)

    # -- read at scrape time ------------------------------------------------------------

    def refresh(self, state: ScrapeState) -> None:
        """Replace what the next render shows of the store and the running parts."""
        self._scrape = state

    def render(self) -> bytes:
        """The Prometheus text exposition of everything in this registry."""
        return generate_latest(self.registry)


class _ScrapeCollector:
    """Replays the latest ScrapeState as metric families (collect() cannot await)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return self._families(ScrapeState(backlog=Backlog(0, None), muted_peers=0))

    def collect(self) -> Iterable[Metric]:
        return self._families(self._metrics._scrape)

    def _families(self, state: ScrapeState) -> list[Metric]:
        families: list[Metric] = []
        if state.backlog is not None:  # a failed read shows as missing, never as zero
            pending = GaugeMetricFamily("nexusmail_outbox_pending",
                                        "Outgoing mails waiting to be sent.")
            pending.add_metric([], state.backlog.pending)
            oldest = GaugeMetricFamily(
                "nexusmail_outbox_oldest_pending_age_seconds",
                "Age of the oldest outgoing mail still pending (0 when none is).")
            oldest.add_metric([], state.backlog.oldest_pending_age_s or 0.0)
            families += [pending, oldest]
        last_tick = GaugeMetricFamily(
            "nexusmail_scheduler_last_tick_timestamp_seconds",
            "When the scheduler last completed a tick (Unix time; 0: not yet).")
        tick = state.scheduler_last_tick
        last_tick.add_metric([], tick.timestamp() if tick is not None else 0.0)
        families.append(last_tick)
        if state.muted_peers is not None:
            muted = GaugeMetricFamily(
                "nexusmail_muted_peers", "Senders and domains the loop guard holds"
                " mail from now (they kept opening new cases); see the admin page.")
            muted.add_metric([], state.muted_peers)
            families.append(muted)
        # IMAP failures are already counted per account by its collector (AccountState);
        # exposing those counts keeps one source of truth instead of a second tally.
        errors = CounterMetricFamily(
            "nexusmail_imap_errors", "IMAP connection and login failures per account.",
            labels=["account", "kind"])
        connected = GaugeMetricFamily("nexusmail_imap_connected",
                                      "1 while the IMAP account is connected.",
                                      labels=["account"])
        for account, values in sorted(state.imap.items()):
            errors.add_metric([account, "login"], float(values.get("login_failures", 0)))
            errors.add_metric([account, "connection"],
                              float(values.get("connection_failures", 0)))
            connected.add_metric([account], 1.0 if values.get("connected") else 0.0)
        families += [errors, connected, *_cluster_families(state.cluster)]
        return families


def _cluster_families(daemons: Sequence[Mapping[str, Any]]) -> list[Metric]:
    count = GaugeMetricFamily("nexusmail_cluster_daemons",
                              "Daemons with a row in the workers table (this one included).")
    count.add_metric([], float(len(daemons)))
    last = GaugeMetricFamily(
        "nexusmail_cluster_last_heartbeat_timestamp_seconds",
        "Each daemon's last heartbeat (Unix time): one that stops moving has died.",
        labels=["daemon"])
    held = GaugeMetricFamily("nexusmail_cluster_outbox_held",
                             "Outgoing mails each daemon holds under a running lease.",
                             labels=["daemon"])
    folders = GaugeMetricFamily("nexusmail_cluster_imap_held",
                                "IMAP folders each daemon collects under its lease.",
                                labels=["daemon"])
    for daemon in daemons:
        seen = datetime.fromisoformat(str(daemon["last_heartbeat"]))
        holds = daemon.get("holds", {})
        last.add_metric([str(daemon["id"])], seen.timestamp())
        held.add_metric([str(daemon["id"])], float(holds.get("outbox", 0)))
        folders.add_metric([str(daemon["id"])], float(holds.get("imap", 0)))
    return [count, last, held, folders]
