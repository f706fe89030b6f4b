"""Energy models: frozen configs of per-operation energies, selectable by name or loaded from TOML.

Built-in models (``spikeport energy --hardware NAME``):

* ``horowitz45``: compute only, 45 nm (Horowitz, ISSCC 2014): MAC 4.6 pJ (FP32
  multiply 3.7 + add 0.9), AC 0.9 pJ. Real-valued inputs (the first layer) cost MACs.
* ``lemaire``: Lemaire et al. (ICONIP 2022) style analytical model: INT32 add
  0.1 pJ / multiply 3.1 pJ for synaptic and neuron ops, plus SRAM reads and writes
  of weights, membrane potentials, input values and spikes, each 32-bit word
  charged one 64-bit SRAM access of its buffer's size tier (Horowitz 2014: 10 pJ
  up to 8 KB, 20 pJ up to 32 KB, 100 pJ up to 1 MB and beyond).
* ``loihi``: Loihi (Davies et al., IEEE Micro 2018, Table 2 as quoted by several
  secondary sources): 23.6 pJ per synaptic op (the minimum), neuron update 81 pJ
  active / 52 pJ inactive, 1.7 pJ per spike within a tile. The 23.6 pJ figure is
  disputed (one project's notes say it is not in the primary paper): check it
  against the paper before citing results.

A TOML file gives the same fields (see :data:`TOML_KEYS`); ``base = "NAME"``
starts from a built-in model and overrides only the keys given.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spikeport._registry import Registry
from spikeport.errors import ConfigError

__all__ = ["EnergyModel", "HARDWARE", "get_hardware", "load_hardware_toml", "ENERGY_KINDS",
           "TOML_KEYS"]

ENERGY_KINDS = ("ac", "mac", "neuron", "spike", "memory")
"""Energy breakdown kinds: accumulates, multiply-accumulates, neuron updates, spike traffic, memory accesses."""

HORO_SRAM = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))
HORO_SOURCE = "M. Horowitz, 'Computing's energy problem', ISSCC 2014 (45 nm, 0.9 V)"


@dataclass(frozen=True)
class EnergyModel:
    """Per-operation energies (pJ) and what they are charged on.

    Attributes:
        name, description: identification.
        e_ac_pj: one accumulate: a synaptic op on a binary/integer input, an element-wise addition.
        e_mac_pj: one multiply-accumulate: a synaptic op on a real input, an element-wise product.
        e_mul_pj, e_add_pj: one multiplication / addition inside a membrane update,
            charged ``neuron_ops`` times per update when ``neuron_ops`` is True.
        neuron_ops: charge the neuron rule's (multiplications, additions) per update.
        e_neuron_active_pj, e_neuron_idle_pj: per membrane update with nonzero / zero input.
        e_spike_pj: per emitted spike.
        memory: charge memory accesses (Lemaire style, see module docstring).
        word_bytes: bytes per stored value (weights, potentials, spikes).
        sram: ``((capacity_bytes, pJ_per_access), ...)`` ascending; a buffer costs the first tier
            that holds it, the last tier beyond.
        fifo_bytes: capacity of a layer's spike FIFO (sets the tier of spike reads/writes).
        sources: citations; notes: assumptions printed in every report.
    """

    name: str
    description: str = ""
    e_ac_pj: float = 0.0
    e_mac_pj: float = 0.0
    e_mul_pj: float = 0.0
    e_add_pj: float = 0.0
    neuron_ops: bool = False
    e_neuron_active_pj: float = 0.0
    e_neuron_idle_pj: float = 0.0
    e_spike_pj: float = 0.0
    memory: bool = False
    word_bytes: int = 4
    sram: tuple[tuple[int, float], ...] = ()
    fifo_bytes: int = 4000
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("energy model: 'name' must be a non-empty string")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name.startswith("e_"):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                    raise ConfigError(f"energy model '{self.name}': {f.name} must be a finite number >= 0, got {v!r}")
                object.__setattr__(self, f.name, float(v))
        for key in ("word_bytes", "fifo_bytes"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ConfigError(f"energy model '{self.name}': {key} must be a positive integer, got {v!r}")
        try:
            tiers = tuple((int(c), float(e)) for c, e in self.sram)
        except (TypeError, ValueError):
            raise ConfigError(f"energy model '{self.name}': sram must be a list of [capacity_bytes, pJ] pairs, "
                              f"got {self.sram!r}") from None
        if any(c <= 0 or e < 0 or not math.isfinite(e) for c, e in tiers) or \
                any(a[0] >= b[0] for a, b in itertools.pairwise(tiers)):
            raise ConfigError(f"energy model '{self.name}': sram tiers must have increasing positive capacities and "
                              f"non-negative energies, got {self.sram!r}")
        for key in ("neuron_ops", "memory"):
            v = getattr(self, key)
            if not isinstance(v, bool):
                raise ConfigError(f"energy model '{self.name}': {key} must be true or false, got {v!r}")
        if self.memory and not tiers:
            raise ConfigError(f"energy model '{self.name}': memory = true needs sram tiers")
        object.__setattr__(self, "sram", tiers)
        object.__setattr__(self, "sources", tuple(str(s) for s in self.sources))
        object.__setattr__(self, "notes", tuple(str(s) for s in self.notes))
        costs = [f.name for f in dataclasses.fields(self) if f.name.startswith("e_")]
        if not any(getattr(self, k) for k in costs) and not (self.memory and any(e for _, e in tiers)):
            raise ConfigError(f"energy model '{self.name}': every energy cost is 0, so every report would say 0 pJ; "
                              f"set at least one of {', '.join(costs)} (or base = \"horowitz45\")")

    # ------------------------------------------------------------ costs
    def access_pj(self, buffer_bytes: float) -> float:
        """Energy of one word access in a buffer of ``buffer_bytes`` (first SRAM tier that holds it)."""
        for cap, e in self.sram:
            if buffer_bytes <= cap:
                return e
        return self.sram[-1][1] if self.sram else 0.0

    def memory_accesses(self, row: Mapping[str, Any], neuron_ops: tuple[int, int] = (0, 0)) -> dict[str, float]:
        """Word accesses of one layer row, by buffer: ``{buffer: (accesses, buffer_bytes)}`` flattened.

        Returns:
            ``{"<what>_accesses": n, "<what>_bytes": size}`` for weights, potentials, inputs, outputs, spikes.
        """
        wb = self.word_bytes
        ev_spk, ev_real = float(row["syn_events_spk"]), float(row["syn_events_real"])
        return {
            "weights_accesses": ev_spk + ev_real,
            "weights_bytes": float(row["weights"]) * wb,
            # event-driven accumulation: read and write the target's potential per event
            "potentials_accesses": 2.0 * ev_spk + 2.0 * float(row["neuron_updates"]),
            "potentials_bytes": max(float(row["out_item"]), float(row["neurons"])) * wb,
            "inputs_accesses": float(row["in_elements_real"]),
            "inputs_bytes": float(row["in_item"]) * wb,
            "outputs_accesses": float(row["out_elements_real"]),
            "outputs_bytes": float(row["out_item"]) * wb,
            "spikes_accesses": float(row["in_events"]) + float(row["spikes"]),
            "spikes_bytes": float(self.fifo_bytes),
        }

    def layer_energy(self, row: Mapping[str, Any], neuron_ops: tuple[int, int] = (0, 0)) -> dict[str, float]:
        """Energy (pJ) of one per-sample layer row, by kind (:data:`ENERGY_KINDS`)."""
        updates, active = float(row["neuron_updates"]), float(row["active_updates"])
        out = {
            "ac": self.e_ac_pj * (float(row["syn_acs"]) + float(row["syn_int_acs"]) + float(row["elem_adds"])),
            "mac": self.e_mac_pj * (float(row["syn_macs"]) + float(row["elem_macs"])),
            "neuron": self.e_neuron_active_pj * active + self.e_neuron_idle_pj * max(0.0, updates - active),
            "spike": self.e_spike_pj * float(row["spikes"]),
            "memory": 0.0,
        }
        if self.neuron_ops:
            muls, adds = neuron_ops
            out["neuron"] += updates * (muls * self.e_mul_pj + adds * self.e_add_pj)
        if self.memory:
            acc = self.memory_accesses(row, neuron_ops)
            for what in ("weights", "potentials", "inputs", "outputs", "spikes"):
                out["memory"] += acc[f"{what}_accesses"] * self.access_pj(acc[f"{what}_bytes"])
        return out

    def paper_energy(self, row: Mapping[str, Any]) -> float:
        """The papers' formula: E_MAC x FLOPs (real-input layers) + E_AC x fr x T x FLOPs (others)."""
        return self.e_mac_pj * float(row["approx_macs"]) + self.e_ac_pj * float(row["approx_sops"])

    # ------------------------------------------------------------ description
    def constants(self) -> dict[str, Any]:
        """Every field as JSON-friendly data (what a report lists)."""
        d = dataclasses.asdict(self)
        d["sram"] = [list(t) for t in self.sram]
        d["sources"] = list(self.sources)
        d["notes"] = list(self.notes)
        return d

    def assumptions(self) -> list[str]:
        """Human-readable statement of what is charged and at what cost."""
        out = [f"energy model '{self.name}': {self.description}" if self.description else f"energy model '{self.name}'",
               f"AC (binary/integer synaptic op, element-wise add) = {self.e_ac_pj:g} pJ; "
               f"MAC (real-input synaptic op, element-wise product) = {self.e_mac_pj:g} pJ"]
        if self.neuron_ops:
            out.append(f"membrane update = rule's multiplications x {self.e_mul_pj:g} pJ + additions x "
                       f"{self.e_add_pj:g} pJ")
        if self.e_neuron_active_pj or self.e_neuron_idle_pj:
            out.append(f"membrane update = {self.e_neuron_active_pj:g} pJ with nonzero input, "
                       f"{self.e_neuron_idle_pj:g} pJ without")
        if not (self.neuron_ops or self.e_neuron_active_pj or self.e_neuron_idle_pj):
            out.append("membrane updates are not charged")
        if self.e_spike_pj:
            out.append(f"each emitted spike = {self.e_spike_pj:g} pJ")
        if self.memory:
            tiers = ", ".join(f"<= {_fmt_bytes(c)}: {e:g} pJ" for c, e in self.sram)
            out.append(f"memory: every {self.word_bytes}-byte word read/write costs one SRAM access of its buffer's "
                       f"tier ({tiers}; larger buffers pay the last tier); weights read once per synaptic event, "
                       "potentials read+written per input event and per membrane update, real inputs read and "
                       f"outputs written once, spikes written once and read once per consumer (FIFO of "
                       f"{_fmt_bytes(self.fifo_bytes)})")
        else:
            out.append("memory accesses are not charged")
        out += [f"source: {s}" for s in self.sources]
        out += list(self.notes)
        return out


def _fmt_bytes(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KB"
    return f"{n} B"


# ---------------------------------------------------------------- registry
HARDWARE: Registry[Callable[[], EnergyModel]] = Registry("energy model")


@HARDWARE.register(name="horowitz45")
def horowitz45() -> EnergyModel:
    return EnergyModel(
        name="horowitz45", description="45 nm compute-only (FP32 MAC/AC)", e_ac_pj=0.9, e_mac_pj=4.6,
        sources=(HORO_SOURCE + ": FP32 multiply 3.7 pJ + add 0.9 pJ",),
        notes=("the first layer's real-valued input is charged as MACs; every spiking synaptic op as one AC",))


@HARDWARE.register(name="lemaire")
def lemaire() -> EnergyModel:
    return EnergyModel(
        name="lemaire", description="Lemaire-style analytical model: INT32 ops + SRAM accesses (45 nm)",
        e_ac_pj=0.1, e_mac_pj=3.2, e_mul_pj=3.1, e_add_pj=0.1, neuron_ops=True, memory=True, word_bytes=4,
        sram=HORO_SRAM, fifo_bytes=4000,
        sources=("E. Lemaire et al., 'An analytical estimation of spiking neural networks energy efficiency', "
                 "ICONIP 2022 (model structure)",
                 HORO_SOURCE + ": INT32 add 0.1 pJ, multiply 3.1 pJ; 64-bit SRAM access 10 pJ (8 KB), "
                               "20 pJ (32 KB), 100 pJ (1 MB)"),
        notes=("a MAC is one INT32 multiply + add (3.2 pJ); addressing logic is not charged",
               "each 32-bit word access is charged a full 64-bit SRAM access (conservative)",
               "spike FIFO of 1000 4-byte messages (4000 B, the 8 KB tier), as in Lemaire's experiments"))


@HARDWARE.register(name="loihi")
def loihi() -> EnergyModel:
    return EnergyModel(
        name="loihi", description="Intel Loihi (14 nm) per-event figures", e_ac_pj=23.6, e_mac_pj=23.6,
        e_neuron_active_pj=81.0, e_neuron_idle_pj=52.0, e_spike_pj=1.7,
        sources=("M. Davies et al., 'Loihi: a neuromorphic manycore processor with on-chip learning', IEEE Micro "
                 "38(1), 2018, Table 2 as quoted by secondary sources: synaptic spike op 23.6 pJ (min), neuron "
                 "update 81 pJ active / 52 pJ inactive, within-tile spike 1.7 pJ",),
        notes=("DISPUTED: the 23.6 pJ per synaptic op figure is quoted widely but one project's notes say it is not "
               "in the primary paper; verify it against Davies et al. 2018 before citing these numbers",
               "real-valued inputs (first layer, pooled features) and element-wise attention ops have no Loihi "
               "figure: each is charged as one synaptic op (Loihi 2 graded spikes); integer inputs cost one "
               "synaptic op per unit of value",
               "an update is 'active' when the neuron's input current is nonzero at that step; tile-hop energy "
               "(3-4 pJ) and static power are not charged"))


TOML_KEYS = tuple(f.name for f in dataclasses.fields(EnergyModel)) + ("base",)


def load_hardware_toml(path: str | Path) -> EnergyModel:
    """Load an :class:`EnergyModel` from a TOML file (``base = "NAME"`` inherits a built-in model).

    Raises:
        ConfigError: unreadable file, TOML syntax error, unknown keys or invalid values.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such energy model file") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read energy model file ({e.strerror})") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML ({e})") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {e.start}); save the energy model file as UTF-8 TOML") from e
    unknown = sorted(set(data) - set(TOML_KEYS))
    if unknown:
        raise ConfigError(f"{p}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(TOML_KEYS)}")
    base = data.pop("base", None)
    fields: dict[str, Any] = {}
    if base is not None:
        try:
            fields = dataclasses.asdict(HARDWARE.get(str(base))())
        except ConfigError as e:
            raise ConfigError(f"{p}: base = {base!r}: {e}") from e
        fields["notes"] = tuple(fields["notes"]) + (f"derived from the built-in model '{base}' ({p.name})",)
    fields.update(data)
    if "name" not in data:
        fields["name"] = p.stem
    for key in ("sram", "sources", "notes"):
        if key in fields and isinstance(fields[key], list):
            fields[key] = tuple(tuple(v) if isinstance(v, list) else v for v in fields[key])
    try:
        return EnergyModel(**fields)
    except TypeError as e:
        raise ConfigError(f"{p}: bad energy model fields ({e})") from e
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from e


def get_hardware(spec: str | Path | EnergyModel) -> EnergyModel:
    """An energy model by registry name, TOML path, or passed through.

    Raises:
        ConfigError: unknown name (with close matches) or a bad TOML file.
    """
    if isinstance(spec, EnergyModel):
        return spec
    s = str(spec)
    if s.endswith(".toml") or Path(s).is_file():
        return load_hardware_toml(s)
    return HARDWARE.get(s)()
