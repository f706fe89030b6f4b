"""Write and read lava-dl netx HDF5 files for a :class:`LoihiNetwork`.

Layout written (checked against lava-dl 0.6.0's ``netx/hdf5.py`` and
``netx/utils.py`` and against the ``.net`` files shipped with its tests)::

    /layer/0/    type=b'input' (S10, shape (1,)), shape (int64, torch order)
    /layer/<i>/  type=b'dense' | b'conv' | b'flatten' (S10, shape (1,))
                 shape          int64 (N,) or (C, H, W)   netx reverses it to (W, H, C)
      dense:     inFeatures, outFeatures  int64 scalars
                 weight         float32 (out, in)          integers; netx casts with astype(int)
      conv:      inChannels, outChannels, groups  int64 scalars
                 kernelSize, stride, padding, dilation  int64 (2,) in (H, W) order
                 weight         float32 (out, in/groups, kH, kW); netx flips and transposes it
      both:      bias           float32 (N,) / (C,)        optional, integer mantissa
                 neuron/type    variable-length str 'CUBA'
                 neuron/iDecay, vDecay, vThMant, refDelay  int64 scalars
                 neuron/gradedSpike  bool (False)

netx maps a CUBA neuron to Lava's LIF with ``du = iDecay - 1``, ``dv = vDecay``,
``vth = vThMant``, ``bias_mant = bias``, ``bias_exp = 6``; it ignores
``refDelay`` and ``gradedSpike`` (``messageBits`` absent means binary spikes).
The input layer has no ``neuron`` group: netx then creates no process for it and
only takes the input shape from it (an input layer *with* neurons would ignore
its InPort, since netx's Input block expects data through the bias).
Group attributes ``spikeport_scale`` / ``spikeport_name`` carry
:attr:`LoihiLayer.scale` / ``name``; netx ignores attributes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from spikeport import __version__
from spikeport._hdf5_guard import read_hdf5_guarded
from spikeport._io import atomic_path
from spikeport.errors import DataError, ExportError, GraphError, SpikeportError
from spikeport.targets.lava.network import LoihiLayer, LoihiNetwork

__all__ = ["write_netx", "read_netx", "netx_datasets"]

_NEURON_KINDS = ("CUBA", "LOIHI")
# what h5py/numpy raise while reading a corrupt file (libhdf5 errors surface as OSError/KeyError/RuntimeError)
_H5_ERRORS = (OSError, KeyError, RuntimeError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
              UnicodeError, MemoryError, SystemError)
_UNSUPPORTED_KEYS = {"delay": "axonal delays", "weight_rec": "recurrent weights", "weight/real": "complex weights"}


def _i64(v: Any) -> np.ndarray:
    return np.asarray(v, dtype=np.int64)


def netx_datasets(net: LoihiNetwork) -> dict[str, Any]:
    """Every dataset that :func:`write_netx` writes, as ``{hdf5 path: value}``.

    Values are numpy arrays with the exact dtype written, except the type
    strings: ``bytes`` for layer ``type`` (fixed ``S10``) and ``str`` for
    ``neuron/type`` (variable-length string).
    """
    out: dict[str, Any] = {"layer/0/type": b"input", "layer/0/shape": _i64(net.input_shape)}
    for i, layer in enumerate(net.layers, start=1):
        g = f"layer/{i}"
        out[f"{g}/type"] = layer.kind.encode("ascii")
        out[f"{g}/shape"] = _i64(layer.shape)
        if not layer.has_neurons:
            continue
        w = np.asarray(layer.weight)
        if layer.kind == "dense":
            out[f"{g}/inFeatures"] = _i64(w.shape[1])
            out[f"{g}/outFeatures"] = _i64(w.shape[0])
        else:
            out[f"{g}/inChannels"] = _i64(w.shape[1] * layer.groups)
            out[f"{g}/outChannels"] = _i64(w.shape[0])
            out[f"{g}/kernelSize"] = _i64(w.shape[2:4])
            out[f"{g}/stride"] = _i64(layer.stride)
            out[f"{g}/padding"] = _i64(layer.padding)
            out[f"{g}/dilation"] = _i64(layer.dilation)
            out[f"{g}/groups"] = _i64(layer.groups)
        out[f"{g}/weight"] = w.astype(np.float32)
        if layer.bias is not None:
            out[f"{g}/bias"] = np.asarray(layer.bias).astype(np.float32)
        out[f"{g}/neuron/type"] = "CUBA"
        out[f"{g}/neuron/iDecay"] = _i64(layer.i_decay)
        out[f"{g}/neuron/vDecay"] = _i64(layer.v_decay)
        out[f"{g}/neuron/vThMant"] = _i64(layer.v_th_mant)
        out[f"{g}/neuron/refDelay"] = _i64(layer.ref_delay)
        out[f"{g}/neuron/gradedSpike"] = np.asarray(False)
    return out


def _write(f: h5py.File, datasets: dict[str, Any], net: LoihiNetwork) -> None:
    f.attrs["producer"] = f"spikeport {__version__}"
    for key, value in datasets.items():
        if isinstance(value, bytes):
            f.create_dataset(key, (1,), "S10", [value])
        elif isinstance(value, str):
            f.create_dataset(key, data=value, dtype=h5py.string_dtype())
        else:
            f.create_dataset(key, data=value)
    for i, layer in enumerate(net.layers, start=1):
        if layer.scale is not None:
            f[f"layer/{i}"].attrs["spikeport_scale"] = float(layer.scale)
        if layer.name:
            f[f"layer/{i}"].attrs["spikeport_name"] = layer.name


def _verify(path: Path, shown: Path, datasets: dict[str, Any]) -> None:
    """Re-open ``path`` with h5py and check every dataset's presence, dtype, shape and value."""
    with h5py.File(path, "r") as f:
        found: list[str] = []
        f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
        extra = sorted(set(found) - set(datasets))
        if extra:
            raise ExportError(f"{shown}: unexpected datasets after writing: {', '.join(extra)}")
        for key, want in datasets.items():
            if key not in f or not isinstance(f[key], h5py.Dataset):
                raise ExportError(f"{shown}: /{key} is missing after writing")
            ds = f[key]
            got = ds[()]
            if isinstance(want, bytes):
                ok = ds.dtype == np.dtype("S10") and ds.shape == (1,) and got[0] == want
            elif isinstance(want, str):
                ok = h5py.check_string_dtype(ds.dtype) is not None and ds.shape == () and \
                    (got.decode("ascii") if isinstance(got, bytes) else got) == want
            else:
                ok = ds.dtype == want.dtype and ds.shape == want.shape and np.array_equal(got, want)
            if not ok:
                raise ExportError(f"{shown}: /{key} read back as {ds.dtype}{ds.shape} {got!r}, "
                                  f"expected {getattr(want, 'dtype', type(want).__name__)} {want!r}")


def write_netx(net: LoihiNetwork, path: str | os.PathLike) -> Path:
    """Write ``net`` as a lava-dl netx HDF5 file, atomically, and verify it.

    The file is written to a temporary next to ``path``, re-opened with h5py and
    checked key by key (presence, dtype, shape, value), and only then renamed
    onto ``path``. Overwrite policy is the caller's (see
    :func:`spikeport._io.check_overwrite`).

    Args:
        net: the network to write.
        path: destination, conventionally ``*.net``.

    Returns:
        The written path.

    Raises:
        ExportError: if writing or the read-back check fails.
    """
    if not isinstance(net, LoihiNetwork):
        raise ExportError(f"{path}: write_netx expects a LoihiNetwork, got {type(net).__name__}")
    dest = Path(path)
    datasets = netx_datasets(net)
    try:
        with atomic_path(dest) as tmp:
            with h5py.File(tmp, "w") as f:
                _write(f, datasets, net)
            _verify(tmp, dest, datasets)
    except OSError as e:
        raise ExportError(f"{dest}: cannot write netx file ({e})") from e
    return dest


# ------------------------------------------------------------------ reader
class _Group:
    """Read helpers that turn every problem into a one-line DataError naming file and group."""

    def __init__(self, path: Path, group: h5py.Group) -> None:
        self.path, self.g = path, group
        self.where = f"{path}: {group.name}"

    def fail(self, msg: str) -> DataError:
        return DataError(f"{self.where}: {msg}")

    def has(self, key: str) -> bool:
        return key in self.g

    def dataset(self, key: str) -> h5py.Dataset:
        if key not in self.g:
            raise self.fail(f"missing dataset '{key}'")
        ds = self.g[key]
        if not isinstance(ds, h5py.Dataset):
            raise self.fail(f"'{key}' must be a dataset, found a group")
        return ds

    def text(self, key: str) -> str:
        ds = self.dataset(key)
        value = ds[()]
        if isinstance(value, np.ndarray):
            if value.size != 1:
                raise self.fail(f"'{key}' must hold one string, got shape {value.shape}")
            value = value.reshape(-1)[0]
        if isinstance(value, bytes):
            try:
                return value.decode("ascii")
            except UnicodeDecodeError as e:
                raise self.fail(f"'{key}' is not an ASCII string") from e
        if isinstance(value, str):
            return value
        raise self.fail(f"'{key}' must be a string, got dtype {ds.dtype}")

    def ints(self, key: str) -> np.ndarray:
        ds = self.dataset(key)
        if ds.dtype.kind not in "iufb":
            raise self.fail(f"'{key}' must be numeric, got dtype {ds.dtype}")
        value = np.asarray(ds[()])
        if value.dtype.kind == "f" and not (np.all(np.isfinite(value)) and np.all(value == np.round(value))):
            raise self.fail(f"'{key}' must hold integers (netx truncates with astype(int)), got non-integral values")
        return value.astype(np.int64)

    def scalar(self, key: str) -> int:
        value = self.ints(key)
        if value.size != 1:
            raise self.fail(f"'{key}' must be a scalar, got shape {value.shape}")
        return int(value.reshape(-1)[0])

    def sub(self, key: str) -> _Group:
        if key not in self.g or not isinstance(self.g[key], h5py.Group):
            raise self.fail(f"missing group '{key}'")
        return _Group(self.path, self.g[key])


def _read_layer(grp: _Group, kind: str) -> LoihiLayer:
    for key, what in _UNSUPPORTED_KEYS.items():
        if grp.has(key):
            raise grp.fail(f"{what} ('{key}') are not supported by spikeport's Lava target")
    shape = tuple(int(s) for s in grp.ints("shape").reshape(-1))
    name = str(grp.g.attrs.get("spikeport_name", ""))
    scale = grp.g.attrs.get("spikeport_scale")
    if kind == "flatten":
        return LoihiLayer("flatten", (int(np.prod(shape)),), name=name)
    if not grp.has("neuron"):
        raise grp.fail("no 'neuron' group: netx would make a non-spiking integrator, which spikeport does not model")
    neuron = grp.sub("neuron")
    ntype = neuron.text("type")
    if ntype not in _NEURON_KINDS:
        raise neuron.fail(f"neuron type '{ntype}' is not supported (expected one of {', '.join(_NEURON_KINDS)})")
    if neuron.has("messageBits") and neuron.scalar("messageBits") != 0:
        raise neuron.fail("graded output spikes (messageBits > 0) are not supported")
    weight = grp.ints("weight")
    bias = grp.ints("bias").reshape(-1) if grp.has("bias") else None
    kw: dict[str, Any] = {}
    if kind == "dense":
        n = int(np.prod(shape))
        shape = (n,)
        if weight.ndim == 1:  # netx reshapes a 1-D weight to (out, -1)
            weight = weight.reshape(n, -1)
    else:
        if weight.ndim == 5 and weight.shape[4] == 1:  # slayer's trailing time axis
            weight = weight[..., 0]

        def pair(key: str, default: int) -> tuple[int, int]:
            if not grp.has(key):
                return default, default
            v = grp.ints(key).reshape(-1)
            if v.size not in (1, 2):
                raise grp.fail(f"'{key}' must be a scalar or a pair, got {v.size} values")
            return (int(v[0]), int(v[-1]))

        kw = {"stride": pair("stride", 1), "padding": pair("padding", 0), "dilation": pair("dilation", 1),
              "groups": grp.scalar("groups") if grp.has("groups") else 1}
    return LoihiLayer(kind, shape, weight=weight, bias=bias, i_decay=neuron.scalar("iDecay"),
                      v_decay=neuron.scalar("vDecay"), v_th_mant=neuron.scalar("vThMant"),
                      ref_delay=neuron.scalar("refDelay") if neuron.has("refDelay") else 1,
                      scale=None if scale is None else float(scale), name=name, **kw)


def _read_layers(f: h5py.File, p: Path, where: list[str]) -> tuple[tuple[int, ...] | None, list[LoihiLayer]]:
    """The input shape (``None`` when layer 0 is not an input layer) and the layers of an open netx file.

    ``where[0]`` is kept at the HDF5 group being read so that the caller can name it.
    """
    if "layer" not in f or not isinstance(f["layer"], h5py.Group):
        raise DataError(f"{p}: missing group /layer; not a lava-dl netx network")
    where[0] = "/layer"
    keys = list(f["layer"].keys())
    if sorted(keys, key=lambda k: (len(k), k)) != [str(i) for i in range(len(keys))] or not keys:
        raise DataError(f"{p}: /layer must hold groups 0..n-1, found {sorted(keys)[:8]}")
    input_shape: tuple[int, ...] | None = None
    layers: list[LoihiLayer] = []
    for i in range(len(keys)):
        where[0] = f"/layer/{i}"
        grp = _Group(p, f["layer"]).sub(str(i))
        kind = grp.text("type")
        if kind == "input":
            if i != 0:
                raise grp.fail("an input layer is only allowed as layer 0")
            if grp.has("neuron"):
                raise grp.fail("an input layer with neurons is not supported (netx feeds it through its bias "
                               "only); export the input as spikes to the first layer")
            input_shape = tuple(int(s) for s in grp.ints("shape").reshape(-1))
            continue
        if kind not in ("dense", "conv", "flatten"):
            raise grp.fail(f"layer type '{kind}' is not supported (expected input, dense, conv or flatten)")
        try:
            layers.append(_read_layer(grp, kind))
        except GraphError as e:
            raise grp.fail(str(e)) from e
    return input_shape, layers


def read_netx(path: str | os.PathLike) -> LoihiNetwork:
    """Read a netx HDF5 file back into a :class:`LoihiNetwork`.

    Reads files written by :func:`write_netx` and slayer-exported CUBA networks
    made of input/dense/conv/flatten layers. Legacy neuron keys (``wgtExp``,
    ``theta``, ``tauRho``, ``scaleRho``) are ignored, as netx ignores them.
    The file is first probed in a forked child
    (:func:`spikeport._hdf5_guard.read_hdf5_guarded`) because libhdf5 can
    segfault on corrupt files.

    Raises:
        DataError: one line naming the file and HDF5 group, when the file is
            missing, not HDF5, corrupt (h5py errors or a libhdf5 crash), lacks
            ``/layer``, has a bad dtype or value, or uses a layer/neuron kind
            this target does not support.
    """
    return read_hdf5_guarded(path, "netx", _read_netx_file)


def _read_netx_file(p: Path) -> LoihiNetwork:
    """:func:`read_netx` without the existence check and the crash guard."""
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        raise DataError(f"{p}: not an HDF5 file ({e}); expected a lava-dl netx network (.net)") from e
    where = ["/"]  # the group being read, for the error message
    try:
        with f:
            input_shape, layers = _read_layers(f, p, where)
    except SpikeportError:
        raise
    except _H5_ERRORS as e:  # h5py/numpy errors on a corrupt file (bad heap, truncated dataset, odd dtype)
        raise DataError(f"{p}: {where[0]}: corrupt or unreadable netx file ({type(e).__name__}: {e}); "
                        "re-export the network") from None
    if input_shape is None:
        first = next((layer for layer in layers if layer.has_neurons), None)
        if first is None or first.kind != "dense":
            raise DataError(f"{p}: /layer/0 must be an input layer with a shape when the first layer is not dense")
        input_shape = (first.in_features,)
    try:
        return LoihiNetwork(input_shape, tuple(layers))
    except GraphError as e:
        raise DataError(f"{p}: {e}") from e
