"""Lava / Loihi 2 target: fixed-point network, netx / graph HDF5 I/O, exact reference, Lava runner.

Flow: IR graph -> :func:`deploy_graph` (on-chip network + host readout; see
:mod:`spikeport.targets.lava.deploy`): a chain becomes a :class:`LoihiNetwork` written by
:func:`write_netx` (``.net`` for ``lava.lib.dl.netx.hdf5.Network``; :func:`run_lava` ==
:func:`run_reference`), any other network (residual fan-in, relays, OR neurons) a :class:`LoihiGraph`
written by :func:`write_graph` and loaded into standard Lava processes by :func:`load_network`
(:func:`run_lava_graph` == :func:`run_graph_reference`). Float layers -> :func:`quantize_network` ->
:class:`LoihiNetwork` remains for hand-built chains.

Importing this package does not import Lava; only :func:`run_lava` and
:func:`enable_lava` do (lava-nc 0.10.0 needs a small import hook on Python 3.11,
see :mod:`spikeport.targets.lava._compat`).
"""

from spikeport.targets.lava._compat import LAVA_INSTALL_HINT, enable_lava, lava_available
from spikeport.targets.lava.cores import loihi_summary
from spikeport.targets.lava.deploy import LoihiDeployment, deploy_graph, deploy_network
from spikeport.targets.lava.graph import Connection, LoihiGraph, Population
from spikeport.targets.lava.graph_io import read_graph, write_graph
from spikeport.targets.lava.graph_reference import GraphExecutor, run_graph_reference
from spikeport.targets.lava.lava_graph import LavaNetwork, load_network, run_lava_graph
from spikeport.targets.lava.lava_sim import run_lava
from spikeport.targets.lava.loihi_reference import LoihiExecutor, ReferenceTrace, align_to_input, run_reference
from spikeport.targets.lava.network import LoihiLayer, LoihiNetwork, netx_dense_weights
from spikeport.targets.lava.netx import netx_datasets, read_netx, write_netx
from spikeport.targets.lava.quantize import (
                                             FloatLayer,
                                             FloatNeuron,
                                             quantize_decay,
                                             quantize_layer,
                                             quantize_network,
                                             spike_agreement,
)
from spikeport.targets.lava.runner import LoihiRunner
from spikeport.targets.lava.sidecar import read_deployment, readout_path, write_deployment

__all__ = [
    "LAVA_INSTALL_HINT",
    "enable_lava",
    "lava_available",
    "LoihiLayer",
    "LoihiNetwork",
    "netx_dense_weights",
    "netx_datasets",
    "write_netx",
    "read_netx",
    "FloatNeuron",
    "FloatLayer",
    "quantize_decay",
    "quantize_layer",
    "quantize_network",
    "spike_agreement",
    "LoihiExecutor",
    "ReferenceTrace",
    "run_reference",
    "align_to_input",
    "run_lava",
    "LoihiDeployment",
    "LoihiRunner",
    "deploy_network",
    "deploy_graph",
    "write_deployment",
    "read_deployment",
    "readout_path",
    "loihi_summary",
    "LoihiGraph",
    "Population",
    "Connection",
    "write_graph",
    "read_graph",
    "GraphExecutor",
    "run_graph_reference",
    "LavaNetwork",
    "load_network",
    "run_lava_graph",
]
