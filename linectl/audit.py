"""`linectl audit`: are the draw record and the journal intact, and were the draws fair?

`verify` recomputes the draw chain (every record's hash over its content and
the previous record's hash) and the journal's chain (linectl.store.journal)
the same way, and names the first broken record of each. It prints the
head of the chain (last seq and hash): a supervisor who writes that down, or
the registry, which receives each draw's seq and hash with every result, can
later tell if the chain was cut short or rewritten whole, which no chain can
show from the inside.

`fairness` compares, per line, how often each proxy driver was drawn with how
often chance alone would have drawn them: each draw gives each of its
candidates 1/len(candidates) of an expected vehicle. A chi-square statistic
over the drivers (df = drivers - 1) gives the p-value; a small p-value means
the shares are further from chance than luck explains.

That test cannot see a draw that offered no choice: a driver who times his
return so he is the only one idle when his owner's car is called is drawn
"fairly" every time. So the report also gives, per line and per day, the
choice the draws carried (bits per draw: log2 of candidate drivers times
candidate vehicles) and the share of draws that had a single candidate pair;
and a clustering test: for each driver and each plate region (the plate's
first two characters) or vehicle (VIN), how often he got such a vehicle
against how often chance would have given it to him (under a fair draw the
driver of each drawn vehicle is uniform among its candidates, so his count
is a sum of independent Bernoulli(1/candidates)); a count whose upper tail
is below FAIRNESS_ALPHA after a Bonferroni correction over every pair
tested is flagged.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from statistics import fmean
from typing import Any

from linectl.cli import CliError
from linectl.scheduler.assign import bits
from linectl.store.cli import EXIT_DB, open_store
from linectl.store.records import DrawRecord
from linectl.store.repo import StoreError

# Below this p-value the fairness report flags a line.
FAIRNESS_ALPHA = 0.01


def chi_square_sf(x: float, df: int) -> float:
    """P(X >= x) for a chi-square variable with `df` degrees of freedom (closed forms)."""
    if df < 1:
        raise ValueError("df must be >= 1")
    if x <= 0:
        return 1.0
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, df // 2):
            term *= (x / 2) / i
            total += term
        return min(1.0, math.exp(-x / 2) * total)
    total = math.erfc(math.sqrt(x / 2))
    term = math.sqrt(2 * x / math.pi) * math.exp(-x / 2)
    for i in range(1, (df + 1) // 2):
        total += term
        term *= x / (2 * i + 1)
    return min(1.0, total)


@dataclass(frozen=True)
class DriverShare:
    driver: str
    drawn: int
    expected: float


def draw_bits(d: DrawRecord) -> float:
    """The choice one draw carried: log2(candidate drivers x candidate vehicles)."""
    return bits(len(d.candidates), len(d.vehicles) if d.vehicles else 1)


def single_candidate(d: DrawRecord) -> bool:
    return len(d.candidates) * (len(d.vehicles) if d.vehicles else 1) == 1


@dataclass(frozen=True)
class Choice:
    """What a set of draws offered: how many, bits per draw, share with one candidate."""

    draws: int
    bits_per_draw: float | None
    single_candidate_share: float | None

    @classmethod
    def of(cls, ds: list[DrawRecord]) -> Choice:
        if not ds:
            return cls(0, None, None)
        return cls(
            len(ds),
            fmean(draw_bits(d) for d in ds),
            sum(1 for d in ds if single_candidate(d)) / len(ds),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "draws": self.draws,
            "bits_per_draw": _round(self.bits_per_draw, 3),
            "single_candidate_share": _round(self.single_candidate_share, 3),
        }


@dataclass(frozen=True)
class Cluster:
    """One driver's count of vehicles of one kind (a plate region, one VIN) against chance."""

    driver: str
    by: str  # "plate_region" | "vehicle"
    value: str
    drawn: int
    expected: float
    p_value: float  # upper tail, before the correction over every pair tested
    flagged: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "driver": self.driver,
            "by": self.by,
            "value": self.value,
            "drawn": self.drawn,
            "expected": round(self.expected, 2),
            "p_value": _round(self.p_value, 6),
            "flagged": self.flagged,
        }


@dataclass(frozen=True)
class LineFairness:
    line: str
    draws: int
    shares: list[DriverShare]
    chi_square: float
    p_value: float | None  # None: too few draws or drivers to say anything
    choice: Choice = Choice(0, None, None)
    days: dict[date, tuple[Choice, float | None]] = field(default_factory=dict)
    clusters: list[Cluster] = field(default_factory=list)  # the flagged, then the closest

    @property
    def suspicious(self) -> bool:
        return self.p_value is not None and self.p_value < FAIRNESS_ALPHA

    @property
    def clustered(self) -> bool:
        return any(c.flagged for c in self.clusters)

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            **self.choice.to_json(),
            "drivers": [
                {"id": s.driver, "drawn": s.drawn, "expected": round(s.expected, 2)}
                for s in self.shares
            ],
            "chi_square": round(self.chi_square, 3),
            "p_value": _round(self.p_value, 4),
            "suspicious": self.suspicious,
            "days": [
                {"day": day.isoformat(), **c.to_json(), "p_value": _round(p, 4)}
                for day, (c, p) in sorted(self.days.items())
            ],
            "clustering": {
                "flagged": self.clustered,
                "alpha": FAIRNESS_ALPHA,
                "clusters": [c.to_json() for c in self.clusters],
            },
        }


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def _shares(ds: list[DrawRecord]) -> tuple[list[DriverShare], float, float | None]:
    drawn: dict[str, int] = defaultdict(int)
    expected: dict[str, float] = defaultdict(float)
    for d in ds:
        drawn[d.chosen] += 1
        for c in d.candidates:
            expected[c] += 1 / len(d.candidates)
    shares = [DriverShare(k, drawn[k], expected[k]) for k in sorted(expected)]
    stat = sum((s.drawn - s.expected) ** 2 / s.expected for s in shares if s.expected > 0)
    # The chi-square approximation wants about 5 expected per driver.
    enough = len(shares) >= 2 and all(s.expected >= 5 for s in shares)
    p = chi_square_sf(stat, len(shares) - 1) if enough else None
    return shares, stat, p


def poisson_binomial_sf(k: int, ps: list[float]) -> float:
    """P(X >= k) for X a sum of independent Bernoulli(p) (exact, by convolution)."""
    if k <= 0:
        return 1.0
    dist = [1.0]
    for p in ps:
        nxt = [0.0] * (len(dist) + 1)
        for i, q in enumerate(dist):
            nxt[i] += q * (1 - p)
            nxt[i + 1] += q * p
        dist = nxt
    return min(1.0, sum(dist[k:]))


def plate_region(plate: str) -> str:
    """A plate's issuing region: its province character and city letter (鲁G)."""
    return plate[:2]


def clusters(
    ds: list[DrawRecord], vehicles: Mapping[str, tuple[str, str]], keep: int = 5
) -> list[Cluster]:
    """The clustering test: every (driver, plate region) and (driver, VIN) pair."""
    kinds: dict[str, Callable[[tuple[str, str]], str]] = {
        "plate_region": lambda v: plate_region(v[0]),
        "vehicle": lambda v: v[1],
    }
    pairs: list[tuple[str, str, str, int, list[float]]] = []
    for by, key in kinds.items():
        # For each value, the draws of a vehicle of that value: who could have had it.
        groups: dict[str, list[DrawRecord]] = defaultdict(list)
        for d in ds:
            if d.inspection_id in vehicles:
                groups[key(vehicles[d.inspection_id])].append(d)
        for value, gs in groups.items():
            drivers = sorted({c for d in gs for c in d.candidates})
            for drv in drivers:
                ps = [1 / len(d.candidates) for d in gs if drv in d.candidates]
                got = sum(1 for d in gs if d.chosen == drv)
                pairs.append((drv, by, value, got, ps))
    tested = max(1, len(pairs))
    out = []
    for drv, by, value, got, ps in pairs:
        p = poisson_binomial_sf(got, ps)
        # Bonferroni over every pair tested: many pairs, some small p by luck.
        out.append(Cluster(drv, by, value, got, sum(ps), p, p * tested < FAIRNESS_ALPHA))
    out.sort(key=lambda c: (not c.flagged, c.p_value, c.driver, c.by, c.value))
    flagged = [c for c in out if c.flagged]
    return flagged + [c for c in out if not c.flagged][: max(0, keep - len(flagged))]


def _day(d: DrawRecord) -> date:
    # The site's day: the machine's local time, where the daemon runs.
    return d.drawn_at.astimezone().date()


def fairness(
    draws: Iterable[DrawRecord], vehicles: Mapping[str, tuple[str, str]] | None = None
) -> list[LineFairness]:
    """Per line: shares against chance, the choice the draws carried (over all and per
    day) and, given each inspection's (plate, VIN), the clustering test."""
    by_line: dict[str, list[DrawRecord]] = defaultdict(list)
    for d in draws:
        by_line[d.line].append(d)
    out = []
    for line, ds in sorted(by_line.items()):
        shares, stat, p = _shares(ds)
        by_day: dict[date, list[DrawRecord]] = defaultdict(list)
        for d in ds:
            by_day[_day(d)].append(d)
        days = {day: (Choice.of(x), _shares(x)[2]) for day, x in by_day.items()}
        found = clusters(ds, vehicles) if vehicles is not None else []
        out.append(LineFairness(line, len(ds), shares, stat, p, Choice.of(ds), days, found))
    return out


def cli(args: argparse.Namespace) -> int:
    store = open_store(args, must_exist=True)
    try:
        if args.audit_command == "verify":
            return _verify(store, args)
        return _fairness(store, args)
    except StoreError as e:
        raise CliError(str(e), EXIT_DB) from None
    finally:
        store.close()


def _verify(store: Any, args: argparse.Namespace) -> int:
    report = store.verify_draws()
    draws = store.draws()
    head = draws[-1] if draws else None
    journal = store.verify_journal()
    jhead = store.journal_head()
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "checked": report.checked,
                    "first_bad_seq": report.first_bad_seq,
                    "problem": report.problem,
                    "head": {"seq": head.seq, "hash": head.hash} if head else None,
                    "journal": {
                        "ok": journal.ok,
                        "checked": journal.checked,
                        "first_bad_seq": journal.first_bad_seq,
                        "problem": journal.problem,
                        "head": {"seq": jhead.seq, "hash": jhead.hash} if jhead else None,
                    },
                }
            )
        )
        return 0 if report.ok and journal.ok else 1
    if report.ok:
        print(f"draw chain intact: {report.checked} record(s) checked")
        if head:
            print(f"head: seq {head.seq} hash {head.hash}")
    else:
        print(f"draw chain BROKEN at record seq {report.first_bad_seq}: {report.problem}")
        print(f"({report.checked} record(s) read up to and including it)")
    if journal.ok:
        print(f"journal intact: {journal.checked} entries checked")
        if jhead:
            print(f"journal head: seq {jhead.seq} hash {jhead.hash}")
    else:
        print(f"journal BROKEN at entry seq {journal.first_bad_seq}: {journal.problem}")
        print(f"({journal.checked} entries read up to and including it)")
    return 0 if report.ok and journal.ok else 1


def _fairness(store: Any, args: argparse.Namespace) -> int:
    lines = fairness(store.draws(args.line), store.draw_vehicles(args.line))
    if args.json:
        print(json.dumps([f.to_json() for f in lines], ensure_ascii=False))
        return 0
    if not lines:
        print("no draws recorded")
        return 0
    for f in lines:
        print(
            f"line {f.line}: {f.draws} draws, chi-square {f.chi_square:.2f}, {_p_text(f.p_value)}"
        )
        print(f"  choice: {_choice_text(f.choice)}")
        for s in f.shares:
            print(f"  {s.driver:<8} drawn {s.drawn:>5}   expected {s.expected:8.1f}")
        for day, (c, p) in sorted(f.days.items()):
            print(f"  {day.isoformat()}  {c.draws:>5} draws  {_choice_text(c)}  {_p_text(p)}")
        if f.clustered:
            for c in f.clusters:
                if c.flagged:
                    what = "plate region" if c.by == "plate_region" else "vehicle"
                    print(
                        f"  CLUSTERED: {c.driver} drove {c.drawn} of {what} {c.value} "
                        f"(chance: {c.expected:.1f}; p = {c.p_value:.2g} before correction)"
                    )
        else:
            print("  clustering: no driver's vehicles cluster beyond chance")
    return 0


def _p_text(p: float | None) -> str:
    if p is None:
        return "too few draws to judge"
    return f"p = {p:.3f}" + ("  SHARES UNLIKELY BY CHANCE" if p < FAIRNESS_ALPHA else "")


def _choice_text(c: Choice) -> str:
    if c.bits_per_draw is None or c.single_candidate_share is None:
        return "no draws"
    return (
        f"{c.bits_per_draw:.2f} bits per draw, "
        f"{100 * c.single_candidate_share:.1f} % with a single candidate"
    )
