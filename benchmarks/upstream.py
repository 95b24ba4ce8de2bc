"""Upstream latency: how quickly the registry hears back, against the broker itself.

Runs `linectl demo --mqtt` in-process against a private mosquitto (started
and stopped here, as the tests do), and plays the registry with one aiomqtt
client: it sends `--vehicles` registrations (the demo population's, so the
simulated world drives them), one every `--send-every-s` real seconds, and
stamps every reply and result as it arrives. Measured, in real milliseconds:

- registration to reply: publishing a registration to receiving its reply;
- result: from the start of the inspection's completion in the store (right
  after its last item was judged: the verdict, the revision and the outbox
  row are one transaction) to the result received by the registry;
- the ceiling: a bare aiomqtt round trip on the same broker, one client
  publishing (QoS 1) to a topic another has subscribed to, `--pings` times.

Usage (medians of --repeat runs):

    .venv/bin/python benchmarks/upstream.py --vehicles 10 --json upstream.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt
import benchlib
from benchlib import ROOT

from linectl.cli import build_parser
from linectl.demo import run_demo
from linectl.registry_sim import build_requests
from linectl.store.inspections import InspectionStore
from linectl.upstream.topics import Topics

# The tests' private mosquitto, started on a free port in a folder of its own
# (the tests folder is not a package).
sys.path.insert(0, str(ROOT / "tests"))
from mqtt_broker import Broker, running_broker

SITE = "bench"


async def bare_round_trips(broker: Broker, n: int) -> list[float]:
    """Publish -> receive through the broker, QoS 1, one at a time."""
    topic = "bench/ping"
    out: list[float] = []
    async with (
        aiomqtt.Client("127.0.0.1", broker.port, identifier="bench-sub") as sub,
        aiomqtt.Client("127.0.0.1", broker.port, identifier="bench-pub") as pub,
    ):
        await sub.subscribe(topic, qos=1)
        for i in range(n):
            t0 = time.perf_counter()
            await pub.publish(topic, str(i).encode(), qos=1)
            await anext(sub.messages)
            out.append(time.perf_counter() - t0)
    return out


async def one_run(a: argparse.Namespace) -> dict[str, Any]:
    load_before = benchlib.load_average()
    completing: dict[str, float] = {}
    original = InspectionStore.complete_inspection

    def stamped(self: InspectionStore, inspection_id: str, **kwargs: Any) -> Any:
        completing.setdefault(inspection_id, time.perf_counter())
        return original(self, inspection_id, **kwargs)

    InspectionStore.complete_inspection = stamped  # type: ignore[method-assign]
    topics = Topics("linectl", SITE)
    sent: dict[str, float] = {}
    replied: dict[str, float] = {}
    accepted: dict[str, str] = {}  # request_id -> inspection_id
    results: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp, running_broker(Path(tmp) / "broker") as broker:
            bare = await bare_round_trips(broker, a.pings)
            args = build_parser().parse_args(
                ["demo", "--mqtt", broker.url, "--site", SITE, "--vehicles", str(a.vehicles),
                 "--lines", str(a.lines), "--time-scale", str(a.time_scale),
                 "--db", f"sqlite:///{Path(tmp) / 'site.db'}"]
            )  # fmt: skip
            demo = asyncio.create_task(run_demo(args, io.StringIO()))
            async with aiomqtt.Client(
                "127.0.0.1", broker.port, identifier="bench-registry"
            ) as client:
                await client.subscribe(topics.all_status, qos=1)
                await client.subscribe(topics.all_replies, qos=1)
                await client.subscribe(topics.all_results, qos=1)
                online: set[str] = set()
                lines = {topics.status(f"L{i + 1}") for i in range(a.lines)}
                everyone_online = asyncio.Event()
                all_results = asyncio.Event()

                async def receive() -> None:
                    async for m in client.messages:
                        t = time.perf_counter()
                        topic = str(m.topic)
                        body = json.loads(m.payload) if isinstance(m.payload, bytes) else {}
                        if topic in lines and body.get("online"):
                            online.add(topic)
                            if online >= lines:
                                everyone_online.set()
                        elif topic.endswith("/reply"):
                            rid = topic.split("/")[-2]
                            replied.setdefault(rid, t)
                            if body.get("inspection_id"):
                                accepted[rid] = body["inspection_id"]
                        elif "/results/" in topic:
                            results.setdefault(topic.rsplit("/", 1)[1], t)
                            if len(results) >= a.vehicles:
                                all_results.set()

                receiver = asyncio.create_task(receive())
                try:
                    await asyncio.wait_for(everyone_online.wait(), 30)
                    for q in build_requests(a.vehicles, 0, seed=1, tag="bench"):
                        sent[q.request_id] = time.perf_counter()
                        await client.publish(topics.registrations, q.payload, qos=1)
                        await asyncio.sleep(a.send_every_s)
                    await asyncio.wait_for(demo, a.timeout_s)
                    # the last results may still be on their way
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(all_results.wait(), 10)
                finally:
                    receiver.cancel()
                    demo.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await receiver
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await demo
    finally:
        InspectionStore.complete_inspection = original  # type: ignore[method-assign]
    reply_s = [replied[r] - sent[r] for r in sent if r in replied]
    result_s = [results[i] - completing[i] for i in accepted.values() if i in results]
    bare_p50 = benchlib.percentile(bare, 0.5)
    return {
        "registrations": len(sent),
        "replies": len(reply_s),
        "results": len(result_s),
        "p50_reply_ms": round(1000 * benchlib.percentile(reply_s, 0.5), 2),
        "p99_reply_ms": round(1000 * benchlib.percentile(reply_s, 0.99), 2),
        "p50_result_ms": round(1000 * benchlib.percentile(result_s, 0.5), 2),
        "p99_result_ms": round(1000 * benchlib.percentile(result_s, 0.99), 2),
        "bare_p50_ms": round(1000 * bare_p50, 2),
        "bare_p99_ms": round(1000 * benchlib.percentile(bare, 0.99), 2),
        "load_avg_before": load_before,
        "load_avg_after": benchlib.load_average(),
    }


COLUMNS = [
    ("registrations", "registrations"),
    ("replies", "replies"),
    ("results", "results"),
    ("p50_reply_ms", "reply p50 ms"),
    ("p99_reply_ms", "reply p99 ms"),
    ("p50_result_ms", "result p50 ms"),
    ("p99_result_ms", "result p99 ms"),
    ("bare_p50_ms", "bare round trip p50 ms"),
    ("bare_p99_ms", "bare p99 ms"),
    ("load_avg_before", "load before"),
    ("load_avg_after", "load after"),
]


async def run(a: argparse.Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {"machine": benchlib.machine(), "args": vars(a)}
    rows = [await one_run(a) for _ in range(a.repeat)]
    doc["upstream"] = benchlib.median_row(rows, keep_max=()) | {"each": rows}
    doc["machine"]["load_avg_end"] = benchlib.load_average()
    return doc


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--lines", type=int, default=2)
    p.add_argument("--vehicles", type=int, default=10)
    p.add_argument("--time-scale", type=float, default=60.0)
    p.add_argument("--send-every-s", type=float, default=0.5, help="real seconds")
    p.add_argument("--pings", type=int, default=200, help="bare round trips")
    p.add_argument("--timeout-s", type=float, default=300.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args()
    doc = asyncio.run(run(a))
    m = doc["machine"]
    print(
        f"upstream over MQTT (private mosquitto), {m['date']}, {m['cpu']} x{m['cores']}, "
        f"median of {a.repeat}; load average {m['load_avg_start']} .. {m['load_avg_end']}"
    )
    benchlib.print_table(COLUMNS, [doc["upstream"]])
    benchlib.write_json(a.json, doc)


if __name__ == "__main__":
    main()
