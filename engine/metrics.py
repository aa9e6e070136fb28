"""Prometheus metrics of this process (``/metrics``); gauges of shared state are read at scrape time."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ACK_SECONDS = Histogram(
    "pipebot_ack_seconds",
    "From a chat request's arrival to its acknowledgement",
    ["platform"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
DECISIONS = Counter("pipebot_decisions_total", "Human commands that took effect", ["kind"])
OUTBOX_PENDING = Gauge("pipebot_outbox_pending", "Outbox rows not delivered yet (all replicas)")
OUTBOX_LAG = Gauge("pipebot_outbox_lag_seconds", "Age of the oldest outbox row not delivered yet")
DELIVERIES = Counter("pipebot_deliveries_total", "Outbox deliveries by this process, by result", ["result"])
WORK = Counter("pipebot_work_total", "Automated work attempts by this process", ["event"])
LEASE_CHANGES = Counter("pipebot_lease_acquisitions_total", "Leases this process took (free or stale)")
LEADER_CHANGES = Counter("pipebot_leader_changes_total", "Times this process became leader", ["role"])
LEADER = Gauge("pipebot_leader", "1 while this process leads the role", ["role"])
TIMER_LAG = Histogram(
    "pipebot_timer_lag_seconds",
    "How late a time-based action ran after it was due",
    ["loop"],
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 300),
)
