"""A short chaos day in CI: `python -m linectl.chaos` (what scripts/chaos runs).

Eight vehicles of population 7 on two lines, random device faults and one
SIGKILL of the daemon, with `linectl sim`, `linectl run` and `linectl
registry-sim` as separate processes against a private mosquitto. Nothing
may be lost, inspected twice or judged against what the vehicle was built
with, and the draw chain must verify; the JSON carries exactly its keys.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from linectl.chaos import JSON_KEYS


def test_a_short_chaos_day_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    r = subprocess.run(
        [
            sys.executable, "-m", "linectl.chaos", "--seed", "7", "--vehicles", "8",
            "--kills", "1", "--fault-rate", "0.05", "--json", str(out),
            "--workdir", str(tmp_path / "day"), "--timeout", "150",
        ],
        capture_output=True, text=True, timeout=200,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert tuple(doc) == JSON_KEYS
    assert doc["lost"] == 0 and doc["duplicates"] == 0 and doc["wrong_verdicts"] == 0
    assert doc["audit_ok"] is True
    assert doc["kills"] == 1
    assert doc["inspections"] == 8
    # The kill aborted whatever was on the line: those came back as retests.
    assert doc["retests"] >= 1
    assert doc["not_judged"].get("not_tested", 0) >= 1
    assert doc["faults"] >= 1
    # Every inspection's first result and every retest's result reached the registry.
    assert doc["delivered"] >= doc["inspections"] + 1
    # Progress while it ran, and the figures at the end.
    assert "daemon killed (1/1)" in r.stdout
    assert "results lost       0" in r.stdout
