"""A client's connection to its broker that outlives a broker restart.

``send`` never blocks and never fails: messages queue while the broker is away and
leave once the connection is back (the client's own retries cover one lost at the
moment the broker died). Used by ``cluster load`` for each workload client.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import aiomqtt

from .endpoint import Endpoint

QUIET = logging.getLogger("citychain.load.mqtt")
QUIET.setLevel(logging.ERROR)  # aiomqtt warns about every burst of unacknowledged publishes


class ClientLink:
    def __init__(self, endpoint: Endpoint, identifier: str):
        self.endpoint = endpoint
        self.identifier = identifier
        self.queue: deque[tuple[str, bytes]] = deque()
        self.ready = asyncio.Event()
        self.connected = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    def send(self, topic: str, payload: bytes) -> None:
        self.queue.append((topic, payload))
        self.ready.set()

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                async with aiomqtt.Client(**self.endpoint.client_args(), identifier=self.identifier,
                                          protocol=aiomqtt.ProtocolVersion.V5, timeout=10, logger=QUIET) as client:
                    self.connected.set()
                    backoff = 0.1
                    tasks = {asyncio.create_task(self._drain(client)), asyncio.create_task(_until_lost(client))}
                    try:
                        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for task in tasks:
                            task.cancel()
                        await asyncio.gather(*tasks, return_exceptions=True)
                    for task in done:
                        task.result()  # the MqttError that ended the connection
            except aiomqtt.MqttError:
                self.connected.clear()
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, 2.0)

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            await self.ready.wait()
            while self.queue:
                topic, payload = self.queue[0]
                await client.publish(topic, payload, qos=1)
                self.queue.popleft()  # only once the broker took it
            self.ready.clear()

    async def close(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, aiomqtt.MqttError):
            pass


async def _until_lost(client: aiomqtt.Client) -> None:
    """Returns (raising MqttError) when the connection drops. Reading the message stream,
    which subscribes to nothing, is what collects the library's record of the
    disconnection; left unread it is reported as "Future exception was never retrieved"."""
    async for _ in client.messages:
        pass
