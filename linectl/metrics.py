"""The site's figures in Prometheus text format: what `GET /metrics` serves.

`await metrics_response(site, upstream)` returns the body and its content
type; the HTTP app serves it at `/metrics` without sign-in, as http.md says. Values are read from the running site at
scrape time (a custom collector, nothing kept twice), so a scrape costs a
walk over the devices and lines and one outbox count in the database.

Names follow Prometheus conventions: every name starts `linectl_`, counters
end `_total`, units are base units (seconds, ratios 0..1, vehicles per
second). Throughput and its bound are in clock time, as the line measures
them, so a sped-up simulation reports simulated rates.

- per device (labels device, model, line, station): `linectl_device_up`,
  `linectl_device_requests_total`, `linectl_device_errors_total` (label
  kind: timeout, unreachable, checksum, protocol, exception),
  `linectl_device_reconnects_total`, `linectl_device_latency_seconds`
  (histogram of the wire round trip), and for brake testers
  `linectl_device_ring_overruns_total`;
- per line: `linectl_line_queue_length`, `linectl_line_vehicles_in_line`,
  `linectl_line_vehicles_completed_total` (label verdict: pass, fail,
  incomplete, aborted), `linectl_line_throughput_vehicles_per_second` and
  `linectl_line_throughput_bound_vehicles_per_second` (absent until the line
  has measured them), `linectl_line_proxy_drivers_on_duty`;
- per station: `linectl_station_utilisation_ratio`,
  `linectl_station_mean_service_seconds`, `linectl_station_state` (one
  series per state, 1 for the current one);
- the site: `linectl_outbox_backlog` (results not yet acknowledged by the
  broker), `linectl_mqtt_connected` per broker link (absent without
  `[mqtt]`), `linectl_alarms` (open alarms by priority and state) and
  `linectl_alarm_flood` (1 in an alarm flood), `linectl_site_info`, and the process's own figures
  (`linectl_process_*`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector

from linectl import __version__
from linectl.device_report import placed_devices
from linectl.drivers.stats import ERROR_KINDS

if TYPE_CHECKING:
    from linectl.site import Site
    from linectl.upstream import Upstream

VERDICTS = ("pass", "fail", "incomplete", "aborted")
STATION_STATES = ("free", "calling", "testing", "blocked", "leaving")
DEVICE_LABELS = ["device", "model", "line", "station"]


def _bound(upper: float) -> str:
    return "+Inf" if upper == float("inf") else repr(upper)


class SiteCollector:
    """Reads the figures of one running site when Prometheus scrapes."""

    def __init__(self, site: Site, upstream: Upstream | None, outbox_backlog: int) -> None:
        self.site = site
        self.upstream = upstream
        self.outbox_backlog = outbox_backlog

    def collect(self) -> Iterator[Metric]:
        yield from self._site()
        yield from self._devices()
        yield from self._lines()

    def _site(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "linectl_site_info", "The site this daemon serves.", labels=["site", "version"]
        )
        info.add_metric([self.site.id, __version__], 1)
        yield info
        yield GaugeMetricFamily(
            "linectl_outbox_backlog",
            "Results in the outbox not yet acknowledged by the broker.",
            value=self.outbox_backlog,
        )
        alarms = GaugeMetricFamily(
            "linectl_alarms", "Open alarms (linectl.alarms).", labels=["priority", "state"]
        )
        counts: dict[tuple[str, str], int] = {}
        for a in self.site.alarms.open_alarms():
            key = (str(a.priority), str(a.state))
            counts[key] = counts.get(key, 0) + 1
        for (priority, state), n in sorted(counts.items()):
            alarms.add_metric([priority, state], n)
        yield alarms
        yield GaugeMetricFamily(
            "linectl_alarm_flood",
            "1 while more alarms were raised in the flood window than the site allows.",
            value=1 if self.site.alarms.flood else 0,
        )
        if self.upstream is not None:
            mqtt = GaugeMetricFamily(
                "linectl_mqtt_connected",
                "1 while the broker connection is up.",
                labels=["link"],
            )
            for link in self.upstream.links:
                mqtt.add_metric([link.name], 1 if link.connected.is_set() else 0)
            yield mqtt

    def _devices(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "linectl_device_up", "1 while the device answers.", labels=DEVICE_LABELS
        )
        requests = CounterMetricFamily(
            "linectl_device_requests",
            "Requests the drivers made of the device, including those refused at once "
            "while its link was down.",
            labels=DEVICE_LABELS,
        )
        errors = CounterMetricFamily(
            "linectl_device_errors",
            "Failed requests, by kind.",
            labels=[*DEVICE_LABELS, "kind"],
        )
        reconnects = CounterMetricFamily(
            "linectl_device_reconnects",
            "Times the device's link (TCP connection, serial port) was opened again.",
            labels=DEVICE_LABELS,
        )
        overruns = CounterMetricFamily(
            "linectl_device_ring_overruns",
            "Brake runs whose samples were overwritten in the ring before they were read.",
            labels=DEVICE_LABELS,
        )
        latency = HistogramMetricFamily(
            "linectl_device_latency_seconds",
            "Wire round trip of answered requests, real seconds.",
            labels=DEVICE_LABELS,
        )
        drivers = self.site.devices.drivers()
        for placed in placed_devices(self.site.cfg):
            driver = drivers.get(placed.cfg.id)
            if driver is None:
                continue
            labels = [placed.cfg.id, placed.cfg.model, placed.line, placed.station or ""]
            s = driver.health.stats
            up.add_metric(labels, 1 if driver.health.ok else 0)
            requests.add_metric(labels, s.requests)
            for kind in ERROR_KINDS:
                errors.add_metric([*labels, kind], s.errors_by_kind[kind])
            reconnects.add_metric(labels, s.reconnects)
            if placed.cfg.model == "rbt-modbus":
                overruns.add_metric(labels, s.ring_overruns)
            latency.add_metric(
                labels,
                [(_bound(b), n) for b, n in s.cumulative_buckets()],
                s.latency_sum_s,
            )
        yield from (up, requests, errors, reconnects, overruns, latency)

    def _lines(self) -> Iterator[Metric]:
        queue = GaugeMetricFamily(
            "linectl_line_queue_length", "Vehicles queued for the line.", labels=["line"]
        )
        in_line = GaugeMetricFamily(
            "linectl_line_vehicles_in_line", "Vehicles on the line's stations.", labels=["line"]
        )
        completed = CounterMetricFamily(
            "linectl_line_vehicles_completed",
            "Inspections ended on the line, by verdict.",
            labels=["line", "verdict"],
        )
        rate = GaugeMetricFamily(
            "linectl_line_throughput_vehicles_per_second",
            "Steady-state throughput, clock time (x 3600 for vehicles an hour).",
            labels=["line"],
        )
        bound = GaugeMetricFamily(
            "linectl_line_throughput_bound_vehicles_per_second",
            "The line's throughput bound (slowest station, proxy-driver cycle), clock time.",
            labels=["line"],
        )
        drivers = GaugeMetricFamily(
            "linectl_line_proxy_drivers_on_duty", "Proxy drivers on duty.", labels=["line"]
        )
        util = GaugeMetricFamily(
            "linectl_station_utilisation_ratio",
            "Share of time the station held a vehicle since the daemon started.",
            labels=["line", "station"],
        )
        service = GaugeMetricFamily(
            "linectl_station_mean_service_seconds",
            "Mean time a vehicle holds the station for its own sake, clock time.",
            labels=["line", "station"],
        )
        state = GaugeMetricFamily(
            "linectl_station_state",
            "1 for the station's current state.",
            labels=["line", "station", "state"],
        )
        for runner in self.site.lines:
            ln = runner.id
            queue.add_metric([ln], runner.queue_length())
            in_line.add_metric([ln], runner.in_line())
            for verdict in VERDICTS:
                completed.add_metric([ln, verdict], runner.stats.verdicts.get(verdict, 0))
            report = runner.report()
            if report["vehicles_per_hour"] is not None:
                rate.add_metric([ln], report["vehicles_per_hour"] / 3600)  # type: ignore[operator]
            if report["bound_per_hour"] is not None:
                bound.add_metric([ln], report["bound_per_hour"] / 3600)  # type: ignore[operator]
            drivers.add_metric([ln], len(runner.pool.on_duty()))
            now = runner.clock.now()
            elapsed = max(now - runner.stats.started, 1e-9)
            for slot, st in zip(runner.slots, runner.stats.stations, strict=True):
                util.add_metric([ln, st.id], st.occupied_until(now) / elapsed)
                if st.mean_service_s is not None:
                    service.add_metric([ln, st.id], st.mean_service_s)
                for name in STATION_STATES:
                    state.add_metric([ln, st.id, name], 1 if slot.state == name else 0)
        yield from (queue, in_line, completed, rate, bound, drivers, util, service, state)


async def metrics_response(site: Site, upstream: Upstream | None = None) -> tuple[bytes, str]:
    """(body, content type) of `GET /metrics` for the running `site`."""
    backlog = await site.store.outbox_backlog()
    registry = CollectorRegistry()
    registry.register(SiteCollector(site, upstream, backlog))
    ProcessCollector(namespace="linectl", registry=registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST
