"""The inspection report, from inspections run through the simulator: every item and
value shown, a plot per brake run, the PDF's text, the verification code against the
published bytes, the revision history, a provisional report, and `linectl report`."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import io
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from site_fixtures import running_site

from linectl.cli import main
from linectl.config import DEFAULT_LIMITS_DIR, SiteConfig, load_site_config
from linectl.items import ItemResult, derive_items
from linectl.report import render_report, render_report_async, verification_code
from linectl.report.model import build_report
from linectl.stations.limits import load_limits
from linectl.store.records import InspectionRecord, InspectionState
from linectl.store.repo import AsyncStore, NotFound, Store
from linectl.vehicle import InspectionType
from sim.vehicles import Population, SimFault, SimVehicle, apply_fault

REPO = Path(__file__).resolve().parent.parent
CHINESE_DRIVERS = ("王伟", "李娜", "张敏", "刘洋")
RETESTED = ["B1", "B2", "BT"]


@dataclass
class Inspected:
    url: str
    failed: str  # petrol car with a weak rear axle, then "retested" (revision 2)
    diesel: str  # one revision, free acceleration
    running: str  # in progress: brake items measured, the rest to come


def _car(pop: Population, fuel: str, cls: str = "M1") -> SimVehicle:
    while True:
        sv = pop.next()
        v = sv.vehicle
        if v.fuel == fuel and v.vehicle_class == cls and v.headlamp_system == 2:
            return sv


def _chinese_names(cfg: SiteConfig) -> SiteConfig:
    line = cfg.lines[0]
    drivers = [
        d.model_copy(update={"name": CHINESE_DRIVERS[i % len(CHINESE_DRIVERS)]})
        for i, d in enumerate(line.proxy_drivers)
    ]
    return cfg.model_copy(update={"lines": [line.model_copy(update={"proxy_drivers": drivers})]})


async def _inspect(tmp: Path) -> Inspected:
    pop = Population(seed=11, fault_rate=0.0)
    petrol, diesel = _car(pop, "petrol"), _car(pop, "diesel", "N1")
    healthy_axles = copy.deepcopy(petrol.axles)
    apply_fault(petrol, SimFault("weak_axle", 2))
    # Time scale 50, not 100: a loaded machine's lag costs half the simulated seconds,
    # so fewer brake runs are refused for a late APPLY prompt (guide_late).
    async with running_site(tmp, adjust=_chinese_names, time_scale=50) as rig:
        first, d = await rig.inspect_all([petrol, diesel])
        # The owner has the brake repaired and comes back: the repaired car is measured
        # on the line, and its attempts become the next ones of the first inspection,
        # which is then published again as revision 2 (what a retest does).
        petrol.axles, petrol.faults = healthy_axles, []
        (again,) = await rig.inspect_all([petrol], items=RETESTED)
        await _copy_attempts(rig.store, again, first.id)
        await rig.store.complete_inspection(first.id, at=rig.clock.wall())
        # The same car on the line once more, its brake station done, the rest to come:
        # an inspection in progress (a site stopped mid-station would abort it).
        running = await rig.store.create_inspection(
            site=first.site,
            vehicle=petrol.vehicle,
            inspection_type=InspectionType.PERIODIC,
            items=derive_items(petrol.vehicle),
            at=rig.clock.wall(),
            line=first.line,
        )
        await rig.store.set_state(running, InspectionState.IN_PROGRESS, rig.clock.wall())
        await _copy_attempts(rig.store, again, running)
    return Inspected(f"sqlite:///{tmp / 'site.db'}", first.id, d.id, running)


async def _copy_attempts(store: AsyncStore, source: InspectionRecord, target: str) -> None:
    """Record `source`'s attempts, as measured (values, curves), for inspection `target`."""
    for a in source.attempts:
        raw = await store.attempt_raw(a.id)
        await store.record_attempt(
            inspection_id=target,
            result=ItemResult(a.item_code, a.verdict, a.values, a.limits, a.reason, raw, a.curve),
            station=a.station,
            device=a.device,
            started_at=a.started_at,
            finished_at=a.finished_at,
        )


@pytest.fixture(scope="module")
def inspected(tmp_path_factory: pytest.TempPathFactory) -> Inspected:
    return asyncio.run(_inspect(tmp_path_factory.mktemp("report")))


@pytest.fixture(scope="module")
def store(inspected: Inspected) -> Any:
    s = Store(inspected.url)
    yield s
    s.close()


@pytest.fixture(scope="module")
def limits() -> Any:
    return load_limits(DEFAULT_LIMITS_DIR)


def html_of(store: Store, inspection_id: str, lang: str = "zh") -> str:
    data, ctype = render_report(store, inspection_id, lang, "html")
    assert ctype == "text/html; charset=utf-8"
    return data.decode("utf-8")


def sections(html: str) -> dict[str, str]:
    """Each item's section of the report, by item code."""
    parts = re.split(r'(?=<section class="item" id="item-)', html)
    out = {}
    for p in parts[1:]:
        code = re.match(r'<section class="item" id="item-(\w+)"', p)
        assert code
        out[code.group(1)] = p.split("</section>", 1)[0]
    return out


def row_of(section: str, key: str) -> str:
    m = re.search(rf'<tr data-key="{re.escape(key)}">(.*?)</tr>', section, re.S)
    assert m, f"no row {key}"
    return m.group(1)


def published(store: Store, inspection_id: str) -> list[Any]:
    return [r for r in store.outbox(inspection_id) if r.kind == "result"]


def shown(v: Any) -> str:
    """A published number as the report prints it, written independently of the report."""
    return f"{v:g}"


# -- content --------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_item_value_and_limit_of_the_published_result_is_in_the_report(
    store: Store, inspected: Inspected, lang: str
) -> None:
    for iid in (inspected.failed, inspected.diesel):
        doc = json.loads(published(store, iid)[-1].payload)
        html = html_of(store, iid, lang)
        found = sections(html)
        assert list(found) == [i["code"] for i in doc["items"]]
        for item in doc["items"]:
            sec = found[item["code"]]
            assert f'data-verdict="{item["verdict"]}"' in sec
            for key, v in item["values"].items():
                row = row_of(sec, key)
                if isinstance(v, int | float) and not isinstance(v, bool):
                    assert f">{shown(v)}<" in row, (item["code"], key, v, row)
            for key, v in item["limits"].items():
                assert re.search(rf"[>≥≤ –]{re.escape(shown(v))}\b", sec), (item["code"], key, v)
        assert doc["vehicle"]["plate"] in html and doc["vehicle"]["vin"] in html


def test_limits_name_the_standard_from_the_limits_files(store: Store, inspected: Inspected) -> None:
    lim = load_limits(DEFAULT_LIMITS_DIR)
    brake_source, smoke_source = lim.source("brake.rate"), lim.source("emission.free_acceleration")
    assert brake_source and smoke_source and brake_source != smoke_source
    found = sections(html_of(store, inspected.diesel))
    assert brake_source in found["B1"] and smoke_source in found["EX"]
    assert (
        lim.source("emission.two_speed_idle.a") in sections(html_of(store, inspected.failed))["EX"]
    )


def test_each_brake_run_has_its_plot_with_drag_window_and_apply(
    store: Store, inspected: Inspected, limits: Any
) -> None:
    plotted = 0
    for iid in (inspected.failed, inspected.diesel):
        rec = store.inspection(iid)
        report = build_report(store, iid, limits=limits)
        found = sections(html_of(store, iid))
        v = rec.vehicle
        latest = rec.latest_attempts()
        runs = 0  # brake runs with a curve: a run the station refused (guide_late) has none
        for n in range(1, v.axles + 1):
            has_curve = "curve" in store.attempt_raw(latest[f"B{n}"].id)
            plots = re.findall(r'<svg [^>]*class="plot brake-plot"[^>]*>', found[f"B{n}"])
            assert len(plots) == has_curve
            runs += has_curve
            if not has_curve:
                continue
            assert f'data-axle="{n}"' in plots[0]
            p = report.item(f"B{n}").plots[0]
            assert p.drag_window_s == (0.5, 1.5)
            # When the APPLY prompt was shown: no earlier than devices.md allows, no
            # later than the station trusts the run.
            assert p.apply_s is not None and 1.5 <= p.apply_s <= 4.0
            assert len(p.left_n) > 250 and p.left_n.max() > 1000
        parking = re.findall(r'class="plot brake-plot"[^>]*data-parking="true"', found["B0"])
        assert len(parking) == len(store.attempt_raw(latest["B0"].id))
        runs += len(parking)
        html = html_of(store, iid)
        assert html.count('class="plot brake-plot"') == runs
        assert html.count('class="curve left"') == html.count('class="curve right"') == runs
        assert html.count('class="marker"') >= runs  # an APPLY line on every run
        plotted += runs
    assert plotted  # a loaded machine may refuse some runs (guide_late), never all


def test_emission_plots_show_idle_phases_with_band_and_the_three_peaks(
    store: Store, inspected: Inspected
) -> None:
    petrol = sections(html_of(store, inspected.failed))["EX"]
    assert len(re.findall(r'class="plot idle-plot"', petrol)) == 2
    assert 'data-phase="high_idle"' in petrol and 'data-phase="idle"' in petrol
    diesel = sections(html_of(store, inspected.diesel))["EX"]
    assert 'class="plot peaks-plot" data-peaks="3"' in diesel
    assert diesel.count('class="peak"') == 3


def test_chinese_plate_and_driver_name_in_both_languages(
    store: Store, inspected: Inspected
) -> None:
    rec = store.inspection(inspected.diesel)
    name = dict(zip(("L1D1", "L1D2", "L1D3", "L1D4"), CHINESE_DRIVERS, strict=True))[
        rec.proxy_driver_id or ""
    ]
    for lang, title in (
        ("zh", "机动车安全技术检验报告"),
        ("en", "Motor vehicle safety inspection report"),
    ):
        html = html_of(store, inspected.diesel, lang)
        assert title in html and rec.plate in html and name in html


# -- verification and history -------------------------------------------------------------


def test_verification_code_is_sha256_of_the_published_payload(
    store: Store, inspected: Inspected
) -> None:
    for iid in (inspected.failed, inspected.diesel):
        rows = published(store, iid)
        html = html_of(store, iid)
        codes = [hashlib.sha256(r.payload.encode("utf-8")).hexdigest()[:12] for r in rows]
        assert f'data-code="{codes[-1]}"' in html
        assert verification_code(rows[-1].payload) == codes[-1]
        for c in codes:  # every revision's code in the history
            assert c in html


def test_revision_history_of_a_retested_inspection(store: Store, inspected: Inspected) -> None:
    rows = published(store, inspected.failed)
    assert [r.revision for r in rows] == [1, 2]
    first, second = (json.loads(r.payload) for r in rows)
    report = build_report(store, inspected.failed)
    assert report.revision == 2 and report.verdict == second["verdict"]
    assert [(h.revision, h.verdict) for h in report.history] == [
        (1, first["verdict"]),
        (2, second["verdict"]),
    ]
    assert report.history[0].retested == [i["code"] for i in first["items"]]
    assert report.history[1].retested == RETESTED
    assert report.item("B2").attempt == 2
    html = html_of(store, inspected.failed)
    assert 'data-revision="1"' in html and 'data-revision="2"' in html


# -- provisional and unknown ------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "word"), [("zh", "临时"), ("en", "PROVISIONAL")])
def test_an_unfinished_inspection_gives_a_provisional_report_without_verdict(
    store: Store, inspected: Inspected, lang: str, word: str
) -> None:
    rec = store.inspection(inspected.running)
    assert rec.state is InspectionState.IN_PROGRESS
    html = html_of(store, inspected.running, lang)
    assert word in html and 'data-provisional="true"' in html
    assert 'data-verdict="none"' in html and "data-code=" not in html
    found = sections(html)
    done = rec.latest_attempts()
    assert done and set(done) < set(found)
    for code, sec in found.items():
        if code in done:
            assert f'data-verdict="{done[code].verdict}"' in sec
        else:
            assert 'data-verdict="pending"' in sec
    for big in ('data-verdict="pass"', 'data-verdict="fail"'):
        assert big not in html.split('<section class="summary">')[1].split("</div>")[0]


def test_unknown_inspection_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        render_report(store, "nosuch-20260101-0001")


# -- the command line and the PDF --------------------------------------------------------------


def linectl(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed `linectl` entry point, as a station's shell runs it."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("linectl")), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def pdf_text(inspected: Inspected, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Chinese PDF of the retested inspection, written by `linectl report` once."""
    out = tmp_path_factory.mktemp("pdf") / "report.pdf"
    r = linectl("report", inspected.failed, "--pdf", str(out), "--db", inspected.url)
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_text_holds_plate_verdict_items_and_code(
    store: Store, inspected: Inspected, pdf_text: str
) -> None:
    rec = store.inspection(inspected.failed)
    text = re.sub(r"\s+", "", pdf_text)
    assert rec.plate in text and rec.vin in text
    verdict = {"pass": "✓合格", "fail": "✗不合格", "incomplete": "?未完成"}[str(rec.verdict)]
    assert f"检验结论{verdict}" in text
    for name in ("第1轴行车制动", "第2轴行车制动", "驻车制动", "整车制动", "左前照灯", "双怠速法"):
        assert name in text
    code = verification_code(published(store, inspected.failed)[-1].payload)
    assert code in text


def test_cli_unknown_id_exits_2_with_one_line(
    inspected: Inspected, capsys: pytest.CaptureFixture[str]
) -> None:
    r = linectl("report", "nosuch-20260101-0001", "--db", inspected.url)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "nosuch-20260101-0001" in r.stderr
    assert "没有检验" in r.stderr and "Traceback" not in r.stderr
    assert main(["report", "nosuch-20260101-0001", "--db", inspected.url, "--lang", "en"]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"linectl report: no inspection nosuch-20260101-0001 in database {inspected.url}\n"
    )


def test_cli_html_to_stdout_in_english(inspected: Inspected) -> None:
    r = linectl("report", inspected.diesel, "--lang", "en", "--db", inspected.url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("<!DOCTYPE html>") and 'lang="en"' in r.stdout
    assert "Free acceleration" in r.stdout


async def test_render_report_async_is_what_the_api_mounts(inspected: Inspected) -> None:
    astore = AsyncStore(Store(inspected.url))
    try:
        data, ctype = await render_report_async(astore, inspected.diesel, "en")
        assert ctype == "text/html; charset=utf-8" and b"Free acceleration" in data
        with pytest.raises(NotFound):
            await render_report_async(astore, "nosuch-20260101-0001", "en")
    finally:
        await astore.aclose()


def test_the_site_config_gives_name_time_zone_and_limits(
    store: Store, inspected: Inspected
) -> None:
    cfg = load_site_config(REPO / "config" / "site.example.toml")
    assert cfg.site_name and cfg.timezone == "Asia/Shanghai"
    html = render_report(store, inspected.diesel, "en", config=cfg)[0].decode("utf-8")
    assert cfg.site_name in html and "UTC+08:00" in html
    finished = store.inspection(inspected.diesel).finished_at
    assert finished is not None
    local = finished.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    assert local in html
