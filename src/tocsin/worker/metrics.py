"""The worker's Prometheus metrics. Counters and the lateness histogram count what this
process's worker did; the pending-timer gauge is read from the database at scrape time, so
every process (an API node with --no-worker too) reports the same backlog."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

TIMERS_FIRED = Counter(
    "tocsin_escalation_timers_fired",
    "Escalation timers fired by this process, by outcome (fired, or stale: the incident had "
    "moved on)",
    ["outcome"],
    registry=REGISTRY,
)
TIMER_LATENESS = Histogram(
    "tocsin_escalation_timer_lateness_seconds",
    "How long after its due time an escalation timer fired",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
CLAIM_ERRORS = Counter(
    "tocsin_worker_claim_errors",
    "Worker steps that raised (claiming or doing due work); the loop logged them and went on",
    ["step"],
    registry=REGISTRY,
)
FIRE_ERRORS = Counter(
    "tocsin_escalation_fire_errors",
    "Claimed escalation timers whose firing failed; they are retried after their lease",
    registry=REGISTRY,
)
TIMERS_PARKED_HERE = Counter(
    "tocsin_escalation_timers_parked_by_worker",
    "Escalation timers this process parked after they failed tocsin's timer_max_attempts times",
    registry=REGISTRY,
)
TIMERS_PARKED = Gauge(
    "tocsin_escalation_timers_parked",
    "Escalation timers parked after failing again and again (all workers), as of the last "
    "scrape: paging is stuck for their incidents until a person acts",
    registry=REGISTRY,
)
STEP_TIMEOUTS = Counter(
    "tocsin_worker_step_timeouts",
    "Worker steps cut off by the per-step timeout",
    ["step"],
    registry=REGISTRY,
)
TIMERS_PENDING = Gauge(
    "tocsin_escalation_timers_pending",
    "Escalation timers not yet fired or cancelled (all workers), as of the last scrape",
    registry=REGISTRY,
)
TIMERS_OVERDUE = Gauge(
    "tocsin_escalation_timers_overdue",
    "Pending escalation timers already past their due time, as of the last scrape",
    registry=REGISTRY,
)
