"""Energy analysis: streaming spike recording, exact op counting, energy models and reports.

Typical use::

    from spikeport.energy import record_spikes, estimate, write_report

    with record_spikes(model) as rec:
        for x in batches:
            model(x)                    # [T, B, ...]
    report = estimate(rec, hardware="horowitz45")   # or "lemaire", "loihi", "my_chip.toml"
    print(report.layers)                # pandas DataFrame, per sample
    write_report(report, "out/")        # CSV, JSON, Markdown, HTML + PNG figures

or, in one call over a dataset, :func:`analyze`. Op counting is a rules table
keyed by IR node type (and torch module type), extensible through ``rules=``
(see :mod:`spikeport.energy.rules`).
"""

from spikeport.energy.analyze import analyze, load_npy_input, record_model, recording_target
from spikeport.energy.compare import compare_reports, load_report_dir
from spikeport.energy.counting import OpCounts, count_ops, neurobench_ops
from spikeport.energy.hardware import EnergyModel, get_hardware, load_hardware_toml
from spikeport.energy.record import Recording, record_spikes
from spikeport.energy.report import EnergyReport, estimate, write_report
from spikeport.energy.rules import OpRule, resolve_rule, value_class

__all__ = [
    "record_spikes", "Recording", "estimate", "EnergyReport", "write_report", "analyze", "record_model",
    "recording_target",
    "load_npy_input", "count_ops", "neurobench_ops", "OpCounts", "OpRule", "resolve_rule",
    "value_class", "EnergyModel", "get_hardware", "load_hardware_toml", "compare_reports",
    "load_report_dir",
]
