"""deploy/prometheus stays consistent with the exporter: SLA values, and names used by rules and dashboard."""
import json
import re
from pathlib import Path

from consumers.lag import LagConfig
from consumers.lag.config import OTHER_CLASS

PROM = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
EXPORTED = {"kafka_consumergroup_lag", "kafka_consumergroup_lag_seconds", "kafka_consumergroup_current_offset",
            "kafka_consumergroup_status", "kafka_consumergroup_partition_status", "kafka_topic_partition_end_offset",
            "gplx_consumergroup_class_info", "gplx_dlq_messages_total", "gplx_province_backlog_messages",
            "gplx_province_backlog_seconds", "gplx_lag_exporter_up", "gplx_lag_exporter_last_success_timestamp_seconds",
            "gplx_lag_exporter_sample_duration_seconds", "up",
            # the case signals (consumers/lag/cases.py, cases_reader.py)
            "gplx_cases", "gplx_decided_cases_total", "gplx_decisions_total", "gplx_case_events_read_total",
            "gplx_cases_reader_lag_messages", "gplx_cases_reader_up", "gplx_cases_reader_ready",
            "gplx_cases_reader_errors_total"}


def rules_text():
    return (PROM / "rules.yml").read_text()


def test_sla_recording_rules_match_the_exporter_config():
    slas = {cls: float(v) for v, cls in re.findall(r"expr: vector\((\d+)\)\s*\n\s*labels: \{class: ([\w-]+)\}",
                                                   rules_text())}
    cfg = LagConfig()
    expected = {c.name: c.sla_seconds for c in cfg.classes} | {OTHER_CLASS: cfg.other_sla_seconds}
    assert slas == expected


def _rule_exprs(text: str) -> list[str]:
    """`expr:` values of rules.yml, single-line or folded (`>-`), without a YAML library."""
    exprs, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)expr: (.*)$", line)
        if not m:
            continue
        if m.group(2).strip() != ">-":
            exprs.append(m.group(2))
            continue
        indent, body = len(m.group(1)), []
        for nxt in lines[i + 1:]:
            if len(nxt) - len(nxt.lstrip()) <= indent:
                break
            body.append(nxt.strip())
        exprs.append(" ".join(body))
    return exprs


def _metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values are not metric names
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {w for w in words if w.startswith(("kafka_", "gplx_", "gplx:")) or w == "up"}


def test_rules_and_dashboard_use_only_exported_or_recorded_names():
    text = rules_text()
    recorded = set(re.findall(r"record: (\S+)", text))
    exprs = _rule_exprs(text)
    dash = json.loads((PROM / "grafana-dashboard.json").read_text())
    exprs += [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = set().union(*(_metric_names(e) for e in exprs))
    assert used, "no metric names found: the parser is broken"
    assert used <= EXPORTED | recorded, used - EXPORTED - recorded


def test_case_metric_names_are_the_ones_exported():
    """EXPORTED above must not drift from what the case collectors really render."""
    from prometheus_client import CollectorRegistry, generate_latest

    from consumers.lag.cases import CaseBook, book_metrics
    from consumers.lag.cases_reader import CaseSignals
    from schemas.registry import InMemoryRegistry

    signals = CaseSignals("127.0.0.1:1", "cases.events", InMemoryRegistry())
    signals._up, signals._ready, signals._lag = True, True, 0  # render everything without a broker
    reg = CollectorRegistry()
    reg.register(signals)
    names = {line.split("{")[0].split(" ")[0] for line in generate_latest(reg).decode().splitlines()
             if line and not line.startswith("#")}
    names = {n for n in names if not n.endswith("_created")}
    assert names == {n for n in EXPORTED if n.startswith(("gplx_case", "gplx_decided", "gplx_decisions"))} - {
        "gplx_decisions_total"}  # no decision yet, so no reason series
    assert list(book_metrics(CaseBook().snapshot()))


def test_template_has_the_placeholders_the_tests_fill():
    tmpl = (PROM / "prometheus.yml.tmpl").read_text()
    for key in ("EXPORTER_TARGET", "SCRAPE_INTERVAL", "EVALUATION_INTERVAL", "RULES_FILE"):
        assert "${" + key + "}" in tmpl
    assert "job_name: gplx-lag-exporter" in tmpl  # GplxLagExporterDown relies on it
