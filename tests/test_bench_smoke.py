"""Smoke test of the benchmark harness (``bench/run.py``) with tiny sizes.

Only the servers whose packages the dev virtualenv has: raw ``websockets`` (the
reference) and our views on uvicorn. One repetition, a few connections and messages,
no CPU pinning (other tests may be running), no chart (matplotlib is not a dev
dependency), no fan-out. It checks that every measurement produced a number and
that the ratios to the reference are there, in the JSON and in the printed table.
"""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVERS = ("websockets", "ours-async-uvicorn", "ours-sync-uvicorn")
MEASURED = ("msgs_small", "msgs_large", "p50_ms", "p99_ms", "loaded_p99_ms", "handshakes")

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("uvicorn") is None, reason="uvicorn is not installed"
)


@pytest.mark.timeout(90)
def test_bench_harness_smoke(tmp_path):
    command = [
        sys.executable, str(ROOT / "bench" / "run.py"),
        "--servers", ",".join(SERVERS), "--repeat", "1",
        "--connections", "4", "--messages", "40", "--latency-messages", "40",
        "--large-messages", "5", "--warmup", "2", "--warmup-seconds", "0.01",
        "--idle", "20", "--idle-baseline", "4", "--handshakes", "20",
        "--fanout-members", "0", "--server-cpu", "none", "--client-cpu", "none",
        "--no-chart", "--results-dir", str(tmp_path), "--log-dir", str(tmp_path / "logs"),
        "--phase-timeout", "30", "--startup-timeout", "30", "--quiesce-timeout", "0",
    ]  # fmt: skip
    # The harness stops its servers when it ends, and they die with it if it is killed.
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=80)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()}" for p in (tmp_path / "logs").glob("*"))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{logs}"

    (path,) = tmp_path.glob("bench-*.json")
    data = json.loads(path.read_text())
    rows = {entry["server"]: entry for entry in data["summary"]}
    assert set(rows) == set(SERVERS)
    for name, entry in rows.items():
        assert not entry.get("errors"), (name, entry["errors"], logs)
        for key in MEASURED:
            assert isinstance(entry[key], float) and entry[key] > 0, (name, key, entry[key])
        # RSS growth over 20 connections is noisy, but it is a number of KiB.
        assert isinstance(entry["kib_per_conn"], float), name
        assert entry["ratio_small"] > 0 and entry["ratio_large"] > 0, name
    assert rows["websockets"]["ratio_small"] == 1.0
    assert rows["ours-sync-uvicorn"]["threads_per_conn"] > 0.5  # a thread per connection
    assert {check["target"] for check in data["targets"]}  # the targets, checked
    assert list(tmp_path.glob("bench-*.csv"))
    assert not list(tmp_path.glob("*.png"))

    table = result.stdout
    assert "[warm-up] websockets" in table and re.search(r" [1-9]\d* round\(s\) of 64 B", table)
    assert "ours: async view, uvicorn" in table and "msgs/s 64B" in table and "x ws" in table
    reference = next(line for line in table.splitlines() if line.startswith("websockets"))
    assert " 1.00 " in reference

    # Several runs' JSON pooled (--from-json A B): repetitions renumbered, not merged.
    pooled_dir = tmp_path / "pooled"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--from-json", str(path), str(path),
         "--no-chart", "--results-dir", str(pooled_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (pooled_path,) = pooled_dir.glob("bench-*.json")
    pooled = json.loads(pooled_path.read_text())
    assert pooled["meta"]["repeat"] == 2 and "2 runs pooled" in result.stdout
    assert sorted({row["rep"] for row in pooled["raw"]}) == [0, 1]
    assert len(pooled["raw"]) == 2 * len(data["raw"])
    assert {entry["server"] for entry in pooled["summary"]} == set(SERVERS)
