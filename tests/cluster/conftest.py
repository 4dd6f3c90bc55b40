"""Fixtures for tests against a real Mosquitto: never skipped; a missing broker fails loudly."""

import pytest

from citychain.cluster.broker import BrokerError, Credentials, find_binary

CHAIN = "testchain"
ROLES = {"node-00": "consensus", "node-01": "consensus", "node-02": "consensus", "observer-00": "observer",
         "client-00": "client", "client-01": "client", "operator": "operator", "bridge-test": "bridge"}


@pytest.fixture(scope="session")
def mosquitto() -> str:
    """The mosquitto binary (and mosquitto_passwd beside it), or every broker test fails saying how to install it."""
    try:
        find_binary("mosquitto_passwd")
        return find_binary("mosquitto")
    except BrokerError as e:
        pytest.fail(f"{e}. `make test` installs it; these tests are never skipped.", pytrace=False)


@pytest.fixture(scope="session")
def credentials() -> Credentials:
    return Credentials.generate(CHAIN, ROLES)
