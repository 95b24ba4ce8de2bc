"""The upstream registry over MQTT: registrations in, status, events and results out.

`Upstream(ops, mqtt_cfg)` is what the daemon runs in its TaskGroup. It holds
one connection per line plus one for the site. Registrations go through the
site's operations (linectl.ops) as the registry's actor, like any other
door's; what goes out (status, events, results) is read from the site.

- the site connection (client id `mqtt.client_id`, default `linectl-{site}`,
  persistent session so registrations sent while the daemon is away wait at
  the broker) answers registrations (intake), drains the result outbox and
  publishes lifecycle events and each line's open alarms, retained (publisher);
- each line's status connection (client id `{client_id}-{line}-status`)
  publishes that line's retained status and carries its will, `{"online":
  false}` retained on the line's status topic. An MQTT client has one will,
  and mqtt.md puts one on every line's status topic: hence one small
  connection per line, which also ties each line's "online" to a connection
  that really is up. A line is first announced online once the site
  connection has subscribed to registrations: "online" means a registration
  sent now is taken.

Each connection reconnects on its own (linectl.upstream.connection.Link).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING

import aiomqtt

from linectl.alarms.conditions import Condition
from linectl.config import MqttConfig
from linectl.upstream.connection import Backoff, ConnectParams, Link, connect_params
from linectl.upstream.intake import Intake
from linectl.upstream.publisher import OUTBOX_POLL_S, Publisher
from linectl.upstream.topics import OFFLINE_PAYLOAD, Topics

if TYPE_CHECKING:
    from collections.abc import Callable

    from linectl.ops.operations import Operations

__all__ = ["Topics", "Upstream"]


class Upstream:
    def __init__(
        self,
        ops: Operations,
        cfg: MqttConfig,
        *,
        backoff: Callable[[], Backoff] = Backoff,
        outbox_poll_s: float = OUTBOX_POLL_S,
    ) -> None:
        site = ops.site
        self.ops = ops
        self.site = site
        self.cfg = cfg
        self.topics = Topics(cfg.topic_prefix, site.id)
        self.client_id = cfg.client_id or f"linectl-{site.id}"
        # A bad URL or an unreadable secret stops the start, with the key named.
        self.params().where()
        self.publisher = Publisher(site, self.topics, poll_s=outbox_poll_s)
        self.intake = Intake(ops, self.topics)
        self.publisher.taking_registrations = self.intake.subscribed
        site.alarms.probes.append(self._alarm_conditions)
        self.link = Link(
            "mqtt",
            self.params,
            self._site_session,
            clean_session=False,
            manual_ack=True,
            backoff=backoff(),
        )
        self.status_links = {
            ln.id: Link(
                f"mqtt {ln.id} status",
                self.params,
                partial(self.publisher.status_session, ln.id),
                suffix=f"-{ln.id}-status",
                will=aiomqtt.Will(self.topics.status(ln.id), OFFLINE_PAYLOAD, qos=1, retain=True),
                backoff=backoff(),
            )
            for ln in site.lines
        }

    def params(self) -> ConnectParams:
        return connect_params(self.cfg, self.client_id)

    @property
    def links(self) -> list[Link]:
        return [self.link, *self.status_links.values()]

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.publisher.route_status(), name="mqtt-status-route")
                tg.create_task(self.link.run(), name="mqtt")
                for line, link in self.status_links.items():
                    tg.create_task(link.run(), name=f"mqtt-{line}-status")
        finally:
            self.publisher.close()

    async def _site_session(self, client: aiomqtt.Client) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.intake.serve(client))
            tg.create_task(self.publisher.drain_outbox(client))
            tg.create_task(self.publisher.send_events(client))
            tg.create_task(self.publisher.send_alarms(client))

    def _alarm_conditions(self) -> list[Condition]:
        """The broker out of reach: an alarm once it lasts `[alarms] mqtt_down_s`."""
        if self.link.connected.is_set():
            return []
        where = self.params().where()
        return [
            Condition(
                "mqtt_down",
                "mqtt_down",
                "No connection to the MQTT broker at {where}: {error}".format(
                    where=where, error=self.link.last_error or "connecting"
                ),
            )
        ]
