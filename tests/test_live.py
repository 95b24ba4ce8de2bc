"""The stations' live values for the console: throttled per station, the brake trace
downsampled without holes, and the last points of a run never dropped."""

from __future__ import annotations

import time

import numpy as np

from linectl.clock import Clock
from linectl.events import EventBus
from linectl.stations.live import BRAKE_POINTS, MAX_PER_S, BrakeTrace, LiveFeed


def test_feed_publishes_at_most_max_per_second_and_forced_ones_always() -> None:
    bus = EventBus()
    with bus.subscribe({"live"}) as sub:
        feed = LiveFeed(bus, Clock(20), "emission")
        feed.begin("L1", "i-1", "鲁A12345")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.5:
            feed.publish("gas", rpm=800.0, co_pct=0.1, hc_ppm=20.0, band=[500, 1100])
        assert feed.publish("lamp", force=True, lamp="L", beam="H")
        events = []
        while (ev := sub.get_nowait()) is not None:
            events.append(ev)
    gas = [e for e in events if e.data["kind"] == "gas"]
    assert 1 <= len(gas) <= 0.5 * MAX_PER_S + 1 and feed.dropped > 100
    assert events[-1].data["kind"] == "lamp"
    assert all(e.line == "L1" and e.inspection_id == "i-1" for e in events)


def test_brake_trace_is_downsampled_without_holes_and_ends_whole() -> None:
    bus = EventBus()
    with bus.subscribe({"live"}) as sub:
        feed = LiveFeed(bus, Clock(20), "brake")
        trace = BrakeTrace(feed, 10, axle=1, parking=False)
        samples = np.zeros((0, 2), dtype=np.int32)
        for n in range(0, 800, 40):  # the ring reader's polls, 0.4 s of samples each
            samples = np.column_stack((np.arange(n + 40), np.arange(n + 40) * 2)).astype(np.int32)
            trace.update(lambda s=samples: s)
            feed._last -= 1.0  # an event due at every poll
        trace.update(lambda: samples, done=True)
        events = []
        while (ev := sub.get_nowait()) is not None:
            events.append(ev.data)
    assert events[0]["start"] and events[-1]["done"]
    assert all(len(e["left_n"]) <= BRAKE_POINTS for e in events)
    covered = 0.0
    for e in events:
        assert abs(e["t0_s"] - covered) < 1e-9  # each event starts where the last ended
        covered = e["t0_s"] + len(e["left_n"]) * e["dt_s"] if e["left_n"] else covered
    assert events[-2]["left_n"][0] == int(events[-2]["t0_s"] / 0.01) * 10  # forces in N
