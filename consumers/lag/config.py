"""Settings of the lag monitor: which groups, their SLAs, and the status thresholds.

Groups are classified by the topics they read, not by their names, because the topics are the contract
(cases.province.* is a province subscriber whatever its group is called). The SLA values here must match the
`gplx:sla_lag_seconds` recording rules in deploy/prometheus/rules.yml (the exporter uses them for ERR, the alerts
use the recording rules); tests/unit/test_lag_rules_file.py checks that they agree.

The group filter defaults to exactly our groups (`groups.py`, from the catalogue). A deployment or test whose topics
and groups carry a name prefix sets `prefix` (GPLX_TOPIC_PREFIX, like the processor): the default filter, the DLQ
name and the topic classes then all follow it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from consumers.lag.groups import default_group_pattern
from topology.connection import DEFAULT_BOOTSTRAP, Connection, environment
from topology.errors import SettingsError


@dataclass(frozen=True)
class GroupClass:
    name: str
    topic_pattern: str  # a group reading any topic matching this regex belongs to the class
    sla_seconds: float


DEFAULT_CLASSES: tuple[GroupClass, ...] = (
    GroupClass("province-subscriber", r"^cases\.province\.", 3600.0),
    GroupClass("portal-sink", r"^issuance\.requests$", 900.0),
    GroupClass(
        "case-processor",
        r"^(portal\.applications|health\.exam-results|payment\.transactions|identity\.results|police\.licence-status)$",
        300.0,
    ),
)
OTHER_CLASS = "other"
OTHER_SLA_SECONDS = 900.0


@dataclass(frozen=True)
class LagConfig:
    bootstrap_servers: str | Connection = DEFAULT_BOOTSTRAP  # a Connection for a secured cluster
    # Name prefix of our topics and groups (GPLX_TOPIC_PREFIX); "" in production.
    prefix: str = ""
    # Bounded label cardinality: only groups whose id matches are read and exported. None = our groups only.
    group_pattern: str | None = None
    classes: tuple[GroupClass, ...] = DEFAULT_CLASSES
    other_sla_seconds: float = OTHER_SLA_SECONDS
    # Status window (see status.py). stall_after_seconds <= window_seconds or STOP/STALL can never fire.
    window_seconds: float = 600.0
    stall_after_seconds: float = 300.0
    warn_min_samples: int = 3
    table_max_points: int = 720
    request_timeout_ms: int = 10_000
    dlq_topic: str | None = None  # None = <prefix>dlq
    province_topic_pattern: str = r"^cases\.province\.(?P<province>[^.]+)$"  # matched without the prefix
    client_id: str = "gplx-lag-monitor"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.stall_after_seconds > self.window_seconds:
            raise SettingsError("stall_after_seconds must not exceed window_seconds")
        if self.group_pattern is None:
            object.__setattr__(self, "group_pattern", default_group_pattern(self.prefix))
        if self.dlq_topic is None:
            object.__setattr__(self, "dlq_topic", self.prefix + "dlq")
        try:
            re.compile(self.group_pattern)
        except re.error as exc:
            raise SettingsError(f"group pattern {self.group_pattern!r} is not a regular expression: {exc}") from None

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "LagConfig":
        """Defaults, then the connection (cluster, security, GPLX_TOPIC_PREFIX) and GPLX_LAG_GROUP_PATTERN from
        `environ` (default: the process environment), then explicit overrides (CLI flags)."""
        environ = environment() if environ is None else environ
        connection = Connection.from_env(environ)
        env = {"bootstrap_servers": connection, "prefix": connection.prefix,
               "group_pattern": environ.get("GPLX_LAG_GROUP_PATTERN") or None}
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**env)

    def wants_group(self, group: str) -> bool:
        return re.search(self.group_pattern, group) is not None

    def classify(self, topics: set[str]) -> tuple[str, float]:
        """(class name, SLA seconds) of a group reading `topics`; the first matching class wins."""
        bare = {self._unprefixed(t) for t in topics}
        for cls in self.classes:
            if any(re.search(cls.topic_pattern, t) for t in bare):
                return cls.name, cls.sla_seconds
        return OTHER_CLASS, self.other_sla_seconds

    def province_of(self, topic: str) -> str | None:
        m = re.match(self.province_topic_pattern, self._unprefixed(topic))
        return m.group("province") if m else None

    def _unprefixed(self, topic: str) -> str:
        return topic[len(self.prefix):] if self.prefix and topic.startswith(self.prefix) else topic
