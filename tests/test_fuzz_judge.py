"""Fuzz: `linectl judge` input documents, valid ones with any numbers and broken ones.

The documents of tests/data/judge are the seeds. Every number in one may be
redrawn (within the instruments' ranges, at their edges, far outside them,
negative, zero), any value replaced by one of the wrong type or by deep
nesting, a curve rewritten with random or huge forces, and the text itself
cut or spliced. `judge_document` gives a judgement, items judged or
not_judged with a reason, whose JSON holds only finite numbers; or an
`InvalidField` naming the field. The command gives exit 0 with a judgement
or exit 2 with one line on stderr.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from fuzz_strategies import Mutation, mutations
from hypothesis import given
from hypothesis import strategies as st

from linectl.cli import main
from linectl.config import DEFAULT_LIMITS_DIR
from linectl.judge import judge_document
from linectl.stations.limits import load_limits
from linectl.vehicle import InvalidField

DATA = Path(__file__).resolve().parent / "data" / "judge"
SEEDS = {f.stem: json.loads(f.read_text("utf-8")) for f in sorted(DATA.glob("*.json"))}
LIMITS = load_limits(DEFAULT_LIMITS_DIR)


def leaves(obj: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in leaves(v, (*at, k))] + ([at] if at else [])
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in leaves(v, (*at, i))] + ([at] if at else [])
    return [at]


def get(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def put(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    get(out, path[:-1])[path[-1]] = value
    return out


numbers = st.one_of(
    st.integers(-5, 100_000),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.sampled_from([0, -0.0, 1e-300, 5e-324, 1e15, 1e300, 1.7976931348623157e308, 2**53 + 1]),
    st.integers(10**15, 10**400),
)
curves = st.builds(
    lambda p, samples: f"{p}@" + "$".join(f"{a}#{b}" for a, b in samples),
    st.sampled_from(["1", "10", "0", "100", "99999999999", "x"]),
    st.lists(
        st.tuples(
            st.one_of(st.integers(0, 5000), st.integers(0, 10**25)),
            st.one_of(st.integers(0, 5000), st.integers(0, 10**25)),
        ),
        max_size=400,
    ),
)
wrong = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.integers(30, 120).map(lambda n: json.loads("[" * n + "]" * n)),
)


@st.composite
def documents(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(0, 6))):
        path = draw(st.sampled_from(leaves(doc)))
        old = get(doc, path)
        if isinstance(old, bool):
            new = draw(st.one_of(st.booleans(), wrong))
        elif isinstance(old, int | float):
            new = draw(st.one_of(numbers, numbers, wrong))
        elif isinstance(old, str) and "@" in old:
            new = draw(st.one_of(curves, curves, wrong))
        else:
            new = draw(st.one_of(wrong, numbers, st.text(max_size=20)))
        doc = put(doc, path, new)
    return doc


def finite_json(obj: Any) -> None:
    if isinstance(obj, float):
        assert math.isfinite(obj), obj
    elif isinstance(obj, dict):
        for v in obj.values():
            finite_json(v)
    elif isinstance(obj, list):
        for v in obj:
            finite_json(v)


@given(
    doc=documents(),
    limit_set=st.sampled_from(["a", "b"]),
    beam=st.sampled_from(["record", "judge"]),
)
def test_judge_document(doc: Any, limit_set: str, beam: str) -> None:
    try:
        result = judge_document(doc, LIMITS, limit_set=limit_set, beam_position=beam)
    except InvalidField as e:
        assert e.field and len(e.message) < 300
        return
    assert result["verdict"] in ("pass", "fail", "incomplete")
    for item in result["items"]:
        assert item["verdict"] in ("pass", "fail", "not_judged")
        assert item["verdict"] != "not_judged" or item.get("reason")
    finite_json(result)
    json.dumps(result, allow_nan=False)


@given(
    seed=st.sampled_from(sorted(SEEDS)),
    mutate=st.one_of(
        mutations(max_extra=24),
        st.integers(100, 3000).map(lambda n: lambda b: b"[" * n + b + b"]" * n),
    ),
)
def test_judge_command(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    seed: str,
    mutate: Mutation,
) -> None:
    f = tmp_path_factory.mktemp("judge") / "doc.json"
    f.write_bytes(mutate((DATA / f"{seed}.json").read_bytes()))
    capsys.readouterr()
    code = main(["judge", str(f)])
    out, err = capsys.readouterr()
    if code == 0:
        json.loads(out)
    else:
        assert code == 2, (code, err)
        assert err.startswith("linectl judge: ") and err.count("\n") == 1, err
