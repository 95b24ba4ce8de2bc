"""Which line a registration goes to: instruments first, then the expected finish."""

from __future__ import annotations

from dataclasses import dataclass, field

from linectl.scheduler.dispatch import NOMINAL_SERVICE_S, choose_line, expected_finish_s
from sim.vehicles import Population

KINDS = ["brake", "headlamp", "emission"]


@dataclass
class FakeLine:
    id: str
    queue: int = 0
    on_line: int = 0
    measured: dict[str, float] = field(default_factory=dict)
    models: set[str] = field(default_factory=lambda: {"rbt-modbus", "hlt-ascii", "nha503", "nht6"})
    maintained: set[str] = field(default_factory=set)

    def station_kinds(self) -> list[str]:
        return KINDS

    def device_models(self) -> set[str]:
        return self.models

    def mean_service_s(self, kind: str) -> float | None:
        return self.measured.get(kind)

    def queue_length(self) -> int:
        return self.queue

    def in_line(self) -> int:
        return self.on_line

    def kinds_in_maintenance(self) -> set[str]:
        return self.maintained


def test_expected_finish_is_work_ahead_at_the_bottleneck_plus_own_way() -> None:
    ln = FakeLine("L1", queue=3, on_line=2, measured={"brake": 50, "headlamp": 40, "emission": 120})
    assert expected_finish_s(ln) == 5 * 120 + (50 + 40 + 120)


def test_a_line_without_figures_borrows_the_sites() -> None:
    # L1 has measured a slow emission station; L2 has measured nothing yet. Alike
    # lines must be compared alike: L2 borrows L1's figure instead of the nominal one.
    l1 = FakeLine("L1", queue=4, measured={"brake": 50, "headlamp": 40, "emission": 300})
    l2 = FakeLine("L2", queue=5)
    v = Population(seed=1, fault_rate=0).next().vehicle
    assert NOMINAL_SERVICE_S["emission"] < 300
    assert choose_line([l1, l2], v, ["B1"]).id == "L1"  # fewer ahead, same station times
    assert expected_finish_s(l2, [l1, l2]) > expected_finish_s(l1, [l1, l2])


def test_alike_idle_lines_fill_in_order_then_alternate() -> None:
    lines = [FakeLine("L1"), FakeLine("L2")]
    v = Population(seed=1, fault_rate=0).next().vehicle
    got = []
    for _ in range(6):
        ln = choose_line(lines, v, ["B1"])
        ln.queue += 1  # type: ignore[attr-defined]
        got.append(ln.id)
    assert got == ["L1", "L2", "L1", "L2", "L1", "L2"]


def test_a_line_whose_needed_station_is_in_maintenance_comes_last() -> None:
    v = Population(seed=1).next().vehicle
    l1, l2 = FakeLine("L1"), FakeLine("L2", queue=4, maintained={"headlamp"})
    quiet = FakeLine("L1", maintained={"brake"})
    assert choose_line([quiet, l2], v, ["B1"]).id == "L2"  # busier, but can measure now
    assert choose_line([quiet, l2], v, ["H1"]).id == "L1"  # H1 needs L2's headlamp station
    assert choose_line([l1, FakeLine("L2", maintained={"brake"})], v, ["B1"]).id == "L1"
    both = [FakeLine("L1", queue=2, maintained={"brake"}), FakeLine("L2", maintained={"brake"})]
    assert choose_line(both, v, ["B1"]).id == "L2"  # still measured: by the expected finish
