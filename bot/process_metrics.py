"""One /metrics for the two processes of `pipebot serve`.

The engine process's counters (decisions, deliveries, work, leadership, timer lag) live in its own
interpreter. On request (a "metrics" line on its stdin) it answers with its samples as one line
of JSON; the front serves both sets, each sample labelled `process="front"` or `"engine"`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric

Families = list[list[Any]]  # [name, type, help, [[sample name, labels, value], ...]]


def collect(registry: CollectorRegistry = REGISTRY) -> Families:
    return [
        [m.name, m.type, m.documentation, [[s.name, s.labels, s.value] for s in m.samples]]
        for m in registry.collect()
    ]


def encode(registry: CollectorRegistry = REGISTRY) -> str:
    return json.dumps(collect(registry), separators=(",", ":"))


class _Merged:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


def merged(engine: Families | None, front: Families | None = None) -> bytes:
    """The exposition of both processes' samples (the engine's missing: the front's alone)."""
    by_name: dict[str, Metric] = {}
    for process, families in (("front", front if front is not None else collect()), ("engine", engine or [])):
        for name, kind, doc, samples in families:
            metric = by_name.setdefault(name, Metric(name, doc, kind))
            for sample_name, labels, value in samples:
                metric.add_sample(sample_name, {**labels, "process": process}, value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(list(by_name.values())))  # type: ignore[arg-type]
    return generate_latest(registry)
