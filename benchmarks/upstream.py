"""Upstream latency: how quickly the registry hears back, against the broker itself.

Runs `linectl demo --mqtt` in-process against a private mosquitto (started
and stopped here, as the tests do), and plays the registry with one aiomqtt
client: it sends `--vehicles` registrations (the demo population's, so the
simulated world drives them), one every `--send-every-s` real seconds, and
stamps every reply and result as it arrives. Measured, in real milliseconds:

- registration to reply: publishing a registration to receiving its reply,
  and its legs: to the site's intake, the site's own work
  (`Operations.register_payload`: checked, stored, queued, journalled), and
  back (the reply published, through the broker);
- result: from the start of the inspection's completion in the store (right
  after its last item was judged: the verdict, the revision and the outbox
  row are one transaction) to the result received by the registry;
- the ceiling: a bare aiomqtt round trip on the same broker, one client
  publishing (QoS 1) to a topic another has subscribed to, `--pings` times.
- the outbox after an outage: `--outbox` inspections completed while no
  broker was there (their results wait in the outbox), then one
  `Publisher.drain_once` sends them: results a second, from the drain's
  start to the last result received by a subscriber. The ceiling: the same
  payloads published by a bare aiomqtt client, QoS 1, as many in flight at
  once as the publisher allows (`OUTBOX_BATCH`), to the same subscriber.

Usage (medians of --repeat runs):

    .venv/bin/python benchmarks/upstream.py --vehicles 10 --json upstream.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiomqtt
import benchlib
from benchlib import ROOT

from linectl.cli import build_parser
from linectl.clock import Clock
from linectl.demo import run_demo
from linectl.events import EventBus
from linectl.items import Verdict
from linectl.ops.operations import Operations
from linectl.registry_sim import build_requests
from linectl.store.inspections import InspectionStore
from linectl.store.repo import AsyncStore, Store
from linectl.upstream.publisher import OUTBOX_BATCH, Publisher
from linectl.upstream.topics import Topics

# The tests' private mosquitto, started on a free port in a folder of its own
# (the tests folder is not a package).
sys.path.insert(0, str(ROOT / "tests"))
from mqtt_broker import Broker
from store_fixtures import ITEMS, T0, brake_result, make_vehicle

SITE = "bench"


class BenchBroker(Broker):
    """The tests' mosquitto; with `nodelay`, `set_tcp_nodelay true`: mosquitto
    otherwise leaves Nagle's algorithm on, and a small message it forwards
    right after another waits for the receiver's delayed ACK (~30 ms here)."""

    nodelay = False

    def _write_config(self) -> None:
        super()._write_config()
        if self.nodelay:
            with self.conf_path.open("a", encoding="utf-8") as f:
                f.write("set_tcp_nodelay true\n")


@contextlib.contextmanager
def running_broker(workdir: Path, nodelay: bool) -> Iterator[Broker]:
    broker = type("Broker", (BenchBroker,), {"nodelay": nodelay})(workdir)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


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


def outbox_after_outage(db: Path, n: int) -> Store:
    """A store with `n` completed inspections whose results wait in the outbox."""
    store = Store(f"sqlite:///{db}")
    store.upgrade()
    for i in range(n):
        iid = store.create_inspection(
            site=SITE,
            vehicle=make_vehicle(serial=100000 + i),
            inspection_type="periodic",
            items=ITEMS,
            at=T0,
        )
        store.record_attempt(
            inspection_id=iid,
            result=brake_result("B1", Verdict.PASS),
            station="brake",
            device="rbt",
            started_at=T0,
            finished_at=T0,
        )
        store.complete_inspection(iid, at=T0)
    return store


class Counter:
    """A subscriber that stamps the arrival of the n-th message on a filter."""

    def __init__(self, client: aiomqtt.Client, n: int) -> None:
        self.client, self.n, self.count = client, n, 0
        self.done = asyncio.Event()
        self.last = 0.0

    async def run(self) -> None:
        async for _ in self.client.messages:
            self.count += 1
            if self.count >= self.n:
                self.last = time.perf_counter()
                self.done.set()


async def drain_rate(broker: Broker, n: int, tmp: Path) -> dict[str, Any]:
    store = await asyncio.to_thread(outbox_after_outage, tmp / "outbox.db", n)
    topics = Topics("linectl", "outage")
    site = SimpleNamespace(store=AsyncStore(store), events=EventBus(), lines=[], clock=Clock())
    publisher = Publisher(site, topics)  # type: ignore[arg-type]
    payloads = [r.payload.encode() for r in store.pending_outbox(n)]
    out: dict[str, Any] = {"outbox": n, "payload_bytes": round(sum(map(len, payloads)) / n)}
    try:
        for kind in ("drain", "bare"):
            async with (
                aiomqtt.Client("127.0.0.1", broker.port, identifier=f"sub-{kind}") as sub,
                aiomqtt.Client("127.0.0.1", broker.port, identifier=f"pub-{kind}") as pub,
            ):
                await sub.subscribe(f"{kind}/#" if kind == "bare" else topics.all_results, qos=1)
                counter = Counter(sub, n)
                counting = asyncio.create_task(counter.run())
                t0 = time.perf_counter()
                if kind == "drain":
                    sent = await publisher.drain_once(pub)
                    assert sent == n, f"drained {sent} of {n}"
                else:
                    for i in range(0, n, OUTBOX_BATCH):
                        await asyncio.gather(
                            *(
                                pub.publish(f"bare/{i + k}", p, qos=1)
                                for k, p in enumerate(payloads[i : i + OUTBOX_BATCH])
                            )
                        )
                await asyncio.wait_for(counter.done.wait(), 60)
                out[f"{kind}_per_s"] = round(n / (counter.last - t0), 1)
                counting.cancel()
                await asyncio.gather(counting, return_exceptions=True)
    finally:
        publisher.close()
        await site.store.aclose()
        store.close()
    out["drain_ratio_to_bare"] = round(out["drain_per_s"] / out["bare_per_s"], 3)
    return out


async def one_run(a: argparse.Namespace) -> dict[str, Any]:
    load_before = benchlib.load_average()
    completing: dict[str, float] = {}
    original = InspectionStore.complete_inspection

    def stamped(self: InspectionStore, inspection_id: str, **kwargs: Any) -> Any:
        completing.setdefault(inspection_id, time.perf_counter())
        return original(self, inspection_id, **kwargs)

    InspectionStore.complete_inspection = stamped  # type: ignore[method-assign]
    registering: dict[str, tuple[float, float]] = {}  # request_id -> (start, end)
    original_register = Operations.register_payload

    async def timed_register(self: Operations, actor: Any, payload: bytes) -> Any:
        t0 = time.perf_counter()
        try:
            return await original_register(self, actor, payload)
        finally:
            with contextlib.suppress(ValueError, AttributeError):
                registering[json.loads(payload).get("request_id")] = (t0, time.perf_counter())

    Operations.register_payload = timed_register  # type: ignore[method-assign]
    topics = Topics("linectl", SITE)
    sent: dict[str, float] = {}
    replied: dict[str, float] = {}
    accepted: dict[str, str] = {}  # request_id -> inspection_id
    results: dict[str, float] = {}
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            running_broker(Path(tmp) / "broker", a.broker_nodelay) as broker,
        ):
            bare = await bare_round_trips(broker, a.pings)
            outage = await drain_rate(broker, a.outbox, Path(tmp)) if a.outbox else {}
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
        Operations.register_payload = original_register  # type: ignore[method-assign]
    reply_s = [replied[r] - sent[r] for r in sent if r in replied]
    timed = [r for r in sent if r in replied and r in registering]
    to_site = [registering[r][0] - sent[r] for r in timed]
    site_work = [registering[r][1] - registering[r][0] for r in timed]
    back = [replied[r] - registering[r][1] for r in timed]
    result_s = [results[i] - completing[i] for i in accepted.values() if i in results]
    bare_p50 = benchlib.percentile(bare, 0.5)
    return {
        "registrations": len(sent),
        "replies": len(reply_s),
        "results": len(result_s),
        "p50_reply_ms": round(1000 * benchlib.percentile(reply_s, 0.5), 2),
        "p99_reply_ms": round(1000 * benchlib.percentile(reply_s, 0.99), 2),
        # the reply's way, p50 of each leg: to the site's intake, the site's
        # own work (checked, stored, queued, journalled), back to the registry
        "p50_to_site_ms": round(1000 * benchlib.percentile(to_site, 0.5), 2),
        "p50_register_ms": round(1000 * benchlib.percentile(site_work, 0.5), 2),
        "p50_back_ms": round(1000 * benchlib.percentile(back, 0.5), 2),
        "p50_result_ms": round(1000 * benchlib.percentile(result_s, 0.5), 2),
        "p99_result_ms": round(1000 * benchlib.percentile(result_s, 0.99), 2),
        "bare_p50_ms": round(1000 * bare_p50, 2),
        "bare_p99_ms": round(1000 * benchlib.percentile(bare, 0.99), 2),
        **outage,
        "load_avg_before": load_before,
        "load_avg_after": benchlib.load_average(),
    }


COLUMNS = [
    ("registrations", "registrations"),
    ("replies", "replies"),
    ("results", "results"),
    ("p50_reply_ms", "reply p50 ms"),
    ("p99_reply_ms", "reply p99 ms"),
    ("p50_to_site_ms", "to the site p50"),
    ("p50_register_ms", "site's work p50"),
    ("p50_back_ms", "back p50"),
    ("p50_result_ms", "result p50 ms"),
    ("p99_result_ms", "result p99 ms"),
    ("bare_p50_ms", "bare round trip p50 ms"),
    ("bare_p99_ms", "bare p99 ms"),
    ("outbox", "outbox rows"),
    ("drain_per_s", "drained/s"),
    ("bare_per_s", "bare/s"),
    ("drain_ratio_to_bare", "ratio"),
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
    p.add_argument("--outbox", type=int, default=300, help="results waiting after an outage")
    p.add_argument(
        "--broker-nodelay", action="store_true", help="run mosquitto with set_tcp_nodelay true"
    )
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args()
    # aiomqtt warns of every publish beyond ten in flight; the publisher's
    # window is twenty on purpose.
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    doc = asyncio.run(run(a))
    m = doc["machine"]
    print(
        f"upstream over MQTT (private mosquitto{', set_tcp_nodelay' if a.broker_nodelay else ''}), "
        f"{m['date']}, {m['cpu']} x{m['cores']}, "
        f"median of {a.repeat}; load average {m['load_avg_start']} .. {m['load_avg_end']}"
    )
    benchlib.print_table(COLUMNS, [doc["upstream"]])
    benchlib.write_json(a.json, doc)


if __name__ == "__main__":
    main()
