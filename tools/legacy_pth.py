"""Read a legacy (pre-1.6, non-zip) `torch.save` file with numpy alone.

Layout of such a file, as a sequence of pickles followed by raw data:
  1. the magic number 0x1950a86a20f9469cfc6c
  2. the protocol version (1001)
  3. a dict of system info (endianness, type sizes)
  4. the object itself - here a state-dict (an OrderedDict of tensors). Tensors are pickled as
     `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and storages as persistent
     ids `('storage', <torch.XStorage>, key, location, numel)`
  5. the list of storage keys, in the order their data follows
  6. for each key: an 8-byte little-endian element count, then the elements (little-endian)

The unpickler below resolves only the handful of globals such a file needs; anything else (a class
that would run code on load) is refused. torch itself is never imported.
"""

import collections
import pickle
import struct

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _TensorRef:
    """A tensor whose storage data has not been read yet."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    return _TensorRef(storage, offset, size, stride)


def _rebuild_tensor(storage, offset, size, stride):
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, *rest):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: not part of a plain tensor state-dict"
        )

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel[, view_metadata])
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (pre-0.4 files) are not supported")
        _, stype, key, _location, numel = pid[:5]
        return {"key": key, "dtype": stype.dtype, "numel": numel}


def load_state_dict(path):
    """Return an ordered dict name -> numpy array (C-contiguous copies)."""
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head == b"PK":
            raise ValueError(f"{path} is a zip-format torch file, not a legacy one")
        magic = _Unpickler(f).load()
        if magic != MAGIC:
            raise ValueError(f"{path}: bad magic number {magic!r}; not a legacy torch file")
        protocol = _Unpickler(f).load()
        if protocol != 1001:
            raise ValueError(f"{path}: unsupported torch protocol version {protocol}")
        info = _Unpickler(f).load()
        if not info.get("little_endian", True):
            raise ValueError(f"{path}: big-endian files are not supported")
        state = _Unpickler(f).load()
        keys = _Unpickler(f).load()
        storages = {}
        for key in keys:
            (count,) = struct.unpack("<q", f.read(8))
            # every storage in the dict names its dtype; find it through any tensor using the key
            dtype = _dtype_of(state, key)
            data = f.read(count * dtype.itemsize)
            if len(data) != count * dtype.itemsize:
                raise ValueError(f"{path}: truncated (storage {key} wants {count} elements)")
            storages[key] = np.frombuffer(data, dtype=dtype.newbyteorder("<"))
        if f.read(1):
            raise ValueError(f"{path}: trailing bytes after the last storage")

    out = collections.OrderedDict()
    for name, t in state.items():
        if not isinstance(t, _TensorRef):
            raise ValueError(f"{path}: entry {name} is {type(t).__name__}, not a tensor")
        flat = storages[t.storage["key"]]
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[t.offset :],
            shape=t.size,
            strides=[s * itemsize for s in t.stride],
            writeable=False,
        )
        out[name] = np.ascontiguousarray(view)
    return out


def _dtype_of(state, key):
    for t in state.values():
        if isinstance(t, _TensorRef) and t.storage["key"] == key:
            return t.storage["dtype"]
    raise ValueError(f"storage {key} is not used by any tensor")
