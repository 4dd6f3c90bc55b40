"""Reading the nodes' signed status notices from the broker (``cluster up``'s health
check, ``cluster status``, and the replies ``cluster load`` waits for)."""

from __future__ import annotations

import asyncio
from typing import Callable

import aiomqtt
from cryptography import x509

from node.identity import public_key_of

from . import topics
from .endpoint import Endpoint
from .notices import BadNotice, read_notice


def member_keys(doc: dict) -> dict:
    return {m["id"]: public_key_of(x509.load_pem_x509_certificate(m["cert"].encode())) for m in doc["members"]}


async def watch(endpoint: Endpoint, doc: dict, on_notice: Callable[[dict, float], bool | None],
                timeout: float, identifier: str | None = None) -> None:
    """Feed every verified status notice to ``on_notice(body, arrival)`` until it returns
    True or ``timeout`` seconds pass. Notices that fail verification are ignored. A lost
    connection (a broker restart) is retried until the timeout."""
    chain, keys = doc["chain_id"], member_keys(doc)
    loop = asyncio.get_running_loop()
    filters = topics.subscriptions(chain, topics.OPERATOR, topics.OPERATOR_USER)

    async def consume() -> None:
        while True:
            try:
                async with aiomqtt.Client(**endpoint.client_args(), identifier=identifier,
                                          protocol=aiomqtt.ProtocolVersion.V5, timeout=10) as client:
                    for topic_filter in filters:
                        await client.subscribe(topic_filter, qos=0)
                    async for message in client.messages:
                        try:
                            body = read_notice(message.payload, chain, keys)
                        except BadNotice:
                            continue
                        if on_notice(body, loop.time()):
                            return
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    try:
        await asyncio.wait_for(consume(), timeout)
    except asyncio.TimeoutError:
        pass


def latest_status(endpoint: Endpoint, doc: dict, seconds: float, expect: set[str] | None = None) -> dict[str, dict]:
    """The newest notice of each node heard within ``seconds`` (sooner once all of ``expect`` spoke)."""
    latest: dict[str, dict] = {}

    def keep(body: dict, _at: float) -> bool:
        latest[body["node"]] = body
        return expect is not None and expect <= set(latest)

    asyncio.run(watch(endpoint, doc, keep, seconds))
    return latest
