"""`linectl judge` through its real entry points, on the documents in tests/data/judge/.

The documents' curves use 100 ms samples (P = 10): 5 samples before the drag
window, 10 in it, then the brake phase; the expected numbers are worked out
next to each assertion.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from linectl.cli import main
from linectl.config import DEFAULT_LIMITS_DIR, REPO_DIR

DATA = Path(__file__).parent / "data" / "judge"


def load(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


def judge(
    capsys: pytest.CaptureFixture[str], file: Path | str, *opts: str
) -> tuple[int, dict[str, Any] | None, str]:
    code = main(["judge", str(file), *opts])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else None), err


def judge_doc(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, doc: Any, *opts: str
) -> tuple[int, dict[str, Any] | None, str]:
    f = tmp_path / "doc.json"
    f.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return judge(capsys, f, *opts)


def items(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["code"]: i for i in result["items"]}


# ---------------------------------------------------------------- valid documents


def test_car_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code, result, err = judge(capsys, DATA / "car_pass.json")
    assert (code, err) == (0, "")
    assert result is not None
    assert result["verdict"] == "pass"
    assert [i["code"] for i in result["items"]] == ["B1", "B2", "B0", "BT", "H1", "H4", "EX"]
    it = items(result)
    # B1 is mqtt.md's example: 3120 + 2980 N of 900 kg (8820 N) = 69.2 %; the rise
    # phase ends at the left wheel's 312: max diff |100 - 81| = 19 -> 190 / 3120 = 6.1 %;
    # drag means 6 and 5.5 -> 60 and 55 N.
    b1 = it["B1"]
    assert {
        k: b1["values"][k]
        for k in (
            "left_max_n",
            "right_max_n",
            "left_drag_n",
            "right_drag_n",
            "axle_rate_pct",
            "imbalance_pct",
        )
    } == {
        "left_max_n": 3120,
        "right_max_n": 2980,
        "left_drag_n": 60,
        "right_drag_n": 55,
        "axle_rate_pct": 69.2,
        "imbalance_pct": 6.1,
    }
    assert b1["limits"] == {"axle_rate_pct": 60, "imbalance_pct": 24, "drag_pct": 10}
    assert b1["curve"].startswith("10@0#0$")
    # B2: 2600 + 2500 N of 600 kg (5880 N) = 86.7 %
    assert it["B2"]["values"]["axle_rate_pct"] == 86.7
    # BT: (6100 + 5100) / (1500 kg * 9.8) = 11200 / 14700 = 76.2 %
    assert it["BT"]["values"]["vehicle_rate_pct"] == 76.2
    # B0: 1600 + 1500 N of 14700 N = 21.1 % (gross 1750 >= 1.2 x 1320: 20 %)
    assert (it["B0"]["values"]["parking_rate_pct"], it["B0"]["limits"]) == (
        21.1,
        {"parking_rate_pct": 20},
    )
    # H1 carries its low beam's values; there is no low-beam item
    assert it["H1"]["values"]["low_height_ratio"] == 0.8
    assert (it["EX"]["values"]["high_idle_co_pct"], it["EX"]["values"]["limit_set"]) == (0.1, "a")


def test_truck_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, result, _ = judge(capsys, DATA / "truck_fail.json")
    assert code == 0
    assert result is not None and result["verdict"] == "fail"
    it = items(result)
    assert {c: i["verdict"] for c, i in it.items()} == {
        "B1": "pass",
        "B2": "fail",
        "B3": "pass",
        "B0": "pass",
        "BT": "fail",
        "H1": "pass",
        "H2": "pass",
        "H3": "pass",
        "H4": "pass",
        "EX": "pass",
    }
    # N3 over 3500 kg: other axles need 50 %. B2: 21000 + 20000 N of 9000 kg (88200 N)
    # = 46.5 %; B3: 46000 / 88200 = 52.2 %.
    assert (it["B2"]["values"]["axle_rate_pct"], it["B2"]["limits"]["axle_rate_pct"]) == (46.5, 50)
    assert it["B3"]["values"]["axle_rate_pct"] == 52.2
    # BT: (43000 + 41000 + 46000) / (24000 kg * 9.8) = 130000 / 235200 = 55.3 %
    assert it["BT"]["values"]["vehicle_rate_pct"] == 55.3
    # B0 over two runs: 30000 + 20000 N of 235200 N = 21.3 %
    assert it["B0"]["values"]["parking_rate_pct"] == 21.3
    # four lamps, new: L 19000 and R 18500 reach the two-lamp 18000: inner lamps pass
    assert it["H2"]["values"]["passed_by_pair"] is True
    # K (1.0 + 1.2 + 1.4) / 3 = 1.2 <= a's 1.2
    assert it["EX"]["values"]["k_per_m"] == 1.2


def test_limit_set_from_the_option_and_from_the_document(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, result, _ = judge(capsys, DATA / "truck_fail.json", "--limit-set", "b")
    assert result is not None
    ex = items(result)["EX"]
    assert (ex["verdict"], ex["limits"]["k_per_m"], ex["values"]["limit_set"]) == ("fail", 0.7, "b")
    # the document's limit_set overrides the option
    doc = load("truck_fail")
    doc["limit_set"] = "a"
    _, result, _ = judge_doc(capsys, tmp_path, doc, "--limit-set", "b")
    assert result is not None
    assert items(result)["EX"]["verdict"] == "pass"


def test_bus_with_a_locked_wheel_is_incomplete(capsys: pytest.CaptureFixture[str]) -> None:
    code, result, _ = judge(capsys, DATA / "bus_locked_wheel.json")
    assert code == 0
    assert result is not None and result["verdict"] == "incomplete"
    it = items(result)
    # B1 left wheel locked at 15000 + 17000 N of 58800 N = 54.4 % < 60 %
    assert (it["B1"]["verdict"], it["B1"]["reason"], it["B1"]["values"]["axle_rate_pct"]) == (
        "not_judged",
        "locked_wheel",
        54.4,
    )
    assert it["B2"]["verdict"] == "pass"  # 60000 / 98000 = 61.2 % >= a bus's 40 %
    # BT (32000 + 60000) / 156800 = 58.7 % < 60 % with a lock: not judged
    assert (it["BT"]["verdict"], it["BT"]["values"]["vehicle_rate_pct"]) == ("not_judged", 58.7)
    assert "B0" not in it  # no parking run in the document


def test_electric_vehicle_has_no_ex(capsys: pytest.CaptureFixture[str]) -> None:
    code, result, err = judge(capsys, DATA / "electric.json")
    assert code == 0
    assert result is not None
    assert [i["code"] for i in result["items"]] == ["H1", "H4"]
    assert result["verdict"] == "pass"
    assert "emission ignored: electric vehicles have no EX item" in err


def test_beam_position_judge_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = load("car_pass")
    doc["headlamps"][0]["v_mm"] = -20  # 680 / 700 = 0.971 H, above M1's 0.95 H
    _, recorded, _ = judge_doc(capsys, tmp_path, doc)
    _, judged, _ = judge_doc(capsys, tmp_path, doc, "--beam-position", "judge")
    assert recorded is not None and judged is not None
    assert (recorded["verdict"], items(recorded)["H1"]["values"]["high_position_ok"]) == (
        "pass",
        False,
    )
    assert (judged["verdict"], items(judged)["H1"]["verdict"]) == ("fail", "fail")


def test_only_the_sections_given_are_judged(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = load("car_pass")
    del doc["brake"], doc["emission"]
    _, result, _ = judge_doc(capsys, tmp_path, doc)
    assert result is not None
    assert [i["code"] for i in result["items"]] == ["H1", "H4"]
    del doc["headlamps"]
    _, result, _ = judge_doc(capsys, tmp_path, doc)
    assert result == {"verdict": "incomplete", "items": []}


def test_brake_without_every_axle(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = load("car_pass")
    del doc["brake"]["axles"][1]
    _, result, _ = judge_doc(capsys, tmp_path, doc)
    assert result is not None
    it = items(result)
    assert [c for c in it if c.startswith("B")] == ["B1", "B0", "BT"]
    # BT and B0 divide by the whole vehicle's weight: without B2 they are not judged
    for code in ("BT", "B0"):
        assert (it[code]["verdict"], it[code]["reason"]) == ("not_judged", "missing_axles")
    assert result["verdict"] == "incomplete"


def test_limits_folder_drives_the_judgement(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    limits = tmp_path / "limits"
    shutil.copytree(DEFAULT_LIMITS_DIR, limits)
    f = limits / "emission.toml"
    text = f.read_text(encoding="utf-8")
    # the car's idle CO is 0.20 %: make limit a's idle CO 0.15 %
    f.write_text(
        text.replace("idle_co_max_pct = 0.6", "idle_co_max_pct = 0.15", 1), encoding="utf-8"
    )
    _, result, _ = judge(capsys, DATA / "car_pass.json", "--limits", str(limits))
    assert result is not None
    assert (result["verdict"], items(result)["EX"]["limits"]["idle_co_pct"]) == ("fail", 0.15)


def test_a_broken_limits_folder_exits_1_naming_file_and_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    limits = tmp_path / "limits"
    shutil.copytree(DEFAULT_LIMITS_DIR, limits)
    f = limits / "brake.toml"
    f.write_text(
        f.read_text(encoding="utf-8").replace("g_m_s2 = 9.8", "g_m_s2 = -9.8"), encoding="utf-8"
    )
    code, result, err = judge(capsys, DATA / "car_pass.json", "--limits", str(limits))
    assert (code, result) == (1, None)
    assert err.strip() == f"linectl judge: {f}: g_m_s2: must be > 0, got -9.8"


# ---------------------------------------------------------------- invalid documents


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set the value at a dotted path with [i] list indices."""

    def apply(doc: dict[str, Any]) -> None:
        keys: list[Any] = []
        for part in path.replace("]", "").split("."):
            name, *idx = part.split("[")
            keys.append(name)
            keys += [int(i) for i in idx]
        target: Any = doc
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return apply


def _del(path: str) -> Callable[[dict[str, Any]], None]:
    def apply(doc: dict[str, Any]) -> None:
        *head, last = path.split(".")
        target: Any = doc
        for k in head:
            name, *idx = k.replace("]", "").split("[")
            target = target[name]
            for i in idx:
                target = target[int(i)]
        del target[last]

    return apply


INVALID = [
    (_del("vehicle"), "vehicle: vehicle is required"),
    (_set("vehicle.vin", "LSVAU2180N2183294"), "vehicle.vin: VIN check digit"),
    (_set("vehicle.vehicle_class", "O3"), "vehicle.vehicle_class: trailers"),
    (_set("inspection_type", "annual"), "inspection_type: inspection_type must be new or periodic"),
    (_set("limit_set", "c"), "limit_set: limit set 'c' is not one of a, b"),
    (_set("headlamp", []), "headlamp: unknown key"),
    (_set("brake.axles", []), "brake.axles: must not be empty"),
    (_del("brake.axles"), "brake.axles: axles is required"),
    (_set("brake.axles[0].left_load_kg", "452"), "brake.axles[0].left_load_kg: must be a number"),
    (_set("brake.axles[1].right_load_kg", 0), "brake.axles[1].right_load_kg: must be at least 1"),
    (
        _set("brake.axles[1].axle", 3),
        "brake.axles[1].axle: axle 3 outside the vehicle's axles 1..2",
    ),
    (_set("brake.axles[1].axle", 1), "brake.axles[1].axle: axle 1 given twice"),
    (_set("brake.axles[0].axle", 1.0), "brake.axles[0].axle: must be a whole number"),
    (_set("brake.axles[0].curve", "10@5#"), "brake.axles[0].curve: curve sample 0 is '5#'"),
    (_set("brake.axles[0].curve", 105), "brake.axles[0].curve: curve must be a string"),
    (
        _set("brake.axles[0].left_locked", "yes"),
        "brake.axles[0].left_locked: must be true or false",
    ),
    (_set("brake.axles[0].locked", True), "brake.axles[0].locked: unknown key"),
    (_set("brake.parking.axle", 1), "brake.parking.axle: axle 1 is not a parking axle"),
    (
        _set("brake.parking", [{"axle": 2, "curve": "1@1#1"}, {"axle": 2, "curve": "1@1#1"}]),
        "brake.parking[1].axle: parking axle 2 given twice",
    ),
    (_set("brake.parking", []), "brake.parking: must not be empty"),
    (_set("headlamps[0].lamp", "X"), "headlamps[0].lamp: lamp 'X' does not exist"),
    (_set("headlamps[2].lamp", "LI"), "headlamps[2].lamp: lamp LI on a 2-lamp system"),
    (_set("headlamps[1].beam", "M"), "headlamps[1].beam: beam 'M' does not exist"),
    (_del("headlamps[0].v_mm"), "headlamps[0].v_mm: v_mm is required"),
    (_set("headlamps[0].height_mm", 0), "headlamps[0].height_mm: must be at least 1"),
    (_set("headlamps[1].beam", "H"), "headlamps[1]: lamp L beam H given twice"),
    (_set("headlamps", {"lamp": "L"}), "headlamps: must be a list"),
    (
        _set("emission.method", "free_acceleration"),
        "emission.method: free_acceleration does not fit a petrol vehicle",
    ),
    (_set("emission.method", "lug_down"), "emission.method: method 'lug_down' is not one of"),
    (_del("emission.high_idle[0].rpm"), "emission.high_idle[0].rpm: rpm is required"),
    (_set("emission.idle[3].co_pct", -0.1), "emission.idle[3].co_pct: must not be negative"),
    (_set("emission.idle", None), "emission.idle: must be a list, got null"),
]


@pytest.mark.parametrize(("mutate", "message"), INVALID, ids=[m for _, m in INVALID])
def test_invalid_documents_exit_2_naming_the_field(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    mutate: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    doc = copy.deepcopy(load("car_pass"))
    mutate(doc)
    code, result, err = judge_doc(capsys, tmp_path, doc)
    assert (code, result) == (2, None)
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"linectl judge: {tmp_path / 'doc.json'}: {message}"), lines[0]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            lambda d: d["emission"].update(method="two_speed_idle", high_idle=[], idle=[]),
            "emission.method: two_speed_idle does not fit a diesel vehicle",
        ),
        (lambda d: d["emission"].update(peaks_k=[1, 1, 1, 1]), "emission.peaks_k: 4 peaks"),
        (
            lambda d: d["emission"].update(peaks_k=[1, True, 1]),
            "emission.peaks_k[1]: must be a number",
        ),
        (
            lambda d: d["headlamps"][0].update(lamp="l"),
            "headlamps[0].lamp: lamp 'l' does not exist",
        ),
    ],
)
def test_invalid_diesel_documents(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, doc: Any, message: str
) -> None:
    truck = load("truck_fail")
    doc(truck)
    code, _, err = judge_doc(capsys, tmp_path, truck)
    assert code == 2
    assert f"doc.json: {message}" in err


def test_fewer_than_three_peaks_is_a_valid_document(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    truck = load("truck_fail")
    truck["emission"]["peaks_k"] = [1.0, 1.1]
    code, result, _ = judge_doc(capsys, tmp_path, truck)
    assert code == 0 and result is not None
    assert (items(result)["EX"]["verdict"], items(result)["EX"]["reason"]) == (
        "not_judged",
        "too_few_peaks",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{not json",
            "not JSON: Expecting property name enclosed in double quotes at line 1 column 2",
        ),
        ('{"vehicle": NaN}', "not JSON: NaN is not a number JSON allows"),
        ("[1, 2]", "document: must be an object, got a list"),
        ("", "not JSON"),
    ],
)
def test_text_that_is_not_a_document_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    f = tmp_path / "doc.json"
    f.write_text(text, encoding="utf-8")
    code, result, err = judge(capsys, f)
    assert (code, result) == (2, None)
    assert err.startswith(f"linectl judge: {f}: {message}")


def test_a_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = judge(capsys, tmp_path / "nope.json")
    assert code == 2
    assert "nope.json: cannot read: No such file or directory" in err


# ---------------------------------------------------------------- the real command


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linectl", "judge", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO_DIR,
        timeout=60,
    )


def test_command_line_valid_document() -> None:
    p = _run(str(DATA / "truck_fail.json"))
    assert (p.returncode, p.stderr) == (0, "")
    assert json.loads(p.stdout)["verdict"] == "fail"


def test_command_line_reads_stdin() -> None:
    p = _run("-", stdin=(DATA / "car_pass.json").read_text(encoding="utf-8"))
    assert p.returncode == 0
    assert json.loads(p.stdout)["verdict"] == "pass"


def test_command_line_invalid_document() -> None:
    doc = load("car_pass")
    doc["vehicle"]["fuel"] = "coal"
    p = _run("-", stdin=json.dumps(doc))
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr == (
        "linectl judge: stdin: vehicle.fuel: fuel 'coal' is not one of "
        "petrol, diesel, electric, hybrid, gas\n"
    )
