"""SpikeGraph: typed access, validation messages, JSON/GraphML file round trips for every node type."""

import networkx as nx
import numpy as np
import pytest

from spikeport.converter import SpikeGraph, ir
from spikeport.errors import GraphError

from .samples import sample_nodes, wrap

SAMPLES = sample_nodes()


def _residual() -> SpikeGraph:
    g = SpikeGraph("res")
    g.add(ir.Input("x", shape=(4,)))
    g.add(ir.Linear("fc", weight=np.eye(4, dtype=np.float32)), ["x"])
    g.add(ir.Add("add"), ["fc", "x"])
    g.add(ir.IF("n"), ["add"])
    g.add(ir.Output("y"), ["n"])
    return g.validate()


def test_typed_access_and_order():
    g = _residual()
    assert g.topological_order() == ["x", "fc", "add", "n", "y"]
    assert g.inputs_of("add") == ["fc", "x"] and [e.port for e in g.in_edges("add")] == [0, 1]
    assert [e.dst for e in g.users("x")] == ["fc", "add"]
    assert g.shape("add") == (4,) and g.in_shapes("add") == [(4,), (4,)]
    assert [n.name for n in g.input_nodes()] == ["x"] and [n.name for n in g.output_nodes()] == ["y"]
    assert [n.name for n in g.nodes_of_type(ir.Linear, ir.IF)] == ["fc", "n"]
    with pytest.raises(GraphError, match="has no node 'ad'.*did you mean 'add'"):
        g.node("ad")
    with pytest.raises(nx.NetworkXError, match="Frozen"):
        g.nx.add_node("z")  # read-only view


def test_same_source_on_two_ports():
    g = SpikeGraph("twice")
    g.add(ir.Input("x", shape=(3,)))
    g.add(ir.Add("a"), ["x", "x"])
    g.add(ir.Output("y"), ["a"])
    g.validate()
    assert g.inputs_of("a") == ["x", "x"]
    back = SpikeGraph.from_json(g.to_json())
    assert back.inputs_of("a") == ["x", "x"]


def test_edge_shape_mismatch_is_reported_per_edge():
    g = SpikeGraph("bad")
    g.add(ir.Input("x", shape=(1, 8, 8)))
    g.add(ir.Flatten("flat"), ["x"])
    g.add(ir.Linear("fc", weight=np.zeros((10, 32), np.float32)), ["flat"])
    g.add(ir.Output("y"), ["fc"])
    with pytest.raises(GraphError, match=r"flat\.out \[64\] -> fc\.in \[\.\.\., 32\]"):
        g.validate()
    g2 = SpikeGraph("bad2")
    g2.add(ir.Input("a", shape=(3,)))
    g2.add(ir.Input("b", shape=(4,), index=1))
    g2.add(ir.Add("s"), ["a", "b"])
    g2.add(ir.Output("y"), ["s"])
    with pytest.raises(GraphError, match=r"b\.out \[4\] -> s\.in\[1\] \[3\]"):
        g2.validate()


def test_structural_errors():
    g = SpikeGraph("g")
    g.add(ir.Input("x", shape=(3,)))
    with pytest.raises(GraphError, match="already has a node named 'x'"):
        g.add(ir.Input("x", shape=(3,)))
    with pytest.raises(GraphError, match="input 'nope' is not in graph"):
        g.add(ir.ReLU("r"), ["nope"])
    g.add(ir.ReLU("r"), ["x"])
    with pytest.raises(GraphError, match="has no Output node"):
        g.validate()
    g.add(ir.Output("y"), ["r"])
    g.add(ir.Input("free", shape=(2,), index=1))
    g.add(ir.ReLU("island"), [])  # no input at all
    with pytest.raises(GraphError, match="island are not reachable from any input"):
        g.validate()
    g.remove("island")
    g.add(ir.ReLU("two"), ["x", "r"])
    with pytest.raises(GraphError, match=r"'two' \(ReLU\) takes 1 input\(s\), has 2"):
        g.validate()
    g.remove("two")
    g.add(ir.Add("later"), ["x", "ghost"], recurrent=[False, True])
    with pytest.raises(GraphError, match="recurrent input 'ghost' of node 'later' .* was never added"):
        g.validate()


def test_cycles_need_a_recurrent_edge():
    def build(recurrent):
        g = SpikeGraph("loop")
        g.add(ir.Input("x", shape=(2,)))
        g.add(ir.Add("sum"), ["x", "fb"], recurrent=[False, True])
        g.add(ir.IF("n"), ["sum"])
        g.add(ir.Scale("fb", scale=0.5), ["n"])
        if not recurrent:  # rebuild the back edge as feed-forward
            g._g.edges["fb", "sum"]["recurrent"] = False
        g.add(ir.Output("y"), ["n"])
        return g

    assert build(True).validate().topological_order() == ["x", "sum", "n", "fb", "y"]
    with pytest.raises(GraphError, match="has a cycle .*sum.*mark the back edge as recurrent"):
        build(False).validate()


def test_unreachable_nodes_are_named():
    g = _residual().copy()
    g.add(ir.Input("u", shape=(4,), index=1))
    g._g.remove_node("u")  # simulate a dangling node fed by nothing reachable
    g.add(ir.Scale("lonely", scale=2.0), ["n"])
    g._g.remove_edge("n", "lonely")
    g._g.add_edge("lonely", "lonely", ports=(0,), recurrent=True)
    with pytest.raises(GraphError, match="lonely are not reachable"):
        g.validate()


def test_copy_is_independent():
    g = _residual()
    c = g.copy()
    c.node_meta("fc")["x"] = 1
    c.remove("y")
    assert "y" in g and "x" not in g.node_meta("fc")


@pytest.mark.parametrize("node,shapes", SAMPLES, ids=[n.op for n, _ in SAMPLES])
def test_file_round_trip_every_node_type(node, shapes, tmp_path):
    g = wrap(node, shapes).validate()
    g.meta["note"] = "kept"
    for back in (SpikeGraph.read_json(g.write_json(tmp_path / "g.json")),
                 SpikeGraph.read_graphml(g.write_graphml(tmp_path / "g.graphml"))):
        assert back.topological_order() == g.topological_order()
        assert all(back.node(n).same_as(g.node(n)) for n in g.topological_order())
        assert back.edges() == g.edges()
        assert back.meta["note"] == "kept"
        assert back.validate().shape(node.name) == g.shape(node.name)


def test_bad_files_give_one_line_errors(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(GraphError, match="x.json: not valid JSON"):
        SpikeGraph.read_json(p)
    p.write_text('{"format": "other"}')
    with pytest.raises(GraphError, match="not a spikeport IR graph"):
        SpikeGraph.read_json(p)
    with pytest.raises(GraphError, match="no such IR file"):
        SpikeGraph.read_json(tmp_path / "missing.json")
    q = tmp_path / "x.graphml"
    q.write_text("<graphml")
    with pytest.raises(GraphError, match="not a readable GraphML"):
        SpikeGraph.read_graphml(q)
    bad = _residual().to_dict()
    bad["nodes"][1]["node"]["type"] = "Nope"
    with pytest.raises(GraphError, match="src.json: node 'fc': unknown IR node type 'Nope'"):
        SpikeGraph.from_dict(bad, "src.json")
