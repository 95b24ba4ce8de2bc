"""Registrations in: the registrations topic, answered on each request's reply topic.

Whatever arrives is answered or logged, never allowed to stop the daemon.
Each payload goes to the site's operations as the registry's actor
(`Operations.register_payload`), which refuses what is not a registration at
all (over 64 KiB: `payload_too_large`, never decoded; not UTF-8 JSON nested
at most linectl.payload.MAX_DEPTH deep: `invalid_json`, field `(payload)`),
validates, stores, queues and journals, exactly as for the HTTP API. A
refusal gets a reply when a request_id can be read; without one there is no
topic to answer on, so the refusal is only logged, and a registration
without a request_id is not taken either (its sender could never learn the
inspection id).

A repeated request_id gets the stored reply again and creates nothing (the
site dedupes through the database, also across restarts). Each message is
acknowledged to the broker only after its reply was published: one that
arrives just before a crash or an outage comes again and is answered then.
A database failure ends the session unacknowledged for the same reason. Any
other failure, whatever the payload did, is logged, refused with
`internal_error` when a request_id can be read, and acknowledged: a message
that breaks the intake must not come back for ever (a poison message).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import aiomqtt

from linectl.ops.actor import Actor
from linectl.registration import decode_registration, refused_reply
from linectl.store.db import StoreError
from linectl.upstream.connection import ack, raise_if_cancelling
from linectl.upstream.publisher import to_json
from linectl.upstream.topics import Topics
from linectl.vehicle import InvalidField

if TYPE_CHECKING:
    from linectl.ops.operations import Operations

log = logging.getLogger(__name__)

# The one decoder of registration payloads (linectl.registration), kept under its old name.
decode = decode_registration


class Intake:
    def __init__(self, ops: Operations, topics: Topics) -> None:
        self.ops = ops
        self.topics = topics
        self.actor = Actor.registry()
        self.answered = 0
        self.unanswerable = 0
        # Set while subscribed: registrations sent now reach this site.
        self.subscribed = asyncio.Event()

    async def serve(self, client: aiomqtt.Client) -> None:
        """Subscribe and answer until the connection is lost (raises MqttError).

        Registrations are taken one at a time, in the order they came (the
        order of the line's queue), but the next is taken without waiting for
        the broker to acknowledge the previous reply: that round trip was half
        of each registration's time, and at 50 registrations a second the
        intake fell behind (benchmarks/upstream.py). Each message is still
        acknowledged only once its reply was acknowledged, and in the order
        the messages came, as MQTT asks of QoS 1 acknowledgements."""
        await client.subscribe(self.topics.registrations, qos=1)
        self.subscribed.set()
        replies: asyncio.Task[None] | None = None  # the newest; each waits for the one before
        try:
            # A reply that fails ends the session (through the group) unacknowledged,
            # with every message after it: the broker sends them all again.
            async with asyncio.TaskGroup() as tg:
                async for message in client.messages:
                    answer = await self.answer(self._payload(message))
                    replies = tg.create_task(self._reply(client, message, answer, replies))
                    raise_if_cancelling()
        finally:
            self.subscribed.clear()

    async def _reply(
        self,
        client: aiomqtt.Client,
        message: aiomqtt.Message,
        answer: tuple[str, dict[str, Any]] | None,
        before: asyncio.Task[None] | None,
    ) -> None:
        try:
            if answer is not None:
                request_id, reply = answer
                await client.publish(self.topics.reply(request_id), to_json(reply), qos=1)
        finally:
            if before is not None:
                # A failure before this one ends the session: nothing after it is
                # acknowledged either, so the broker sends all of it again.
                await before
        if answer is not None:
            self.answered += 1
        else:
            self.unanswerable += 1
        ack(client, message)

    @staticmethod
    def _payload(message: aiomqtt.Message) -> bytes:
        return message.payload if isinstance(message.payload, bytes) else b""

    async def answer(self, payload: bytes) -> tuple[str, dict[str, Any]] | None:
        """The reply to one registration payload and its request_id, or None when
        there is nobody to answer. Never raises for what the payload holds."""
        try:
            reply = await self.ops.register_payload(self.actor, payload)
            if reply.get("request_id") is None:
                error = reply.get("error") or {}
                log.warning(
                    "registration refused, no request_id to answer on: %s: %s",
                    error.get("field"),
                    error.get("message"),
                )
                return None
            return str(reply["request_id"]), reply
        except StoreError:
            # Not the payload's fault: raised on, so the session ends without
            # acknowledging and the broker delivers the registration again later.
            raise
        except Exception as e:
            # A bug this payload ran into must not come back forever: answered
            # (not stored, so the same request_id may be tried again) and dropped.
            try:
                _, rid, _ = decode_registration(payload)
            except Exception:
                rid = None
            log.exception("registration %s could not be handled", rid)
            if rid is None:
                return None
            return rid, refused_reply(
                rid, InvalidField("internal_error", "(payload)", f"{type(e).__name__}: {e}")
            )
