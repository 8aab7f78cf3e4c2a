"""Prometheus exporter for consumer lag (`gplx-bus lag serve`).

A background thread samples every `interval` seconds; scrapes only read the latest report, so a slow or absent
broker never makes a scrape hang. When a sample fails, `gplx_lag_exporter_up` drops to 0 and the lag series
disappear until the next good sample (numbers are current or absent, never stale); the HTTP endpoint stays up
and `gplx_lag_exporter_last_success_timestamp_seconds` says how old the last good picture is.

Metric names follow kafka-lag-exporter / kafka_exporter so existing dashboards and habits carry over:

| metric | labels | meaning |
| --- | --- | --- |
| kafka_consumergroup_lag | group, topic, partition | end offset - committed offset |
| kafka_consumergroup_lag_seconds | group, topic, partition | age of the oldest unconsumed record (estimator.py) |
| kafka_consumergroup_current_offset | group, topic, partition | committed offset |
| kafka_topic_partition_end_offset | topic, partition | log-end offset |
| kafka_consumergroup_status | group | 0 UNKNOWN, 1 OK, 2 WARN, 3 ERR, 4 STOP, 5 STALL, 6 REWIND (status.py) |
| kafka_consumergroup_partition_status | group, topic, partition | same codes, per partition |
| gplx_consumergroup_class_info | group, class | 1; joins a group to its SLA class in PromQL |
| gplx_dlq_messages_total | | messages ever written to the DLQ (sum of its end offsets) |
| gplx_province_backlog_messages | province | summed lag of groups reading cases.province.<province> |
| gplx_province_backlog_seconds | province | max lag in seconds of those groups |
| gplx_lag_exporter_up | | 1 if the last sample succeeded |
| gplx_lag_exporter_last_success_timestamp_seconds | | wall time of the last good sample |
| gplx_lag_exporter_sample_duration_seconds | | how long the last sample took |

Cardinality is bounded by the group filter (LagConfig.group_pattern, by default exactly our groups, see
groups.py); partitions and provinces (34) are finite.

The pipeline's own signals (cases by state, decisions by reason code: `cases.py`, read by `cases_reader.py`) are
extra prometheus collectors served on the same endpoint: `LagExporter(..., extra_collectors=[CaseSignals(...)])`.
An extra collector with `start()`/`stop()` (a background reader) is started and stopped with the exporter.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from consumers.lag.config import LagConfig
from consumers.lag.model import LagReport
from consumers.lag.monitor import LagMonitor
from consumers.lag.status import Status

log = logging.getLogger(__name__)


@dataclass
class ExporterState:
    """What the sampler thread hands to scrapes. Replaced as a whole under a lock, never mutated in place."""

    report: LagReport | None = None
    up: bool = False
    last_success: float = 0.0
    sample_duration: float = 0.0


class LagCollector(Collector):
    def __init__(self, config: LagConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._state = ExporterState()

    def set_state(self, state: ExporterState) -> None:
        with self._lock:
            self._state = state

    @property
    def state(self) -> ExporterState:
        with self._lock:
            return self._state

    def collect(self):
        st = self.state
        yield _gauge("gplx_lag_exporter_up", "1 if the last sample of Kafka offsets succeeded.", [], [((), float(st.up))])
        yield _gauge("gplx_lag_exporter_last_success_timestamp_seconds", "Wall time of the last good sample.",
                     [], [((), st.last_success)])
        yield _gauge("gplx_lag_exporter_sample_duration_seconds", "Duration of the last sample.",
                     [], [((), st.sample_duration)])
        if st.up and st.report is not None:
            yield from report_metrics(st.report, self._config)


def report_metrics(report: LagReport, config: LagConfig) -> Iterable:
    """The metric families for one report. A pure function, so tests can render it without a broker."""
    gtp = ["group", "topic", "partition"]
    lag, lag_s, offset, pstatus = [], [], [], []
    gstatus, gclass, never = [], [], []
    province_msgs: dict[str, int] = defaultdict(int)
    province_secs: dict[str, float] = defaultdict(float)
    for g in report.groups:
        gstatus.append(((g.group,), float(Status[g.status])))
        gclass.append(((g.group, g.group_class), 1.0))
        never.append(((g.group,), float(sum(p.never_committed for p in g.partitions))))
        for p in g.partitions:
            labels = (g.group, p.topic, str(p.partition))
            lag.append((labels, float(p.lag_messages)))
            lag_s.append((labels, p.lag_seconds))
            offset.append((labels, float(p.committed_offset)))
            pstatus.append((labels, float(Status[p.status])))
            province = config.province_of(p.topic)
            if province is not None:
                province_msgs[province] += p.lag_messages
                province_secs[province] = max(province_secs[province], p.lag_seconds)

    yield _gauge("kafka_consumergroup_lag", "Lag in messages: end offset minus committed offset.", gtp, lag)
    yield _gauge("kafka_consumergroup_lag_seconds", "Age in seconds of the oldest unconsumed record.", gtp, lag_s)
    yield _gauge("kafka_consumergroup_current_offset", "Committed offset of the group.", gtp, offset)
    yield _gauge("kafka_consumergroup_partition_status",
                 "Partition status: 0 UNKNOWN 1 OK 2 WARN 3 ERR 4 STOP 5 STALL 6 REWIND.", gtp, pstatus)
    yield _gauge("kafka_consumergroup_status",
                 "Group status: 0 UNKNOWN 1 OK 2 WARN 3 ERR 4 STOP 5 STALL 6 REWIND.", ["group"], gstatus)
    yield _gauge("gplx_consumergroup_never_committed_partitions",
                 "Partitions of the group's topics it never committed (their lag counts from the log start).",
                 ["group"], never)
    yield _gauge("gplx_consumergroup_class_info", "Class of a group (decides its SLA).", ["group", "class"], gclass)
    yield _gauge("kafka_topic_partition_end_offset", "Log-end offset of a partition.", ["topic", "partition"],
                 [((t, str(p)), float(o)) for (t, p), o in sorted(report.end_offsets.items())])
    yield _gauge("gplx_province_backlog_messages", "Summed lag of the groups reading a province's topic.",
                 ["province"], [((k,), float(v)) for k, v in sorted(province_msgs.items())])
    yield _gauge("gplx_province_backlog_seconds", "Max lag in seconds of the groups reading a province's topic.",
                 ["province"], [((k,), v) for k, v in sorted(province_secs.items())])
    dlq = [o for (t, _), o in report.end_offsets.items() if t == config.dlq_topic]
    if dlq:  # absent rather than 0 while the DLQ topic does not exist
        c = CounterMetricFamily("gplx_dlq_messages", "Messages ever written to the DLQ (sum of end offsets).")
        c.add_metric([], float(sum(dlq)))
        yield c


def _gauge(name: str, doc: str, labels: list[str], values) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc, labels=labels)
    for label_values, value in values:
        g.add_metric(list(label_values), value)
    return g


def build_registry(collector: LagCollector, extra_collectors: Iterable[Collector] = ()) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    for extra in extra_collectors:
        registry.register(extra)
    return registry


class Sampler(threading.Thread):
    """Samples every `interval` seconds until stopped; never dies on a Kafka error."""

    def __init__(self, monitor: LagMonitor, collector: LagCollector, interval: float) -> None:
        super().__init__(name="gplx-lag-sampler", daemon=True)
        self.monitor, self.collector, self.interval = monitor, collector, interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample_once()
            self._stop_event.wait(self.interval)  # pacing, and a prompt exit on stop()
        self.monitor.close()

    def sample_once(self) -> None:
        started = time.monotonic()
        previous = self.collector.state
        try:
            report = self.monitor.sample()
        except Exception as exc:  # the broker away, a timeout, an auth error: say so, keep serving
            if previous.up or previous.last_success == 0.0:
                log.warning("lag sample failed: %s: %s", type(exc).__name__, exc)
            else:
                log.debug("lag sample failed again: %s", exc)
            self.collector.set_state(ExporterState(None, False, previous.last_success, time.monotonic() - started))
            return
        if not previous.up:
            log.info("lag sample succeeded: groups=%d", len(report.groups))
        self.collector.set_state(ExporterState(report, True, time.time(), time.monotonic() - started))

    def stop(self) -> None:
        self._stop_event.set()


class LagExporter:
    """The sampler plus the HTTP endpoint; `start()` returns at once, `stop()` shuts both down."""

    def __init__(self, config: LagConfig, port: int, addr: str = "127.0.0.1", interval: float = 15.0,
                 extra_collectors: Iterable[Collector] = (), monitor: LagMonitor | None = None) -> None:
        self.collector = LagCollector(config)
        self.extra_collectors = list(extra_collectors)
        self.registry = build_registry(self.collector, self.extra_collectors)
        self.sampler = Sampler(monitor or LagMonitor(config), self.collector, interval)
        self.port, self.addr = port, addr
        self._server = None

    def start(self) -> None:
        self._server, _ = start_http_server(self.port, addr=self.addr, registry=self.registry)
        self.port = self._server.server_port  # port 0 asks the OS for a free one
        self.sampler.start()
        for extra in self.extra_collectors:
            if callable(getattr(extra, "start", None)):
                extra.start()
        log.info("lag exporter listening on %s:%d", self.addr, self.port)

    def stop(self, wait: float = 1.0) -> None:
        """Stop serving at once; give in-flight samples `wait` seconds in all (they may be blocked on a Kafka
        timeout; their threads are daemons, so they never keep the process alive: SIGTERM exits within ~wait)."""
        deadline = time.monotonic() + wait
        self.sampler.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for extra in self.extra_collectors:
            if callable(getattr(extra, "stop", None)):
                extra.stop(max(0.0, deadline - time.monotonic()))
        self.sampler.join(timeout=max(0.0, deadline - time.monotonic()))
