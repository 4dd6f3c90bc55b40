"""Canonical encoding, Merkle trees (RFC 6962) and percentiles."""

import hashlib

import pytest

from consensus.encoding import canonical, check_canonical_value
from consensus.merkle import leaf_hash, merkle_root, node_hash
from node.metrics import percentile


def test_canonical_json_sorts_keys_and_has_no_spaces():
    assert canonical({"b": 1, "a": [True, None, "x"]}) == b'{"a":[true,null,"x"],"b":1}'
    assert canonical({"name": "成都"}) == b'{"name":"\\u6210\\u90fd"}'


def test_floats_are_refused_in_signed_data():
    with pytest.raises(ValueError, match="args.price: floats are not allowed"):
        check_canonical_value({"price": 1.5}, "args")


def test_rfc6962_empty_and_single_leaf():
    assert merkle_root([]).hex() == hashlib.sha256(b"").hexdigest()
    # RFC 6962 test vector: the hash of the empty leaf.
    assert merkle_root([b""]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


def test_rfc6962_split_at_largest_power_of_two():
    leaves = [bytes([i]) for i in range(5)]
    h = [leaf_hash(x) for x in leaves]
    expected = node_hash(node_hash(node_hash(h[0], h[1]), node_hash(h[2], h[3])), h[4])
    assert merkle_root(leaves) == expected
    assert merkle_root(leaves) != merkle_root(leaves[::-1])


def test_percentile_interpolates_like_numpy():
    values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert percentile(values, 50) == 5.5
    assert percentile(values, 0) == 1 and percentile(values, 100) == 10
    assert percentile(values, 95) == pytest.approx(9.55)
    assert percentile([], 99) == 0.0
    assert percentile([7], 99) == 7
    with pytest.raises(ValueError):
        percentile(values, 101)
