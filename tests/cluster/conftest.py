"""Fixtures for tests against a real Mosquitto: never skipped; a missing broker fails loudly."""

import pytest

from citychain.cluster.broker import BrokerError, Credentials, find_binary
from citychain.cluster.process import write_private_key
from citychain.genesis import build_genesis
from citychain.scenario import load_with_overrides

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


@pytest.fixture
def chain(tmp_path):
    """A 4-node taihu genesis with secret keys, and node-01's data directory holding its key."""
    genesis = build_genesis(load_with_overrides("taihu", nodes=4), secret_keys=True)
    genesis.write(tmp_path / "genesis")
    write_private_key(tmp_path / "data" / "node-01" / "key.pem", genesis.identities["node-01"].key)
    return genesis, tmp_path
