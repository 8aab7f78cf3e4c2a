"""The cost of security (issue 11): the case processor on a secured and on a plain one-node broker, same run.

Two fresh single nodes without a registry (the bench's registry serves both): one plain, one secured as
`gplx-bus local up --secure` makes it (SASL_SSL + SCRAM-SHA-512, TLS from a generated CA, StandardAuthorizer with
the catalogue's ACLs); each start is timed. On each, the same inputs (a fixed seed) are published ahead and one
worker is started: under `User:case-processor` with nothing but the catalogue's ACLs on the secured node. Timed, as
`processor`, from its first output to its last decision (record CreateTimes).
"""
from __future__ import annotations

import time
from pathlib import Path

from gplx_bus.bench import bus_env, processor_runs


def security_cost(bus: bus_env.Bus, registry, cases: int, workdir: Path, log=print) -> dict:
    from deploy.local.cluster import LocalCluster
    from deploy.local.security import ADMIN_USER, user_name
    from topology import contracts
    from topology.catalogue import CASE_PROCESSOR

    prefix = bus_env.unique_prefix("sec")
    catalogue = bus_env.catalogue_for(prefix)
    contracts.register(registry, catalogue)  # as the operator: the worker only looks schema ids up
    principals = sorted({a.principal for a in catalogue.acls()})
    load = bus_env.workload(registry, catalogue, cases, workdir=workdir / "db-secured")
    out: dict = {"cases": cases, "input_events": len(load.records)}
    for mode in ("plain", "secured"):
        cluster = LocalCluster(with_registry=False, secure=mode == "secured",
                               principals=principals if mode == "secured" else ())
        started = time.monotonic()
        endpoints = cluster.start()
        start_seconds = time.monotonic() - started
        try:
            def bus_as(user: str | None) -> bus_env.Bus:
                from topology.connection import Connection

                connection = (Connection.from_env({}, client_config=str(endpoints.client_config(user)))
                              if user else None)
                return bus_env.Bus(endpoints.bootstrap_servers, bus.registry_url, bus.kafka_version, mode, bus.lib,
                                   connection=connection)

            admin = bus_as(ADMIN_USER if mode == "secured" else None)
            worker_bus = bus_as(user_name(CASE_PROCESSOR) if mode == "secured" else None)
            out[mode] = {"broker_start_seconds": round(start_seconds, 1),
                         **_time_ours(admin, worker_bus, registry, catalogue, prefix, load, workdir, mode,
                                      secured=mode == "secured")}
        finally:
            cluster.stop()
        log(f"  {mode}: node started in {out[mode]['broker_start_seconds']} s; ours {out[mode]['events_per_s']} "
            f"events/s")
    out["secured_vs_plain_throughput"] = round(out["secured"]["events_per_s"] / out["plain"]["events_per_s"], 3)
    return out


def _time_ours(admin: bus_env.Bus, worker_bus: bus_env.Bus, registry, catalogue, prefix: str, load, workdir: Path,
               name: str, *, secured: bool) -> dict:
    from topology import acls
    from topology import apply as topics_apply

    client = topics_apply.connect(admin.connection)
    try:
        topics_apply.apply(topics_apply.plan(catalogue, client), client)
        if secured:
            acls.apply(acls.plan(catalogue, client), catalogue, client)
    finally:
        client.close()
    bus_env.bulk_load(admin, catalogue, load.records)
    worker = processor_runs.Worker(worker_bus, prefix, workdir, f"security-{name}").start()
    watcher = processor_runs.CaseWatcher(admin, catalogue, registry)
    try:
        complete = watcher.wait(lambda: len(watcher.decisions) >= load.decisions_expected, worker,
                                timeout_s=max(120.0, load.cases / 20))
        return {"complete": complete, **processor_runs._window_rates(watcher, len(load.records))}
    finally:
        watcher.close()
        worker.stop()
