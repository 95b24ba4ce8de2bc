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
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from linectl.cli import CliError
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


@dataclass(frozen=True)
class LineFairness:
    line: str
    draws: int
    shares: list[DriverShare]
    chi_square: float
    p_value: float | None  # None: too few draws or drivers to say anything

    @property
    def suspicious(self) -> bool:
        return self.p_value is not None and self.p_value < FAIRNESS_ALPHA

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "draws": self.draws,
            "drivers": [
                {"id": s.driver, "drawn": s.drawn, "expected": round(s.expected, 2)}
                for s in self.shares
            ],
            "chi_square": round(self.chi_square, 3),
            "p_value": None if self.p_value is None else round(self.p_value, 4),
            "suspicious": self.suspicious,
        }


def fairness(draws: Iterable[DrawRecord]) -> list[LineFairness]:
    by_line: dict[str, list[DrawRecord]] = defaultdict(list)
    for d in draws:
        by_line[d.line].append(d)
    out = []
    for line, ds in sorted(by_line.items()):
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
        out.append(LineFairness(line, len(ds), shares, stat, p))
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
    lines = fairness(store.draws(args.line))
    if args.json:
        print(json.dumps([f.to_json() for f in lines]))
        return 0
    if not lines:
        print("no draws recorded")
        return 0
    for f in lines:
        verdict = (
            "too few draws to judge"
            if f.p_value is None
            else f"p = {f.p_value:.3f}" + ("  SHARES UNLIKELY BY CHANCE" if f.suspicious else "")
        )
        print(f"line {f.line}: {f.draws} draws, chi-square {f.chi_square:.2f}, {verdict}")
        for s in f.shares:
            print(f"  {s.driver:<8} drawn {s.drawn:>5}   expected {s.expected:8.1f}")
    return 0
