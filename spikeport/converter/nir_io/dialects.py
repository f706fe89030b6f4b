r"""How a NIR file's continuous-time neurons become discrete steps: producer presets ("dialects").

NIR writes neurons as ODEs (e.g. LIF: :math:`\tau\,\dot v = v_{leak} - v + R\,I`) and has no ``dt`` field,
no integration rule, no spike comparison and no soft reset. Every exporter discretises those equations its
own way, and none but spikeport records how. Reading a file therefore needs its *time semantics*:

* ``dt``: seconds per step;
* the integration rule: ``euler`` (forward Euler, :math:`v \leftarrow v + \frac{dt}{\tau}(v_{leak} - v + R I)`)
  or ``exact`` (the exact exponential / zero-order-hold step,
  :math:`v \leftarrow v_{leak} + (v - v_{leak})e^{-dt/\tau} + (1 - e^{-dt/\tau}) R I`);
* the producer's own conventions (its tau convention, the spike comparison, a reset the file cannot say).

A :class:`Dialect` states one producer's conventions (:data:`DIALECTS`); :func:`resolve` combines the
file's metadata, the chosen producer and the user's options into a :class:`NirSemantics` that says where
every value came from. Which IR op each NIR node type becomes under a dialect is declared by the op specs
(:class:`~spikeport.ops.NirMapping` ``dialects``), never here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from spikeport.errors import ConfigError

__all__ = ["Dialect", "Unstated", "DIALECTS", "PRODUCERS", "INTEGRATIONS", "DEFAULT_DT", "DEFAULT_PRODUCER",
           "NirSemantics", "resolve", "check_dt"]

DEFAULT_DT = 1e-4
"""The step of SpikingJelly's and snnTorch's exporters (and spikeport's default): the reading when nothing
else is known."""

INTEGRATIONS = ("euler", "exact")


@dataclass(frozen=True)
class Unstated:
    """A property of a producer's neurons its files cannot state (``--nir-assume NAME=VALUE``).

    Attributes:
        name: the option name (``reset``, ``norm_input``, ``min_v_mem``).
        choices: the values the reader can apply, the producer's default first.
        note: what the file says (or does not) and what each value means.
    """

    name: str
    choices: tuple[str, ...]
    note: str

    @property
    def default(self) -> str:
        return self.choices[0]


@dataclass(frozen=True)
class Dialect:
    """One producer's discretisation of NIR.

    Attributes:
        name: the preset name (``--nir-from``).
        dt: the step its files assume, in seconds (``None``: the producer has none; the reader then
            assumes :data:`DEFAULT_DT` and warns).
        dt_note: where that step comes from.
        integration: its integration rule.
        integration_fixed: the producer's neurons have one rule; a different ``integration`` is an error.
        spike: its spike comparison (``>=`` or ``>``).
        summary: one line for ``--help`` and the docs.
        unstated: properties its files cannot state (the reader assumes the producer's default and warns).
        reset_note: what the file says about the reset.
    """

    name: str
    dt: float | None
    dt_note: str
    integration: str
    integration_fixed: bool
    spike: str
    summary: str
    unstated: tuple[Unstated, ...] = ()
    reset_note: str = "hard reset to v_reset, as the file says"


DIALECTS: dict[str, Dialect] = {d.name: d for d in (
    Dialect("spikeport", DEFAULT_DT, "spikeport records dt in the file's metadata (1e-4 s if an old file lacks it)",
            "euler", False, ">=",
            "spikeport's own files: dt and the integration rule from the metadata; spike on v >= v_threshold"),
    Dialect("spikingjelly", DEFAULT_DT, "SpikingJelly's export_to_nir(dt=1e-4) default (not recorded in the file)",
            "euler", True, ">=",
            "SpikingJelly 2.0 export_to_nir: forward Euler at dt = 1e-4 s, spike on v >= v_threshold, hard reset"),
    Dialect("nirtorch", None, "nirtorch records no dt and has no default step",
            "euler", False, ">",
            "NIR as its documentation states it (a plain nirtorch export): forward Euler (or --integration exact) "
            "at the dt you give, spike on v > v_threshold, hard reset to v_reset"),
    Dialect("snntorch", 1e-4, "snnTorch's exporter and importer hard-code dt = 1e-4 s",
            "euler", True, ">",
            "snnTorch 1.0 Leaky/Synaptic: beta = 1 - dt/tau at dt = 1e-4 s, spike on mem > threshold, reset applied "
            "one step late",
            unstated=(Unstated("reset", ("subtract", "zero"),
                               "snnTorch writes v_reset = 0 for every reset mechanism (subtract, zero), so the file "
                               "cannot say which"),),
            reset_note="reset applied one step late"),
    Dialect("norse", 1e-3, "Norse's to_nir(dt=1e-3) and from_nir(dt=1e-3) default (not recorded in the file)",
            "euler", True, ">",
            "Norse 1.1 LIFCell/LIFBoxCell/IAFCell: forward Euler at dt = 1e-3 s with the exporter's tau = dt * tau "
            "(tau = dt / tau_inv), the synaptic current jumps by the input, spike on v > v_threshold, hard reset"),
    Dialect("sinabs", 1.0, "sinabs writes time constants in steps (dt = 1 step)",
            "exact", True, ">=",
            "sinabs 2.0 IAF/LIF: dt = 1 step, LIF alpha = exp(-1/tau) with normalised input, several spikes per "
            "step (n = trunc(v/threshold)) and reset by subtraction of n * threshold",
            unstated=(Unstated("norm_input", ("true", "false"),
                               "sinabs writes a LIF's tau but not norm_input (whether the input is scaled by "
                               "1 - alpha)"),
                      Unstated("min_v_mem", ("none", "-threshold"),
                               "sinabs does not write min_v_mem (a floor on the membrane; its own importer sets "
                               "-threshold on IF layers)")),
            reset_note="reset by subtraction of n * threshold"),
    Dialect("lava-dl", 1.0, "lava-dl (SLAYER CUBA) writes time constants in steps (dt = 1 step)",
            "euler", True, ">",
            "lava-dl SLAYER CUBA (Loihi): dt = 1 step, current and voltage decays 1/tau_syn and 1/tau_mem, input "
            "added unscaled, spike on v > threshold, reset to 0"),
)}
PRODUCERS = tuple(DIALECTS)

DEFAULT_PRODUCER = "spikingjelly"
"""The reading of a file that records neither its producer nor dt (spikeport's and SpikingJelly's convention)."""


def check_dt(dt: Any, what: str = "dt") -> float:
    """``dt`` as a positive finite float (ConfigError naming ``what`` otherwise)."""
    try:
        value = float(dt)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a positive number of seconds per step, got {dt!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{what} must be a positive number of seconds per step, got {dt!r}")
    return value


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        v = v.item()
    return v if isinstance(v, str) else None


@dataclass(frozen=True)
class NirSemantics:
    """The resolved time semantics of one import, and where each value came from.

    ``*_from`` is one of ``"option"`` (given by the caller), ``"metadata"`` (recorded in the file),
    ``"preset"`` (the producer's convention) or ``"default"`` (nothing known: the documented default).
    """

    producer: str
    producer_from: str
    dt: float
    dt_from: str
    integration: str
    integration_from: str
    assumed: tuple[tuple[str, str, str], ...] = ()
    """``(name, value, origin)`` of each property the file cannot state (:attr:`Dialect.unstated`)."""

    @property
    def dialect(self) -> Dialect:
        return DIALECTS[self.producer]

    def assumption(self, name: str) -> str | None:
        """The value used for the unstated property ``name`` (``None`` when the producer has no such option)."""
        return next((v for n, v, _ in self.assumed if n == name), None)

    def options(self) -> dict[str, Any]:
        """What the op specs' import functions read from :attr:`~spikeport.ops.NirContext.options`."""
        return {"producer": self.producer, "integration": self.integration, "spike": self.dialect.spike,
                "reset": self.assumption("reset"), "assume": {n: v for n, v, _ in self.assumed}}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["assumed"] = {n: {"value": v, "from": f} for n, v, f in self.assumed}
        return out

    def describe(self) -> str:
        """One line: producer, dt, integration, spike, reset and the assumed properties, each with its origin."""
        d = self.dialect
        src = {"option": "given", "metadata": "file metadata", "preset": f"{self.producer} preset",
               "default": "default"}
        extra = "".join(f", {n} = {v} ({src[f]})" for n, v, f in self.assumed)
        return (f"read as {self.producer} ({src[self.producer_from]}): dt = {self.dt:g} s per step "
                f"({src[self.dt_from]}), {self.integration} integration ({src[self.integration_from]}), "
                f"spike on v {d.spike} v_threshold, {d.reset_note}{extra}")


def resolve(metadata: Mapping[str, Any] | None, *, producer: str | None = None, dt: Any = None,
            integration: str | None = None, reset: str | None = None,
            assume: Mapping[str, str] | None = None) -> tuple[NirSemantics, list[str]]:
    """The semantics of a NIR graph with ``metadata`` under the caller's options, and the warnings it implies.

    Precedence for each value: the caller's option, then the file's metadata (spikeport records
    ``source``, ``dt`` and ``integration``), then the producer's preset, then the defaults
    (:data:`DEFAULT_PRODUCER`, :data:`DEFAULT_DT`). ``assume`` gives properties the producer's files cannot
    state (:attr:`Dialect.unstated`, e.g. ``{"norm_input": "false"}``); ``reset`` is ``assume["reset"]``.

    Raises:
        ConfigError: an unknown producer/integration/assumption, a non-positive dt, an integration rule or
            assumption the producer's neurons do not have.
    """
    meta = dict(metadata or {})
    warnings: list[str] = []
    if producer is not None and producer not in DIALECTS:
        raise ConfigError(f"--nir-from {producer!r}: unknown producer (known: {', '.join(PRODUCERS)})")
    if integration is not None and integration not in INTEGRATIONS:
        raise ConfigError(f"--integration {integration!r}: expected one of {', '.join(INTEGRATIONS)}")
    source = _text(meta.get("source"))
    if producer is not None:
        prod, prod_from = producer, "option"
    elif source in DIALECTS:
        prod, prod_from = source, "metadata"
    else:
        prod, prod_from = DEFAULT_PRODUCER, "default"
    d = DIALECTS[prod]
    if producer is not None and source is not None and source != producer:
        # the metadata describes another producer's discretisation: it does not apply to this reading
        warnings.append(f"the file's metadata says it was written by {source}; reading it as {producer} as asked, "
                        "ignoring the dt and integration rule recorded there")
        meta = {}

    meta_dt = meta.get("dt")
    if meta_dt is not None:
        try:
            meta_dt = check_dt(meta_dt, "the file's metadata dt")
        except ConfigError as e:
            warnings.append(f"{e}; ignored")
            meta_dt = None
    if dt is not None:
        step, step_from = check_dt(dt, "--dt"), "option"
        if meta_dt is not None and not math.isclose(meta_dt, step, rel_tol=1e-12):
            warnings.append(f"the file records dt = {meta_dt:g} s but dt = {step:g} s was given; reading with "
                            f"{step:g} s")
    elif meta_dt is not None:
        step, step_from = meta_dt, "metadata"
    elif d.dt is not None:
        step, step_from = d.dt, "preset"
    else:
        step, step_from = DEFAULT_DT, "default"
        warnings.append(f"dt: {d.dt_note}; assumed {DEFAULT_DT:g} s per step. Pass --dt (Python: dt=) with the "
                        "step the model was built for")

    meta_int = _text(meta.get("integration"))
    if integration is not None:
        rule, rule_from = integration, "option"
    elif meta_int in INTEGRATIONS:
        rule, rule_from = meta_int, "metadata"
    else:
        rule, rule_from = d.integration, "preset"
    if d.integration_fixed and rule != d.integration:
        raise ConfigError(f"--integration {rule}: {prod}'s neurons integrate with the {d.integration} rule "
                          f"({d.summary}); drop --integration, or read the file with --nir-from nirtorch")
    if meta_int in INTEGRATIONS and rule != meta_int:
        warnings.append(f"the file records {meta_int} integration but {rule} was given; reading with {rule}")

    given = {str(k): str(v).lower() for k, v in dict(assume or {}).items() if v is not None}
    if reset is not None:
        given["reset"] = reset
    names = {u.name: u for u in d.unstated}
    for key, value in given.items():
        flag = "--nir-reset" if key == "reset" else f"--nir-assume {key}"
        if key not in names:
            known = ", ".join(names) or "none"
            raise ConfigError(f"{flag}: the {prod} reading has no such assumption (its files leave unstated: "
                              f"{known})")
        if value not in names[key].choices:
            raise ConfigError(f"{flag}={value}: expected one of {', '.join(names[key].choices)}")
    assumed = []
    defaulted = []
    for u in d.unstated:
        if u.name in given:
            assumed.append((u.name, given[u.name], "option"))
        else:
            assumed.append((u.name, u.default, "preset"))
            defaulted.append(u)
    for u in defaulted:
        others = " or ".join(u.choices[1:])
        how = (f"--nir-reset {others} (Python: reset=...)" if u.name == "reset" else
               f"--nir-assume {u.name}={others} (Python: assume={{'{u.name}': ...}})")
        warnings.append(f"{u.name}: {u.note}; assumed {prod}'s default {u.name} = {u.default}. Pass {how} if the "
                        "model used another")
    sem = NirSemantics(prod, prod_from, step, step_from, rule, rule_from, tuple(assumed))
    return sem, warnings
