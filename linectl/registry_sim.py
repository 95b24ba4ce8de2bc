"""`linectl registry-sim`: a stand-in for the upstream registry, over MQTT.

It registers a generated vehicle population with a site (sim.vehicles, the
same seeded population as the simulator's, so a demo that knows those plates
simulates their faults), optionally with malformed requests planted among
them, each built to break exactly one field. It collects the replies and the
results and prints what arrived, what was refused (naming the field, and
whether that is the field the request was built to break) and what is
missing. Exit 0 when every request got the expected reply and every accepted
one its result; 1 otherwise; 2 when the broker refuses the login.

It behaves as mqtt.md asks of a registry: a persistent session (one client
id per run, clean session off) so nothing published while it is away from
the broker is lost, reconnecting like the daemon does, and dropping result
duplicates by (inspection_id, revision). Before registering it reads the
site's retained line status and asks only for items of the station kinds
the site's lines have, as a registry that knows the station would.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import aiomqtt

from linectl.cli import CliError
from linectl.config import ConfigError, MqttConfig
from linectl.items import STATION_OF_ITEM, derive_items
from linectl.upstream.connection import Backoff, ConnectParams, Link, connect_params
from linectl.upstream.publisher import to_json
from linectl.upstream.topics import MAX_REGISTRATION_BYTES, Topics
from linectl.vehicle import Vehicle, vin_check_digit
from sim.vehicles import Population

log = logging.getLogger(__name__)

Mutation = Callable[[dict[str, Any], Vehicle], None]
RESEND_S = 15.0  # real seconds before an unanswered registration is sent again


def _bad_check_digit(req: dict[str, Any], v: Vehicle) -> None:
    vin = v.vin
    wrong = "1" if vin_check_digit(vin) != "1" else "2"
    req["vehicle"]["vin"] = vin[:8] + wrong + vin[9:]


def _vin_letter_o(req: dict[str, Any], v: Vehicle) -> None:
    req["vehicle"]["vin"] = "O" + v.vin[1:]


def _set(path: str, value: Any) -> Mutation:
    def mutate(req: dict[str, Any], v: Vehicle) -> None:
        *parents, key = path.split(".")
        target = req
        for p in parents:
            target = target[p]
        target[key] = value

    return mutate


def _parking_beyond(req: dict[str, Any], v: Vehicle) -> None:
    req["vehicle"]["parking_axles"] = [v.axles + 1]


def _gross_below_curb(req: dict[str, Any], v: Vehicle) -> None:
    req["vehicle"]["gross_mass_kg"] = v.curb_mass_kg - 100


def _misfit_items(req: dict[str, Any], v: Vehicle) -> None:
    req["items"] = [f"B{v.axles + 1}"]  # a brake item for an axle the vehicle lacks


def _no_vehicle(req: dict[str, Any], v: Vehicle) -> None:
    del req["vehicle"]


def _oversized(req: dict[str, Any], v: Vehicle) -> None:
    req["note"] = "x" * (MAX_REGISTRATION_BYTES + 1)


# (kind, the field its refusal must name, how to break a good request)
MALFORMATIONS: tuple[tuple[str, str, Mutation], ...] = (
    ("vin check digit", "vehicle.vin", _bad_check_digit),
    ("vin letter O", "vehicle.vin", _vin_letter_o),
    ("plate", "vehicle.plate", _set("vehicle.plate", "XY12345")),
    ("vehicle class", "vehicle.vehicle_class", _set("vehicle.vehicle_class", "M9")),
    ("fuel", "vehicle.fuel", _set("vehicle.fuel", "coal")),
    ("axles", "vehicle.axles", _set("vehicle.axles", 7)),
    ("parking axles", "vehicle.parking_axles", _parking_beyond),
    ("gross below curb", "vehicle.gross_mass_kg", _gross_below_curb),
    ("curb mass", "vehicle.curb_mass_kg", _set("vehicle.curb_mass_kg", 0)),
    ("headlamp system", "vehicle.headlamp_system", _set("vehicle.headlamp_system", 3)),
    ("unknown item", "items", _set("items", ["B1", "Z9"])),
    ("item misfit", "items", _misfit_items),
    ("inspection type", "inspection_type", _set("inspection_type", "annual")),
    ("no vehicle", "vehicle", _no_vehicle),
    ("oversized", "(payload)", _oversized),
)


@dataclass
class Request:
    request_id: str
    payload: bytes
    plate: str
    malformation: str | None = None
    expect_field: str | None = None  # the field a malformed request's refusal must name


@dataclass
class Collected:
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    # inspection_id -> revision -> the result payload
    results: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    duplicates: int = 0
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    unreadable: int = 0


@dataclass
class Report:
    requests: list[Request]
    got: Collected
    elapsed_s: float
    error: str | None = None

    def accepted(self) -> dict[str, str]:
        """request_id -> inspection_id of the accepted ones."""
        return {
            rid: r["inspection_id"]
            for rid, r in self.got.replies.items()
            if r.get("accepted") and isinstance(r.get("inspection_id"), str)
        }

    def results_of(self, inspection_id: str) -> list[dict[str, Any]]:
        """Its results, one per revision, oldest first."""
        revisions = self.got.results.get(inspection_id, {})
        return [revisions[r] for r in sorted(revisions)]

    def missing_replies(self) -> list[Request]:
        return [q for q in self.requests if q.request_id not in self.got.replies]

    def missing_results(self) -> list[tuple[Request, str]]:
        acc = self.accepted()
        return [
            (q, acc[q.request_id])
            for q in self.requests
            if q.request_id in acc and not self.results_of(acc[q.request_id])
        ]

    def unexpected(self) -> list[tuple[Request, str]]:
        """Replies other than planned: a good request refused, a malformed one
        accepted, or refused naming another field."""
        out = []
        for q in self.requests:
            r = self.got.replies.get(q.request_id)
            if r is None:
                continue
            err = r.get("error") or {}
            if q.expect_field is None and not r.get("accepted"):
                out.append(
                    (q, f"refused: {err.get('code')} {err.get('field')}: {err.get('message')}")
                )
            elif q.expect_field is not None and r.get("accepted"):
                out.append((q, f"accepted although built with a bad {q.malformation}"))
            elif q.expect_field is not None and err.get("field") != q.expect_field:
                out.append((q, f"refused naming {err.get('field')}, not {q.expect_field}"))
        return out

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and not self.missing_replies()
            and not self.missing_results()
            and not self.unexpected()
        )

    def render(self, out: TextIO) -> None:
        reqs = self.requests
        acc = self.accepted()
        refused = [q for q in reqs if q.request_id in self.got.replies and q.request_id not in acc]
        finals = [self.results_of(iid)[-1] for iid in acc.values() if self.results_of(iid)]
        verdicts: dict[str, int] = {}
        for p in finals:
            verdicts[str(p.get("verdict"))] = verdicts.get(str(p.get("verdict")), 0) + 1
        print(f"\nregistry-sim: {len(reqs)} requests in {self.elapsed_s:.1f} s", file=out)
        print(
            f"  replies: {sum(q.request_id in self.got.replies for q in reqs)}/{len(reqs)} "
            f"({len(acc)} accepted, {len(refused)} refused)",
            file=out,
        )
        print(
            f"  results: {len(finals)}/{len(acc)} arrived"
            + (
                " (" + ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())) + ")"
                if finals
                else ""
            )
            + (f", {self.got.duplicates} duplicate(s) dropped" if self.got.duplicates else ""),
            file=out,
        )
        if refused:
            print("  refused:", file=out)
            for q in refused:
                err = self.got.replies[q.request_id].get("error") or {}
                planted = (
                    "as planted"
                    if q.expect_field == err.get("field")
                    else f"planted: {q.malformation or 'nothing'}"
                )
                print(
                    f"    {q.request_id}  {err.get('code', '?'):<24} {err.get('field', '?'):<24} {planted}",
                    file=out,
                )
        for q, why in self.unexpected():
            print(f"  UNEXPECTED {q.request_id} ({q.plate}): {why}", file=out)
        missing = [f"reply to {q.request_id} ({q.plate})" for q in self.missing_replies()] + [
            f"result of {iid} ({q.request_id}, {q.plate})" for q, iid in self.missing_results()
        ]
        print(f"  missing: {len(missing) or 'nothing'}", file=out)
        for m in missing:
            print(f"    {m}", file=out)
        if self.error:
            print(f"  error: {self.error}", file=out)


def build_requests(
    n: int,
    malformed: int,
    seed: int,
    tag: str,
    station_kinds: set[str] | None = None,
) -> list[Request]:
    """`n` requests, `malformed` of them broken (one field each, kinds in turn,
    spread evenly through the run); items restricted to `station_kinds` when given."""
    population = Population(seed=seed)
    bad_at = {int((i + 0.5) * n / malformed) for i in range(malformed)} if malformed else set()
    out: list[Request] = []
    k = 0
    for i in range(n):
        v = population.next().vehicle
        req: dict[str, Any] = {
            "request_id": f"rs-{tag}-{i + 1:04d}",
            "inspection_type": "periodic",
            "vehicle": v.to_dict(),
        }
        if station_kinds is not None:
            wanted = [c for c in derive_items(v) if STATION_OF_ITEM[c] in station_kinds]
            if wanted != derive_items(v):
                req["items"] = wanted
        q = Request(req["request_id"], b"", v.plate)
        if i in bad_at:
            kind, expect, mutate = MALFORMATIONS[k % len(MALFORMATIONS)]
            k += 1
            req = copy.deepcopy(req)
            mutate(req, v)
            q.malformation, q.expect_field = kind, expect
        q.payload = to_json(req)
        out.append(q)
    return out


class RegistrySim:
    def __init__(
        self,
        params: Callable[[], ConnectParams],
        topics: Topics,
        *,
        vehicles: int,
        malformed: int = 0,
        seed: int = 1,
        out: TextIO | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.params = params
        self.topics = topics
        self.vehicles = vehicles
        self.malformed = malformed
        self.seed = seed
        self.out = out
        self.resend_s = RESEND_S
        self.tag = f"{time.strftime('%H%M%S')}{secrets.token_hex(2)}"
        self.requests: list[Request] = []
        self.got = Collected()
        self._sent: set[str] = set()
        self._done = asyncio.Event()
        self._refused = asyncio.Event()
        self.link = Link(
            "registry-sim",
            params,
            self._session,
            suffix=f"-{self.tag}",
            clean_session=False,
            backoff=backoff,
        )
        self.link.on_failure = self._failed

    def _say(self, text: str) -> None:
        if self.out is not None:
            print(text, file=self.out, flush=True)

    def _failed(self, message: str, login_refused: bool) -> None:
        if login_refused:
            self._refused.set()

    async def run(self, timeout_s: float) -> Report:
        t0 = time.monotonic()
        error = None
        task = asyncio.create_task(self.link.run(), name="registry-sim")
        try:
            waits = [asyncio.ensure_future(e.wait()) for e in (self._done, self._refused)]
            try:
                await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
            if self._refused.is_set():
                error = self.link.last_error
            elif not self._done.is_set():
                error = f"gave up after {timeout_s:g} s" + (
                    f"; last connection problem: {self.link.last_error}"
                    if self.link.last_error
                    else ""
                )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self._forget_session()
        return Report(self.requests, self.got, time.monotonic() - t0, error)

    async def _forget_session(self) -> None:
        """Connect once with a clean session: the broker drops this run's queue."""
        with contextlib.suppress(Exception):
            params = self.params()
            async with params.client(suffix=f"-{self.tag}", clean_session=True):
                pass

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.subscribe(self.topics.all_status, qos=1)
        await client.subscribe(self.topics.all_replies, qos=1)
        await client.subscribe(self.topics.all_results, qos=1)
        # Retained statuses arrive right after their SUBACK, so by now they are queued.
        while len(client.messages):
            self._receive(await anext(client.messages))
        if not self.requests:
            self._plan()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._send(client))
            async for message in client.messages:
                self._receive(message)

    def _plan(self) -> None:
        kinds: set[str] | None = None
        online = {ln: s for ln, s in self.got.status.items() if s.get("online")}
        if online:
            kinds = {st.get("kind") for s in online.values() for st in s.get("stations") or []}
            kinds.discard(None)
            self._say(
                "site lines online: "
                + ", ".join(
                    f"{ln} ({', '.join(str(st.get('kind')) for st in s.get('stations') or [])})"
                    for ln, s in sorted(online.items())
                )
            )
        else:
            self._say("no line status seen (site offline?): asking for every item of each vehicle")
        self.requests = build_requests(
            self.vehicles, self.malformed, self.seed, self.tag, kinds or None
        )
        self._check_done()

    async def _send(self, client: aiomqtt.Client) -> None:
        for q in self.requests:
            if q.request_id in self._sent:
                continue
            await client.publish(self.topics.registrations, q.payload, qos=1)
            self._sent.add(q.request_id)
        self._say(f"{len(self._sent)} registrations sent")
        # At least once, like the daemon: a request nobody answered goes again
        # (same request_id, so never a second inspection).
        while True:
            await asyncio.sleep(self.resend_s)
            unanswered = [q for q in self.requests if q.request_id not in self.got.replies]
            if not unanswered:
                return
            for q in unanswered:
                await client.publish(self.topics.registrations, q.payload, qos=1)
            self._say(f"{len(unanswered)} unanswered registration(s) sent again")

    def _receive(self, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        try:
            doc = json.loads(message.payload) if isinstance(message.payload, bytes) else None
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            self.got.unreadable += 1
            return
        levels = topic.split("/")
        if topic.endswith("/status"):
            self.got.status[levels[-2]] = doc
            if not doc.get("online"):
                self._say(f"line {levels[-2]} offline")
        elif topic.endswith("/reply"):
            rid = levels[-2]
            first = rid not in self.got.replies
            self.got.replies[rid] = doc
            if first and not doc.get("accepted"):
                err = doc.get("error") or {}
                self._say(
                    f"refused  {rid}  {err.get('code')} {err.get('field')}: {err.get('message')}"
                )
        elif "/results/" in topic:
            iid, rev = str(doc.get("inspection_id")), int(doc.get("revision") or 0)
            revisions = self.got.results.setdefault(iid, {})
            if rev in revisions:
                self.got.duplicates += 1  # at least once: dropped by (inspection_id, revision)
            else:
                revisions[rev] = doc
                plate = (doc.get("vehicle") or {}).get("plate", "")
                self._say(f"result   {iid} rev {rev}  {plate}  {doc.get('verdict')}")
        self._check_done()

    def _check_done(self) -> None:
        if not self.requests:
            return
        report = Report(self.requests, self.got, 0.0)
        if not report.missing_replies() and not report.missing_results():
            self._done.set()


def cli(args: Any) -> int:
    cfg = MqttConfig(
        url=args.mqtt,
        topic_prefix=args.prefix,
        username=args.username,
        password_env=args.password_env,
        password_file=args.password_file,
        ca_file=args.ca_file,
    )
    if args.malformed > args.vehicles:
        raise CliError("--malformed cannot exceed --vehicles (malformed ones are among them)", 2)
    client_id = f"registry-sim-{args.site}"
    try:
        params = connect_params(cfg, client_id)
    except ConfigError as e:
        raise CliError(str(e), 2) from None
    topics = Topics(args.prefix, args.site)
    print(
        f"registry-sim: {args.vehicles} registration(s) ({args.malformed} malformed) "
        f"for site {args.site} at {params.where()}",
        flush=True,
    )
    sim = RegistrySim(
        lambda: connect_params(cfg, client_id),
        topics,
        vehicles=args.vehicles,
        malformed=args.malformed,
        seed=args.seed,
        out=sys.stdout,
    )
    report = asyncio.run(sim.run(args.timeout))
    if report.error and sim.link.login_refused:
        raise CliError(report.error, 2)
    report.render(sys.stdout)
    return 0 if report.ok else 1
