"""The console under load: does the site keep its pace, and does the board keep up?

Runs `linectl demo` in-process (simulator, daemon and console; a morning queue
of `--vehicles` registered at once, so the lines are saturated) and, in a
second process as browsers would be, `--clients` console sessions that sign in
and read the board's event stream (/board/events) for the whole run, plus one
that loads pages (the board, the inspection list, an inspection) one after
another. It reports:

- each line's steady-state throughput against its bound (README, "The
  throughput bound"): target >= 0.95;
- board update latency: from the site publishing an event (stamped here, in
  the daemon's process, at EventBus.publish) to a client having read the frame
  it caused (fragments carry the seq of the first event of the batch they
  render, live values their own): target p99 <= 200 ms;
- page load time (request to last byte): target p95 <= 300 ms;
- the machine's load average before and after, since the machine is shared.

Usage:

    .venv/bin/python benchmarks/console.py [--lines 2] [--vehicles 60] [--time-scale 20] [--clients 20]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing as mp
import os
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from linectl.demo import run_demo
from linectl.events import EventBus


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


# --- the browsers (second process) ---------------------------------------------------------


async def sign_in(base: str, password: str) -> httpx.AsyncClient:
    c = httpx.AsyncClient(base_url=base, timeout=30)
    page = await c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    r = await c.post(
        "/login", data={"name": "operator", "password": password, "csrf_token": token.group(1)}
    )
    assert r.status_code == 303, r.text
    return c


async def reader(c: httpx.AsyncClient, stop: asyncio.Event, got: list[tuple[int, float]]) -> None:
    async with c.stream("GET", "/board/events") as s:
        async for line in s.aiter_lines():
            if line.startswith("data: "):
                seq = json.loads(line[6:]).get("seq")
                if seq:
                    got.append((int(seq), time.time()))
            if stop.is_set():
                return


async def pages(c: httpx.AsyncClient, stop: asyncio.Event, times: list[tuple[str, float]]) -> None:
    inspection = None
    while not stop.is_set():
        for path in ("/", "/inspections", f"/inspections/{inspection}" if inspection else None):
            if path is None:
                continue
            t = time.perf_counter()
            r = await c.get(path)
            await r.aread()
            times.append((path.split("/")[1] or "board", time.perf_counter() - t))
            if inspection is None and path == "/inspections":
                m = re.search(r'data-inspection="([^"]+)"', r.text)
                inspection = m.group(1) if m else None
        await asyncio.sleep(1.0)


async def browsers(base: str, password: str, n: int, seconds: float) -> dict[str, Any]:
    clients = [await sign_in(base, password) for _ in range(n + 1)]
    stop = asyncio.Event()
    got: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    times: list[tuple[str, float]] = []
    tasks = [asyncio.create_task(reader(c, stop, g)) for c, g in zip(clients, got, strict=False)]
    tasks.append(asyncio.create_task(pages(clients[-1], stop, times)))
    await asyncio.sleep(seconds)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in clients:
        await c.aclose()
    return {"frames": got, "pages": times}


def browser_process(n: int, seconds: float, inbox: Any, out: Any) -> None:
    base, password = inbox.recv()  # started before the site: spawning would stall its loop
    out.send(asyncio.run(browsers(base, password, n, seconds)))
    out.close()


# --- the site (this process) ----------------------------------------------------------------


async def main_async(a: argparse.Namespace) -> dict[str, Any]:
    published: dict[int, float] = {}
    original = EventBus.publish

    def stamped(self: EventBus, *args: Any, **kwargs: Any) -> Any:
        ev = original(self, *args, **kwargs)
        published[ev.seq] = time.time()
        return ev

    EventBus.publish = stamped  # type: ignore[method-assign]
    out = io.StringIO()
    parent, child = mp.Pipe(duplex=False)
    to_child, inbox = mp.Pipe(duplex=False)
    proc = mp.get_context("spawn").Process(
        target=browser_process, args=(a.clients, a.seconds, to_child, child)
    )
    proc.start()
    with tempfile.TemporaryDirectory() as tmp:
        args = argparse.Namespace(
            lines=a.lines,
            vehicles=a.vehicles,
            time_scale=a.time_scale,
            seed=1,
            db=f"sqlite:///{Path(tmp) / 'bench.db'}",
            site="bench",
            mqtt=None,
            http="127.0.0.1:0",
        )
        demo = asyncio.create_task(run_demo(args, out=out))
        # The demo prints its console's address and login when it listens.
        pattern = r"console: (\S+) .*sign in as operator / (\S+)"
        while not (m := re.search(pattern, out.getvalue())):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        inbox.send((m.group(1).rstrip("/"), m.group(2)))
        t0 = time.monotonic()
        result = await asyncio.to_thread(parent.recv)
        await asyncio.to_thread(proc.join)
        doc = await demo
        real = time.monotonic() - t0
    lat = [
        (t - published[seq]) * 1000
        for frames in result["frames"]
        for seq, t in frames
        if seq in published
    ]
    loads = [s * 1000 for _, s in result["pages"]]
    return {
        "doc": doc,
        "latency_ms": lat,
        "frames_per_client": statistics.fmean(len(f) for f in result["frames"]),
        "page_ms": loads,
        "pages_by_kind": {
            k: pct([s * 1000 for kind, s in result["pages"] if kind == k], 95)
            for k in {kind for kind, _ in result["pages"]}
        },
        "real_s": real,
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--lines", type=int, default=2)
    p.add_argument("--vehicles", type=int, default=60)
    p.add_argument("--time-scale", type=float, default=20.0)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument(
        "--seconds", type=float, default=120.0, help="how long the browsers watch (real s)"
    )
    a = p.parse_args()
    load_before = os.getloadavg()
    r = asyncio.run(main_async(a))
    load_after = os.getloadavg()
    doc = r["doc"]
    print(
        f"{a.lines} lines, {a.vehicles} vehicles, time scale {a.time_scale:g}, "
        f"{a.clients} board clients for {a.seconds:g} s; {r['real_s']:.0f} s real; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"event loop lag up to {doc.get('loop_lag_max_clock_s', 0) / a.time_scale * 1000:.0f} ms"
    )
    print("| what | measured | target |")
    print("|---|---|---|")
    for ln in doc["lines"]:
        ratio = f"{ln['of_bound']:.3f}" if ln["of_bound"] else "-"
        print(
            f"| line {ln['line']} throughput / bound | {ratio} ({ln['vehicles_per_hour']} of "
            f"{ln['bound_per_hour']} veh/h) | >= 0.95 |"
        )
    lat = r["latency_ms"]
    print(
        f"| board update latency p50 / p99 / max | {pct(lat, 50):.0f} / {pct(lat, 99):.0f} / "
        f"{max(lat, default=float('nan')):.0f} ms ({len(lat)} frames, "
        f"{r['frames_per_client']:.0f} per client) | p99 <= 200 ms |"
    )
    loads = r["page_ms"]
    kinds = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["pages_by_kind"].items()))
    print(
        f"| page load p50 / p95 | {pct(loads, 50):.0f} / {pct(loads, 95):.0f} ms "
        f"({len(loads)} loads; p95 by page: {kinds} ms) | p95 < 300 ms |"
    )


if __name__ == "__main__":
    main()
