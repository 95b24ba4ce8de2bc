"""The site and its registry over a real private Mosquitto, in one process.

The simulator's instruments, the site (lines, store on SQLite) and its
Upstream run on one event loop at a high time scale; the registry side is a
`Listener` (or the registry-sim) on the same broker. Payloads are checked
field by field against mqtt.md.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mqtt_broker import Broker, Listener, free_port, running_broker
from site_fixtures import E2E_SCALE

from linectl.clock import Clock
from linectl.config import MqttConfig, SiteConfig, parse_site_config
from linectl.ops.operations import Operations
from linectl.registry_sim import MALFORMATIONS, RegistrySim, build_requests
from linectl.site import Site, open_store
from linectl.store.repo import AsyncStore
from linectl.upstream import Upstream
from linectl.upstream.connection import Backoff, connect_params
from linectl.upstream.intake import decode
from linectl.upstream.topics import MAX_REGISTRATION_BYTES, Topics
from linectl.vehicle import vin_check_digit
from sim.site import SimSite
from sim.vehicles import SimVehicle

SITE = "zc01"
TIME_SCALE = 200.0
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
BRAKE_VALUES = {
    "left_load_kg",
    "right_load_kg",
    "left_max_n",
    "right_max_n",
    "left_drag_n",
    "right_drag_n",
    "axle_rate_pct",
    "imbalance_pct",
}


def site_config(lines: int, db_url: str) -> SiteConfig:
    """`lines` brake lines, every device on its own free local port."""

    def tcp(device_id: str, model: str) -> dict[str, Any]:
        port = free_port()
        return {"id": device_id, "model": model, "transport": {"kind": "tcp", "port": port}}

    return parse_site_config(
        {
            "site_id": SITE,
            "database": {"url": db_url},
            "lines": [
                {
                    "id": f"L{n}",
                    "io": tcp(f"io-L{n}", "lineio-modbus"),
                    "stations": [
                        {
                            "id": "brake",
                            "kind": "brake",
                            "devices": [tcp(f"rbt-L{n}", "rbt-modbus")],
                        }
                    ],
                    "proxy_drivers": [f"L{n}D{i}" for i in range(1, 5)],
                }
                for n in range(1, lines + 1)
            ],
        }
    )


def valid_vin(body: str = "LSVAU2180N2183294") -> str:
    """mqtt.md's example VIN has a wrong check digit (position 9 must be X): fixed here."""
    return body[:8] + vin_check_digit(body) + body[9:]


def registration(request_id: str, plate: str = "鲁G12345", **over: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "request_id": request_id,
        "inspection_type": "periodic",
        "vehicle": {
            "vin": valid_vin(),
            "plate": plate,
            "vehicle_class": "M1",
            "fuel": "petrol",
            "axles": 2,
            "parking_axles": [2],
            "curb_mass_kg": 1320,
            "gross_mass_kg": 1750,
            "headlamp_system": 2,
            "max_design_speed_kmh": 180,
            "registration_date": "2019-05-20",
        },
        # The simulated demo lines have brake stations only.
        "items": ["B1", "B2", "B0", "BT"],
    }
    req.update(over)
    return req


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with running_broker(tmp_path / "broker") as b:
        yield b


@dataclass
class Running:
    site: Site
    upstream: Upstream
    sim: SimSite
    store: AsyncStore
    topics: Topics


@asynccontextmanager
async def running_site(
    tmp_path: Path,
    url: str,
    *,
    lines: int = 1,
    time_scale: float = TIME_SCALE,
    vehicles: Sequence[SimVehicle] = (),
    **config: Any,
) -> AsyncIterator[Running]:
    """Simulated instruments, the site and its Upstream, all running until the block ends.
    The simulated world knows `vehicles` (with their faults) from the start; `config`
    adds top-level keys to the site config. The database is tmp_path's, across runs."""
    clock = Clock(time_scale)
    db_url = f"sqlite:///{tmp_path / 'site.db'}"
    cfg = site_config(lines, db_url)
    if config:
        cfg = cfg.model_copy(update=config)
    sim = SimSite(cfg, clock, seed=3)
    for sv in vehicles:
        sim.world.add(sv)
    await sim.start()
    store = await open_store(db_url)
    site = Site(sim.live_config(), clock, store)
    ops = Operations(site)
    # What the demo does: the simulated world drives the registered vehicle.
    ops.on_accept.append(lambda reg: sim.world.learn(reg.vehicle))
    upstream = Upstream(
        ops,
        MqttConfig(url=url),
        backoff=lambda: Backoff(0.02, 0.2),
        outbox_poll_s=0.05,
    )
    try:
        async with asyncio.TaskGroup() as outer:
            instruments = outer.create_task(sim.run())
            try:
                async with asyncio.TaskGroup() as tg:
                    tasks = [tg.create_task(site.run()), tg.create_task(upstream.run())]
                    await asyncio.wait_for(site.ready.wait(), 10)
                    await asyncio.wait_for(upstream.intake.subscribed.wait(), 10)
                    try:
                        yield Running(site, upstream, sim, store, upstream.topics)
                    finally:
                        for t in tasks:
                            t.cancel()
            finally:
                # The instruments go last: a line winding down still talks to them.
                instruments.cancel()
    finally:
        await store.aclose()
        await sim.aclose()


def json_on(listener: Listener, topic: str) -> list[Any]:
    return [m.json() for m in listener.on(topic)]


def at_least(n: int, topic: str) -> Any:
    """A `Listener.wait_for` condition: the payloads on `topic` once there are `n`."""

    def ready(listener: Listener) -> list[Any] | None:
        got = json_on(listener, topic)
        return got if len(got) >= n else None

    return ready


# --- decoding what arrives --------------------------------------------------------------


def test_decode_refuses_what_is_not_a_registration() -> None:
    assert decode(b'{"request_id": "r1"}') == ({"request_id": "r1"}, "r1", None)
    obj, rid, err = decode(b"{not json")
    assert obj is None and rid is None and err is not None
    assert (err.code, err.field) == ("invalid_json", "(payload)")
    obj, rid, err = decode(b'"\xff\xfe"')
    assert obj is None and err is not None and err.code == "invalid_json"
    big = dumps({"request_id": "r2", "pad": "x" * MAX_REGISTRATION_BYTES})
    obj, rid, err = decode(big)
    assert obj is None, "an oversized payload is never decoded"
    assert rid == "r2", "its request_id is still read, to address the refusal"
    assert err is not None and (err.code, err.field) == ("payload_too_large", "(payload)")
    obj, rid, err = decode(b"x" * (2 * 1024 * 1024))
    assert obj is None and rid is None and err is not None and err.code == "payload_too_large"


def nested(depth: int, request_id: str | None = None) -> bytes:
    body = b"[" * depth + b"]" * depth
    if request_id is None:
        return body
    return b'{"request_id": "' + request_id.encode() + b'", "vehicle": ' + body + b"}"


def test_decode_bounds_the_nesting_before_the_decoder() -> None:
    # 100,000 deep: what once raised RecursionError out of the intake.
    obj, rid, err = decode(nested(100_000, "r-deep"))
    assert obj is None and rid == "r-deep"
    assert err is not None and err.code == "payload_too_large"
    # Under the size limit but still far too deep: refused before json.loads recurses.
    obj, rid, err = decode(nested(30_000, "r-deep2"))
    assert obj is None and rid == "r-deep2" and err is not None and err.code == "invalid_json"
    assert "deeper" in err.message
    # Brackets inside strings are text, not nesting.
    obj, rid, err = decode(dumps({"request_id": "r3", "note": "[" * 5000}))
    assert err is None and obj["note"] == "[" * 5000


# --- the round trip ---------------------------------------------------------------------


async def test_registration_to_result_round_trip(broker: Broker, tmp_path: Path) -> None:
    # Judged brake values are asserted: the APPLY prompt's 2 s of slack must be well
    # above a loaded machine's round trips (site_fixtures.E2E_SCALE); at 200 it is not.
    async with (
        running_site(tmp_path, broker.url, time_scale=E2E_SCALE) as run,
        Listener(broker.url, f"linectl/{SITE}/#", "registry-1") as reg,
    ):
        t = run.topics
        req = registration("r-20261127-0001")
        await reg.publish(t.registrations, dumps(req))

        # The reply: exactly mqtt.md's fields.
        [reply] = await reg.wait_for(lambda r: json_on(r, t.reply("r-20261127-0001")))
        assert set(reply) == {"request_id", "accepted", "inspection_id", "line"}
        assert reply["request_id"] == "r-20261127-0001"
        assert reply["accepted"] is True
        assert reply["line"] == "L1"
        iid = reply["inspection_id"]
        assert isinstance(iid, str) and iid

        [result] = await reg.wait_for(lambda r: json_on(r, t.result(iid)), within_s=30)

        # The result, field by field.
        assert result["schema"] == "linectl.result/1"
        assert result["inspection_id"] == iid
        assert result["request_id"] == "r-20261127-0001"
        assert result["revision"] == 1
        assert result["site"] == SITE
        assert result["line"] == "L1"
        assert result["inspection_type"] == "periodic"
        assert result["vehicle"]["vin"] == req["vehicle"]["vin"]
        assert result["vehicle"]["plate"] == "鲁G12345"
        pd = result["proxy_driver"]
        assert set(pd) >= {"id", "assigned_at", "candidates"}
        assert pd["id"] in pd["candidates"]
        assert set(pd["candidates"]) <= {f"L1D{i}" for i in range(1, 5)}
        assert ISO_UTC.match(pd["assigned_at"])
        assert ISO_UTC.match(result["started_at"]) and ISO_UTC.match(result["finished_at"])
        assert result["started_at"] <= result["finished_at"]
        items = {i["code"]: i for i in result["items"]}
        assert set(items) == {"B1", "B2", "B0", "BT"}
        for item in items.values():
            assert item["verdict"] in ("pass", "fail", "not_judged")
            assert item["attempt"] >= 1
            assert item["station"] == "brake"
            assert item["device"] == "rbt-L1"
            assert isinstance(item["values"], dict) and isinstance(item["limits"], dict)
        b1 = items["B1"]
        assert set(b1["values"]) >= BRAKE_VALUES
        assert set(b1["limits"]) >= {"axle_rate_pct", "imbalance_pct"}
        assert isinstance(b1["curve"], str) and b1["curve"]
        verdicts = {i["verdict"] for i in items.values()}
        expected = (
            "fail" if "fail" in verdicts else "incomplete" if "not_judged" in verdicts else "pass"
        )
        assert result["verdict"] == expected

        # Events, in order, on the line's events topic.
        def steps(r: Listener) -> list[dict[str, Any]]:
            evs = [e for e in json_on(r, t.events("L1")) if e["inspection_id"] == iid]
            return evs if any(e["type"] == "completed" for e in evs) else []

        events = await reg.wait_for(steps)
        types = [e["type"] for e in events]
        assert types[:2] == ["queued", "driver_assigned"]
        assert types[-1] == "completed"
        assert types.count("station_started") == types.count("station_finished") == 1
        assert types.index("station_started") < types.index("station_finished")
        for e in events:
            assert ISO_UTC.match(e["ts"])
        assert events[1]["proxy_driver"] == pd["id"]
        assert events[-1]["verdict"] == result["verdict"]

        # The line status: retained, online, every field of mqtt.md.
        status = json_on(reg, t.status("L1"))[-1]
        assert status["online"] is True and ISO_UTC.match(status["ts"])
        assert isinstance(status["queue"], int)
        for st in status["stations"]:
            assert set(st) >= {"id", "kind", "state", "plate", "device_ok"}
            assert st["maintenance"] is False and st["maintenance_reason"] is None  # issue 14
        assert {d["id"] for d in status["proxy_drivers"]} == {f"L1D{i}" for i in range(1, 5)}
        for d in status["proxy_drivers"]:
            assert set(d) >= {"id", "state", "plate"}
        assert any(m.retain for m in reg.on(t.status("L1"))), "status is retained"

        # Delivered means acknowledged, and recorded so. The registry can hold
        # the result a moment before the PUBACK reaches the publisher, which
        # marks the row then: wait for that, within a bound.
        for _ in range(500):
            [row] = await run.store.outbox(iid)
            if row.delivered_at is not None:
                break
            await asyncio.sleep(0.01)
        assert row.delivered_at is not None and row.revision == 1

        # The same request again: the same reply, no second inspection.
        await reg.publish(t.registrations, dumps(req))
        replies = await reg.wait_for(at_least(2, t.reply("r-20261127-0001")))
        assert replies[1] == replies[0]
        assert len(await run.store.list_inspections()) == 1

        # A retest completes it again (here written straight to the store, as another
        # process would): the same inspection_id goes out with the next revision.
        await run.store.complete_inspection(iid, at=run.site.clock.wall())
        first, second = await reg.wait_for(at_least(2, t.result(iid)))
        assert (second["inspection_id"], second["revision"]) == (iid, 2)
        assert first["revision"] == 1

    # The daemon stopped: its lines say so, retained for whoever looks next.
    async with Listener(broker.url, f"linectl/{SITE}/+/status", "registry-2") as late:
        [last] = await late.wait_for(lambda r: json_on(r, t.status("L1")))
        assert last == {"online": False}


# --- refusals -----------------------------------------------------------------------------


async def test_every_bad_field_refused_by_name_and_garbage_survived(
    broker: Broker, tmp_path: Path
) -> None:
    async with (
        running_site(tmp_path, broker.url) as run,
        Listener(broker.url, f"linectl/{SITE}/#", "registry-3") as reg,
    ):
        t = run.topics
        # Nothing to answer, but the daemon must take it in its stride.
        for junk in (
            b"",
            b"\x00\xff garbage",
            b"[1, 2, 3]",
            b'{"vehicle": {}}',
            dumps({"request_id": "a+b", "vehicle": {}}),
            dumps({"request_id": "x" * 300}),
            b"x" * (MAX_REGISTRATION_BYTES + 10),
        ):
            await reg.publish(t.registrations, junk)

        # One request per malformation the registry-sim plants, each naming its field.
        planted = build_requests(len(MALFORMATIONS), len(MALFORMATIONS), seed=5, tag="bad")
        for q in planted:
            await reg.publish(t.registrations, q.payload)
        for q in planted:
            [reply] = await reg.wait_for(lambda r, q=q: json_on(r, t.reply(q.request_id)))
            assert reply["accepted"] is False, q.malformation
            assert set(reply["error"]) == {"code", "field", "message"}
            assert reply["error"]["field"] == q.expect_field, q.malformation
            assert reply["error"]["message"]
        codes = {
            q.malformation: json_on(reg, t.reply(q.request_id))[0]["error"]["code"] for q in planted
        }
        assert codes["vin check digit"] == "invalid_vin"
        assert codes["plate"] == "invalid_plate"
        assert codes["oversized"] == "payload_too_large"
        assert codes["no vehicle"] == "missing_field"

        # Still serving: a good registration is accepted after all that.
        await reg.publish(t.registrations, dumps(registration("r-after-junk")))
        [ok] = await reg.wait_for(lambda r: json_on(r, t.reply("r-after-junk")))
        assert ok["accepted"] is True
        assert run.upstream.intake.unanswerable == 7
        assert len(await run.store.list_inspections()) == 1
        # A refused request_id keeps its refusal.
        await reg.publish(t.registrations, planted[0].payload)
        again = await reg.wait_for(at_least(2, t.reply(planted[0].request_id)))
        assert again[0] == again[1]


async def test_poison_messages_are_refused_and_the_session_survives(
    broker: Broker, tmp_path: Path
) -> None:
    """Each of these once ended the MQTT session; redelivered, it ended it again."""
    async with (
        running_site(tmp_path, broker.url) as run,
        Listener(broker.url, f"linectl/{SITE}/#", "registry-poison") as reg,
    ):
        t = run.topics
        sessions = run.upstream.link.connections
        good = registration("r-poison-0")["vehicle"]
        poison: dict[str, tuple[bytes, str, str]] = {
            "deep-big": (nested(100_000, "p-deep-big"), "payload_too_large", "(payload)"),
            "deep": (nested(30_000, "p-deep"), "invalid_json", "(payload)"),
            "fuel list": (
                dumps({**registration("p-fuel"), "vehicle": {**good, "fuel": ["petrol"]}}),
                "invalid_fuel",
                "vehicle.fuel",
            ),
            "class object": (
                dumps({**registration("p-class"), "vehicle": {**good, "vehicle_class": {}}}),
                "invalid_vehicle_class",
                "vehicle.vehicle_class",
            ),
            "type list": (
                dumps({**registration("p-type"), "inspection_type": ["new"]}),
                "invalid_inspection_type",
                "inspection_type",
            ),
            "huge mass": (
                dumps({**registration("p-mass"), "vehicle": {**good, "gross_mass_kg": 10**300}}),
                "invalid_mass",
                "vehicle.gross_mass_kg",
            ),
            # The reply quoted the code and could not be encoded as UTF-8: the
            # session ended unacknowledged, and the message came back for ever.
            "surrogate item": (
                json.dumps({**registration("p-surrogate"), "items": ["\ud800"]}).encode(),
                "invalid_items",
                "items",
            ),
            # 60 KB of escaped quotes in a string that never closes: once 30 s of
            # a blocked event loop in the nesting check.
            "escaped quotes": (
                b'{"request_id": "p-quotes", "x": "' + b'\\"' * 30_000,
                "invalid_json",
                "(payload)",
            ),
            "control char plate": (
                dumps({**registration("p-plate"), "vehicle": {**good, "plate": "鲁G1\x0034"}}),
                "invalid_plate",
                "vehicle.plate",
            ),
        }
        for payload, _, _ in poison.values():
            await reg.publish(t.registrations, payload)
        await reg.publish(t.registrations, dumps(registration("r-after-poison")))
        [ok] = await reg.wait_for(lambda r: json_on(r, t.reply("r-after-poison")))
        assert ok["accepted"] is True
        for name, (payload, code, field) in poison.items():
            rid = decode(payload)[1]
            assert rid is not None, name
            [reply] = json_on(reg, t.reply(rid))
            assert reply["accepted"] is False, name
            assert (reply["error"]["code"], reply["error"]["field"]) == (code, field), name
            assert len(reply["error"]["message"]) < 300, "a refusal never quotes the attack"
        assert run.upstream.link.connections == sessions, "no message ended the session"
        assert len(await run.store.list_inspections()) == 1


# --- a hundred registrations --------------------------------------------------------------


async def test_hundred_registrations_ten_malformed(broker: Broker, tmp_path: Path) -> None:
    # CPU-bound (the simulated brake testers): more lines or a higher scale gain nothing on 2 cores.
    async with running_site(tmp_path, broker.url, lines=3, time_scale=250.0) as run:
        sim = RegistrySim(
            lambda: connect_params(MqttConfig(url=broker.url), "registry-sim-test"),
            run.topics,
            vehicles=100,
            malformed=10,
            seed=11,
        )
        report = await sim.run(timeout_s=120)
        assert report.error is None, report.error
        bad = [q for q in report.requests if q.expect_field]
        assert len(bad) == 10
        for q in bad:
            err = report.got.replies[q.request_id]["error"]
            assert err["field"] == q.expect_field, (q.malformation, err)
        accepted = report.accepted()
        assert len(accepted) == 90
        assert not report.missing_results() and not report.unexpected()
        for rid, iid in accepted.items():
            [res] = report.results_of(iid)
            assert res["request_id"] == rid and res["revision"] == 1
            assert res["verdict"] in ("pass", "fail", "incomplete")
        assert report.ok
        await asyncio.wait_for(run.upstream.publisher.drained(), 10)
        assert len(await run.store.list_inspections(limit=500)) == 90


# --- a broker outage ------------------------------------------------------------------------


async def test_broker_outage_mid_run_loses_nothing(broker: Broker, tmp_path: Path) -> None:
    n = 6
    async with (
        running_site(tmp_path, broker.url, lines=2) as run,
        Listener(broker.url, f"linectl/{SITE}/#", "registry-4") as reg,
    ):
        t = run.topics
        with run.site.events.subscribe({"completed"}) as completions:
            for i in range(n):
                req = registration(f"r-out-{i}", plate=f"鲁G1234{i}")
                await reg.publish(t.registrations, dumps(req))
            await reg.wait_for(lambda r: all(r.on(t.reply(f"r-out-{i}")) for i in range(n)) or None)
            await completions.get()
            await asyncio.to_thread(broker.stop)
            # Inspections complete while the broker is away: their results wait.
            done_while_down = 0
            while done_while_down < 2:
                await asyncio.wait_for(completions.get(), 30)
                done_while_down += 1
            assert await run.store.outbox_backlog() >= 1
            assert not run.upstream.link.connected.is_set()
            await asyncio.to_thread(broker.start)

        ids = [json_on(reg, t.reply(f"r-out-{i}"))[0]["inspection_id"] for i in range(n)]
        await reg.wait_for(lambda r: all(r.on(t.result(iid)) for iid in ids) or None, within_s=60)
        for iid in ids:
            revisions = {p["revision"] for p in json_on(reg, t.result(iid))}
            assert revisions == {1}
        # The broker forwards a result before it acknowledges it: the last marks follow.
        await asyncio.wait_for(run.upstream.publisher.drained(), 10)
        assert run.upstream.link.connections >= 2
