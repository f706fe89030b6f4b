"""Loading a user's model: the factory's folder, state-dict errors, framework state buffers, pickled models."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from torch import nn

from spikeport.errors import CheckpointError
from spikeport.models.loading import load_model


def test_the_factory_folder_is_importable_and_sys_path_restored(tmp_path):
    (tmp_path / "my_layers.py").write_text(textwrap.dedent("""
        from torch import nn
        from spikeport.models import layers as L
        from spikeport.models.neurons import LIF
        def block():
            return nn.Sequential(L.Flatten(), L.Linear(64, 10), LIF())
    """))
    (tmp_path / "net.py").write_text("import my_layers\n\ndef build():\n    return my_layers.block()\n")
    before = list(sys.path)
    loaded = load_model(f"{tmp_path / 'net.py'}:build")
    assert isinstance(loaded.model, nn.Sequential) and sys.path == before


def _factory(tmp_path, body: str) -> str:
    (tmp_path / "f.py").write_text(textwrap.dedent(body))
    return f"{tmp_path / 'f.py'}:build"


def test_state_dict_errors_list_the_keys(tmp_path):
    spec = _factory(tmp_path, """
        from torch import nn
        def build():
            return nn.Sequential(*[nn.Linear(4, 4) for _ in range(7)])
    """)
    sd = {f"layer{i}.{k}": torch.zeros(4, 4 if k == "weight" else 1).squeeze(-1)
          for i in range(7) for k in ("weight", "bias")}
    torch.save(sd, tmp_path / "w.pt")
    with pytest.raises(CheckpointError) as e:
        load_model(spec, weights=str(tmp_path / "w.pt"))
    msg = str(e.value)
    assert "14 missing key(s): 0.bias, 0.weight, 1.bias, 1.weight, 2.bias" in msg and "and 4 more" in msg
    assert "14 unexpected key(s): layer0.bias, layer0.weight" in msg and "\n" not in msg


def test_sinabs_state_buffers_are_dropped_but_min_v_mem_is_kept(tmp_path):
    pytest.importorskip("sinabs")
    spec = _factory(tmp_path, """
        from torch import nn
        import sinabs.layers as sl
        def build():
            return nn.Sequential(nn.Linear(4, 3), sl.IAF(min_v_mem=-1.0))
    """)
    model = load_model(spec).model.spikeport_inner
    with torch.no_grad():
        model(torch.rand(5, 2, 4))  # the state buffers take this batch's shape [5, 3]
        model[1].min_v_mem.fill_(-0.25)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    loaded = load_model(spec, weights=str(tmp_path / "w.pt"), time_layout="bt")
    assert loaded.notes == [f"{tmp_path / 'w.pt'}: ignored 1 saved neuron state buffer(s) (1.v_mem): they hold the "
                            "last training batch's membrane, not weights; state starts from zero for every batch"]
    assert float(loaded.model.spikeport_inner[1].min_v_mem) == -0.25


def test_a_pickled_whole_model_is_refused_with_the_two_lines_that_resave_it(tmp_path):
    pytest.importorskip("spikingjelly")
    spec = _factory(tmp_path, """
        from torch import nn
        from spikingjelly.activation_based import layer, neuron
        def build():
            return nn.Sequential(layer.Linear(4, 3), neuron.LIFNode(step_mode="m"))
    """)
    whole = tmp_path / "model.pt"
    original = load_model(spec).model.spikeport_inner
    torch.save(original, whole)
    for kwargs in ({"weights": str(whole)}, {}):
        with pytest.raises(CheckpointError) as e:
            load_model(spec, **kwargs) if kwargs else load_model(str(whole))
        msg = str(e.value)
        assert "refused" in msg and "could run code" in msg and "\n" not in msg
    first, second = msg.split("`")[1], msg.split("`")[3]
    assert first == f'm = torch.load("{whole}", weights_only=False)' and \
        second == 'torch.save(m.state_dict(), "model.weights.pt")'
    ns: dict = {"torch": torch}
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(first, ns)  # the user's two lines, as printed
        exec(second, ns)
    finally:
        os.chdir(cwd)
    back = load_model(spec, weights=str(tmp_path / "model.weights.pt")).model.spikeport_inner
    assert torch.equal(back[0].weight, original[0].weight)
