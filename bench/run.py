"""Compare django_websocket with raw websockets, Starlette, Channels and flask-sock.

Run from the repository root, in the benchmark's virtualenv (``make bench`` makes it)::

    make bench                                        # the full run: every server, 5 reps
    .venv-bench/bin/python bench/run.py --quick       # a short smoke run (a minute or two)
    .venv-bench/bin/python bench/run.py --servers websockets,ours-async-uvicorn --repeat 5
    .venv-bench/bin/python bench/run.py --profile ours-async-uvicorn   # py-spy flamegraph
    .venv-bench/bin/python bench/run.py --publish     # also docs/_static/bench.png
    .venv-bench/bin/python bench/run.py --from-json bench/results/bench-<time>.json

Each server (see ``bench/lineup.py`` and ``--list``) is a minimal echo in one process,
pinned with ``taskset`` to one CPU while this load generator runs pinned to another.
First, ``--warmup-seconds`` of unmeasured 64 B echo load on the reference server
(the first servers of repetition 1 used to measure 3-15% low). Then, for each
repetition, servers run one after the other (a fresh process each, the order
rotated by one each repetition), and each measures, in this order:

1. idle memory: ``--idle-baseline`` connections, then ``--idle`` more, each echoing
   one message; the growth of the RSS of the server's process tree, per connection;
2. handshakes/s: ``--handshakes`` connections opened and closed (opening and
   closing handshakes), ``--handshake-concurrency`` at a time;
3. latency: one connection echoes ``--latency-messages`` messages of 64 B, one at a
   time: round-trip p50 and p99 (``p50 ms``, ``p99 ms``);
4. echo 64 B: ``--connections`` connections echo ``--messages`` messages each,
   request/response (one in flight per connection), after a warm-up; messages/s
   counts echoed messages; ``p99@C`` is the round-trip p99 under this load;
5. echo 64 KiB: the same with ``--large-messages`` messages of ``--large-size``.

The table shows medians over the repetitions; a ratio is the median of the
per-repetition ratios to raw ``websockets`` measured in the same repetition. CPU
columns (64 B echo) are shares of one core: the load generator's ("client"), the
server's, and every other process on the machine's ("others": other work running
while measuring makes numbers noisy). With ``--fanout-members`` > 0 (the default),
``bench/fanout.py``'s ``memory-uvicorn`` and ``memory-gthread`` scenarios (ours only)
run in each repetition too.

Results go to ``--results-dir`` (``bench/results/``): ``bench-<time>.json`` (every
measurement, the summary, versions, machine), ``.csv`` and ``.png`` (matplotlib, if
installed). ``--from-json`` prints a saved run's table again and redraws its chart.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import csv
import functools
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import loadgen  # noqa: E402
from lineup import HOST, SERVERS, Server, ServerSpec, missing_modules  # noqa: E402

REFERENCE = "websockets"
FANOUT_SCENARIOS = ("memory-uvicorn", "memory-gthread")
#: The measurements of each server, in the order they run (--phases picks some).
PHASES = ("idle", "handshakes", "latency", "echo_small", "echo_large")
PACKAGES = (
    "django-websocket", "Django", "websockets", "uvicorn", "uvloop", "httptools", "gunicorn",
    "daphne", "Twisted", "autobahn", "starlette", "channels", "asgiref", "flask", "flask-sock",
    "simple-websocket", "wsproto", "picows", "matplotlib",
)  # fmt: skip

#: Targets of issue 8: (what, numerator, denominator or None, metric, bound, direction).
TARGETS = (
    ("async view on uvicorn >= 1.0x Starlette (64 B)",
     "ours-async-uvicorn", "starlette-uvicorn", "msgs_small", 1.0, ">="),
    ("sync view on uvicorn >= 3x Channels sync (64 B)",
     "ours-sync-uvicorn", "channels-sync-uvicorn", "msgs_small", 3.0, ">="),
    ("gthread >= 1.3x flask-sock (64 B)",
     "ours-gthread", "flask-sock-gthread", "msgs_small", 1.3, ">="),
    ("gthread >= 3x flask-sock (64 KiB)",
     "ours-gthread", "flask-sock-gthread", "msgs_large", 3.0, ">="),
    ("idle memory, async view <= Starlette's",
     "ours-async-uvicorn", "starlette-uvicorn", "kib_per_conn", 1.0, "<="),
    ("idle memory, sync view on uvicorn <= 40 KiB",
     "ours-sync-uvicorn", None, "kib_per_conn", 40.0, "<="),
    ("idle memory, gthread <= 40 KiB",
     "ours-gthread", None, "kib_per_conn", 40.0, "<="),
    ("idle memory, runserver <= 40 KiB",
     "ours-runserver", None, "kib_per_conn", 40.0, "<="),
)  # fmt: skip

#: Table columns: (key in a summary row, header, format).
COLUMNS = (
    ("msgs_small", "msgs/s 64B", "{:,.0f}"),
    ("ratio_small", "x ws", "{:.2f}"),
    ("msgs_large", "msgs/s 64KiB", "{:,.0f}"),
    ("ratio_large", "x ws", "{:.2f}"),
    ("p50_ms", "p50 ms", "{:.3f}"),
    ("p99_ms", "p99 ms", "{:.3f}"),
    ("loaded_p99_ms", "p99@C", "{:.2f}"),
    ("handshakes", "hs/s", "{:,.0f}"),
    ("kib_per_conn", "KiB/idle", "{:.1f}"),
    ("threads_per_conn", "thr/idle", "{:.1f}"),
    ("client_cpu", "client%", "{:.0f}"),
    ("server_cpu", "server%", "{:.0f}"),
    ("others_cpu", "others%", "{:.0f}"),
)


# --- machine -------------------------------------------------------------------------


def machine_busy() -> float:
    """CPU seconds every process on the machine has used so far (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / loadgen.CLOCK_TICKS


def machine_info() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / (1 << 20), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg()[0],
    }


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def pin(pid: int, cpu: int) -> None:
    """Pin every thread of ``pid`` and of its descendants to ``cpu``."""
    for process in loadgen.ProcessTree(pid).pids():
        try:
            tasks = os.listdir(f"/proc/{process}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                os.sched_setaffinity(int(task), {cpu})
            except OSError:
                continue


# --- one server ----------------------------------------------------------------------


async def wait_ready(server: Server, client: Any, timeout: float) -> None:
    """Poll with WebSocket handshakes on the echo's path until one succeeds."""
    deadline = time.monotonic() + timeout
    while True:
        server.check_alive()
        try:
            conn = await asyncio.wait_for(client.open(HOST, server.port, server.spec.path), 5)
        except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{server.spec.name} not serving within {timeout} s: {exc!r}\n"
                    + server.log_tail()
                ) from None
            await asyncio.sleep(0.1)
        else:
            await conn.close()
            return


async def measure_server(
    spec: ServerSpec, args: argparse.Namespace, client: Any, logdir: Path
) -> dict[str, Any]:
    """Start ``spec``'s server, measure it (see the module docstring), stop it.

    A phase that fails is recorded in ``row["error"]``; the next phases still run
    while the server is alive.
    """
    server = Server(spec, args, logdir, args.server_cpu)
    tree = loadgen.ProcessTree(server.pid)
    port, path = server.port, spec.path
    row: dict[str, Any] = {"server": spec.name}
    phases: list[tuple[str, Any]] = [
        ("idle", lambda: loadgen.idle_memory(
            client, HOST, port, path, server=tree, count=args.idle,
            baseline=args.idle_baseline, opcode=args.opcode)),
        ("handshakes", lambda: loadgen.handshakes(
            loadgen.get_client(args.handshake_client), HOST, port, path,
            server=tree, count=args.handshakes, concurrency=args.handshake_concurrency)),
    ]  # fmt: skip
    for key, connections, messages, size in (
        ("latency", 1, args.latency_messages, args.small_size),
        ("echo_small", args.connections, args.messages, args.small_size),
        ("echo_large", args.connections, args.large_messages, args.large_size),
    ):
        phases.append((key, functools.partial(
            loadgen.echo, client, HOST, port, path, server=tree, connections=connections,
            messages=messages, size=size, opcode=args.opcode, warmup=args.warmup)))  # fmt: skip
    phases = [(key, start) for key, start in phases if key in args.phases]
    errors = []
    try:
        await wait_ready(server, client, args.startup_timeout)
        for key, start in phases:
            await loadgen.quiesce(tree, args.quiesce_timeout)  # the last phase's are gone
            before = (machine_busy(), time.perf_counter())
            try:
                result = await _phase(key, start(), args)
            except Exception as exc:  # one failure must not end the whole run
                errors.append(f"{key}: {type(exc).__name__}: {exc}")
                print(f"  FAILED: {errors[-1][:2000]}", flush=True)
                server.check_alive()
                continue
            if "client_cpu" in result:
                busy = 100 * (machine_busy() - before[0]) / (time.perf_counter() - before[1])
                result["others_cpu"] = max(0.0, busy - result["client_cpu"] - result["server_cpu"])
            row[key] = result
        server.check_alive()
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        print(f"  FAILED: {errors[-1][:2000]}", flush=True)
    finally:
        server.stop()
    if errors:
        row["error"] = "; ".join(errors)
    return row


async def warm_up(spec: ServerSpec, args: argparse.Namespace, client: Any, logdir: Path) -> None:
    """Load the machine for ``--warmup-seconds`` with ``spec``'s 64 B echo, unmeasured.

    Without it the first servers of repetition 1 measured 3-15% below their medians
    in three full runs (the reference too: the machine and this process, not a
    server, were settling). A precaution: the medians of five repetitions are what
    absorbs a slow moment.
    """
    server = Server(spec, args, logdir, args.server_cpu)
    tree = loadgen.ProcessTree(server.pid)
    rounds = 0
    start = time.perf_counter()
    try:
        await wait_ready(server, client, args.startup_timeout)
        start = time.perf_counter()
        while rounds == 0 or time.perf_counter() - start < args.warmup_seconds:
            await _phase("warm-up", loadgen.echo(
                client, HOST, server.port, spec.path, server=tree,
                connections=args.connections, messages=args.messages,
                size=args.small_size, opcode=args.opcode, warmup=0), args)  # fmt: skip
            rounds += 1
    except Exception as exc:  # not a measurement: the run goes on without it
        print(f"  FAILED: warm-up: {type(exc).__name__}: {str(exc).strip()[:2000]}", flush=True)
    finally:
        server.stop()
    print(f"  {rounds} round(s) of 64 B echo in {time.perf_counter() - start:.0f} s, not measured")


async def _phase(name: str, coroutine: Any, args: argparse.Namespace) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(coroutine, args.phase_timeout)  # type: ignore[no-any-return]
    except asyncio.TimeoutError:
        raise RuntimeError(f"{name}: over --phase-timeout={args.phase_timeout} s") from None


def describe(row: dict[str, Any]) -> str:
    parts = []
    if "idle" in row:
        idle = row["idle"]
        parts.append(f"{idle['kib_per_conn']:.1f} KiB/idle ({idle['threads_per_conn']:.1f} thread)")
    if "handshakes" in row:
        parts.append(f"{row['handshakes']['handshakes_per_s']:,.0f} hs/s")
    if "latency" in row:
        r = row["latency"]
        parts.append(f"1 conn p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms")
    for key, label in (("echo_small", "small"), ("echo_large", "large")):
        if key in row:
            r = row[key]
            parts.append(
                f"{label} {r['msgs_per_s']:,.0f} msg/s (p50 {r['p50_ms']:.2f} ms, "
                f"client {r['client_cpu']:.0f}%, server {r['server_cpu']:.0f}%)"
            )
    return "; ".join(parts)


# --- fan-out (bench/fanout.py) -------------------------------------------------------


def load_fanout() -> Any:
    spec = importlib.util.spec_from_file_location("bench_fanout", BENCH_DIR / "fanout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def measure_fanout(name: str, args: argparse.Namespace, logdir: Path) -> dict[str, Any]:
    """Run one of bench/fanout.py's scenarios (ours, memory broker), servers pinned."""
    fanout = load_fanout()
    broker, layout = fanout.SCENARIOS[name]
    row: dict[str, Any] = {"server": f"fanout:{name}"}
    servers = fanout.start_servers(
        broker, layout, logdir / "fanout", None, None, uvicorn_ws=args.uvicorn_ws
    )
    try:
        if args.server_cpu is not None:
            for server, _ in servers:
                pin(server.process.pid, args.server_cpu)
        result = await asyncio.wait_for(
            fanout.run_scenario(
                name, servers, args.fanout_members, args.fanout_rounds, "kernel", 3, False, False
            ),
            args.phase_timeout,
        )
        row["fanout"] = {
            "members": result["members"],
            "p50_ms": result["p50"],
            "p99_ms": result["p99"],
            "deliveries_per_s": result["rate_median"],
            "client_cpu": result["client_cpu"],
            "server_cpu": sum(result["server_cpu"].values()),
        }
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
        print(f"  FAILED: {row['error'][:2000]}", flush=True)
    finally:
        gc.unfreeze()  # run_scenario froze the load generator's objects
        for server, _ in servers:
            server.stop()
    return row


# --- summary -------------------------------------------------------------------------

#: A summary metric -> (phase, key) in a raw row.
METRICS = {
    "msgs_small": ("echo_small", "msgs_per_s"),
    "msgs_large": ("echo_large", "msgs_per_s"),
    "p50_ms": ("latency", "p50_ms"),
    "p99_ms": ("latency", "p99_ms"),
    "loaded_p50_ms": ("echo_small", "p50_ms"),
    "loaded_p99_ms": ("echo_small", "p99_ms"),
    "large_p50_ms": ("echo_large", "p50_ms"),
    "handshakes": ("handshakes", "handshakes_per_s"),
    "kib_per_conn": ("idle", "kib_per_conn"),
    "threads_per_conn": ("idle", "threads_per_conn"),
    "client_cpu": ("echo_small", "client_cpu"),
    "server_cpu": ("echo_small", "server_cpu"),
    "others_cpu": ("echo_small", "others_cpu"),
    "large_client_cpu": ("echo_large", "client_cpu"),
    "large_server_cpu": ("echo_large", "server_cpu"),
    "handshake_client_cpu": ("handshakes", "client_cpu"),
}


def metric(row: dict[str, Any], name: str) -> float | None:
    phase, key = METRICS[name]
    value = row.get(phase, {}).get(key)
    return None if value is None else float(value)


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def paired_ratios(
    raw: list[dict[str, Any]], numerator: str, denominator: str, name: str
) -> list[float]:
    """numerator/denominator in each repetition (both measured in it), in order."""
    by_rep: dict[int, dict[str, dict[str, Any]]] = {}
    for row in raw:
        by_rep.setdefault(row["rep"], {})[row["server"]] = row
    ratios: list[float] = []
    for _, rows in sorted(by_rep.items()):
        if numerator in rows and denominator in rows:
            top, bottom = metric(rows[numerator], name), metric(rows[denominator], name)
            if top is not None and bottom:
                ratios.append(top / bottom)
    return ratios


def paired_ratio(
    raw: list[dict[str, Any]], numerator: str, denominator: str, name: str
) -> float | None:
    """Median over repetitions of numerator/denominator, each pair from one repetition."""
    return median(paired_ratios(raw, numerator, denominator, name))


def summarize(raw: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    summary = []
    for name in names:
        rows = [row for row in raw if row["server"] == name]
        if not rows:
            continue
        entry: dict[str, Any] = {"server": name, "runs": len(rows)}
        errors = [row["error"] for row in rows if "error" in row]
        if errors:
            entry["errors"] = errors
        if name.startswith("fanout:"):
            for key in ("members", "p50_ms", "p99_ms", "deliveries_per_s", "client_cpu",
                        "server_cpu"):  # fmt: skip
                entry[key] = median([row.get("fanout", {}).get(key) for row in rows])
        else:
            spec = SERVERS[name]
            entry.update(label=spec.label, family=spec.family)
            for key in METRICS:
                entry[key] = median([metric(row, key) for row in rows])
            entry["ratio_small"] = paired_ratio(raw, name, REFERENCE, "msgs_small")
            entry["ratio_large"] = paired_ratio(raw, name, REFERENCE, "msgs_large")
        summary.append(entry)
    return summary


def pool(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The repetitions of several runs as one result (for ``--from-json A B ...``).

    Ratios stay paired within a repetition: each run's repetitions are renumbered
    after the previous run's. Servers in the order they first appear.
    """
    if len(runs) == 1:
        return runs[0]
    raw: list[dict[str, Any]] = []
    offset = 0
    for run in runs:
        raw += [{**row, "rep": row["rep"] + offset} for row in run["raw"]]
        offset += 1 + max((row["rep"] for row in run["raw"]), default=-1)
    meta = copy.deepcopy(runs[0]["meta"])
    meta.update(
        mode=f"{len(runs)} runs pooled",
        date=f"{runs[0]['meta']['date']} to {runs[-1]['meta']['date']}",
        repeat=offset,
        pooled=[run["meta"]["date"] for run in runs],
    )
    meta["machine"]["loadavg_end"] = runs[-1]["meta"]["machine"]["loadavg_end"]
    # Each server once, in the order it first appears (the entries are recomputed).
    first: dict[str, dict[str, Any]] = {}
    for run in runs:
        for entry in run["summary"]:
            first.setdefault(entry["server"], entry)
    return {"meta": meta, "summary": list(first.values()), "raw": raw}


def check_targets(raw: list[dict[str, Any]], summary: list[dict[str, Any]]) -> list[dict]:
    by_name = {entry["server"]: entry for entry in summary}
    checks = []
    for what, top, bottom, name, bound, direction in TARGETS:
        if top not in by_name or (bottom is not None and bottom not in by_name):
            continue
        if bottom is None:
            per_rep, value = [], by_name[top].get(name)
        else:
            # A ratio's value in each repetition too: how far apart they are says
            # how much the median can be trusted (a noisy machine spreads them).
            per_rep = paired_ratios(raw, top, bottom, name)
            value = median(per_rep)
        ok = None if value is None else (value >= bound if direction == ">=" else value <= bound)
        checks.append({"target": what, "value": value, "bound": bound, "ok": ok,
                       "unit": "x" if bottom is not None else "", "per_rep": per_rep})  # fmt: skip
    return checks


# --- output --------------------------------------------------------------------------


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def format_table(summary: list[dict[str, Any]], checks: list[dict], meta: dict) -> str:
    lines = []
    label_width = max([len(e.get("label", "")) for e in summary] + [20])
    header = f"{'server':<{label_width}} " + " ".join(
        f"{title:>{max(len(title), 8)}}" for _, title, _ in COLUMNS
    )
    lines += [header, "-" * len(header)]
    for entry in summary:
        if entry["server"].startswith("fanout:"):
            continue
        cells = [
            f"{_cell(entry.get(key), fmt):>{max(len(title), 8)}}" for key, title, fmt in COLUMNS
        ]
        flag = "  (errors)" if entry.get("errors") else ""
        lines.append(f"{entry['label']:<{label_width}} " + " ".join(cells) + flag)
    fanout = [e for e in summary if e["server"].startswith("fanout:")]
    if fanout:
        lines += ["", "Fan-out (bench/fanout.py, ours, memory broker): one broadcast to N members"]
        lines.append(
            f"{'scenario':<24} {'N':>6} {'p50 ms':>8} {'p99 ms':>8} {'deliv/s':>9} "
            f"{'client%':>8} {'server%':>8}"
        )
        for e in fanout:
            lines.append(
                f"{e['server'][7:]:<24} {_cell(e['members'], '{:.0f}'):>6} "
                f"{_cell(e['p50_ms'], '{:.1f}'):>8} {_cell(e['p99_ms'], '{:.1f}'):>8} "
                f"{_cell(e['deliveries_per_s'], '{:,.0f}'):>9} "
                f"{_cell(e['client_cpu'], '{:.0f}'):>8} {_cell(e['server_cpu'], '{:.0f}'):>8}"
                + ("  (errors)" if e.get("errors") else "")
            )
    if checks:
        lines += ["", "Targets (issue 8):"]
        for c in checks:
            verdict = {True: "ok", False: "NO", None: "?"}[c["ok"]]
            # Three decimals where two would round across the bound ("NO 1.00x").
            close = c["value"] is not None and abs(c["value"] - c["bound"]) < 0.005
            value = _cell(c["value"], "{:.3f}" if close else "{:.2f}") + c["unit"]
            if len(c.get("per_rep") or ()) > 1:
                value += f" (repetitions: {', '.join(f'{r:.2f}' for r in c['per_rep'])})"
            lines.append(f"  {verdict:<3} {c['target']}: {value}")
    return "\n".join(lines)


def write_csv(path: Path, raw: list[dict[str, Any]]) -> None:
    fields = ["rep", "order", "server", *METRICS, "error"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in raw:
            if row["server"].startswith("fanout:"):
                continue
            record = {"rep": row["rep"], "order": row["order"], "server": row["server"],
                      "error": row.get("error", "")}  # fmt: skip
            for name in METRICS:
                record[name] = metric(row, name)
            writer.writerow(record)


def write_chart(path: Path, summary: list[dict[str, Any]], meta: dict) -> bool:
    """Draw four bar charts into ``path``; return False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    entries = [e for e in summary if not e["server"].startswith("fanout:")][::-1]
    colors = {"ours": "#0c7c59", "reference": "#7f7f7f", "peer": "#4a6fa5"}
    panels = (
        ("msgs_small", "echo 64 B: messages/s (higher is better)"),
        ("msgs_large", "echo 64 KiB: messages/s (higher is better)"),
        ("handshakes", "handshakes/s (higher is better)"),
        ("kib_per_conn", "memory per idle connection, KiB (lower is better)"),
    )
    figure, axes = plt.subplots(2, 2, figsize=(13, 2.2 + 0.42 * len(entries)))
    for axis, (key, title) in zip(axes.flat, panels, strict=True):
        values = [e.get(key) or 0 for e in entries]
        axis.barh(
            [e["label"] for e in entries], values, color=[colors[e["family"]] for e in entries]
        )
        axis.set_title(title, fontsize=10)
        axis.tick_params(labelsize=8)
        for y, value in enumerate(values):
            axis.annotate(f" {value:,.0f}" if value >= 100 else f" {value:.1f}",
                          (value, y), va="center", fontsize=7)  # fmt: skip
        axis.margins(x=0.18)
    others = [e["others_cpu"] for e in entries if e.get("others_cpu") is not None]
    busy = statistics.median(others) if others else 0.0
    figure.suptitle(
        f"django_websocket vs peers, {meta['date']} ({meta['mode']}; medians of "
        f"{meta['repeat']}; {meta['machine']['cpus']} x {meta['machine']['cpu']}; "
        f"client: {meta['client']})"
        + (f"\nBUSY MACHINE (others: {busy:.0f}% of a core): not results" if busy > 15 else ""),
        fontsize=10,
        color="black" if busy <= 15 else "#b00020",
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


# --- profiling -----------------------------------------------------------------------


async def run_profile(args: argparse.Namespace) -> Path:
    """``--profile``: the profile of one server, nothing else."""
    stop_on_sigterm()
    logdir = args.log_dir or Path(tempfile.mkdtemp(prefix="djws-bench-run-"))
    logdir.mkdir(parents=True, exist_ok=True)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    return await profile(args.profile, args, loadgen.get_client(args.client), logdir)


async def profile(name: str, args: argparse.Namespace, client: Any, logdir: Path) -> Path:
    """Run one phase against ``name`` under ``py-spy record``; return py-spy's output.

    ``--profile-phase``: ``small`` (the 64 B echo, the default), ``large`` (64 KiB)
    or ``handshakes``. py-spy samples every thread of the serving process (gunicorn:
    the worker), pausing it for each sample: the server runs slower under py-spy, the
    proportions are what counts. py-spy leaves out threads it sees idle, but counts a
    thread blocked in ``poll()`` as busy: in a thread-per-connection server, ignore
    the stacks that end in a wait (our ``wait_readable``, flask-sock's
    ``Event.wait``), or pass ``--profile-gil`` (only the thread holding the GIL; on a
    server below 100% CPU the last holder is counted while all threads wait).
    """
    pyspy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if pyspy is None:
        sys.exit("py-spy is not installed (pip install py-spy)")
    spec = SERVERS[name]
    server = Server(spec, args, logdir, args.server_cpu)
    tree = loadgen.ProcessTree(server.pid)
    suffix = {"flamegraph": "svg", "speedscope": "json", "raw": "txt"}[args.profile_format]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output = args.results_dir / f"profile-{name}-{args.profile_phase}-{stamp}.{suffix}"
    try:
        await wait_ready(server, client, args.startup_timeout)
        pids = tree.pids()
        target = pids[-1] if spec.kind == "gunicorn" else server.pid  # gunicorn: the worker
        recorder = subprocess.Popen(
            [pyspy, "record", "--pid", str(target), "--rate", str(args.profile_rate),
             "--format", args.profile_format, "--output", str(output),
             *(["--gil"] if args.profile_gil else [])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        await asyncio.sleep(1)  # py-spy attaches
        if args.profile_phase == "handshakes":
            result = {
                "handshakes": await loadgen.handshakes(
                    loadgen.get_client(args.handshake_client), HOST, server.port, spec.path,
                    server=tree, count=args.handshakes, concurrency=args.handshake_concurrency,
                )
            }  # fmt: skip
        else:
            large = args.profile_phase == "large"
            result = {
                "echo_large" if large else "echo_small": await loadgen.echo(
                    client, HOST, server.port, spec.path, server=tree,
                    connections=args.connections,
                    messages=args.large_messages if large else args.messages,
                    size=args.large_size if large else args.small_size,
                    opcode=args.opcode, warmup=args.warmup,
                )
            }  # fmt: skip
        recorder.send_signal(signal.SIGINT)
        _, errors = recorder.communicate(timeout=120)
        print(f"{spec.label}: {describe(result)} (under py-spy)")
        if not output.exists():
            sys.exit(f"py-spy wrote nothing:\n{errors.decode(errors='replace')}")
    finally:
        server.stop()
    return output


# --- main ----------------------------------------------------------------------------


def setup_process(args: argparse.Namespace) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = args.idle + args.idle_baseline + args.fanout_members + 500
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < needed:
        sys.exit(f"ulimit -n is {hard}; {needed} descriptors are needed")
    if args.client_cpu is not None:
        os.sched_setaffinity(0, {args.client_cpu})


def choose_servers(args: argparse.Namespace) -> list[str]:
    names = []
    for name in args.servers:
        missing = missing_modules(SERVERS[name])
        if missing:
            print(f"skipping {name}: cannot import {', '.join(missing)}", flush=True)
        else:
            names.append(name)
    if REFERENCE not in names:
        print(f"note: {REFERENCE} is not in --servers: no ratios", flush=True)
    return names


def stop_on_sigterm() -> None:
    """Make SIGTERM (a timeout, a CI runner) cancel the run, so that servers are stopped.

    Servers also get SIGKILL if the harness dies without stopping them (see lineup).
    """
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    stop_on_sigterm()
    client = loadgen.get_client(args.client)
    names = choose_servers(args)
    items = names + [f"fanout:{n}" for n in FANOUT_SCENARIOS if args.fanout_members > 0]
    logdir = args.log_dir or Path(tempfile.mkdtemp(prefix="djws-bench-run-"))
    logdir.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "mode": "quick smoke run" if args.quick else "full run",
        "repeat": args.repeat,
        "client": client.name,
        "client_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        "machine": machine_info(),
        "versions": versions(),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "server_logs": str(logdir),
    }
    meta["handshake_client"] = loadgen.get_client(args.handshake_client).name
    print(
        f"client: {client.name} on {meta['client_loop']} (handshakes: "
        f"{meta['handshake_client']}); servers pinned to CPU "
        f"{args.server_cpu}, client to CPU {args.client_cpu}; uvicorn --ws {args.uvicorn_ws} "
        f"--loop {args.loop}; {args.repeat} repetition(s); logs in {logdir}",
        flush=True,
    )
    if args.warmup_seconds > 0 and names:
        warm = REFERENCE if REFERENCE in names else names[0]
        print(f"[warm-up] {SERVERS[warm].label}", flush=True)
        await warm_up(SERVERS[warm], args, client, logdir)
    raw: list[dict[str, Any]] = []
    for rep in range(args.repeat):
        shift = rep % len(items) if items else 0
        for order, item in enumerate(items[shift:] + items[:shift]):
            label = item if item.startswith("fanout:") else SERVERS[item].label
            print(f"[{rep + 1}/{args.repeat}] {label}", flush=True)
            if item.startswith("fanout:"):
                row = await measure_fanout(item[7:], args, logdir)
                if "fanout" in row:
                    f = row["fanout"]
                    print(f"  p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, "
                          f"{f['deliveries_per_s']:,.0f} deliveries/s")  # fmt: skip
            else:
                row = await measure_server(SERVERS[item], args, client, logdir)
                print(f"  {describe(row)}", flush=True)
            row.update(rep=rep, order=order)
            raw.append(row)
    meta["machine"]["loadavg_end"] = os.getloadavg()[0]
    summary = summarize(raw, items)
    return {"meta": meta, "summary": summary, "targets": check_targets(raw, summary), "raw": raw}


def output(results: dict[str, Any], args: argparse.Namespace, base: Path | None = None) -> None:
    """Print the table; write JSON, CSV and chart (only the chart next to ``base``)."""
    meta = results["meta"]
    table = format_table(results["summary"], results["targets"], meta)
    m = meta["machine"]
    print()
    print(
        f"{meta['mode']}, {meta['date']}: medians of {meta['repeat']} repetition(s); "
        f"{m['cpus']} x {m['cpu']}; load average {m['loadavg_start']:.2f} -> "
        f"{m['loadavg_end']:.2f}; client {meta['client']}"
    )
    print(table)
    clients = [e.get("client_cpu") for e in results["summary"] if e.get("client_cpu") is not None]
    if clients:
        print(f"\nload generator CPU (64 B echo): at most {max(clients):.0f}% of one core")
    others = [e["others_cpu"] for e in results["summary"] if e.get("others_cpu") is not None]
    if others and statistics.median(others) > 15:
        print(
            f"WARNING: other processes used {statistics.median(others):.0f}% of a core "
            "(median) while measuring: these numbers are noisy, run again on a quiet machine"
        )
    written = []
    if base is None:
        args.results_dir.mkdir(parents=True, exist_ok=True)
        base = args.results_dir / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
        results["table"] = table
        base.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str) + "\n")
        write_csv(base.with_suffix(".csv"), results["raw"])
        written += [base.with_suffix(".json"), base.with_suffix(".csv")]
    if not args.no_chart:
        if write_chart(base.with_suffix(".png"), results["summary"], meta):
            written.append(base.with_suffix(".png"))
            if args.publish:
                target = REPO_ROOT / "docs" / "_static" / "bench.png"
                target.parent.mkdir(exist_ok=True)
                shutil.copyfile(base.with_suffix(".png"), target)
                written.append(target)
        else:
            print("matplotlib is not installed: no chart")
    print("wrote " + ", ".join(str(p) for p in written))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Servers: " + ", ".join(SERVERS),
    )
    add = parser.add_argument
    add(
        "--quick",
        action="store_true",
        help="a short smoke run: 1 repetition, small sizes (explicit sizes still win)",
    )
    add(
        "--servers",
        type=lambda s: s.split(","),
        default=list(SERVERS),
        help="comma-separated names (default: all whose packages import)",
    )
    add("--list", action="store_true", help="list the servers and exit")
    add(
        "--phases",
        type=lambda s: s.split(","),
        default=list(PHASES),
        help=f"comma-separated measurements (default: all of {','.join(PHASES)})",
    )
    add("--repeat", type=int, help="repetitions, interleaved (default 5; --quick 1)")
    add("--connections", type=int, help="echo connections (default 50)")
    add("--messages", type=int, help="64 B messages per connection (default 2000)")
    add("--latency-messages", type=int, help="64 B messages on one connection (default 2000)")
    add("--large-messages", type=int, help="64 KiB messages per connection (default 200)")
    add("--small-size", type=int, default=64, help="bytes (default 64)")
    add("--large-size", type=int, default=65536, help="bytes (default 65536)")
    add("--warmup", type=int, help="unmeasured messages per connection first (default 20)")
    add(
        "--warmup-seconds",
        type=float,
        help="unmeasured 64 B echo load before repetition 1 (default 30; --quick 0)",
    )
    add("--idle", type=int, help="idle connections measured (default 2000)")
    add("--idle-baseline", type=int, help="connections open before the baseline (default 50)")
    add("--handshakes", type=int, help="handshakes (default 2000)")
    add("--handshake-concurrency", type=int, default=50)
    add("--fanout-members", type=int, help="fan-out members; 0: no fan-out (default 1000)")
    add("--fanout-rounds", type=int, help="fan-out broadcasts measured (default 20)")
    add("--opcode", choices=["binary", "text"], default="binary")
    add(
        "--client",
        choices=["auto", "picows", "raw"],
        default="auto",
        help="the load generator's client (auto: picows if installed)",
    )
    add(
        "--handshake-client",
        choices=["auto", "picows", "raw"],
        default="raw",
        help="the client of the handshakes/s measurement (default raw: picows' connect "
        "costs the load generator twice the CPU)",
    )
    add(
        "--client-loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="the load generator's event loop (uvloop when installed)",
    )
    add(
        "--loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="the servers' event loop: uvicorn --loop, websockets' (default uvloop, "
        "uvicorn's 'auto' when uvloop is installed; daphne runs Twisted's asyncio)",
    )
    add(
        "--uvicorn-ws",
        default="websockets-sansio",
        help="uvicorn --ws for every uvicorn server (default websockets-sansio: "
        "uvicorn's 'auto' when websockets is installed)",
    )
    add("--server-cpu", default="0", help="CPU for the servers ('none': no pinning)")
    add("--client-cpu", default="1", help="CPU for the load generator ('none')")
    add("--startup-timeout", type=float, default=60)
    add(
        "--quiesce-timeout",
        type=float,
        default=60,
        help="before each phase, wait (at most this long) until the server is idle",
    )
    add(
        "--open-timeout",
        type=float,
        default=loadgen.OPEN_TIMEOUT,
        help="seconds for one connection's TCP connect, then its handshake (default 30)",
    )
    add("--phase-timeout", type=float, default=600, help="seconds per measurement, at most")
    add("--results-dir", type=Path, default=BENCH_DIR / "results")
    add("--log-dir", type=Path, help="servers' logs (default: a new temporary directory)")
    add(
        "--from-json",
        type=Path,
        nargs="+",
        metavar="PATH",
        help="measure nothing: print the table of a run's JSON, redraw its chart; of "
        "several runs' JSON, pool their repetitions into a new result",
    )
    add("--no-chart", action="store_true", help="write no PNG")
    add("--publish", action="store_true", help="also copy the chart to docs/_static/bench.png")
    add("--profile", metavar="SERVER", help="run one phase on SERVER under py-spy, only that")
    add(
        "--profile-phase",
        choices=["small", "large", "handshakes"],
        default="small",
        help="what runs under py-spy: the 64 B echo (default), the 64 KiB one, handshakes",
    )
    add(
        "--profile-format",
        choices=["flamegraph", "speedscope", "raw"],
        default="flamegraph",
        help="py-spy's output: an SVG, speedscope JSON or collapsed stacks",
    )
    add("--profile-gil", action="store_true", help="py-spy --gil: the GIL holder only")
    add("--profile-rate", type=int, default=100, help="py-spy samples per second")
    args = parser.parse_args(argv)
    defaults = {  # option: (full run, --quick)
        "repeat": (5, 1),
        "connections": (50, 20),
        "messages": (2000, 300),
        "latency_messages": (2000, 300),
        "large_messages": (200, 30),
        "warmup": (20, 10),
        "warmup_seconds": (30.0, 0.0),
        "idle": (2000, 300),
        "idle_baseline": (50, 20),
        "handshakes": (2000, 300),
        "fanout_members": (1000, 200),
        "fanout_rounds": (20, 5),
    }
    for key, (full, quick) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    for key in ("server_cpu", "client_cpu"):
        value = getattr(args, key)
        setattr(args, key, None if value == "none" else int(value))
    if args.server_cpu is not None and shutil.which("taskset") is None:
        parser.error("taskset is not installed: pass --server-cpu none --client-cpu none")
    if args.server_cpu is not None and args.server_cpu == args.client_cpu:
        parser.error("--server-cpu and --client-cpu must differ")
    unknown = [name for name in args.servers + [args.profile or REFERENCE] if name not in SERVERS]
    if unknown:
        parser.error(f"unknown servers: {', '.join(unknown)} (see --list)")
    unknown = [name for name in args.phases if name not in PHASES]
    if unknown:
        parser.error(f"unknown phases: {', '.join(unknown)} (from: {', '.join(PHASES)})")
    args.threads = args.idle + args.idle_baseline + args.connections + 100
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.list:
        for spec in SERVERS.values():
            missing = missing_modules(spec)
            note = f"  (missing: {', '.join(missing)})" if missing else ""
            print(f"{spec.name:<24} {spec.label}{note}")
        return
    if args.from_json:
        results = pool([json.loads(path.read_text()) for path in args.from_json])
        names = [entry["server"] for entry in results["summary"]]
        results["summary"] = summarize(results["raw"], names)  # this version's summary
        results["targets"] = check_targets(results["raw"], results["summary"])
        # One run: its table again, its chart redrawn beside it. Several: a new result.
        one = len(args.from_json) == 1
        output(results, args, base=args.from_json[0].with_suffix("") if one else None)
        return
    setup_process(args)
    loadgen.OPEN_TIMEOUT = args.open_timeout
    runner: Any = asyncio.run
    if args.client_loop == "uvloop" and importlib.util.find_spec("uvloop") is not None:
        import uvloop

        runner = uvloop.run
    try:
        if args.profile:
            print(f"wrote {runner(run_profile(args))}")
        else:
            output(runner(run_all(args)), args)
    except asyncio.CancelledError:
        sys.exit("cancelled (SIGTERM): servers stopped, nothing written")


if __name__ == "__main__":
    main()
