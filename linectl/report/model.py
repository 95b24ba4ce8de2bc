"""The inspection report as data: what it says, built from the store, in no language yet.

A finished inspection's report is its latest published result document
(the bytes its verification code covers), laid out: every item with every
value, its limits and their source, and the raw curves and readings of the
attempts that document names, taken from the store for the plots. An
inspection that has not finished is reported from the store's attempts as
they stand, marked provisional, with no overall verdict and no code: it has
neither yet. Words are catalogue msgids (`Msg`), translated when rendered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from linectl.i18n import N_
from linectl.items import sort_items
from linectl.report.fields import (
    EMISSION_METHODS,
    ENUM_VALUES,
    FieldSpec,
    LimitSpec,
    Msg,
    Text,
    fields_of,
    item_name,
    match,
    reason_text,
)
from linectl.report.published import Published, published_results, retested_items
from linectl.stations.limits import Limits
from linectl.store.records import (
    UNFINISHED_STATES,
    AttemptRecord,
    InspectionRecord,
    default_result_document,
)
from linectl.store.repo import Store
from linectl.vehicle import Vehicle

DEFAULT_PERIOD_MS = 10  # the brake tester's 100 Hz, when a curve gives no period


@dataclass(frozen=True)
class Row:
    label: Text
    value: Text | None  # None: no value (a limit printed alone)
    unit: str | None = None  # msgid
    limit: Text | None = None
    source: str | None = None
    group: str | None = None  # msgid of the heading above the row
    key: str = ""


@dataclass(frozen=True)
class BrakePlot:
    """One brake run: both wheels' force (N) against time (s)."""

    axle: int
    parking: bool
    period_s: float
    left_n: np.ndarray
    right_n: np.ndarray
    drag_window_s: tuple[float, float]
    apply_s: float | None  # when the APPLY prompt was shown; None: not recorded


@dataclass(frozen=True)
class IdlePlot:
    """One phase of a two-speed idle test: engine speed per reading, and its band."""

    phase: str  # "high_idle" or "idle"
    rpm: np.ndarray
    band: tuple[float, float] | None
    settle: int  # readings ignored before the measured ones
    measure: int


@dataclass(frozen=True)
class PeaksPlot:
    """The measured peaks of a free-acceleration test, their mean and the limit, m^-1."""

    peaks: list[float]
    mean: float | None
    limit: float | None


Plot = BrakePlot | IdlePlot | PeaksPlot


@dataclass(frozen=True)
class ItemSection:
    code: str
    name: Msg
    verdict: str  # pass, fail, not_judged; "pending" before a provisional report's attempt
    attempt: int  # 0: never tested
    station: str | None
    device: str | None
    reason: Text | None
    rows: list[Row]
    plots: list[Plot] = field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        """The standards its limits come from, each once, in the order they appear."""
        return list(dict.fromkeys(r.source for r in self.rows if r.source))


@dataclass(frozen=True)
class Revision:
    revision: int
    published_at: datetime
    verdict: str | None
    retested: list[str]  # items measured again in this revision (all, in the first)
    code: str


@dataclass(frozen=True)
class DriverLine:
    id: str
    name: str | None
    drawn_at: datetime | None
    candidates: list[str]
    draw_seq: int | None


@dataclass(frozen=True)
class Report:
    inspection_id: str
    site: str
    site_name: str | None
    line: str | None
    inspection_type: str
    state: str
    provisional: bool
    verdict: str | None  # None on a provisional report (and an unfinished one)
    revision: int  # of the published result shown; 0 when none is
    vehicle: Vehicle
    proxy_driver: DriverLine | None
    registered_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    aborted: str | None
    items: list[ItemSection]
    history: list[Revision]
    verification_code: str | None
    limit_set: str | None

    def item(self, code: str) -> ItemSection:
        return next(i for i in self.items if i.code == code)


# -- formatting values ----------------------------------------------------------------


def number(v: float | int) -> str:
    """A number as published: integers without a decimal point, others as short as
    they are exact (values were rounded to their precision before publishing)."""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int) or float(v).is_integer():
        return str(int(v))
    return repr(float(v))


def value_text(v: Any) -> Text:
    if isinstance(v, bool):
        return Msg(N_("yes")) if v else Msg(N_("no"))
    if isinstance(v, int | float):
        return number(v)
    if isinstance(v, str):
        return Msg(ENUM_VALUES[v]) if v in ENUM_VALUES else v
    if isinstance(v, list | tuple):
        return ", ".join(number(x) if isinstance(x, int | float) else str(x) for x in v)
    return "-" if v is None else str(v)


def _limit_text(spec: LimitSpec, limits: dict[str, Any]) -> Text | None:
    vals = [limits.get(k) for k in spec.keys]
    if any(v is None or isinstance(v, bool) for v in vals):
        return None
    if spec.kind == "min":
        return f"≥ {number(vals[0])}"
    if spec.kind == "max":
        return f"≤ {number(vals[0])}"
    if spec.kind == "range":
        return f"{number(vals[0])} – {number(vals[1])}"
    return Msg(
        N_("left ≤ %(left)s, right ≤ %(right)s"),
        {"left": number(vals[0]), "right": number(vals[1])},
    )


# -- items ------------------------------------------------------------------------------


def _rows(code: str, item: dict[str, Any], limits: Limits | None) -> list[Row]:
    values: dict[str, Any] = dict(item.get("values") or {})
    item_limits: dict[str, Any] = dict(item.get("limits") or {})
    limit_set = str(values.get("limit_set") or "a")
    placed: list[tuple[int, int, Row]] = []
    used: set[str] = set()

    def source(spec: FieldSpec) -> str | None:
        if spec.limit is None or limits is None:
            return None
        return limits.source(spec.limit.table.format(set=limit_set))

    def row(spec: FieldSpec, label: Text, value: Any, key: str) -> Row:
        limit = _limit_text(spec.limit, item_limits) if spec.limit else None
        if limit is not None and spec.limit is not None:
            used.update(spec.limit.keys)
        return Row(
            label=label,
            value=None if value is None else value_text(value),
            unit=spec.unit,
            limit=limit,
            source=source(spec) if limit is not None else None,
            group=spec.group,
            key=key,
        )

    for n, (key, v) in enumerate(values.items()):
        found = match(code, key)
        if found is None:
            placed.append((10_000, n, Row(label=key, value=value_text(v), key=key)))
            continue
        order, spec, args = found
        placed.append((order * 100 + args.get("n", 0), n, row(spec, Msg(spec.label, args), v, key)))
    # A limit whose value is missing (a not-judged item) is still printed.
    for order, spec in enumerate(fields_of(code)):
        if (
            spec.limit
            and "(" not in spec.pattern
            and not used.intersection(spec.limit.keys)
            and all(k in item_limits for k in spec.limit.keys)
        ):
            placed.append((order * 100, 0, row(spec, Msg(spec.label), None, spec.pattern)))
    for k in item_limits:
        if k not in used and not any(s.limit and k in s.limit.keys for s in fields_of(code)):
            placed.append(
                (20_000, 0, Row(label=k, value=None, limit=number(item_limits[k]), key=k))
            )
    return [r for _, _, r in sorted(placed, key=lambda p: (p[0], p[1]))]


def _period_ms(curve: str | None) -> int:
    """The sample period of an upstream curve "P@L#R$...", P in 10 ms units."""
    if curve and "@" in curve:
        head = curve.split("@", 1)[0]
        if head.isdigit() and int(head) > 0:
            return int(head) * 10
    return DEFAULT_PERIOD_MS


def _brake_plots(
    code: str,
    item: dict[str, Any],
    raw: dict[str, np.ndarray],
    vehicle: Vehicle,
    limits: Limits | None,
) -> list[BrakePlot]:
    values = item.get("values") or {}
    period_s = _period_ms(item.get("curve")) / 1000.0
    window = (
        (limits.brake.drag_window_start_s, limits.brake.drag_window_end_s)
        if limits is not None
        else (0.5, 1.5)
    )
    runs: list[tuple[int, np.ndarray, Any]] = []
    if code == "B0":
        for key, arr in raw.items():
            if key.startswith("curve_axle") and key[10:].isdigit():
                axle = int(key[10:])
                runs.append((axle, arr, values.get(f"axle{axle}_apply_s")))
        if "curve" in raw:
            named = [
                int(m.group(1)) for k in values if (m := re.fullmatch(r"axle(\d+)_left_max_n", k))
            ]
            axle = named[0] if named else (vehicle.parking_axles or (0,))[0]
            runs.append((axle, raw["curve"], values.get(f"axle{axle}_apply_s")))
    elif "curve" in raw:
        runs.append((int(code[1:]), raw["curve"], values.get("apply_s")))
    plots = []
    for axle, arr, apply_s in sorted(runs, key=lambda r: r[0]):
        a = np.asarray(arr)
        if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] < 2:
            continue
        plots.append(
            BrakePlot(
                axle=axle,
                parking=code == "B0",
                period_s=period_s,
                left_n=a[:, 0].astype(float) * 10.0,
                right_n=a[:, 1].astype(float) * 10.0,
                drag_window_s=window,
                apply_s=float(apply_s) if isinstance(apply_s, int | float) else None,
            )
        )
    return plots


def _emission_plots(
    item: dict[str, Any], raw: dict[str, np.ndarray], limits: Limits | None
) -> list[Plot]:
    values = item.get("values") or {}
    item_limits = item.get("limits") or {}
    plots: list[Plot] = []
    if values.get("method") == "two_speed_idle":
        settle = limits.emission.settle_readings if limits else 15
        measure = limits.emission.measure_readings if limits else 30
        for phase in ("high_idle", "idle"):
            arr = raw.get(phase)
            if arr is None or np.asarray(arr).ndim != 2 or len(arr) == 0:
                continue
            lo, hi = item_limits.get(f"{phase}_rpm_min"), item_limits.get(f"{phase}_rpm_max")
            band = (float(lo), float(hi)) if lo is not None and hi is not None else None
            plots.append(
                IdlePlot(phase, np.asarray(arr)[:, 0].astype(float), band, settle, measure)
            )
    elif values.get("method") == "free_acceleration":
        peaks = raw.get("peaks_k")
        ks = (
            [float(k) for k in np.asarray(peaks).ravel()]
            if peaks is not None
            else [float(v) for k, v in sorted(values.items()) if k.startswith("peak")]
        )
        if ks:
            mean = values.get("k_per_m")
            lim = item_limits.get("k_per_m")
            plots.append(
                PeaksPlot(
                    ks,
                    float(mean) if mean is not None else None,
                    float(lim) if lim is not None else None,
                )
            )
    return plots


def _section(
    item: dict[str, Any],
    attempt: AttemptRecord | None,
    raw: dict[str, np.ndarray],
    vehicle: Vehicle,
    limits: Limits | None,
    pending: bool,
) -> ItemSection:
    code = str(item["code"])
    values = item.get("values") or {}
    method = values.get("method") if code == "EX" else None
    if code == "EX" and method is None:
        method = "free_acceleration" if vehicle.fuel == "diesel" else "two_speed_idle"
    plots: list[Plot] = []
    if code.startswith("B") and code != "BT":
        plots = list(_brake_plots(code, item, raw, vehicle, limits))
    elif code == "EX":
        plots = _emission_plots(item, raw, limits)
    return ItemSection(
        code=code,
        name=item_name(
            code,
            headlamp_system=vehicle.headlamp_system,
            method=method if method in EMISSION_METHODS else None,
        ),
        verdict="pending" if pending else str(item.get("verdict") or "not_judged"),
        attempt=int(item.get("attempt") or 0),
        station=item.get("station"),
        device=item.get("device"),
        reason=None if pending else reason_text(item.get("reason")),
        rows=_rows(code, item, limits),
        plots=plots,
    )


def _driver(doc: dict[str, Any], names: dict[str, str]) -> DriverLine | None:
    pd = doc.get("proxy_driver")
    if not isinstance(pd, dict) or not pd.get("id"):
        return None
    drawn = pd.get("assigned_at")
    return DriverLine(
        id=str(pd["id"]),
        name=names.get(str(pd["id"])) or None,
        drawn_at=datetime.fromisoformat(drawn.replace("Z", "+00:00")) if drawn else None,
        candidates=[str(c) for c in pd.get("candidates") or []],
        draw_seq=pd.get("draw_seq"),
    )


def build_report(
    store: Store,
    inspection_id: str,
    *,
    limits: Limits | None = None,
    site_name: str | None = None,
) -> Report:
    """The report of one inspection. `NotFound` (linectl.store.repo) when there is none.
    `limits` gives the sources printed beside the limits and the drag window drawn
    on the brake curves; without it the sources are left blank."""
    record: InspectionRecord = store.inspection(inspection_id)
    history = published_results(store, inspection_id)
    provisional = record.state in UNFINISHED_STATES
    latest: Published | None = history[-1] if history and not provisional else None
    doc = latest.document if latest is not None else default_result_document(record)

    by_number = {(a.item_code, a.attempt_no): a for a in record.attempts}
    items: list[ItemSection] = []
    planned = sort_items([*record.items, *(str(i.get("code")) for i in doc.get("items", []))])
    docs = {str(i.get("code")): i for i in doc.get("items", []) if isinstance(i, dict)}
    for code in planned:
        item = docs.get(code) or {"code": code, "attempt": 0, "verdict": "not_judged"}
        attempt = by_number.get((code, int(item.get("attempt") or 0)))
        raw = store.attempt_raw(attempt.id) if attempt is not None and attempt.raw_bytes else {}
        pending = provisional and attempt is None
        items.append(_section(item, attempt, raw, record.vehicle, limits, pending))

    names: dict[str, str] = {}
    if record.line:
        names = {d.id: d.name for d in store.proxy_drivers(record.line)}
    revisions = [
        Revision(p.revision, p.published_at, p.verdict, retested, p.code)
        for p, retested in zip(history, retested_items(history), strict=True)
    ]
    ex = docs.get("EX", {}).get("values") or {}
    return Report(
        inspection_id=record.id,
        site=record.site,
        site_name=site_name,
        line=record.line,
        inspection_type=str(record.inspection_type),
        state=str(record.state),
        provisional=provisional,
        verdict=None if provisional else (latest.verdict if latest else _verdict(record)),
        revision=latest.revision if latest else 0,
        vehicle=record.vehicle,
        proxy_driver=_driver(doc, names),
        registered_at=record.created_at,
        started_at=record.started_at,
        finished_at=None if provisional else record.finished_at,
        aborted=record.abort_reason if str(record.state) == "aborted" else None,
        items=items,
        history=revisions,
        verification_code=latest.code if latest else None,
        limit_set=ex.get("limit_set") if isinstance(ex, dict) else None,
    )


def _verdict(record: InspectionRecord) -> str | None:
    return None if record.verdict is None else str(record.verdict)
