r"""Compare a reference run with a target run: per-layer spike agreement, logit error, accuracy.

Both sides run the same ``[T, B, ...]`` inputs; spikes are compared element by
element for every layer both sides expose (by IR node name), logits by maximum
absolute error, predictions (argmax of the mean over T) against each other and,
on labelled data, against the labels.

**Threshold ties.** Two float32 runtimes do not round identically (e.g. a
convolution's accumulation order differs between oneDNN and onnxruntime's
MLAS by a few ulp, about 1e-6 on typical currents), so a neuron whose membrane
lands within that rounding of its threshold, :math:`|H - V_{th}| \approx 0`, can
fire in one runtime and not the other; the flipped spike then propagates to
later layers and timesteps. The comparison therefore classifies, per sample,
the *primary* mismatches: those in the first layer (execution order) where the
sample diverges, at each neuron's first diverging timestep. Their reference
margin :math:`u = H - V_{th}` is recomputed (:meth:`TorchRunner.margins`); a
primary mismatch with :math:`|u| \le` ``tie_eps`` is a *tie flip*, any other is
*unexplained*. Verdicts:

* ``exact``: all spikes identical and max logit error <= ``atol``;
* ``ties``: every primary mismatch is a tie flip (later mismatches are their consequences);
* ``quantized``: spikes differ, and the target is approximate by design (a fixed-point
  runtime such as the Loihi target; its runner sets ``approximate`` to say why); the
  per-layer agreement and the accuracies are the result, no tie analysis is run; it
  passes when at least ``min_pred_agreement`` (default 95%) of the predictions match;
* ``mismatch``: anything else (the export is wrong);
* ``vacuous``: the comparison agrees, but some layer's reference emitted fewer than
  ``min_spikes`` (:data:`DEFAULT_MIN_SPIKES`) spikes on the check data, so identical spikes
  there show nothing (every untrained model, any silent layer). Never reported as ``exact``;
  it fails (``ok`` is False) unless ``allow_silent``.

:func:`enforce_check` is the one policy every export target applies to its check: a failed
comparison, or a vacuous one, raises (and the export writes nothing) unless the caller allows it
(``allow_mismatch`` / ``allow_silent``); the verdict then stays in the summary.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from spikeport.errors import ConfigError, DataError, ExportError
from spikeport.targets.torch_runner import RunResult

__all__ = ["LayerAgreement", "Comparison", "Comparator", "Runner", "CheckData", "compare", "predictions",
           "verify_export", "dataset_batches", "random_batches", "dataset_check_data", "random_check_data",
           "silent_reference_layers", "enforce_check", "vacuous_message", "DEFAULT_ATOL", "DEFAULT_TIE_EPS",
           "DEFAULT_MIN_PRED_AGREEMENT", "DEFAULT_MIN_SPIKES", "DEFAULT_CHECK_SAMPLES"]

DEFAULT_ATOL = 1e-5
DEFAULT_TIE_EPS = 1e-4
DEFAULT_MIN_PRED_AGREEMENT = 0.95  # fixed-point targets: share of predictions that must survive quantization
DEFAULT_MIN_SPIKES = 1
"""A layer whose reference emits fewer spikes than this on the check data makes a comparison ``vacuous``
(CLI: ``--min-spikes``); with 1, only a layer that never spikes does."""
DEFAULT_CHECK_SAMPLES = 32
"""Samples of the model's own test split an export is checked on (when the dataset is known)."""
_SHOWN_LAYERS = 6  # silent layers named in one-line descriptions (all of them are in to_dict)


class Runner(Protocol):
    """Anything that runs ``[T, B, ...]`` inputs: ``run(x) -> RunResult`` and a ``runtime`` name."""

    runtime: str

    def run(self, x: torch.Tensor) -> RunResult: ...  # pragma: no cover - protocol


def predictions(logits: torch.Tensor) -> torch.Tensor:
    """Class predictions ``[B]`` from per-step logits ``[T, B, K]`` (argmax of the mean over T)."""
    return logits.float().mean(0).argmax(-1)


@dataclass
class LayerAgreement:
    """Spike agreement of one layer, accumulated over batches."""

    name: str
    total: int = 0
    mismatches: int = 0
    ref_spikes: int = 0
    ref_elements: int = 0  # reference outputs seen (counted even when the target does not expose the layer)
    target_spikes: int = 0
    first_divergent: int = 0  # samples whose first mismatching layer is this one
    tie_flips: int = 0
    unexplained: int = 0

    @property
    def agreement(self) -> float:
        return 1.0 - self.mismatches / self.total if self.total else 1.0

    @property
    def ref_rate(self) -> float:
        return self.ref_spikes / self.ref_elements if self.ref_elements else 0.0

    @property
    def target_rate(self) -> float:
        return self.target_spikes / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.name, "agreement": self.agreement, "mismatches": self.mismatches, "total": self.total,
                "ref_spikes": self.ref_spikes, "ref_rate": self.ref_rate, "target_rate": self.target_rate,
                "first_divergent": self.first_divergent, "tie_flips": self.tie_flips, "unexplained": self.unexplained}


@dataclass
class Comparison:
    """Result of comparing a reference with a target (see module docstring for the verdict)."""

    reference: str
    target: str
    layers: list[LayerAgreement]
    samples: int = 0
    max_logit_error: float = 0.0
    atol: float = DEFAULT_ATOL
    tie_eps: float = DEFAULT_TIE_EPS
    pred_agree: int = 0
    labelled: int = 0
    ref_correct: int = 0
    target_correct: int = 0
    missing_layers: list[str] = field(default_factory=list)
    tie_checked: bool = True
    approximate: str = ""
    min_pred_agreement: float = DEFAULT_MIN_PRED_AGREEMENT
    min_spikes: int = DEFAULT_MIN_SPIKES
    allow_silent: bool = False

    @property
    def spike_mismatches(self) -> int:
        return sum(layer.mismatches for layer in self.layers)

    @property
    def spikes_identical(self) -> bool:
        return self.spike_mismatches == 0

    @property
    def silent_layers(self) -> list[str]:
        """Layers whose reference emitted fewer than ``min_spikes`` spikes on the compared inputs."""
        return [layer.name for layer in self.layers if layer.ref_elements and layer.ref_spikes < self.min_spikes]

    @property
    def agreement_verdict(self) -> str:
        """The verdict on the numbers alone (``exact``, ``ties``, ``quantized`` or ``mismatch``)."""
        if self.spikes_identical and self.max_logit_error <= self.atol:
            return "exact"
        if self.approximate:
            return "quantized"
        if self.spikes_identical:
            return "mismatch"
        if not self.tie_checked or any(layer.unexplained for layer in self.layers):
            return "mismatch"
        return "ties"

    @property
    def agrees(self) -> bool:
        """Whether the target agrees with the reference (silent layers aside)."""
        verdict = self.agreement_verdict
        if verdict == "quantized":  # approximate by design: judged by how many predictions survive
            return self.samples == 0 or self.pred_agree >= self.min_pred_agreement * self.samples
        return verdict != "mismatch"

    @property
    def vacuous(self) -> bool:
        """The target agrees, but over layers that (nearly) never spiked: the agreement shows nothing there."""
        return self.agrees and bool(self.silent_layers)

    @property
    def verdict(self) -> str:
        return "vacuous" if self.vacuous else self.agreement_verdict

    @property
    def ok(self) -> bool:
        """The comparison passes: the target agrees and no layer is silent (unless ``allow_silent``)."""
        return self.agrees and (self.allow_silent or not self.silent_layers)

    @property
    def ref_accuracy(self) -> float | None:
        return self.ref_correct / self.labelled if self.labelled else None

    @property
    def target_accuracy(self) -> float | None:
        return self.target_correct / self.labelled if self.labelled else None

    @property
    def prediction_agreement(self) -> float:
        return self.pred_agree / self.samples if self.samples else 1.0

    @property
    def first_divergent_layer(self) -> str | None:
        return next((layer.name for layer in self.layers if layer.mismatches), None)

    def _numbers(self) -> str:
        """The agreement figures behind the verdict."""
        total = sum(layer.total for layer in self.layers)
        if self.approximate and self.agreement_verdict == "quantized":
            return (f"{100 * (1 - self.spike_mismatches / total) if total else 100:.3f}% of spikes agree "
                    f"({self.spike_mismatches} of {total} differ), max |logit error| {self.max_logit_error:.3g}, "
                    f"predictions agree {self.pred_agree}/{self.samples} (pass mark "
                    f"{100 * self.min_pred_agreement:g}%; {self.approximate})")
        s = (f"spikes {'identical' if self.spikes_identical else 'differ'} ({self.spike_mismatches} of {total} "
             f"mismatch{'' if self.spikes_identical else ', first in ' + str(self.first_divergent_layer)}), "
             f"max |logit error| {self.max_logit_error:.3g} (atol {self.atol:g})")
        if not self.spikes_identical:
            ties = sum(layer.tie_flips for layer in self.layers)
            une = sum(layer.unexplained for layer in self.layers)
            s += (f", primary mismatches: {ties} threshold tie(s) (|H - V_th| <= {self.tie_eps:g}), {une} unexplained"
                  if self.tie_checked else ", threshold ties not checked")
        return s

    def describe(self) -> str:
        """One line: verdict and the numbers behind it."""
        if self.vacuous:
            silent = self.silent_layers
            names = ", ".join(silent[:_SHOWN_LAYERS]) + (f" and {len(silent) - _SHOWN_LAYERS} more"
                                                         if len(silent) > _SHOWN_LAYERS else "")
            n_ref = sum(1 for layer in self.layers if layer.ref_elements)
            return (f"vacuous for layers: {names} ({len(silent)} of {n_ref} spike layers emitted "
                    f"{_fewer(self.min_spikes)} on the {self.samples} samples compared, so agreement there shows "
                    f"nothing); measured: {self._numbers()}")
        if self.verdict == "quantized" and not self.agrees:
            return (f"quantized, FAILED ({self.pred_agree}/{self.samples} predictions agree, below the "
                    f"{100 * self.min_pred_agreement:g}% pass mark): {self._numbers()}")
        return f"{self.verdict}: {self._numbers()}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference, "target": self.target, "verdict": self.verdict, "samples": self.samples,
            "spikes_identical": self.spikes_identical, "spike_mismatches": self.spike_mismatches,
            "max_logit_error": self.max_logit_error, "atol": self.atol, "tie_eps": self.tie_eps,
            "prediction_agreement": self.prediction_agreement, "labelled": self.labelled,
            "ref_accuracy": self.ref_accuracy, "target_accuracy": self.target_accuracy,
            "missing_layers": list(self.missing_layers), "layers": [layer.to_dict() for layer in self.layers],
            "approximate": self.approximate, "agreement_verdict": self.agreement_verdict,
            "silent_layers": self.silent_layers, "min_spikes": self.min_spikes, "allow_silent": self.allow_silent,
            "ok": self.ok,
        }

    def format(self) -> str:
        """Human-readable table plus summary lines (returned; callers print)."""
        rows = [{"layer": layer.name, "agreement": f"{100 * layer.agreement:.4f}%",
                 "mismatches": f"{layer.mismatches}/{layer.total}", "ref spikes": str(layer.ref_spikes),
                 "ref rate": f"{layer.ref_rate:.4f}", "target rate": f"{layer.target_rate:.4f}"}
                for layer in self.layers]
        lines = [f"reference: {self.reference}   target: {self.target}   samples: {self.samples}"]
        lines.append(_table(rows) if rows else "(no spike layers in common)")
        if self.missing_layers:
            lines.append(f"not exposed by the target: {', '.join(self.missing_layers)}")
        lines.append(f"output: max |logit error| {self.max_logit_error:.3g} (atol {self.atol:g}); predictions agree "
                     f"{self.pred_agree}/{self.samples}")
        if self.labelled:
            lines.append(f"accuracy: reference {self.ref_accuracy:.4f}, target {self.target_accuracy:.4f} "
                         f"({self.labelled} labelled samples)")
        lines.append(f"verdict: {self.describe()}")
        return "\n".join(lines)


def _fewer(min_spikes: int) -> str:
    return "no reference spike" if min_spikes == 1 else f"fewer than {min_spikes} reference spikes"


def check_min_spikes(min_spikes: Any) -> int:
    """``min_spikes`` as an int >= 1 (ConfigError naming ``--min-spikes`` otherwise)."""
    if isinstance(min_spikes, bool) or not isinstance(min_spikes, int) or min_spikes < 1:
        raise ConfigError(f"--min-spikes must be an integer >= 1, got {min_spikes!r}")
    return min_spikes


def _table(rows: list[dict[str, str]]) -> str:
    cols = list(rows[0])
    widths = [max(len(c), *(len(r[c]) for r in rows)) for c in cols]
    out = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=False)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(r[c].ljust(w) for c, w in zip(cols, widths, strict=False)) for r in rows]
    return "\n".join(out)


class Comparator:
    """Accumulate a :class:`Comparison` batch by batch.

    Args:
        layers: reference spike-layer names in execution order.
        reference, target: runtime names for the report.
        margins: ``fn(x, layer) -> u`` giving the reference's ``H - V_th`` (None: no tie analysis).
        atol, tie_eps: see module docstring.
        approximate: non-empty for a target that is approximate by design (verdict ``quantized``).
        min_pred_agreement: for such a target, the fraction of samples whose prediction must match
            the reference for the comparison to pass.
        min_spikes: reference spikes a layer needs for its agreement to count (see ``vacuous``).
        allow_silent: a vacuous comparison still passes (its verdict stays ``vacuous``).
    """

    def __init__(self, layers: list[str], reference: str, target: str, *, margins: Any = None,
                 atol: float = DEFAULT_ATOL, tie_eps: float = DEFAULT_TIE_EPS, approximate: str = "",
                 min_pred_agreement: float = DEFAULT_MIN_PRED_AGREEMENT, min_spikes: int = DEFAULT_MIN_SPIKES,
                 allow_silent: bool = False) -> None:
        for name, v in (("atol", atol), ("tie_eps", tie_eps)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {v!r}")
        if not (isinstance(min_pred_agreement, (int, float)) and 0.0 <= min_pred_agreement <= 1.0):
            raise ConfigError(f"the minimum prediction agreement must be in [0, 1], got {min_pred_agreement!r}")
        check_min_spikes(min_spikes)
        self.result = Comparison(reference, target, [LayerAgreement(n) for n in layers], atol=atol, tie_eps=tie_eps,
                                 tie_checked=margins is not None, approximate=approximate,
                                 min_pred_agreement=float(min_pred_agreement), min_spikes=int(min_spikes),
                                 allow_silent=bool(allow_silent))
        self._margins = margins
        self._missing: set[str] = set()

    def update(self, x: torch.Tensor, ref: RunResult, tgt: RunResult, labels: torch.Tensor | None = None) -> None:
        """Add one batch (``x`` is needed only to recompute margins when spikes differ)."""
        r = self.result
        if ref.logits.shape != tgt.logits.shape:
            raise DataError(f"logits shape differs: reference {list(ref.logits.shape)}, target "
                            f"{list(tgt.logits.shape)}")
        b = ref.logits.shape[1]
        err = (ref.logits.float() - tgt.logits.float()).abs().max().item() if ref.logits.numel() else 0.0
        r.max_logit_error = max(r.max_logit_error, err if math.isfinite(err) else math.inf)
        p_ref, p_tgt = predictions(ref.logits), predictions(tgt.logits)
        r.pred_agree += int((p_ref == p_tgt).sum())
        r.samples += b
        if labels is not None:
            y = labels.to(p_ref.device).long()
            r.labelled += b
            r.ref_correct += int((p_ref == y).sum())
            r.target_correct += int((p_tgt == y).sum())
        first = torch.full((b,), -1, dtype=torch.long)
        mism_of: dict[int, torch.Tensor] = {}
        for i, layer in enumerate(r.layers):
            a = ref.spikes.get(layer.name)
            t = tgt.spikes.get(layer.name)
            if a is not None:  # a layer's reference activity counts even when the target does not expose it
                layer.ref_spikes += int(a.bool().sum())
                layer.ref_elements += a.numel()
            if a is None or t is None:
                self._missing.add(layer.name)
                continue
            a, t = a.bool(), t.bool()
            if a.shape != t.shape:
                raise DataError(f"layer '{layer.name}': spike shape differs: reference {list(a.shape)}, target "
                                f"{list(t.shape)}")
            m = a != t
            layer.total += m.numel()
            layer.mismatches += int(m.sum())
            layer.target_spikes += int(t.sum())
            if m.any():
                per_sample = m.transpose(0, 1).reshape(b, -1).any(1)
                new = per_sample & (first < 0)
                if new.any():
                    first[new] = i
                    mism_of[i] = m
        r.missing_layers = [layer.name for layer in r.layers if layer.name in self._missing]
        for i, m in mism_of.items():
            layer = r.layers[i]
            samples = first == i
            layer.first_divergent += int(samples.sum())
            primary = m & (m.cumsum(0) == 1)  # each neuron's first diverging step
            primary &= samples.view(1, b, *([1] * (m.dim() - 2)))
            if self._margins is None:
                layer.unexplained += int(primary.sum())
                continue
            u = self._margins(x, layer.name)
            near = u.abs() <= r.tie_eps
            layer.tie_flips += int((primary & near).sum())
            layer.unexplained += int((primary & ~near).sum())


def compare(reference: Any, target: Runner, batches: Iterable[tuple[torch.Tensor, torch.Tensor | None]], *,
            atol: float = DEFAULT_ATOL, tie_eps: float = DEFAULT_TIE_EPS,
            min_pred_agreement: float = DEFAULT_MIN_PRED_AGREEMENT, min_spikes: int = DEFAULT_MIN_SPIKES,
            allow_silent: bool = False) -> Comparison:
    """Run ``reference`` (a :class:`~spikeport.targets.torch_runner.TorchRunner`) and ``target`` on every batch.

    Args:
        reference: the torch reference (its ``margins`` give the tie analysis).
        target: any :class:`Runner`.
        batches: ``(x[T, B, ...], labels[B] or None)`` pairs.
        atol, tie_eps, min_pred_agreement, min_spikes, allow_silent: see :class:`Comparator`.
    """
    approx = str(getattr(target, "approximate", "") or "")
    comp = Comparator(list(reference.layers), reference.runtime, target.runtime,
                      margins=None if approx else getattr(reference, "margins", None), atol=atol, tie_eps=tie_eps,
                      approximate=approx, min_pred_agreement=min_pred_agreement, min_spikes=min_spikes,
                      allow_silent=allow_silent)
    for x, y in batches:
        comp.update(x, reference.run(x), target.run(x), y)
    return comp.result


# ----------------------------------------------------------------------------- inputs and the verify driver
Batch = tuple[torch.Tensor, "torch.Tensor | None"]


def dataset_batches(split: Any, *, timesteps: int, encoder: str = "direct", samples: int | None = None,
                    batch_size: int = 64, seed: int = 0) -> Iterator[Batch]:
    """``(x[T, B, ...], labels[B])`` from a :class:`~spikeport.data.DatasetSplit` (first ``samples`` items).

    Static samples are encoded with ``encoder`` (seeded); temporal ones (``[T, ...]``) are used as they are.
    """
    from torch.utils.data import DataLoader, Subset

    from spikeport.models.encoders import encode

    ds = split.dataset
    if samples is not None:
        ds = Subset(ds, range(min(samples, len(ds))))
    g = torch.Generator().manual_seed(seed)
    for x, y in DataLoader(ds, batch_size=batch_size, shuffle=False):
        x = x.float()
        seq = x.transpose(0, 1).contiguous() if split.temporal else encode(x, timesteps, encoder, generator=g)
        yield seq, torch.as_tensor(y)


def random_batches(input_shape: Sequence[int], *, timesteps: int, samples: int, batch_size: int = 64,
                   seed: int = 0, scale: float = 1.0) -> Iterator[Batch]:
    """Unlabelled ``rand(T, B, ...) * scale`` batches totalling ``samples`` (seeded)."""
    g = torch.Generator().manual_seed(seed)
    done = 0
    while done < samples:
        b = min(batch_size, samples - done)
        yield torch.rand(timesteps, b, *input_shape, generator=g) * scale, None
        done += b


@dataclass
class CheckData:
    """The inputs of a post-export check and what they are (the summaries and the CLI name them).

    Attributes:
        batches: ``(x[T, B, ...], labels[B] or None)`` pairs.
        description: e.g. ``digits test split, first 32 samples, direct encoding, T=4``.
        labelled: the batches carry labels (then accuracies are reported too).
    """

    batches: list[Batch]
    description: str
    labelled: bool = False

    @property
    def timesteps(self) -> int:
        return int(self.batches[0][0].shape[0]) if self.batches else 0

    @property
    def samples(self) -> int:
        return sum(int(x.shape[1]) for x, _ in self.batches)


def dataset_check_data(split: Any, name: str, *, timesteps: int, encoder: str = "direct",
                       samples: int = DEFAULT_CHECK_SAMPLES, seed: int = 0) -> CheckData:
    """The first ``samples`` items of a test split, in two batches of different sizes (the ONNX check also
    exercises the dynamic batch axis)."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"--check-samples must be a positive integer, got {samples!r}")
    n = min(samples, len(split.dataset))
    first = max(1, (2 * n + 2) // 3)  # e.g. 32 -> 22 + 10
    data = list(dataset_batches(split, timesteps=timesteps, encoder=encoder, samples=n, batch_size=first, seed=seed))
    enc = "as recorded (temporal data)" if split.temporal else f"{encoder} encoding"
    t = int(data[0][0].shape[0]) if data else timesteps  # temporal data carries its own T
    return CheckData(data, f"{name} test split, first {n} samples, {enc}, T={t}", labelled=True)


def random_check_data(input_shape: Sequence[int], *, timesteps: int, batch: int = 2, seed: int = 0,
                      scale: float = 1.0) -> CheckData:
    """Seeded ``rand(T, B, ...) * scale`` in two batches (``batch`` and ``batch + 1`` samples), unlabelled: what an
    export is checked on when the model's dataset is unknown."""
    g = torch.Generator().manual_seed(seed)
    data: list[Batch] = [(torch.rand(timesteps, b, *input_shape, generator=g) * scale, None)
                         for b in (batch, batch + 1)]
    scaled = f" x {scale:g}" if scale != 1.0 else ""
    return CheckData(data, f"{2 * batch + 1} random inputs U[0,1){scaled} (seed {seed}; no dataset known, "
                           f"pass --dataset for labelled data), T={timesteps}")


def silent_reference_layers(reference: Any, batches: Iterable[Batch], min_spikes: int = DEFAULT_MIN_SPIKES
                            ) -> list[str]:
    """Spike layers of ``reference`` (a TorchRunner) that emit fewer than ``min_spikes`` spikes on ``batches``:
    what would make a check on them vacuous, found before an expensive export."""
    counts = dict.fromkeys(reference.layers, 0)
    seen: set[str] = set()
    for x, _ in batches:
        for name, s in reference.run(x).spikes.items():
            counts[name] = counts.get(name, 0) + int(s.bool().sum())
            seen.add(name)
    return [n for n, c in counts.items() if n in seen and c < min_spikes]


_SILENT_FIX = ("check on data that makes every layer spike (the model's own dataset: --dataset), or pass "
               "--allow-silent to keep the export with the verdict 'vacuous'")


def vacuous_message(dest: Any, silent: Sequence[str], min_spikes: int, data: str) -> str:
    """One line: the export check would be vacuous (for a refusal before exporting)."""
    names = ", ".join(silent[:_SHOWN_LAYERS]) + (f" and {len(silent) - _SHOWN_LAYERS} more"
                                                 if len(silent) > _SHOWN_LAYERS else "")
    return (f"{dest}: the export check would be vacuous for layers: {names} ({_fewer(min_spikes)} on "
            f"{data or 'the check data'}); nothing was written; {_SILENT_FIX}")


def enforce_check(comp: Comparison, dest: Any, *, allow_mismatch: bool = False, data: str = "",
                  what: str = "the target") -> None:
    """The one policy for a post-export check, every target: raise when it failed or is vacuous.

    A failed comparison raises unless ``allow_mismatch``; a vacuous one (silent reference layers) unless the
    comparison was made with ``allow_silent``. The caller's staging then leaves no file behind.

    Raises:
        ExportError: one line naming the file, the verdict, the data and the option that keeps the file.
    """
    on = f" on {data}" if data else ""
    if not comp.agrees and not allow_mismatch:
        raise ExportError(f"{dest}: the export check failed: {what} disagrees with the torch reference{on} "
                          f"({comp.describe()}); nothing was written (pass --allow-mismatch to keep the file with the "
                          f"failed verdict in its summary)")
    if comp.vacuous and not comp.allow_silent:
        raise ExportError(f"{dest}: the export check is {comp.describe()}{on}; nothing was written; {_SILENT_FIX}")


def verify_export(model: Any, exported: Any, batches: Iterable[Batch], *, device: str = "cpu",
                  input_shape: Sequence[int] | None = None, atol: float = DEFAULT_ATOL,
                  tie_eps: float = DEFAULT_TIE_EPS, compare_cpu: bool | None = None,
                  min_pred_agreement: float = DEFAULT_MIN_PRED_AGREEMENT, min_spikes: int = DEFAULT_MIN_SPIKES,
                  allow_silent: bool = False, original: bool = True) -> list[Comparison]:
    """Compare the torch reference of ``model`` (on ``device``) with an exported file on the same inputs.

    The reference is the model's traced IR. With ``original`` (default), the model itself also runs,
    in its own framework (:mod:`spikeport.targets.original`), and is compared with the IR and with the
    export: a wrong adapter fails there even when the export reproduces the IR.

    Args:
        model: the source model (``nn.Module``, ``SpikeGraph`` or ``LoweredModule``; not modified).
        exported: a path (opened with :func:`spikeport.targets.export.open_exported`) or a :class:`Runner`.
        batches: ``(x, labels or None)`` pairs, e.g. :func:`dataset_batches`.
        device: ``cpu`` or ``cuda``; on CUDA the CUDA reference is also compared with the CPU one.
        compare_cpu: force (True) or skip (False) that second comparison (default: on CUDA only).
        min_pred_agreement: pass mark of an approximate (fixed-point) target: the fraction of
            samples whose prediction equals the reference's.
        min_spikes, allow_silent: see :class:`Comparator` (a layer below ``min_spikes`` reference
            spikes makes the comparison ``vacuous``, which fails unless ``allow_silent``).
        original: also run the model itself (when it is a module distinct from its IR).

    Returns:
        ``[reference vs target]``, then ``[traced IR vs original model, original model vs target]`` when the
        original ran, then ``[torch-cpu vs torch-<device>]`` when ``device`` is CUDA.

    Raises:
        ConfigError: CUDA requested but absent.
    """
    from spikeport.runtime import resolve_device
    from spikeport.targets.export import open_exported
    from spikeport.targets.torch_runner import TorchRunner

    dev = resolve_device(device)
    target = open_exported(exported, device="cpu") if not hasattr(exported, "run") else exported
    ref = TorchRunner(model, device=dev, input_shape=input_shape)
    shown = getattr(target, "path", exported)
    t_shape = getattr(target, "input_shape", None)
    if t_shape is not None and ref.input_shape is not None and tuple(t_shape) != tuple(ref.input_shape):
        raise DataError(f"{shown}: takes inputs {list(t_shape)} but the model takes {list(ref.input_shape)}; "
                        "verify an export against the model it was exported from")
    t_layers = getattr(target, "layers", None)
    if t_layers and not set(t_layers) & set(ref.layers):
        raise DataError(f"{shown}: no spike layer in common with the model (export: {', '.join(t_layers)}; model: "
                        f"{', '.join(ref.layers)}); verify an export against the model it was exported from")
    approx = str(getattr(target, "approximate", "") or "")  # e.g. the Loihi fixed-point target
    main = Comparator(list(ref.layers), ref.runtime, target.runtime, margins=None if approx else ref.margins,
                      atol=atol, tie_eps=tie_eps, approximate=approx, min_pred_agreement=min_pred_agreement,
                      min_spikes=min_spikes, allow_silent=allow_silent)
    cross = None
    if compare_cpu if compare_cpu is not None else dev.type == "cuda":
        cpu = TorchRunner(model, device="cpu", input_shape=input_shape)
        cross = (cpu, Comparator(list(cpu.layers), cpu.runtime, ref.runtime, margins=cpu.margins, atol=atol,
                                 tie_eps=tie_eps, min_spikes=min_spikes, allow_silent=allow_silent))
    from spikeport.targets.original import original_comparators, original_runner

    orig = original_runner(model, ref, device=dev, input_shape=input_shape) if original else None
    extra = original_comparators(ref, orig, target, atol=atol, tie_eps=tie_eps, min_pred_agreement=min_pred_agreement,
                                 min_spikes=min_spikes, allow_silent=allow_silent) if orig is not None else []
    try:
        for x, y in batches:
            r = ref.run(x)
            t_out = target.run(x)
            main.update(x, r, t_out, y)
            if orig is not None:
                o = orig.run(x)
                extra[0].update(x, r, o, y)
                extra[1].update(x, o, t_out, y)
            if cross is not None:
                cross[1].update(x, cross[0].run(x), r, y)
    except DataError as e:
        if str(shown) in str(e):
            raise
        raise DataError(f"{shown}: does not match the model: {e}") from e
    return [main.result] + [c.result for c in extra] + ([cross[1].result] if cross is not None else [])
