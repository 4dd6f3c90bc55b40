"""One-way cuts and dropping messages already in flight (the network model's faults)."""

import random

from citychain.scenario import NetworkSpec, ScenarioError, load_scenario, parse_scenario
from citychain.sim.engine import Engine
from citychain.sim.network import SimNetwork
from citychain.sim.run import simulate
from citychain.summary import summarize
from node.metrics import Metrics

import pytest


class Inbox:
    def __init__(self, node_id):
        self.id, self.got = node_id, []

    def on_message(self, env, at, link=None):
        self.got.append(env)

    def on_timer(self, name, at):
        pass


class Env:
    class message:
        KIND = "prepare"
    size = 100


def network(drop_in_flight: bool):
    engine, metrics = Engine(), Metrics()
    spec = NetworkSpec(latency={"local_ms": 5.0, "default_ms": 5.0}, jitter_ms=0, drop_in_flight=drop_in_flight)
    net = SimNetwork(engine, spec, {"a": "s", "b": "s", "c": "s"}, random.Random(1), metrics)
    boxes = {n: Inbox(n) for n in "abc"}
    for n, box in boxes.items():
        net.attach(n, box.on_message, box.on_timer)
    return engine, net, boxes, metrics


def test_a_one_way_cut_loses_one_direction_only_until_heal():
    engine, net, boxes, _ = network(False)
    net.cut({"a"}, {"b"})
    net.send("a", "b", Env, 0)
    net.send("b", "a", Env, 0)
    engine.run()
    assert (len(boxes["b"].got), len(boxes["a"].got)) == (0, 1)
    net.heal()
    net.send("a", "b", Env, engine.now)
    engine.run()
    assert len(boxes["b"].got) == 1


@pytest.mark.parametrize("drop", [False, True])
def test_a_partition_drops_what_is_in_flight_across_it_only_when_asked(drop):
    engine, net, boxes, metrics = network(drop)
    net.broadcast("a", Env, 0)  # arrives at 5 ms
    engine.at(1_000_000, lambda _a, _t: net.partition([{"a"}, {"b"}]), None)  # c sides with neither
    engine.run()
    assert len(boxes["b"].got) == len(boxes["c"].got) == (0 if drop else 1)
    assert metrics.lost == (2 if drop else 0)


def test_cut_in_a_scenario_names_nodes_or_sites_and_is_checked(taihu_path):
    spec = load_scenario(taihu_path).with_overrides(nodes=7)
    data = spec.model_dump(by_alias=True)
    data.update(faults=[{"at_ms": 10, "cut": {"from": ["node-0"], "to": ["node-1", "binhu"]}},
                        {"at_ms": 400, "heal": True}],
                network={**data["network"], "drop_in_flight": True},
                workload={**data["workload"], "transactions": 200})
    s = summarize(simulate(type(spec).model_validate(data)), "cut")
    assert s["safety_violations"] == 0 and s["liveness"]["ok"] and s["committed_tx"] == 200
    data["faults"] = [{"at_ms": 10, "cut": {"from": ["node-9"], "to": ["node-1"]}}]
    with pytest.raises(ScenarioError, match=r"faults\[0\]\.cut\.from.*node-9 does not exist"):
        parse_scenario(data, "cut.yaml")


def test_copies_of_overlapping_broadcasts_arrive_in_the_order_one_heap_entry_each_gives():
    """The heap holds a broadcast's next copy only (citychain/sim/network.py); with jitter,
    copies of broadcasts sent close together interleave, and an unrelated event falls
    between them. Without ``drop_in_flight`` each copy still arrives at the (time,
    tie-breaker) it had as a heap entry of its own, the path ``drop_in_flight`` keeps."""
    def deliveries(drop_in_flight: bool) -> list:
        engine, metrics, log = Engine(), Metrics(), []
        spec = NetworkSpec(latency={"local_ms": 5.0, "default_ms": 5.0}, jitter_ms=3.0,
                           drop_in_flight=drop_in_flight)
        names = [f"n{i}" for i in range(7)]
        net = SimNetwork(engine, spec, {n: "s" for n in names}, random.Random(7), metrics)
        for n in names:
            net.attach(n, lambda env, at, link=None, n=n: log.append((at, n, env.tag)), lambda name, at: None)
        for i, src in enumerate(names[:4]):
            engine.at(i * 100_000, lambda e, at, src=src: net.broadcast(src, e, at), Tagged(f"b{i}"))
        engine.at(6_000_000, lambda _a, at: log.append((at, "timer", None)), None)
        engine.run()
        return log

    streamed, one_entry_each = deliveries(False), deliveries(True)
    assert len(streamed) == 4 * 6 + 1
    assert streamed == one_entry_each
    assert [tag for _at, _n, tag in streamed[:6]] != ["b0"] * 6  # the broadcasts did interleave


class Tagged:
    class message:
        KIND = "prepare"
    size = 100

    def __init__(self, tag):
        self.tag = tag
