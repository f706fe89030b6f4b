"""Each framework's neuron module beside the executor of the IR op its adapter produces: identical spikes and
membranes, step by step, on currents that include exact threshold ties (half of them on a 1/8 grid).

The IR node comes from the registered adapter (module -> IR), the executor from the op spec (IR -> step), so
this checks both against the framework's own forward.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from spikeport.converter.tracer import convert_module, layout_scope
from spikeport.ops._torch import NeuronModule

T, B, N = 14, 24, 40


def _currents(scale: float = 1.0, seed: int = 0, shape: tuple[int, ...] = (N,)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, *shape, generator=g) * 0.6 + 0.35
    grid = torch.round(x * 8) / 8  # sums of multiples of 1/8 land exactly on thresholds
    return torch.cat([x, grid], dim=1) * scale


def _node(module, layout: str):
    with layout_scope(layout):
        nodes = convert_module(module, "n")
    assert len(nodes) == 1, nodes
    return nodes[0]


def _run_ir(node, x):
    """Executor spikes [T, ...] and the state after every step."""
    mod = NeuronModule(node, tuple(x.shape[2:]))
    st = mod.init_state(x[0])
    spikes, states = [], []
    for t in range(x.shape[0]):
        s, st = mod.step(x[t], st)
        spikes.append(s)
        states.append(st)
    return torch.stack(spikes), states


def _same(a, b, what):
    assert a.shape == b.shape, (what, a.shape, b.shape)
    diff = (a.float() - b.float()).abs().max().item() if a.numel() else 0.0
    assert torch.equal(a.float(), b.float()), f"{what}: max |diff| {diff}"


# ---------------------------------------------------------------- SpikingJelly
@pytest.mark.parametrize("kind,v_reset,decay_input,mode", [
    (k, vr, di, m) for k in ("IF", "LIF", "PLIF") for vr in (0.0, None, -0.25) for di in (True, False)
    for m in ("m", "s") if not (k == "IF" and not di)])
def test_spikingjelly_neurons(kind, v_reset, decay_input, mode):
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import functional, neuron

    x = _currents(2.0)
    kw = {} if kind == "IF" else {"decay_input": decay_input}
    cls = {"IF": neuron.IFNode, "LIF": neuron.LIFNode, "PLIF": neuron.ParametricLIFNode}[kind]
    if kind == "LIF":
        kw["tau"] = 3.0
    if kind == "PLIF":
        kw["init_tau"] = 3.0
    m = cls(v_threshold=1.0, v_reset=v_reset, step_mode=mode, store_v_seq=True, **kw)
    with torch.no_grad():
        if kind == "PLIF":
            m.w.fill_(0.3)
        functional.reset_net(m)
        s_ref = m(x) if mode == "m" else torch.stack([m(xt) for xt in x])
    s, states = _run_ir(_node(m, "tb" if mode == "m" else "step"), x)
    _same(s_ref, s, "spikes")
    _same(m.v_seq, torch.stack(states), "membrane")


def test_spikingjelly_refusals():
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import neuron, surrogate

    from spikeport.errors import GraphError

    with pytest.raises(GraphError, match=r"module 'n' .*spiking=False.*analog"):
        _node(neuron.IFNode(surrogate_function=surrogate.Sigmoid(spiking=False), step_mode="m"), "tb")
    with pytest.raises(GraphError, match="single-step mode.*--time-layout 'tb'|--time-layout 'step'"):
        _node(neuron.IFNode(step_mode="s"), "tb")


# ---------------------------------------------------------------- snnTorch
@pytest.mark.parametrize("mech,delay,gsf", list(itertools.product(("subtract", "zero", "none"), (True, False),
                                                                   (1.0, 0.5))))
def test_snntorch_leaky(mech, delay, gsf):
    snn = pytest.importorskip("snntorch")
    x = _currents()
    m = snn.Leaky(beta=0.8, threshold=1.0, reset_mechanism=mech, reset_delay=delay, graded_spikes_factor=gsf)
    mem = m.reset_mem()
    spikes, mems = [], []
    with torch.no_grad():
        for xt in x:
            s, mem = m(xt, mem)
            spikes.append(s)
            mems.append(mem)
    s, states = _run_ir(_node(m, "step"), x)
    _same(torch.stack(spikes), s, "spikes")
    _same(torch.stack(mems), torch.stack(states), "membrane")


@pytest.mark.parametrize("mech,delay", list(itertools.product(("subtract", "zero", "none"), (True, False))))
def test_snntorch_synaptic(mech, delay):
    snn = pytest.importorskip("snntorch")
    x = _currents()
    m = snn.Synaptic(alpha=0.6, beta=0.8, threshold=1.0, reset_mechanism=mech, reset_delay=delay)
    syn, mem = m.reset_mem()
    spikes, mems, syns = [], [], []
    with torch.no_grad():
        for xt in x:
            s, syn, mem = m(xt, syn, mem)
            spikes.append(s)
            mems.append(mem)
            syns.append(syn)
    s, states = _run_ir(_node(m, "step"), x)
    _same(torch.stack(spikes), s, "spikes")
    _same(torch.stack(mems), torch.stack([st.mem for st in states]), "membrane")
    _same(torch.stack(syns), torch.stack([st.syn for st in states]), "synaptic current")


def test_snntorch_learned_beta_above_one_is_clamped_and_hidden_state_style():
    snn = pytest.importorskip("snntorch")
    x = _currents()
    m = snn.Leaky(beta=1.3, threshold=0.7, init_hidden=True, learn_beta=True)
    with torch.no_grad():
        ref = torch.stack([m(xt) for xt in x])
    s, _ = _run_ir(_node(m, "step"), x)
    _same(ref, s, "spikes")


def test_snntorch_refusals():
    snn = pytest.importorskip("snntorch")
    from spikeport.errors import GraphError

    with pytest.raises(GraphError, match=r"module 'n' \(snntorch._neurons.leaky.Leaky\): inhibition=True"):
        _node(snn.Leaky(beta=0.5, inhibition=True), "step")
    with pytest.raises(GraphError, match="called once per step.*--time-layout 'step'"):
        _node(snn.Leaky(beta=0.5), "tb")
    m = snn.Leaky(beta=0.5, reset_mechanism="subtract")
    m.load_state_dict({**m.state_dict(), "reset_mechanism_val": torch.tensor(1)})
    with pytest.raises(GraphError, match="reset_mechanism_val=1 with state function _base_sub"):
        _node(m, "step")


# ---------------------------------------------------------------- Norse
def _norse_p(**kw):
    from norse.torch import LIFParameters

    base = {"tau_syn_inv": 300.0, "tau_mem_inv": 150.0, "v_leak": 0.1, "v_th": 1.0, "v_reset": -0.2}
    base.update(kw)
    return LIFParameters(**{k: torch.tensor(v) for k, v in base.items()})


@pytest.mark.parametrize("dt", [1e-3, 5e-4])
def test_norse_lif_cell_and_sequence(dt):
    pytest.importorskip("norse")
    from norse.torch import LIF, LIFCell

    x = _currents(4.0)
    cell = LIFCell(_norse_p(), dt=dt)
    st, zs, vs, is_ = None, [], [], []
    with torch.no_grad():
        for xt in x:
            z, st = cell(xt, st)
            zs.append(z)
            vs.append(st.v)
            is_.append(st.i)
    s, states = _run_ir(_node(cell, "step"), x)
    _same(torch.stack(zs), s, "spikes")
    _same(torch.stack(vs), torch.stack([q.v for q in states]), "membrane")
    _same(torch.stack(is_), torch.stack([q.i for q in states]), "current")
    seq = LIF(_norse_p(), dt=dt)
    with torch.no_grad():
        z_seq, _ = seq(x)
    s2, _ = _run_ir(_node(seq, "tb"), x)
    _same(z_seq, s2, "sequence spikes")


@pytest.mark.parametrize("subtract", [False, True])
def test_norse_lifbox_cell(subtract):
    pytest.importorskip("norse")
    from norse.torch import LIFBoxCell, LIFBoxParameters
    from norse.torch.functional.reset import reset_subtract, reset_value

    x = _currents(4.0)
    p = LIFBoxParameters(tau_mem_inv=torch.tensor(200.0), v_leak=torch.tensor(0.05), v_th=torch.tensor(1.0),
                         v_reset=torch.tensor(0.0), reset_method=reset_subtract if subtract else reset_value)
    cell = LIFBoxCell(p)
    st, zs, vs = None, [], []
    with torch.no_grad():
        for xt in x:
            z, st = cell(xt, st)
            zs.append(z)
            vs.append(st.v)
    s, states = _run_ir(_node(cell, "step"), x)
    _same(torch.stack(zs), s, "spikes")
    _same(torch.stack(vs), torch.stack(states), "membrane")


# ---------------------------------------------------------------- sinabs
_SINABS = [(c, sp, rs, mv, ts, ni) for c in ("IAF", "LIF") for sp in ("multi", "single", "max3")
           for rs in ("subtract", "reset") for mv in (None, -0.5) for ts in (None, 2.0)
           for ni in ((True, False) if c == "LIF" else (False,))]


@pytest.mark.parametrize("cls,spike,reset,min_v,tau_syn,norm", _SINABS)
def test_sinabs_neurons(cls, spike, reset, min_v, tau_syn, norm):
    sl = pytest.importorskip("sinabs.layers")
    from sinabs.activation import MaxSpike, MembraneReset, MembraneSubtract, MultiSpike, SingleSpike

    x = _currents(1.5)
    fn = {"multi": MultiSpike, "single": SingleSpike, "max3": MaxSpike(3)}[spike]
    kw = {"spike_threshold": torch.tensor(0.75), "spike_fn": fn, "min_v_mem": min_v, "tau_syn": tau_syn,
          "reset_fn": MembraneSubtract() if reset == "subtract" else MembraneReset(), "record_states": True}
    m = sl.IAF(**kw) if cls == "IAF" else sl.LIF(tau_mem=5.0, norm_input=norm, **kw)
    with torch.no_grad():
        s_ref = m(x.transpose(0, 1)).transpose(0, 1)
        v_ref = m.recordings["v_mem"].transpose(0, 1)
    s, states = _run_ir(_node(m, "bt"), x)
    _same(s_ref, s, "spikes")
    _same(v_ref, torch.stack([q.v for q in states]), "membrane")


def test_sinabs_squeeze_reset_value_and_refusals():
    sl = pytest.importorskip("sinabs.layers")
    from sinabs.activation import MembraneReset, SingleSpike

    from spikeport.errors import GraphError

    x = _currents(1.5)
    m = sl.LIFSqueeze(tau_mem=4.0, num_timesteps=T, reset_fn=MembraneReset(reset_value=0.3), spike_fn=SingleSpike)
    with torch.no_grad():
        ref = m(x.transpose(0, 1).flatten(0, 1)).reshape(x.shape[1], T, -1).transpose(0, 1)
    s, _ = _run_ir(_node(m, "bt-flat"), x)
    _same(ref, s, "spikes")
    with pytest.raises(GraphError, match="spike_fn=None.*non-spiking"):
        _node(sl.LIF(tau_mem=3.0, spike_fn=None), "bt")
    with pytest.raises(GraphError, match=r"Squeeze.*--time-layout 'bt-flat'"):
        _node(m, "bt")


# ---------------------------------------------------------------- lava-dl SLAYER
def _slayer():
    from spikeport.targets.lava import enable_lava

    enable_lava()
    pytest.importorskip("lava.lib.dl.slayer")
    from lava.lib.dl.slayer.neuron import cuba

    return cuba


@pytest.mark.parametrize("thr,cd,vd,graded", [(th, cd, vd, g) for th in (1.25, 1.3, 0.5)
                                              for cd, vd in ((0.25, 0.03), (0.0, 0.0), (1.0, 0.5), (0.1, 1.0))
                                              for g in (False, True)])
def test_slayer_cuba(thr, cd, vd, graded):
    cuba = _slayer()
    from spikeport.converter.ir import SlayerCUBA

    x = _currents(1.3)
    m = cuba.Neuron(threshold=thr, current_decay=cd, voltage_decay=vd, graded_spike=graded)
    z = x.permute(1, 2, 0).contiguous()  # [B, N, T]
    with torch.no_grad():
        s_ref = m(z).permute(2, 0, 1)
        cur, volt = m.dynamics(z)
    node = SlayerCUBA("n", current_decay=int(torch.round(m.current_decay)),
                      voltage_decay=int(torch.round(m.voltage_decay)), threshold=m.threshold, state_scale=m.s_scale,
                      graded=graded)
    s, states = _run_ir(node, x)
    _same(s_ref, s, "spikes")
    _same(cur.permute(2, 0, 1), torch.stack([q.i for q in states]).float() / m.s_scale, "current")
    volt = volt.permute(2, 0, 1)
    fired = volt >= m.threshold + m.threshold_eps
    _same(volt * ~fired, torch.stack([q.v for q in states]).float() / m.s_scale, "membrane after reset")


def test_slayer_block_adapters_build_the_block_chain():
    _slayer()
    import lava.lib.dl.slayer as slayer

    from spikeport.converter.ir import Delay, SlayerCUBA, SlayerDense

    params = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03}
    block = slayer.block.cuba.Dense(dict(params), 6, 4, weight_scale=2)
    with layout_scope("time-last"):
        nodes = convert_module(block, "b")
    assert [type(n) for n in nodes] == [SlayerDense, SlayerCUBA, Delay]
    w = block.neuron.quantize_8bit(block.synapse.weight).detach().reshape(4, 6)
    assert torch.equal(torch.from_numpy(nodes[0].weight.copy()), w)
    assert nodes[1].name == "b.neuron" and nodes[1].threshold == block.neuron.threshold
