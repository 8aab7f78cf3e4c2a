"""Consumer-lag monitoring for SREs: offsets, lag in messages, lag in seconds and a Burrow-style status.

Why our own: Burrow has status rules but no time lag, kafka-lag-exporter had time lag but is archived,
KMinion/kafka_exporter export offsets only. This package gives all three, read through the admin API
(never by consuming `__consumer_offsets`).

Layout, one concept per module:
- `model`     - plain data: one observation of offsets, one row of a report.
- `estimator` - pure: lag in seconds from a table of (end offset, wall time) samples.
- `status`    - pure: OK/WARN/ERR/STOP/STALL/REWIND over a window of samples.
- `config`    - thresholds, SLAs per group class, the group filter.
- `reader`    - I/O: offsets from Kafka (KafkaAdminClient) and record timestamps (KafkaConsumer seek).
- `monitor`   - glue: one `sample()` = read offsets, update the tables, build a `LagReport`.
- `groups`    - the default group filter: exactly our groups, from the catalogue.
- `exporter`  - the Prometheus exporter (`gplx-bus lag serve`).
- `cases`     - pure: cases by state and decisions by reason from decoded `cases.events` records.
- `cases_reader` - I/O: the exporter's reader of `cases.events` feeding `cases` (a prometheus collector).
"""
from consumers.lag.config import LagConfig
from consumers.lag.model import LagReport, PartitionLag
from consumers.lag.monitor import LagMonitor
from consumers.lag.status import Status

__all__ = ["LagConfig", "LagMonitor", "LagReport", "PartitionLag", "Status"]
