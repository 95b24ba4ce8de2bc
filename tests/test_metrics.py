"""`GET /metrics` and `GET /api/devices` as the HTTP layer will serve them, from a site
running against the simulator over real sockets and ptys; the metrics read back with
prometheus-client's own text parser."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from modbus_fixtures import eventually
from mqtt_broker import running_broker
from prometheus_client.parser import text_string_to_metric_families
from site_fixtures import running_site

from linectl.config import MqttConfig
from linectl.device_report import devices_report
from linectl.diag.stats import rows as stats_rows
from linectl.metrics import metrics_response
from linectl.upstream import Upstream
from linectl.upstream.connection import Backoff
from sim.vehicles import Population

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(body: bytes) -> tuple[Samples, dict[str, str]]:
    """Every sample by (name, labels), and every family's type."""
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, types


def pick(samples: Samples, name: str, **labels: str) -> list[float]:
    want = set(labels.items())
    return [v for (n, ls), v in samples.items() if n == name and want <= ls]


async def test_metrics_and_devices_report_of_a_running_site(tmp_path: Path) -> None:
    population = Population(seed=5, fault_rate=0.0)
    cars = [population.next() for _ in range(2)]
    async with running_site(tmp_path) as rig:
        await rig.inspect_all(cars)
        hlt = rig.site.devices.drivers()["hlt-L1"]
        rig.sim.emulators["hlt-L1"].mute = True  # the headlamp tester stops answering
        try:
            await hlt.result()  # type: ignore[attr-defined]
        except Exception as e:
            assert type(e).__name__ == "DeviceTimeout"
        body, ctype = await metrics_response(rig.site)
        report = devices_report(rig.site)
        backlog = await rig.store.outbox_backlog()

    assert ctype.startswith("text/plain") and "version=" in ctype
    samples, types = parse(body)
    assert all(name.startswith("linectl_") for name in types)
    devices = ["io-L1", "rbt-L1", "hlt-L1", "gas-L1", "smoke-L1"]
    for dev in devices:
        assert pick(samples, "linectl_device_up", device=dev) == [0.0 if dev == "hlt-L1" else 1.0]
    # the brake tester answered every request it was asked, each timed in the histogram
    requests = pick(samples, "linectl_device_requests_total", device="rbt-L1")[0]
    answered = pick(samples, "linectl_device_latency_seconds_count", device="rbt-L1")[0]
    assert requests == answered > 20
    inf = pick(samples, "linectl_device_latency_seconds_bucket", device="rbt-L1", le="+Inf")
    assert inf == [answered]
    assert 0 < pick(samples, "linectl_device_latency_seconds_sum", device="rbt-L1")[0] < answered
    assert types["linectl_device_requests"] == "counter"
    assert types["linectl_device_latency_seconds"] == "histogram"
    assert pick(samples, "linectl_device_errors_total", device="hlt-L1", kind="timeout") == [1.0]
    assert pick(samples, "linectl_device_ring_overruns_total", device="rbt-L1") == [0.0]

    completed = {
        v: pick(samples, "linectl_line_vehicles_completed_total", line="L1", verdict=v)[0]
        for v in ("pass", "fail", "incomplete", "aborted")
    }
    assert sum(completed.values()) == 2
    assert pick(samples, "linectl_line_queue_length", line="L1") == [0.0]
    utilisation = pick(samples, "linectl_station_utilisation_ratio", line="L1")
    assert len(utilisation) == 3 and all(0 < u < 1 for u in utilisation)
    assert len(pick(samples, "linectl_station_mean_service_seconds", line="L1")) == 3
    assert sum(pick(samples, "linectl_station_state", line="L1", station="brake")) == 1
    assert pick(samples, "linectl_outbox_backlog") == [float(backlog)] and backlog >= 2
    assert pick(samples, "linectl_line_throughput_bound_vehicles_per_second", line="L1")
    assert not pick(samples, "linectl_mqtt_connected")  # no [mqtt]: no such series
    assert pick(samples, "linectl_process_resident_memory_bytes")

    json.dumps(report)  # JSON-able as it is
    by_id = {d["id"]: d for d in report}
    assert list(by_id) == devices
    rbt = by_id["rbt-L1"]
    assert rbt["up"] is True and rbt["station"] == "brake" and rbt["line"] == "L1"
    assert rbt["requests"] == requests and rbt["errors"] == 0
    assert 0 < rbt["latency_p50_ms"] <= rbt["latency_p99_ms"]
    assert rbt["transport"].startswith("tcp 127.0.0.1:")
    assert by_id["io-L1"]["station"] is None
    down = by_id["hlt-L1"]
    assert down["up"] is False and down["timeouts"] == 1
    assert "no reply" in down["last_error"] and down["last_error_at"]
    for key in ("reconnects", "checksum_failures", "ring_overruns", "last_answer_at"):
        assert key in rbt

    # what `linectl diag stats` prints of it: the client reads the server's field names
    table = {row[0]: row for row in stats_rows(report)}
    assert table["rbt-L1"][1:4] == ["up", requests, 0]
    assert table["hlt-L1"][1] == "DOWN" and table["hlt-L1"][4] == 1
    assert table["rbt-L1"][7] == f"{rbt['latency_p50_ms']:g} ms"
    assert "no reply" in table["hlt-L1"][-1]


async def test_mqtt_connected_follows_the_broker(tmp_path: Path) -> None:
    async def connected(rig: Any, upstream: Upstream) -> list[float]:
        samples, _ = parse((await metrics_response(rig.site, upstream))[0])
        return pick(samples, "linectl_mqtt_connected", link="mqtt")

    with running_broker(tmp_path / "broker") as broker:
        async with running_site(tmp_path, kinds=("brake",)) as rig:
            upstream = Upstream(
                rig.ops, MqttConfig(url=broker.url), backoff=lambda: Backoff(0.02, 0.2)
            )
            task = asyncio.create_task(upstream.run())
            try:
                await asyncio.wait_for(upstream.link.connected.wait(), 10)
                assert await connected(rig, upstream) == [1.0]
                samples, _ = parse((await metrics_response(rig.site, upstream))[0])
                assert len(pick(samples, "linectl_mqtt_connected")) == 2  # site + line L1
                broker.stop()

                async def up() -> bool:
                    return upstream.link.connected.is_set()

                await eventually(up, lambda c: not c, timeout_s=10)
                assert await connected(rig, upstream) == [0.0]
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
