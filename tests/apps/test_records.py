import pytest

from apps.records import Records


def test_put_versions_and_namespaces_by_organisation(caller):
    c = caller(Records())
    assert c("dept", "put", key="k", value="a") == {"version": 1}
    assert c("dept", "put", key="k", value="b") == {"version": 2}
    c("other", "put", key="k", value="z")
    assert c.state.get("dept/k")["value"] == "b" and c.state.get("other/k")["value"] == "z"


def test_an_organisation_cannot_delete_another_ones_record(caller):
    c = caller(Records())
    c("dept", "put", key="k", value="a")
    c.refused("other", "delete", "no record 'k' for other", key="k")
    assert c.state.get("dept/k") is not None


@pytest.mark.parametrize("args", [{}, {"key": ""}, {"key": "x" * 200}, {"key": "k", "value": 5}])
def test_bad_arguments_are_rejected(caller, args):
    caller(Records()).refused("dept", "put", "must be a string", **args)


def test_records_takes_no_settings():
    with pytest.raises(ValueError, match="unknown settings \\['x'\\]; allowed: none"):
        Records({"x": 1})
