"""Soak run (not CI): the simulated day at a steady rate for a long time on the three-node cluster, a fault every
`--fault-every` seconds (cycling: kill a partition leader, kill the controller, SIGKILL a worker, hang a broker
30 s), memory of every worker and broker sampled every 5 s; at the end the usual figures (nothing lost, nothing
twice against the simulator's plan), a PNG plot and a markdown table of memory over time.

    .venv/bin/python -m tests.faults.soak --minutes 30 --rate 50 --fault-every 120 --out soak-report

(`make soak`; the plot needs the `plot` extra: pip install -e '.[plot]'.)
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

from deploy.local.cluster import LocalCluster
from tests.faults import harness


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=float, default=50, help="cases per second")
    ap.add_argument("--fault-every", type=float, default=120, help="seconds between faults")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--out", default="soak-report")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = int(args.minutes * 60 * args.rate)
    memory: list[dict] = []
    faults: list[tuple[float, str]] = []
    cluster = LocalCluster(nodes=3, ready_timeout=180)
    workroot = Path(tempfile.mkdtemp(prefix="gplx-soak-"))
    cluster.start()
    started = time.monotonic()
    finished = threading.Event()
    try:
        def inject(run: harness.Run) -> str:
            cycle = [_kill_leader, _kill_controller, _kill_worker, _hang_broker]
            sampler = threading.Thread(target=_sample_memory, args=(run, memory, started, finished), daemon=True)
            sampler.start()
            n = 0
            def over() -> bool:
                return run.publishing_done.is_set() or run.stopping.is_set()

            while not over():
                next_at = time.monotonic() + args.fault_every
                while time.monotonic() < next_at and not over():
                    time.sleep(1)  # pacing between faults; a failed run stops them within a second
                if over():
                    break
                at = time.monotonic() - started  # when the fault starts (a restart is part of it)
                label = cycle[n % len(cycle)](run)
                faults.append((at, label))
                print(f"[soak {time.monotonic() - started:6.0f}s] {label}", flush=True)
                n += 1
            return f"{n} faults, one every {args.fault_every:.0f}s"

        fault = harness.Fault("soak", inject, workers=args.workers, background=True, at_fraction=0.0)
        run = harness.Run(cluster, cluster.endpoints.schema_registry_url, workroot / "soak", cases, args.seed,
                          fault, rate=0)
        # the plan's own events per case (2.7 at seed 14; the adapters' answers come on top): publishing then lasts
        # --minutes. A fixed 5.2 ended a "30-minute" soak after 16 minutes.
        run.rate = len(run.plan.events) / (args.minutes * 60)
        figures = run.go(timeout_s=args.minutes * 60 * 3 + 600)
    finally:
        finished.set()
        cluster.stop(timeout=15)
        shutil.rmtree(workroot, ignore_errors=True)
        # the memory series and the faults first, so that a run failing at its end still leaves its plot
        (out / "faults.json").write_text(json.dumps(faults, indent=2))
        _table(memory, out / "memory.md")
        _plot(memory, faults, out / "memory.png")
    print(figures.line())
    for line in figures.client_errors + figures.problems[:10] + figures.notes:
        print("    " + line)
    (out / "figures.json").write_text(json.dumps(figures.__dict__, indent=2, default=str))
    ok = figures.nothing_lost_vs_plan and figures.nothing_twice
    print(f"soak: {'nothing lost, nothing twice' if ok else 'FAILED'}; report in {out}/")
    return 0 if ok else 1


def _kill_leader(run):
    node, label = harness.busiest_leader(run)
    run.cluster.kill_node(node)
    run.cluster.start_node(node)
    return label + ", restarted"


def _kill_controller(run):
    node = run.cluster.controller()
    run.cluster.kill_node(node)
    run.cluster.start_node(node)
    return f"SIGKILL broker {node} (active controller), restarted"


def _kill_worker(run):
    name = sorted(n for n, p in run.workers.procs.items() if p.alive())[0]
    run.workers.kill(name)
    run.workers.start(name)
    return f"SIGKILL worker {name}, started again"


def _hang_broker(run):
    node = run.cluster.controller()
    run.cluster.hang_node(node)
    time.sleep(30)  # the hang's duration
    run.cluster.resume_node(node)
    return f"SIGSTOP broker {node} 30s"


def _sample_memory(run, memory: list[dict], started: float, finished: threading.Event) -> None:
    """Every 5 s until the run is over (publishing, then the backlog and the deciding)."""
    while not finished.is_set():
        row = {"t": round(time.monotonic() - started)}
        for node in run.cluster.nodes:
            if node.alive():
                row[f"broker-{node.spec.node_id}"] = harness.rss_kb(node.process.pid) // 1024
        for name, mb in run.workers.memory_kb().items():
            row[f"worker-{name}"] = mb // 1024
        if run.monitor and run.monitor.lags:
            row["lag"] = run.monitor.lags[-1][1]
        if run.monitor and run.monitor.decisions:
            row["decided"] = run.monitor.decisions[-1][1]
        memory.append(row)
        if len(memory) % 12 == 0:  # a progress line a minute
            print(f"[soak {row['t']:6d}s] lag {row.get('lag')}, decision records {row.get('decided')}, RSS MB "
                  + ", ".join(f"{k} {v}" for k, v in row.items() if k.startswith(("worker", "broker"))), flush=True)
        finished.wait(5)  # the sampling period


def _series(memory: list[dict]) -> list[str]:
    """The RSS columns: every worker and broker sampled."""
    return sorted({k for row in memory for k in row if k.startswith(("worker", "broker"))})


def _cell(value) -> str:
    return "-" if value is None else str(value)


def _table(memory: list[dict], path: Path) -> None:
    series = _series(memory)
    step = max(1, len(memory) // 12)
    lines = ["| t (s) | " + " | ".join(f"{s} RSS MB" for s in series) + " | processor lag | decision records (repeats included) |",
             "| --- | " + " | ".join("---" for _ in series) + " | --- | --- |"]
    for row in memory[::step] + memory[-1:]:
        lines.append(f"| {row['t']} | " + " | ".join(str(row.get(s, "-")) for s in series)
                     + f" | {_cell(row.get('lag'))} | {_cell(row.get('decided'))} |")
    path.write_text("\n".join(lines) + "\n")


def _plot(memory: list[dict], faults: list[tuple[float, str]], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no PNG: matplotlib is missing (pip install -e '.[plot]'); the table is in memory.md")
        return
    series = _series(memory)
    fig, (ax, lag_ax) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, height_ratios=(3, 1))
    for s in series:
        pts = [(row["t"], row[s]) for row in memory if s in row]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=s)
    lags = [(row["t"], row["lag"]) for row in memory if row.get("lag") is not None]
    lag_ax.plot([p[0] for p in lags], [p[1] for p in lags], color="black", linewidth=0.8)
    for t, _ in faults:
        for a in (ax, lag_ax):
            a.axvline(t, color="grey", linestyle=":", linewidth=0.8)
    lag_ax.set_xlabel("seconds (dotted: a fault)")
    ax.set_ylabel("RSS (MB)")
    lag_ax.set_ylabel("processor lag")
    ax.set_title("gplx-bus soak: worker and broker memory, processor lag")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    raise SystemExit(main())
