"""Turn a :class:`~spikeport.energy.record.Recording` into per-layer op counts (per sample).

Op columns (all per sample, i.e. totals divided by the samples seen):

* ``dense_macs``: dense MACs of the synapses over all timesteps (every weight at
  every output, padding taps included: half of what torch's FLOP counter reports).
* ``ann_macs``: the same dense MACs for *one* forward pass (one timestep, the first
  layer included): what the ANN of the same shape (ReLU instead of spiking neurons)
  computes per inference, since an ANN runs once, not T times.
* ``syn_acs``: effective accumulates of synapses whose input was binary or
  signed-binary (nonzero input x nonzero weight, exact fan-out).
* ``syn_int_acs``: value-weighted accumulates of synapses with integer inputs
  (e.g. a residual sum of spikes): an input of 2 costs two ACs.
* ``syn_macs``: effective MACs of synapses with real-valued inputs (the first,
  direct-encoded layer; average-pooled features).
* ``approx_sops`` / ``approx_macs``: the papers' approximation, firing rate x T x
  FLOPs: the input's nonzero fraction times the dense count (spiking inputs),
  the dense count itself for real inputs.
* ``elem_adds`` / ``elem_macs``: element-wise additions (pooling sums, residual
  adds, attention sums) and products with a non-binary operand (attention and
  temporal-shift scaling).
* ``neuron_updates``: membrane updates (every neuron at every timestep);
  ``active_updates``: those with a nonzero input current; ``spikes``: spikes emitted.

Helper columns for memory models: ``syn_events_spk`` / ``syn_events_real``
(nonzero-input x fan-out events, unweighted), ``in_events`` (nonzero spike-class
inputs), ``in_elements_real``, ``out_elements_real``, ``weights`` (per node),
``in_item``/``out_item``/``neurons`` (elements per timestep and sample).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spikeport.energy.record import CustomRecord, NeuronRecord, Recording, SynapseRecord, UnmeasuredRecord
from spikeport.errors import ConfigError

__all__ = ["OpCounts", "count_ops", "neurobench_ops", "OP_COLUMNS", "HELPER_COLUMNS", "GENERAL_NOTES"]

OP_COLUMNS = ("dense_macs", "ann_macs", "syn_acs", "syn_int_acs", "syn_macs", "approx_sops", "approx_macs", "elem_adds",
              "elem_macs", "neuron_updates", "active_updates", "spikes")
HELPER_COLUMNS = ("syn_events_spk", "syn_events_real", "in_events", "in_elements_real", "out_elements_real",
                  "weights", "in_item", "out_item", "neurons")

SPIKE_CLASSES = ("binary", "signed_binary")

GENERAL_NOTES = (
    "all counts are per sample (totals over the recorded samples divided by their number), summed over timesteps",
    "integer-valued synaptic inputs (e.g. residual sums of spikes) are counted as value-weighted ACs: an input of "
    "value k costs k accumulates (column syn_int_acs); NeuroBench instead counts them as MACs on nonzeros",
    "the first layer's real-valued (direct-encoded) input is counted as MACs at every timestep",
    "approx_sops/approx_macs are the papers' approximation firing_rate x T x FLOPs for comparison; exact counts "
    "differ at borders, strides and zero weights",
    "ann_macs: dense MACs of one forward pass (one timestep, first layer included) = what the ANN of the same shape "
    "computes per inference; dense_macs is the same count summed over all T steps",
)


@dataclass
class OpCounts:
    """Per-layer counts of one recording.

    Attributes:
        rows: one dict per node in execution order (keys: identity columns,
            :data:`OP_COLUMNS`, :data:`HELPER_COLUMNS`, ``rate``, ``in_rate``).
        timestep_rates: per neuron layer, firing rate at each timestep (None where unseen).
        channel_rates: per neuron layer, firing rate of each channel.
        samples, timesteps: as recorded.
        notes: counting assumptions (general ones plus each used rule's note).
        unmeasured: ``"name (Type)"`` of the layers no rule covers: their rows hold ``None`` (never 0) in
            every count column and no total includes them.
    """

    rows: list[dict[str, Any]]
    timestep_rates: dict[str, list[float | None]]
    channel_rates: dict[str, list[float]]
    samples: int
    timesteps: int
    notes: list[str] = field(default_factory=list)
    unmeasured: list[str] = field(default_factory=list)


def _div(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


def _base_row(r: Any, role: str) -> dict[str, Any]:
    row: dict[str, Any] = {"layer": r.name, "type": r.type_name, "role": role, "value_class": "",
                           "calls": r.calls, "rate": None, "in_rate": None}
    row.update(dict.fromkeys(OP_COLUMNS, 0.0))
    row.update(dict.fromkeys(HELPER_COLUMNS, 0.0))
    return row


def _steps_per_sample(r: SynapseRecord, forward_calls: int) -> int:
    """How many steps of each sample one node processed: the timesteps of its calls (``[T, B, ...]`` input)
    times its calls per model forward (a recurrent graph calls its nodes once per step)."""
    calls_per_forward = max(1, round(r.calls / forward_calls)) if forward_calls else 1
    return max(1, int(r.elements_t.shape[0])) * calls_per_forward


def _synapse_row(r: SynapseRecord, n: int, forward_calls: int = 0) -> dict[str, Any]:
    row = _base_row(r, r.rule.role)
    row["value_class"] = "+".join(c for c in ("binary", "signed_binary", "integer", "real") if c in r.classes)
    elements = r.total("elements")
    row["in_rate"] = _div(r.total("nonzero"), elements) if elements else None
    row["weights"] = float(r.weight_count)
    row["in_item"] = float(_prod(r.item_shape))
    row["out_item"] = float(_prod(r.out_item_shape))
    spk = SPIKE_CLASSES
    if r.rule.role == "pool":
        row["elem_adds"] = _div(r.total("nz_fan"), n)
        return row
    row["dense_macs"] = _div(r.total("dense"), n)
    row["ann_macs"] = row["dense_macs"] / _steps_per_sample(r, forward_calls)
    row["syn_acs"] = _div(r.total("nz_fan", spk), n)
    row["syn_int_acs"] = _div(r.total("abs_fan", ("integer",)), n)
    row["syn_macs"] = _div(r.total("nz_fan", ("real",)), n)
    approx_sops = 0.0
    for c in ("binary", "signed_binary", "integer"):
        ct = r.classes.get(c)
        if ct is not None and ct.elements:
            approx_sops += ct.nonzero / ct.elements * ct.dense
    row["approx_sops"] = _div(approx_sops, n)
    row["approx_macs"] = _div(r.total("dense", ("real",)), n)
    row["syn_events_spk"] = _div(r.total("nz_fan", spk + ("integer",)), n)
    row["syn_events_real"] = row["syn_macs"]
    row["in_events"] = _div(r.total("nonzero", spk + ("integer",)), n)
    row["in_elements_real"] = _div(r.total("elements", ("real",)), n)
    row["out_elements_real"] = _div(r.total("out_elements", ("real",)), n)
    return row


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out if shape else 0


def _neuron_row(r: NeuronRecord, n: int, active: bool) -> tuple[dict[str, Any], list[float | None], list[float]]:
    row = _base_row(r, r.rule.role)
    spikes = int(r.spikes_tc.sum())
    elements = int(r.elements_t.sum())
    row["value_class"] = "spike counts" if r.counts else ("graded" if r.graded else "spikes")
    row["rate"] = _div(spikes, elements)
    row["spikes"] = _div(spikes, n)
    row["neurons"] = float(r.neurons)
    if r.rule.role == "neuron":
        row["neuron_updates"] = _div(elements, n)
        row["active_updates"] = _div(int(r.active_t.sum()), n) if active else row["neuron_updates"]
    per_t = [(_div(int(s), int(e)) if int(e) else None) for s, e in zip(r.spikes_tc.sum(1).tolist(),
                                                                        r.elements_t.tolist(), strict=False)]
    per_c_elems = elements / max(1, r.channels)
    per_c = [_div(int(s), per_c_elems) for s in r.spikes_tc.sum(0).tolist()]
    return row, per_t, per_c


def _unmeasured_row(r: UnmeasuredRecord) -> dict[str, Any]:
    row = _base_row(r, "unmeasured")
    row.update(dict.fromkeys(OP_COLUMNS + HELPER_COLUMNS))
    looks = {True: "binary outputs: looks like a spiking neuron", False: "non-binary outputs",
             None: "never ran"}[r.binary_outputs]
    row["value_class"] = f"unmeasured ({looks})"
    return row


def count_ops(rec: Recording, samples: int | None = None) -> OpCounts:
    """Per-layer, per-sample op counts of ``rec``.

    Args:
        rec: a finished recording.
        samples: override the sample count (when the model input was not ``[T, B, ...]``).

    Raises:
        ConfigError: nothing was recorded (no forward call or no sample).
    """
    n = int(samples if samples is not None else rec.samples)
    if n <= 0:
        raise ConfigError("no samples were recorded: run the model inside `with record_spikes(model) as rec:` on "
                          "[T, B, ...] input, or pass samples=")
    rows, t_rates, c_rates = [], {}, {}
    notes = list(GENERAL_NOTES)
    if not rec.active_counted:
        notes.append("active_updates: not measured (record with count_active=True); every membrane update is "
                     "taken as active")
    if not rec.graph_bound:
        notes.append("recorded on torch modules: element-wise ops written inline in forward() code (e.g. residual "
                     "adds of currents) have no module and are not counted; record the traced graph to count them")
    for r in rec.nodes():
        if isinstance(r, SynapseRecord):
            row = _synapse_row(r, n, rec.forward_calls)
        elif isinstance(r, NeuronRecord):
            row, t_rates[r.name], c_rates[r.name] = _neuron_row(r, n, rec.active_counted)
        elif isinstance(r, CustomRecord):
            row = _base_row(r, "custom")
            row["elem_adds"] = _div(r.totals.get("elem_adds", 0), n)
            row["elem_macs"] = _div(r.totals.get("elem_macs", 0), n)
        elif isinstance(r, UnmeasuredRecord):
            row = _unmeasured_row(r)
        else:  # pragma: no cover - no other record kinds
            continue
        rows.append(row)
        if r.rule.note and r.rule.note not in notes:
            notes.append(r.rule.note)
    unmeasured = [f"{name} ({typ})" for name, typ, _ in rec.unmeasured]
    if unmeasured:
        notes.append(f"UNMEASURED ({len(unmeasured)} layer(s) with no energy rule; their spikes and operations are "
                     f"in no total, so every total is a lower bound): " + ", ".join(unmeasured))
    return OpCounts(rows, t_rates, c_rates, n, rec.timesteps, notes, unmeasured)


def neurobench_ops(rec: Recording, samples: int | None = None) -> dict[str, float]:
    """The counts in NeuroBench's ``SynapticOperations`` vocabulary (per sample).

    ``Effective_ACs``: effective ops of synapses whose input was in {-1, 0, 1};
    ``Effective_MACs``: effective ops on any other input, counted on nonzeros
    (not value-weighted); ``Dense``: all valid (non-padding) taps. Only synapse
    nodes contribute, as NeuroBench hooks only Linear/Conv layers.
    """
    n = int(samples if samples is not None else rec.samples)
    if n <= 0:
        raise ConfigError("no samples were recorded")
    acs = macs = dense = 0
    for r in rec.nodes(SynapseRecord):
        if not isinstance(r, SynapseRecord) or r.rule.role != "synapse":  # isinstance: nodes() is typed _NodeBase
            continue
        acs += r.total("nz_fan", SPIKE_CLASSES)
        macs += r.total("nz_fan", ("integer", "real"))
        dense += r.total("valid_fan")
    return {"Effective_MACs": macs / n, "Effective_ACs": acs / n, "Dense": dense / n}
