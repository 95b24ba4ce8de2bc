"""Registrations in: the registrations topic, answered on each request's reply topic.

Whatever arrives is answered or logged, never allowed to stop the daemon.
The site's `register` validates, stores and queues (linectl.registration
names the bad field); on top of that this door refuses what is not a
registration at all: a payload over 64 KiB (`payload_too_large`, never
decoded) or not UTF-8 JSON nested at most linectl.payload.MAX_DEPTH deep
(`invalid_json`), field `(payload)`. A refusal gets a reply when a
request_id can be read; without one there is no topic to answer on, so the
refusal is only logged, and a registration without a request_id is not
taken either (its sender could never learn the inspection id).

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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiomqtt

from linectl.payload import decode_json, peek_request_id
from linectl.registration import read_request_id, refused_reply
from linectl.store.db import StoreError
from linectl.upstream.connection import ack, raise_if_cancelling
from linectl.upstream.publisher import to_json
from linectl.upstream.topics import MAX_REGISTRATION_BYTES, Topics
from linectl.vehicle import InvalidField

if TYPE_CHECKING:
    from linectl.daemon import Site

log = logging.getLogger(__name__)

Observer = Callable[[dict[str, Any]], None]


def decode(payload: bytes) -> tuple[Any, str | None, InvalidField | None]:
    """The JSON value of a payload (None if it was not decoded), the request_id to
    answer on (None if none can be read), and what is wrong with the payload as such.

    A payload that cannot be decoded (oversized ones are not even tried) has
    its request_id looked for near its start, so that its refusal can still be
    addressed.
    """
    try:
        obj = decode_json(payload, MAX_REGISTRATION_BYTES, "registration")
    except InvalidField as e:
        return None, read_request_id({"request_id": peek_request_id(payload)}), e
    return obj, read_request_id(obj), None


class Intake:
    def __init__(self, site: Site, topics: Topics, observe: Observer | None = None) -> None:
        self.site = site
        self.topics = topics
        self.observe = observe
        self.answered = 0
        self.unanswerable = 0
        # Set while subscribed: registrations sent now reach this site.
        self.subscribed = asyncio.Event()

    async def serve(self, client: aiomqtt.Client) -> None:
        """Subscribe and answer until the connection is lost (raises MqttError)."""
        await client.subscribe(self.topics.registrations, qos=1)
        self.subscribed.set()
        try:
            async for message in client.messages:
                await self.handle(client, message)
                raise_if_cancelling()
        finally:
            self.subscribed.clear()

    async def handle(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else b""
        answer = await self.answer(payload)
        if answer is not None:
            request_id, reply = answer
            # A failure here ends the session unacknowledged: the broker sends
            # the registration again after the reconnection, and the stored
            # reply goes out then.
            await client.publish(self.topics.reply(request_id), to_json(reply), qos=1)
            self.answered += 1
        else:
            self.unanswerable += 1
        ack(client, message)

    async def answer(self, payload: bytes) -> tuple[str, dict[str, Any]] | None:
        """The reply to one registration payload and its request_id, or None when
        there is nobody to answer. Never raises for what the payload holds."""
        rid: str | None = None
        try:
            obj, rid, error = decode(payload)
            if error is not None:
                if rid is None:
                    log.warning("registration refused, no request_id to answer: %s", error)
                    return None
                log.info("registration %s refused: %s", rid, error)
                reply = refused_reply(rid, error)
                # Kept like any refusal: the same request_id gets the same reply.
                stored = await self.site.store.refuse_registration(
                    rid, reply, self.site.clock.wall()
                )
                return rid, stored
            if rid is None:
                shown = obj.get("request_id") if isinstance(obj, dict) else None
                why = (
                    "no request_id" if shown is None else f"unusable request_id {str(shown)[:80]!r}"
                )
                log.warning("registration refused, %s to answer on", why)
                return None
            if self.observe is not None:
                self.observe(obj)
            return rid, await self.site.register(obj)
        except StoreError:
            # Not the payload's fault: raised on, so the session ends without
            # acknowledging and the broker delivers the registration again later.
            raise
        except Exception as e:
            # A bug this payload ran into must not come back forever: answered
            # (not stored, so the same request_id may be tried again) and dropped.
            log.exception("registration %s could not be handled", rid)
            if rid is None:
                return None
            return rid, refused_reply(
                rid, InvalidField("internal_error", "(payload)", f"{type(e).__name__}: {e}")
            )
