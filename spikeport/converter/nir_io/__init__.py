r"""Exchange with NIR (the Neuromorphic Intermediate Representation, ``nir`` package 1.0.x).

NIR describes neurons as continuous-time ODEs; spikeport neurons are discrete. A file is read with explicit
*time semantics* (:mod:`.dialects`): ``dt`` (seconds per step), the integration rule (``euler`` or
``exact``) and the producer's conventions (``producer``: ``spikeport``, ``spikingjelly``, ``nirtorch``,
``snntorch``, ``norse``, ``sinabs``, ``lava-dl``), taken from the caller's options, else the file's metadata
(spikeport records ``source``, ``dt`` and ``integration``), else the producer's preset, else the default
(SpikingJelly's convention: forward Euler at 1e-4 s). Which IR op a NIR node type becomes is declared by the
op specs (:class:`~spikeport.ops.NirMapping`, with ``dialects`` for producer-specific ops).

The default reading (spikeport's and SpikingJelly's convention) with step ``dt``, forward Euler
:math:`v \leftarrow v + \frac{dt}{\tau}(v_{leak} - v + R\,I)`, spike on :math:`v \ge v_{th}`, hard reset:

============  =====================================================================================
spikeport     NIR
============  =====================================================================================
IF            ``IF(r = 1/dt, v_threshold, v_reset)``  (so :math:`v \leftarrow v + dt\,r\,x = v + x`)
LIF           ``LIF(tau = tau*dt, r = 1 (decay_input) or tau (not), v_leak = v_reset, v_threshold, v_reset)``
PLIF          as LIF with ``tau = 1/inv_tau`` (imports back as LIF)
DALIF         ``LIF(tau = dt/(1-beta), r = alpha/(1-beta), v_leak = 0, ...)`` (imports back as DALIF
              when ``v_reset != 0``)
CubaLIF       ``CubaLIF(tau_syn = dt/i_decay, tau_mem = dt/v_decay, w_in = 1/i_decay, r = 1/v_decay,
              v_leak = 0, ...)``
Threshold     ``Threshold(threshold)``
============  =====================================================================================

With ``integration="exact"`` a LIF's decay is :math:`e^{-dt/\tau}` (imported as PLIF with
``inv_tau = 1 - e^{-dt/\tau}``, or DALIF) and a CubaLIF's decays are :math:`e^{-dt/\tau_{syn}}`,
:math:`e^{-dt/\tau_{mem}}`. Parameters are written as float64 arrays of the neuron's shape. Import inverts
the table; any extra input gain (``r`` or ``w_in`` not as above) becomes a
:class:`~spikeport.converter.ir.Scale` node in front of the neuron. Time constants are decoded to the
shortest decimal float that re-encodes to the stored value, so export -> import is exact (tested).

Not representable in NIR (export lists *every* blocking node in one
:class:`~spikeport.errors.UnsupportedNodeError`): soft reset (NIR neurons reset to ``v_reset``), BatchNorm
that cannot be folded into a conv/linear, MaxPool, ConvTranspose2d, Reshape, Mul, Concat, ReLU, the
paper-method modules, CubaLIF with a zero decay (infinite time constant). NIR sums all edges into a node, so
``Add`` nodes are exported as several edges into their consumers (and imported back as ``Add``). A file can
be written for another tool's importer (``consumer``, ``--nir-for``, :mod:`.consumers`).

Import supports Input, Output, Affine, Linear, Conv1d, Conv2d, SumPool2d, AvgPool2d, Flatten, Scale,
Threshold, IF, LIF, CubaLIF (plus the producer-specific ops' types) and nested NIRGraphs (flattened; cycles
become recurrent edges). Every import is checked (:mod:`.checks`): ``tau < dt`` under Euler is an error
naming the node; time constants that look like another producer's convention and layers that cannot fire
within T steps are warnings in ``graph.meta["nir"]``, which ``inspect`` and every report print.

docs/nir.md documents each producer's dialect, the exporter workarounds and the measured agreement.
"""

from spikeport.converter.nir_io.consumers import CONSUMERS, Consumer
from spikeport.converter.nir_io.dialects import (
    DEFAULT_DT,
    DIALECTS,
    INTEGRATIONS,
    PRODUCERS,
    Dialect,
    NirSemantics,
    resolve,
)
from spikeport.converter.nir_io.reader import (
    NIR_OPTIONS,
    from_nir,
    import_notes,
    importable_types,
    load_nir,
    load_nir_model,
    read_nir,
)
from spikeport.converter.nir_io.writer import export_dt, to_nir, write_nir

__all__ = ["DEFAULT_DT", "DIALECTS", "PRODUCERS", "INTEGRATIONS", "CONSUMERS", "NIR_OPTIONS", "Dialect", "Consumer",
           "NirSemantics", "resolve", "to_nir", "write_nir", "export_dt", "from_nir", "read_nir", "load_nir",
           "load_nir_model", "importable_types", "import_notes"]
