"""One valid instance of every IR node type, with input shapes that fit it."""

from __future__ import annotations

import numpy as np

from spikeport.converter import ir


def sample_nodes() -> list[tuple[ir.IRNode, list[tuple[int, ...]]]]:
    r = np.random.default_rng(0)

    def f(*shape):
        return r.normal(size=shape).astype(np.float32)

    return [
        (ir.Input("in", shape=(2, 5, 5), index=0), []),
        (ir.Output("out", index=0), [(3,)]),
        (ir.Linear("fc", weight=f(4, 6), bias=f(4)), [(6,)]),
        (ir.Conv1d("c1", weight=f(4, 2, 3), bias=None, stride=2, padding=1, dilation=1, groups=1), [(2, 9)]),
        (ir.Conv2d("c2", weight=f(4, 1, 3, 3), bias=f(4), stride=(2, 1), padding=(1, 0), dilation=1, groups=2),
         [(2, 7, 7)]),
        (ir.ConvTranspose2d("ct", weight=f(2, 3, 3, 3), bias=f(3), stride=2, padding=1, output_padding=1), [(2, 4, 4)]),
        (ir.BatchNorm("bn", mean=f(3), var=np.abs(f(3)) + 0.1, weight=f(3), bias=None, eps=1e-3), [(3, 4, 4)]),
        (ir.IF("if", v_threshold=0.7, v_reset=None), [(3,)]),
        (ir.LIF("lif", tau=np.full((3,), 2.5), decay_input=False, v_threshold=1.0, v_reset=0.25), [(3, 2, 2)]),
        (ir.PLIF("plif", inv_tau=np.array(0.4, np.float32), v_threshold=0.5), [(3,)]),
        (ir.DALIF("dalif", alpha=np.array([0.9, 0.8], np.float32), beta=np.array([0.2, 0.3], np.float32)),
         [(2, 3, 3)]),
        (ir.CubaLIF("cuba", i_decay=0.25, v_decay=np.array([0.5, 0.6, 0.7]), v_threshold=np.array([1.0, 2.0, 3.0]),
                    v_reset=0.0), [(3,)]),
        (ir.Threshold("thr", threshold=0.5), [(4,)]),
        (ir.MaxPool("mp", kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True), [(2, 7, 7)]),
        (ir.AvgPool("ap", kernel_size=2, stride=2, padding=1, ceil_mode=False, count_include_pad=False,
                    divisor_override=None), [(2, 5, 5)]),
        (ir.SumPool("sp", kernel_size=2, stride=2, padding=0), [(2, 4, 4)]),
        (ir.AdaptiveAvgPool("aap", output_size=(2, 1)), [(2, 5, 4)]),
        (ir.Flatten("fl", start_dim=1, end_dim=-1), [(2, 3, 4)]),
        (ir.Reshape("rs", shape=(3, -1)), [(2, 3, 4)]),
        (ir.Add("add"), [(3, 2), (3, 2), (3, 2)]),
        (ir.Mul("mul"), [(3,), (3,)]),
        (ir.Concat("cat", axis=-1), [(2, 3), (2, 5)]),
        (ir.Scale("scale", scale=np.array([1.0, 2.0], np.float32)), [(2, 3)]),
        (ir.ReLU("relu"), [(5,)]),
        (ir.TemporalShift("ts", channels=4, n_future=1, n_past=1, alpha=np.array(0.3, np.float32)), [(4, 3, 3)]),
        (ir.TemporalPositionEncoding("pe", pos=f(2, 4, 1, 1)), [(4, 3, 3)]),
        (ir.GCAttention("gc", channels=4, reduction=2, context_weight=f(1, 4, 1, 1), context_bias=f(1),
                        t1_weight=f(2, 4, 1, 1), t1_bias=f(2), ln_weight=f(2, 1, 1), ln_bias=f(2, 1, 1),
                        t2_weight=f(4, 2, 1, 1), t2_bias=f(4)), [(4, 3, 3)]),
        (ir.StepAttention("sa", timesteps=2, reduction=1, w1=f(2, 2, 1), b1=f(2), w2=f(2, 2, 1), b2=f(2)),
         [(4, 3, 3)]),
        (ir.FSTA("fsta", channels=4, timesteps=2, freq_num=49, reduction=1, alpha=np.array(0.5, np.float32),
                 beta=np.array(0.5, np.float32), theta_t=np.array(0.6, np.float32),
                 theta_s=np.array(0.5, np.float32), fc_t=f(2, 2), attn_w1=f(1, 49, 7, 7)), [(4, 8, 8)]),
        (ir.SnnTorchLeaky("leaky", beta=0.8, threshold=np.array([0.5, 1.0, 1.5], np.float32)), [(3,)]),
        (ir.SnnTorchSynaptic("synaptic", alpha=0.6, beta=0.85, threshold=0.7, reset_mechanism="zero",
                             reset_delay=False), [(4,)]),
        (ir.NorseLIF("nlif", tau_syn_inv=200.0, tau_mem_inv=100.0, v_leak=0.1, v_th=0.5, v_reset=-0.1, dt=1e-2),
         [(3,)]),
        (ir.NorseLIFBox("nbox", tau_mem_inv=np.full((2, 1, 1), 100.0), v_th=0.4, reset="subtract", dt=5e-3),
         [(2, 3, 3)]),
        (ir.SinabsLIF("sinabs", alpha_mem=0.8, spike_threshold=0.6, alpha_syn=0.5, spike="multi", reset="subtract",
                      min_v_mem=-0.5, norm_input=True), [(4,)]),
        (ir.SlayerCUBA("slayer", current_decay=1024, voltage_decay=123, threshold=0.5), [(4,)]),
        (ir.Delay("delay", steps=2), [(3,)]),
        (ir.Quantize("quant", step=1 / 32, minimum=-4.0, maximum=3.96875), [(4,)]),
        (ir.SlayerDense("sdense", weight=f(4, 6)), [(6,)]),
        (ir.SlayerPool("spool", kernel_size=2, stride=2), [(2, 4, 4)]),
    ]


def wrap(node: ir.IRNode, in_shapes: list[tuple[int, ...]]):
    """A graph Input(s) -> node -> Output around ``node`` (Input nodes stand alone)."""
    from spikeport.converter import SpikeGraph

    g = SpikeGraph(f"wrap_{node.name}")
    if isinstance(node, ir.Input):
        g.add(node)
        g.add(ir.Output("o"), [node.name])
        return g
    names = []
    for i, s in enumerate(in_shapes):
        g.add(ir.Input(f"x{i}", shape=s, index=i))
        names.append(f"x{i}")
    g.add(node, names)
    if not isinstance(node, ir.Output):
        g.add(ir.Output("o"), [node.name])
    return g
