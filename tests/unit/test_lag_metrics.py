"""Metric rendering through a real prometheus_client registry (text exposition), no broker."""
from prometheus_client import generate_latest

from consumers.lag import LagConfig
from consumers.lag.exporter import ExporterState, LagCollector, build_registry
from consumers.lag.model import GroupLag, LagReport, PartitionLag


def report():
    rows = [PartitionLag("gplx-sub-HN", "cases.province.HN", 0, 5, 9, 4, 12.5, "interpolated", "STOP"),
            PartitionLag("gplx-sub-HN", "cases.province.HN", 1, 7, 7, 0, 0.0, "caught-up", "OK")]
    groups = [GroupLag("gplx-sub-HN", "province-subscriber", "Empty", "STOP", rows)]
    ends = {("cases.province.HN", 0): 9, ("cases.province.HN", 1): 7, ("dlq", 0): 3, ("dlq", 1): 4}
    return LagReport(1000.0, groups, ends)


def render(state, **cfg):
    collector = LagCollector(LagConfig(**cfg))
    collector.set_state(state)
    return generate_latest(build_registry(collector)).decode()


def test_renders_conventional_names_and_labels():
    text = render(ExporterState(report(), True, 1000.0, 0.2))
    expected = [
        'kafka_consumergroup_lag{group="gplx-sub-HN",partition="0",topic="cases.province.HN"} 4.0',
        'kafka_consumergroup_lag_seconds{group="gplx-sub-HN",partition="0",topic="cases.province.HN"} 12.5',
        'kafka_consumergroup_current_offset{group="gplx-sub-HN",partition="1",topic="cases.province.HN"} 7.0',
        'kafka_consumergroup_status{group="gplx-sub-HN"} 4.0',
        'kafka_topic_partition_end_offset{partition="0",topic="dlq"} 3.0',
        'gplx_consumergroup_class_info{class="province-subscriber",group="gplx-sub-HN"} 1.0',
        'gplx_dlq_messages_total 7.0',
        'gplx_province_backlog_messages{province="HN"} 4.0',
        'gplx_province_backlog_seconds{province="HN"} 12.5',
        'gplx_lag_exporter_up 1.0',
        'gplx_lag_exporter_last_success_timestamp_seconds 1000.0',
    ]
    for line in expected:
        assert line in text, line


def test_when_down_says_so_and_drops_lag_series():
    text = render(ExporterState(None, False, 1000.0, 2.0))
    assert "gplx_lag_exporter_up 0.0" in text
    assert "gplx_lag_exporter_last_success_timestamp_seconds 1000.0" in text
    assert "kafka_consumergroup_lag{" not in text


def test_extra_collectors_hook():
    from prometheus_client.core import GaugeMetricFamily

    class Cases:
        def collect(self):
            g = GaugeMetricFamily("gplx_cases", "Cases by state.", labels=["state"])
            g.add_metric(["ISSUED"], 3)
            yield g

    collector = LagCollector(LagConfig())
    assert 'gplx_cases{state="ISSUED"} 3.0' in generate_latest(build_registry(collector, [Cases()])).decode()
