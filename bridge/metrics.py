"""``GET /metrics``: what operators watch, in Prometheus' text format (issue
"Scale"), with the official client library (prometheus-client, which Synapse
uses for its own metrics).

- ``buergerchat_case_events_total{kind}``: every domain event of the case
  lifecycle (opened, queued, routed, offline, claimed, transferred, closed,
  purged, and the message events) since the process started.
- ``buergerchat_cases{state}``: cases per state now (read at each scrape).
- ``buergerchat_delivery_seconds{direction}``: ``citizen_to_staff`` from the
  citizen's request to its message in the Synapse room, ``staff_to_citizen``
  from the staff message's timestamp on Synapse to the citizen's timeline.
- ``buergerchat_queue_length{department}``: chats waiting in each queue now;
  ``buergerchat_queue_wait_seconds{department}``: how long a queued chat waited
  until it was put through (from its opening).
- ``buergerchat_held_polls``: long-polls (widgets waiting for news) held now.
- ``buergerchat_outcomes_total{part,outcome}``: how things ended, counted as
  they happen: ``scan`` (``clean``, ``infected``, ``refused``: too large for
  clamd, ``held``: no verdict, clamd away, tried again later) and ``mail``
  (``sent``, ``retried``: a temporary failure, ``parked``: given up, the admins
  were told).
- ``buergerchat_part_up{part}`` and ``buergerchat_part{part,field}``: each part of
  ``/healthz`` (database, homeserver, appservice inbox with ``lag_seconds``, job
  queue with its lag and counts, mail outbox with queued and parked mails,
  clamd with held files) as 1/0 and its numbers.

The answer reveals no personal data, but the bridge's port faces citizens:
only addresses in ``metrics.allow`` (loopback by default) may read it.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select

from .clock import as_utc
from .db.models import Case
from .errors import Forbidden
from .lifecycle import DomainEvent, Kind, State
from .yamlconf import Section

if TYPE_CHECKING:
    from .db.store import Store
    from .health import Health
    from .lifecycle import Lifecycle
    from .limits import Limits

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
#: From a few milliseconds (a message on an idle machine) to a minute (Synapse
#: away, the delivery retried).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: What ``buergerchat_outcomes_total`` counts, per part (all shown from 0).
OUTCOMES: dict[str, tuple[str, ...]] = {
    "scan": ("clean", "infected", "refused", "held"),
    "mail": ("sent", "retried", "parked"),
}


def read_metrics(section: Section) -> tuple[Network, ...]:
    """``metrics.allow``: the networks that may read /metrics."""
    allowed: list[Network] = []
    if not section.has("allow"):
        section.finish()
        return LOOPBACK
    for item in section.items("allow"):
        try:
            allowed.append(ipaddress.ip_network(str(item.value), strict=False))
        except ValueError:
            item.error(f"'{item.value}' is not an address or network (CIDR)")
    section.finish()
    return tuple(allowed)


class Metrics:
    def __init__(
        self,
        store: Store,
        health: Health,
        limits: Limits,
        departments: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        #: The department ids now (the rules may be reloaded).
        self.departments = departments
        self.store = store
        self.health = health
        self.limits = limits
        self.registry = CollectorRegistry()
        self._case_metrics(self.registry)
        self._part_metrics(self.registry)
        for kind in Kind:
            self.case_events.labels(kind.value)  # every kind shown, also at 0
        for part, outcomes in OUTCOMES.items():
            for outcome in outcomes:
                self.outcomes.labels(part, outcome)

    def _case_metrics(self, r: CollectorRegistry) -> None:
        """What the cases go through: events, states, delivery, queues."""
        self.case_events = Counter(
            "buergerchat_case_events",
            "Domain events of the case lifecycle since start, by kind",
            ["kind"],
            registry=r,
        )
        self.delivery = Histogram(
            "buergerchat_delivery_seconds",
            "Time a message takes through the bridge, by direction",
            ["direction"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cases = Gauge(
            "buergerchat_cases", "Cases per state now", ["state"], registry=r
        )
        self.queue = Gauge(
            "buergerchat_queue_length",
            "Chats waiting in a department's queue now",
            ["department"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "buergerchat_queue_wait_seconds",
            "How long a queued chat waited until it was put through",
            ["department"],
            buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
            registry=r,
        )

    def _part_metrics(self, r: CollectorRegistry) -> None:
        """The parts: polls held, each /healthz part, scan and mail outcomes."""
        self.polls = Gauge(
            "buergerchat_held_polls", "Long-polls held by this process now", registry=r
        )
        self.up = Gauge(
            "buergerchat_part_up",
            "Each /healthz part: 1 works, 0 down",
            ["part"],
            registry=r,
        )
        self.parts = Gauge(
            "buergerchat_part",
            "The numbers each /healthz part reports (lag, queued, parked…)",
            ["part", "field"],
            registry=r,
        )
        self.outcomes = Counter(
            "buergerchat_outcomes",
            "How scans and mails ended since start, by part and outcome",
            ["part", "outcome"],
            registry=r,
        )

    def count(self, part: str, outcome: str) -> None:
        """One ``outcome`` of ``part`` (see OUTCOMES)."""
        if outcome not in OUTCOMES.get(part, ()):
            raise ValueError(f"unknown outcome {part}/{outcome}")
        self.outcomes.labels(part, outcome).inc()

    def watch(self, lifecycle: Lifecycle) -> None:
        """Count every domain event; time staff messages to the citizen."""
        for kind in Kind:
            lifecycle.subscribe(kind, self._on_event)

    async def _on_event(self, event: DomainEvent) -> None:
        self.case_events.labels(event.kind.value).inc()
        if event.kind is Kind.ROUTED and event.from_state is State.QUEUED:
            case = await self.store.get_case(event.case_id)
            if case is not None:
                waited = (as_utc(event.at) - as_utc(case.created_at)).total_seconds()
                self.queue_wait.labels(case.department).observe(max(0.0, waited))
        origin = event.data.get("origin_ts")
        if event.kind is Kind.STAFF_MESSAGE and isinstance(origin, int):
            waited = max(0.0, time.time() - origin / 1000)
            self.delivery.labels("staff_to_citizen").observe(waited)

    def citizen_message(self, seconds: float) -> None:
        self.delivery.labels("citizen_to_staff").observe(seconds)

    async def refresh(self) -> None:
        """What is read at each scrape: cases per state, polls, health parts."""
        async with self.store.engine.connect() as conn:
            rows = await conn.execute(
                select(Case.state, func.count()).group_by(Case.state)
            )
            counts = {str(state): int(n) for state, n in rows}
            queued = await conn.execute(
                select(Case.department, func.count())
                .where(Case.state == State.QUEUED.value)
                .group_by(Case.department)
            )
            waiting = {str(d): int(n) for d, n in queued}
        for department in self.departments():
            self.queue.labels(department).set(waiting.get(department, 0))
        for state in {*counts, *(s.value for s in State)}:
            self.cases.labels(state).set(counts.get(state, 0))
        self.polls.set(self.limits.held_polls())
        _, parts = await self.health.report()
        for part, report in parts.items():
            self.up.labels(part).set(1 if report.get("ok") else 0)
            for name, value in report.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self.parts.labels(part, name).set(value)

    def routes(self, allowed: tuple[Network, ...]) -> list[web.RouteDef]:
        async def page(request: web.Request) -> web.Response:
            if not _allowed(request.remote or "", allowed):
                raise Forbidden(
                    "/metrics is for the operator's monitoring: add its address to "
                    "metrics.allow in buergerchat.yaml."
                )
            await self.refresh()
            return web.Response(
                body=generate_latest(self.registry),
                headers={"Content-Type": CONTENT_TYPE_LATEST},
            )

        return [web.get("/metrics", page)]


def _allowed(address: str, allowed: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in allowed)
