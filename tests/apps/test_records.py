import pytest

from apps.base import Rejected, Tx
from apps.records import Records


class Dict:
    def __init__(self):
        self.d = {}

    def get(self, k, default=None):
        return self.d.get(k, default)

    def put(self, k, v):
        self.d[k] = v

    def delete(self, k):
        self.d.pop(k, None)


def tx(op, args, org="dept", client="c1"):
    return Tx("id", client, org, "client", op, args, 3, 100)


def test_put_versions_and_namespaces_by_organisation():
    app, state = Records(), Dict()
    assert app.execute(tx("put", {"key": "k", "value": "a"}), state) == {"version": 1}
    assert app.execute(tx("put", {"key": "k", "value": "b"}), state) == {"version": 2}
    app.execute(tx("put", {"key": "k", "value": "z"}, org="other"), state)
    assert state.d["dept/k"]["value"] == "b" and state.d["other/k"]["value"] == "z"


def test_an_organisation_cannot_delete_another_ones_record():
    app, state = Records(), Dict()
    app.execute(tx("put", {"key": "k", "value": "a"}), state)
    with pytest.raises(Rejected, match="no record 'k' for other"):
        app.execute(tx("delete", {"key": "k"}, org="other"), state)
    assert "dept/k" in state.d


@pytest.mark.parametrize("args", [{}, {"key": ""}, {"key": "x" * 200}, {"key": "k", "value": 5}])
def test_bad_arguments_are_rejected(args):
    with pytest.raises(Rejected):
        Records().execute(tx("put", args), Dict())
