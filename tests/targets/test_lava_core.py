"""Lava / Loihi 2 target core: quantization, netx I/O, integer reference, Lava equality."""

from __future__ import annotations

import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch

from spikeport.converter.tracer import convert_module
from spikeport.errors import DataError, ExportError, GraphError
from spikeport.targets.lava import (
    FloatLayer,
    FloatNeuron,
    LoihiExecutor,
    LoihiLayer,
    LoihiNetwork,
    _compat,
    align_to_input,
    netx_datasets,
    netx_dense_weights,
    quantize_decay,
    quantize_layer,
    quantize_network,
    read_netx,
    run_reference,
    spike_agreement,
    write_netx,
)
from spikeport.targets.lava.legality import float_neuron

from .lava_float import float_spikes


# ---------------------------------------------------------------- helpers
def _dense(n_in, n_out, rng, **kw):
    kw.setdefault("bias", rng.integers(-40, 40, n_out))
    return LoihiLayer("dense", (n_out,), weight=rng.integers(-128, 127, (n_out, n_in)) * 2, **kw)


def _float_dense_net(rng):
    layers = [FloatLayer("dense", rng.normal(0, 0.25, (32, 64)), rng.normal(0, 0.05, 32), FloatNeuron.lif(2.0)),
              FloatLayer("dense", rng.normal(0, 0.4, (10, 32)), None, FloatNeuron.cuba(0.5, 0.25))]
    return layers, (64,)


def _float_conv_net(rng):
    layers = [FloatLayer("conv", rng.normal(0, 0.5, (4, 1, 3, 3)), rng.normal(0, 0.05, 4), FloatNeuron.lif(2.0),
                         padding=(1, 1)),
              FloatLayer("flatten"),
              FloatLayer("dense", rng.normal(0, 0.2, (10, 256)), None, FloatNeuron.if_(1.0))]
    return layers, (1, 8, 8)


def _spikes(rng, shape, p=0.3):
    return (rng.random(shape) < p).astype(np.int8)


# ---------------------------------------------------------------- compat
def test_spikeport_import_does_not_import_lava():
    code = ("import sys, spikeport.targets.lava as L; "
            "assert not any(m.startswith('lava.') for m in sys.modules), sorted(m for m in sys.modules "
            "if m.startswith('lava'))")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_enable_lava_without_lava_names_the_install_command(monkeypatch):
    monkeypatch.setattr(_compat, "_NETX", None)
    monkeypatch.setattr(_compat, "lava_available", lambda: False)
    with pytest.raises(ExportError, match="pip install --no-deps --ignore-requires-python lava-nc==0.10.0"):
        _compat.enable_lava()


@pytest.mark.lava
def test_enable_lava_is_idempotent_and_patches_only_its_modules(netx):
    assert _compat.enable_lava() is netx
    finders = [f for f in sys.meta_path if isinstance(f, _compat._LavaPatchFinder)]
    assert len(finders) == 1
    from lava.magma.compiler import var_model

    assert var_model.ByteEncoder.__dataclass_params__.frozen
    assert finders[0].find_spec("lava.magma.compiler.compiler", None) is None


# ---------------------------------------------------------------- quantization
def test_quantize_decay_golden():
    assert [quantize_decay(f) for f in (0.0, 0.25, 0.5, 1 / 3, 1.0)] == [0, 1024, 2048, 1365, 4096]
    with pytest.raises(ExportError):
        quantize_decay(1.5)


def test_float_neuron_mappings():
    lif = FloatNeuron.lif(4.0, 1.5)
    assert (lif.i_decay, lif.v_decay, lif.input_gain, lif.v_threshold) == (1.0, 0.25, 1.0, 1.5)
    assert FloatNeuron.lif(2.0, decay_input=True).input_gain == 0.5
    assert FloatNeuron.if_().v_decay == 0.0
    with pytest.raises(ExportError, match="soft reset"):
        FloatNeuron.lif(2.0, v_reset=None)
    with pytest.raises(ExportError, match="resets to 0"):
        FloatNeuron.if_(v_reset=-0.5)


def test_quantize_layer_golden_auto_and_slayer():
    w = np.array([[0.5, -0.25], [1.0, 0.125]])
    layer = FloatLayer("dense", w, None, FloatNeuron.lif(2.0, 1.0))
    auto = quantize_layer(layer, (2,))
    # scale = min(254 / 1.0, 256 / 0.25, 131071 / 1) = 254; mixed sign -> even grid
    assert auto.scale == 254.0
    assert auto.weight.tolist() == [[128, -64], [254, 32]]
    assert (auto.v_th_mant, auto.i_decay, auto.v_decay, auto.bias) == (254, 4096, 2048, None)
    slayer = quantize_layer(layer, (2,), scale="slayer")
    assert slayer.weight.tolist() == [[32, -16], [64, 8]] and slayer.v_th_mant == 64
    biased = quantize_layer(FloatLayer("dense", w, np.array([0.1, -0.2]), FloatNeuron.if_(2.0)), (2,))
    assert biased.bias.tolist() == [25, -51] and biased.v_th_mant == 508
    with pytest.raises(ExportError, match="bias with current decay"):
        quantize_layer(FloatLayer("dense", w, np.array([0.1, 0.1]), FloatNeuron.cuba(0.5, 0.5)), (2,))


def test_high_threshold_names_the_threshold_not_zero_weights():
    """A threshold the 17-bit mantissa can hold only at a tiny scale rounds every weight to 0: the error says so
    (not netx's "dense weights are all zero") and gives the bounds on V_th / max|w|."""
    w = np.array([[0.5, -0.25], [1.0, 0.125]])  # mixed sign, max |w| = 1
    # V_th = 2e5: scale = 131071 / 2e5 = 0.655 < 1, so 2 * rint(w * 0.655 / 2) = 0 everywhere
    with pytest.raises(ExportError) as e:
        quantize_layer(FloatLayer("dense", w, None, FloatNeuron.if_(2e5), name="fc"), (2,))
    msg = str(e.value)
    assert "dense layer 'fc': every weight rounds to 0 because of the threshold" in msg
    assert "17-bit" in msg and "131071/200000 = 0.6554" in msg and "all zero" not in msg
    assert "below 1.311e+05 x" in msg and "up to 516 x" in msg and "smaller v_threshold" in msg
    # just inside the bound the largest weight survives (one nonzero level), and with V_th = 516 all 8 bits
    assert np.count_nonzero(quantize_layer(FloatLayer("dense", w, None, FloatNeuron.if_(1.3e5)), (2,)).weight) == 1
    assert quantize_layer(FloatLayer("dense", w, None, FloatNeuron.if_(516.0)), (2,)).weight.max() == 254
    with pytest.raises(ExportError, match="because of the bias: .*13-bit"):  # a huge bias caps the scale instead
        quantize_layer(FloatLayer("dense", w, np.array([5000.0, 0.0]), FloatNeuron.if_(1.0)), (2,))
    with pytest.raises(ExportError, match="at scale 0.1 .* use scale='auto' or a larger scale"):
        quantize_layer(FloatLayer("dense", w, None, FloatNeuron.if_(1.0)), (2,), scale=0.1)


def test_netx_dense_weights_golden():
    w_lava, bits, exp, mode = netx_dense_weights(np.array([[2, -4], [6, 8]]))
    assert (w_lava.tolist(), bits, exp, mode) == ([[32, -64], [96, 128]], 4, -4, 1)
    w_lava, bits, exp, mode = netx_dense_weights(np.array([[3, 255]]))
    assert (w_lava.tolist(), bits, exp, mode) == ([[3, 255]], 8, 0, 2)


def test_float_model_matches_spikeport_neuron_modules():
    from spikeport.models.neurons import modules as m

    rng = np.random.default_rng(3)
    w, b = rng.normal(0, 0.6, (6, 5)), rng.normal(0, 0.1, 6)
    x = _spikes(rng, (9, 2, 5))
    for mod in (m.LIF(tau=2.0, decay_input=False), m.LIF(tau=3.0, decay_input=True), m.IF(),
                m.CubaLIF(i_decay=0.5, v_decay=0.25), m.PLIF(init_tau=3.0, decay_input=True)):
        bias = None if isinstance(mod, m.CubaLIF) else b
        (node,) = convert_module(mod, "n")  # the module's IR node, mapped by its op spec's Loihi mapping
        ours = float_spikes([FloatLayer("dense", w, bias, float_neuron(node))], x)[0]
        z = torch.as_tensor(x, dtype=torch.float64) @ torch.as_tensor(w).T + (0 if bias is None else torch.as_tensor(b))
        assert torch.equal(ours, mod.double()(z)), type(mod).__name__


@pytest.mark.parametrize("make", [_float_dense_net, _float_conv_net])
def test_float_vs_quantized_spike_agreement(make):
    rng = np.random.default_rng(0)
    layers, in_shape = make(rng)
    x = _spikes(rng, (16, 8, *in_shape))
    ref = float_spikes(layers, x)
    agree = {sc: spike_agreement(ref, run_reference(quantize_network(layers, in_shape, sc), x, lava_delay=False))
             for sc in ("auto", "slayer")}
    # measured: dense auto {0: .998, 1: .984} slayer {.994, .936}; conv auto {.999, .966} slayer {.997, .944}
    assert min(agree["auto"].values()) >= 0.95
    assert np.mean(list(agree["auto"].values())) > np.mean(list(agree["slayer"].values()))


# ---------------------------------------------------------------- network validation
def test_network_validation_names_the_layer():
    rng = np.random.default_rng(1)
    with pytest.raises(GraphError, match="layer 1 .*expects 30 inputs"):
        LoihiNetwork((64,), (_dense(64, 32, rng), _dense(30, 10, rng)))
    with pytest.raises(GraphError, match="needs a flatten"):
        conv = LoihiLayer("conv", (2, 6, 6), weight=np.ones((2, 1, 3, 3), int))
        LoihiNetwork((1, 8, 8), (conv, _dense(72, 4, rng)))
    with pytest.raises(GraphError, match="'fc1'.*all zero"):
        LoihiLayer("dense", (2,), weight=np.zeros((2, 3), int), name="fc1")
    with pytest.raises(GraphError, match="mixed-sign dense weights must lie in"):
        LoihiLayer("dense", (1,), weight=np.array([[-3, 300]]))
    with pytest.raises(GraphError, match="inhibitory-only matrix"):
        LoihiLayer("dense", (1,), weight=np.array([[-8, -2]]))
    with pytest.raises(GraphError, match="must hold integers"):
        LoihiLayer("dense", (1,), weight=np.array([[0.5, 2.0]]))


# ---------------------------------------------------------------- netx write / read
def _small_conv_net(rng):
    conv = LoihiLayer("conv", (3, 3, 3), weight=rng.integers(-100, 100, (3, 2, 3, 3)) * 2,
                      bias=rng.integers(-9, 9, 3), i_decay=2048, v_decay=512, v_th_mant=300,
                      stride=(2, 2), padding=(1, 1), scale=12.5, name="conv1")
    flat = LoihiLayer("flatten", (27,))
    fc = LoihiLayer("dense", (5,), weight=rng.integers(0, 255, (5, 27)), v_th_mant=700)
    return LoihiNetwork((2, 5, 5), (conv, flat, fc))


def test_write_netx_reads_back_every_key(tmp_path):
    net = _small_conv_net(np.random.default_rng(2))
    path = write_netx(net, tmp_path / "net.net")
    want = netx_datasets(net)
    with h5py.File(path, "r") as f:
        found = []
        f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None)
        assert sorted(found) == sorted(want)
        assert f["layer/1/type"].dtype == np.dtype("S10") and f["layer/1/type"][0] == b"conv"
        assert f["layer/1/neuron/type"][()] == b"CUBA"
        assert f["layer/1/weight"].dtype == np.float32 and f["layer/1/weight"].shape == (3, 2, 3, 3)
        assert f["layer/1/neuron/gradedSpike"].dtype == np.bool_
        for key, value in want.items():
            if isinstance(value, np.ndarray):
                assert f[key].dtype == value.dtype and np.array_equal(f[key][()], value), key
        assert f["layer/1/stride"][()].tolist() == [2, 2] and f["layer/3/inFeatures"][()] == 27
        assert f["layer/1"].attrs["spikeport_name"] == "conv1"
    back = read_netx(path)
    assert back.input_shape == net.input_shape and len(back.layers) == 3
    for a, b in zip(net.layers, back.layers, strict=True):
        for field in ("kind", "shape", "i_decay", "v_decay", "v_th_mant", "stride", "padding", "groups", "scale"):
            assert getattr(a, field) == getattr(b, field), field
        for arr in ("weight", "bias"):
            x, y = getattr(a, arr), getattr(b, arr)
            assert (x is None and y is None) or np.array_equal(x, y)
    assert not list(tmp_path.glob(".*tmp"))  # atomic: no temporary left behind


def test_read_netx_errors_are_one_line_and_name_file_and_group(tmp_path):
    def err(path):
        with pytest.raises(DataError) as info:
            read_netx(path)
        msg = str(info.value)
        assert "\n" not in msg and str(path) in msg
        return msg

    text = tmp_path / "notes.net"
    text.write_text("not hdf5")
    assert "not an HDF5 file" in err(text)
    assert "no such netx file" in err(tmp_path / "missing.net")
    empty = tmp_path / "empty.net"
    with h5py.File(empty, "w") as f:
        f.create_group("other")
    assert "missing group /layer" in err(empty)
    path = write_netx(_small_conv_net(np.random.default_rng(4)), tmp_path / "ok.net")

    def broken(name, edit):
        p = tmp_path / name
        p.write_bytes(path.read_bytes())
        with h5py.File(p, "a") as f:
            edit(f)
        return err(p)

    assert "/layer/3: missing dataset 'weight'" in broken("nw.net", lambda f: f.__delitem__("layer/3/weight"))

    def str_weight(f):
        del f["layer/3/weight"]
        f.create_dataset("layer/3/weight", data=np.array([b"abc"]))
    assert "/layer/3: 'weight' must be numeric" in broken("sw.net", str_weight)

    def frac_weight(f):
        f["layer/3/weight"][0, 0] = 0.5
    assert "must hold integers" in broken("fw.net", frac_weight)

    def pool(f):
        del f["layer/2/type"]
        f.create_dataset("layer/2/type", (1,), "S10", [b"pool"])
    assert "/layer/2: layer type 'pool' is not supported" in broken("pool.net", pool)
    assert "/layer/1/neuron: missing dataset 'vThMant'" in broken(
        "nv.net", lambda f: f.__delitem__("layer/1/neuron/vThMant"))


# ---------------------------------------------------------------- integer reference
def _hand_net(bias=(1, 0), i_decay=4096):
    layer = LoihiLayer("dense", (2,), weight=np.array([[10, 0], [0, -3]]), bias=np.array(bias), i_decay=i_decay,
                       v_decay=1024, v_th_mant=12)
    return LoihiNetwork((2,), (layer,))


_HAND_X = torch.tensor([[1, 1], [1, 0], [0, 0], [1, 1], [0, 0]]).view(5, 1, 2)


def test_reference_hand_computed_no_delay():
    # v keeps 3/4 (truncated towards zero), u = a << 6, bias 1 << 6 = 64, spike when v > 12 << 6 = 768
    tr = LoihiExecutor(_hand_net()).run(_HAND_X, lava_delay=False, record_state=True)
    assert tr.u[0][:, 0].tolist() == [[640, -192], [640, 0], [0, 0], [640, -192], [0, 0]]
    assert tr.v[0][:, 0].tolist() == [[704, -192], [0, -144], [64, -108], [752, -273], [628, -204]]
    assert tr.spikes[0][:, 0].tolist() == [[0, 0], [1, 0], [0, 0], [0, 0], [0, 0]]


def test_reference_hand_computed_lava_delay_and_alignment():
    tr = LoihiExecutor(_hand_net()).run(_HAND_X, record_state=True)
    assert tr.v[0][:, 0].tolist() == [[64, 0], [752, -192], [0, -144], [64, -108], [752, -273]]
    assert tr.spikes[0][:, 0].tolist() == [[0, 0], [0, 0], [1, 0], [0, 0], [0, 0]]
    nodelay = run_reference(_hand_net(), _HAND_X, lava_delay=False)
    assert torch.equal(align_to_input(tr.spikes, _hand_net())[0][:-1], nodelay[0][:-1])


def test_reference_current_decay_and_overflow():
    tr = LoihiExecutor(_hand_net(bias=(0, 0), i_decay=2048)).run(_HAND_X, lava_delay=False, record_state=True)
    assert tr.u[0][:, 0, 0].tolist() == [640, 960, 480, 880, 440]   # u/2 + a << 6
    # u wraps: 517 * 254 << 6 = 8404352 > 2**23 -> 8404352 - 2**24
    wrap = LoihiNetwork((517,), (LoihiLayer("dense", (1,), weight=np.full((1, 517), 254), v_th_mant=100),))
    trw = LoihiExecutor(wrap).run(torch.ones(1, 1, 517), lava_delay=False, record_state=True)
    assert trw.u[0].item() == 8404352 - 2 ** 24 and trw.spikes[0].item() == 0
    # u = 1024 * 128 << 6 = 2**23 is kept; v saturates at 2**23 - 1 and beats vth 131071 << 6
    sat = LoihiNetwork((1024,), (LoihiLayer("dense", (1,), weight=np.full((1, 1024), 128), v_th_mant=131071),))
    trs = LoihiExecutor(sat).run(torch.ones(1, 1, 1024), lava_delay=False, record_state=True)
    assert trs.u[0].item() == 2 ** 23 and trs.spikes[0].item() == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_reference_cuda_equals_cpu():
    rng = np.random.default_rng(5)
    net = quantize_network(*_float_conv_net(rng))
    x = torch.as_tensor(_spikes(rng, (8, 4, 1, 8, 8)))
    cpu, gpu = run_reference(net, x), run_reference(net, x, device="cuda")
    assert all(torch.equal(cpu[k], gpu[k].cpu()) for k in cpu)


# ---------------------------------------------------------------- Lava
@pytest.mark.lava
def test_netx_dense_weights_match_netx_and_lava(netx):
    import contextlib
    import io

    from lava.utils.weightutils import SignMode, clip_weights, truncate_weights

    rng = np.random.default_rng(6)
    checked = 0
    for trial in range(600):
        shape = tuple(rng.integers(1, 5, 2))
        w = [rng.integers(-256, 255, shape), rng.integers(0, 256, shape), -rng.integers(1, 256, shape),
             rng.integers(-8, 8, shape) << int(rng.integers(0, 5))][trial % 4]
        if not w.any():
            continue
        with np.errstate(divide="ignore"), contextlib.redirect_stdout(io.StringIO()):
            w_opt, bits, exp, mode = netx.utils.optimize_weight_bits(w)
        lava_w = truncate_weights(clip_weights(w_opt, SignMode(int(mode)), num_bits=8), SignMode(int(mode)), bits)
        ours = netx_dense_weights(w)
        assert np.array_equal(ours[0], lava_w) and ours[1:] == (bits, exp, int(mode)), w
        checked += 1
    assert checked > 550


@pytest.mark.lava
def test_netx_builds_the_written_network(netx, tmp_path):
    path = write_netx(_small_conv_net(np.random.default_rng(7)), tmp_path / "c.net")
    net = netx.hdf5.Network(net_config=str(path))
    assert [type(b).__name__ for b in net.layers] == ["Conv", "Dense"]
    assert tuple(net.inp.shape) == (5, 5, 2) and tuple(net.layers[0].out.shape) == (3, 3, 3)


def _lava_equal(path, net, x, **kw):
    from spikeport.targets.lava.lava_sim import run_lava

    t0 = time.perf_counter()
    got = run_lava(path, x, net=net, **kw)
    elapsed = time.perf_counter() - t0
    batched = kw.get("batched", True)
    ref = run_reference(net, x, lava_delay=not batched, input_message_bits=kw.get("input_message_bits", 0))
    assert set(got) == set(ref) == set(net.neuron_layers)
    for i in ref:
        assert got[i].shape == tuple(ref[i].shape)
        assert np.array_equal(got[i], ref[i].numpy()), f"layer {i}: {(got[i] != ref[i].numpy()).mean():.3f} differ"
    assert sum(int(r.sum()) for r in ref.values()) > 0  # the comparison is not vacuous
    return elapsed


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("make", [_float_dense_net, _float_conv_net])
def test_lava_fixed_pt_equals_reference(netx, tmp_path, make):
    rng = np.random.default_rng(8)
    layers, in_shape = make(rng)
    net = quantize_network(layers, in_shape)
    path = write_netx(net, tmp_path / "net.net")
    # batched: 3 samples x 12 steps in one run (reset_interval), input-aligned timeline
    _lava_equal(path, net, _spikes(rng, (12, 3, *in_shape)))
    # per sample: raw Lava timing, index for index with the one-step delay per layer
    _lava_equal(path, net, _spikes(rng, (10, 1, *in_shape)), batched=False)


@pytest.mark.lava
@pytest.mark.slow
def test_lava_equals_reference_on_edge_cases(netx, tmp_path):
    rng = np.random.default_rng(9)
    # u persists (iDecay 0) and wraps past 2**23, v reaches the 24-bit clip and the max threshold
    big = LoihiLayer("dense", (3,), weight=np.array([[254] * 40, [128] * 40, [1] * 40]), i_decay=0, v_decay=0,
                     v_th_mant=131071)
    inh = LoihiLayer("dense", (4,), weight=-rng.integers(1, 255, (4, 3)) | 1, bias=np.array([300, 4095, 0, 50]),
                     v_decay=4096, v_th_mant=1)                                # inhibitory + bias, full v decay
    net = LoihiNetwork((40,), (big, inh))
    path = write_netx(net, tmp_path / "edge.net")
    x = _spikes(rng, (16, 2, 40), p=0.95)
    assert LoihiExecutor(net).run(x, record_state=True).u[0].min() < -(2 ** 22)  # the wrap really happens
    _lava_equal(path, net, x)
    graded = quantize_network(*_float_dense_net(rng))
    gpath = write_netx(graded, tmp_path / "graded.net")
    _lava_equal(gpath, graded, rng.integers(0, 4, (8, 2, 64)), input_message_bits=3)
