"""Checks against the user's own model: the third party of every export check and verification.

The torch reference an export is compared with is the model's traced IR, executed
(:class:`~spikeport.targets.torch_runner.TorchRunner`). That proves the export reproduces the
IR, not that the IR reproduces the model: a wrong adapter (a learned time constant read as its
initial value, say) would pass. So :func:`verify_export` and :func:`export_model` also run the
model itself, in its own framework (:class:`~spikeport.frameworks.runner.OriginalRunner`), and
report two more comparisons on the same inputs: *traced IR vs original model* (judged exactly
like an export, with the IR's threshold margins for ties) and *original model vs export*.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from spikeport.targets.verify import Comparator

__all__ = ["original_runner", "original_comparators"]


def original_runner(model: Any, reference: Any, *, device: Any = "cpu",
                    input_shape: Sequence[int] | None = None) -> Any:
    """An :class:`OriginalRunner` of ``model`` when it has an original distinct from the IR, else ``None``.

    ``None`` for a graph, an IR lowering (e.g. an imported NIR file) or a model the reference
    runs as is (it did not trace).
    """
    if not isinstance(model, nn.Module) or not getattr(reference, "is_ir", False):
        return None
    if any(hasattr(m, "ir_node") for m in model.modules()):
        return None
    from spikeport.frameworks.runner import OriginalRunner

    return OriginalRunner(model, device=device, input_shape=input_shape or reference.input_shape)


def original_comparators(reference: Any, original: Any, target: Any | None, **opts: Any) -> list[Comparator]:
    """``[IR vs original]`` plus ``[original vs target]`` when a target is given (``opts``: Comparator options).

    Feed them with ``update(x, ir_result, original_result)`` and ``update(x, original_result, target_result)``.
    """
    out = [Comparator(list(reference.layers), f"traced IR ({reference.runtime})", original.runtime,
                      margins=reference.margins, **opts)]
    if target is not None:
        approx = str(getattr(target, "approximate", "") or "")
        out.append(Comparator(list(original.layers), original.runtime, target.runtime,
                              margins=None if approx else reference.margins, approximate=approx, **opts))
    return out


def _runner(target: str, path: Any) -> Any:
    """The runner of a written file, by target (the file's suffix is the user's choice)."""
    if target.startswith("onnx"):
        from spikeport.targets.onnx import OnnxRunner

        return OnnxRunner(path)
    if target == "nir":
        from spikeport.targets.nir import NirRunner

        return NirRunner(path)
    from spikeport.targets.export import open_exported

    return open_exported(path)


def run_original_checks(model: Any, path: Any, dest: Any, *, target: str, timesteps: int | None,
                        input_shape: Sequence[int] | None, options: dict[str, Any]) -> list[Any]:
    """After an export to ``path`` (``dest`` is the name shown): compare the traced IR with the model itself, and
    the model itself with the written file, on the export's check data (or seeded random inputs).

    Applies the export check policy (:func:`~spikeport.targets.verify.enforce_check`) to both.

    Returns:
        ``[IR vs original, original vs export]`` (empty when the model has no original distinct from its IR).
    """
    from spikeport.targets.torch_runner import TorchRunner
    from spikeport.targets.verify import (
        DEFAULT_ATOL,
        DEFAULT_MIN_PRED_AGREEMENT,
        DEFAULT_MIN_SPIKES,
        DEFAULT_TIE_EPS,
        enforce_check,
        random_check_data,
    )

    ref = TorchRunner(model, input_shape=input_shape)
    orig = original_runner(model, ref, input_shape=input_shape)
    if orig is None or ref.input_shape is None:
        return []
    data = options.get("check_data") or random_check_data(
        ref.input_shape, timesteps=timesteps or 4, seed=int(options.get("seed", 0)),
        scale=float(options.get("scale", 1.0)) if not isinstance(options.get("scale"), str) else 1.0)
    runner = _runner(target, path)
    allow_silent = bool(options.get("allow_silent", False))
    comps = original_comparators(
        ref, orig, runner, atol=options.get("atol", DEFAULT_ATOL), tie_eps=options.get("tie_eps", DEFAULT_TIE_EPS),
        min_spikes=options.get("min_spikes", DEFAULT_MIN_SPIKES), allow_silent=allow_silent,
        min_pred_agreement=options.get("min_agreement", DEFAULT_MIN_PRED_AGREEMENT))
    for x, y in data.batches:
        r, o = ref.run(x), orig.run(x)
        comps[0].update(x, r, o, y)
        comps[1].update(x, o, runner.run(x), y)
    results = [c.result for c in comps]
    allow = bool(options.get("allow_mismatch", False))
    enforce_check(results[0], dest, allow_mismatch=allow, data=data.description,
                  what="the traced IR (the torch reference) vs the original model")
    enforce_check(results[1], dest, allow_mismatch=allow, data=data.description, what="the original model vs the file")
    return results
