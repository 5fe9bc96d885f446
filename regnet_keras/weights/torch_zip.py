"""Reads PyTorch's zip checkpoint format (torch.save since PyTorch 1.6) into NumPy, without torch.

A .pth file is a zip archive: `ARCHIVE/data.pkl` pickles the object graph, and every tensor's
storage lies in `ARCHIVE/data/KEY`. Unpickling an arbitrary pickle runs whatever code it names, so
this reader's unpickler resolves only the names a state dict needs (torch's tensor-rebuild
functions, its storage types and OrderedDict) and refuses every other one before it is imported:
a file that asks for `os.system` or any other callable fails with the name in the error, and
nothing from it runs. Tensors come back as NumPy arrays, containers as dicts, lists and tuples.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile

import numpy as np


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint whose pickle asks for something other than tensors and plain containers."""


# torch's storage classes, as torch.save names them, and the NumPy dtype of their elements.
# bfloat16 has no NumPy dtype: it is read as uint16 and widened to float32 (exactly).
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class _Storage:
    """One storage's elements, read from the archive on first use."""

    def __init__(self, array: np.ndarray, bfloat16: bool):
        self.array = array
        self.bfloat16 = bfloat16


def _rebuild_tensor(storage, offset, size, stride, *unused):
    array = storage.array
    size, stride = tuple(int(n) for n in size), tuple(int(s) for s in stride)
    last = int(offset) + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else -1
    if offset < 0 or last >= array.size or len(size) != len(stride):
        raise pickle.UnpicklingError(
            f"a tensor of shape {size} reaches past its storage of {array.size} elements")
    if not all(size):
        values = np.zeros(size, array.dtype)
    else:
        values = np.lib.stride_tricks.as_strided(
            array[int(offset):], shape=size,
            strides=tuple(s * array.itemsize for s in stride)).copy()
    if storage.bfloat16:
        values = (values.astype(np.uint32) << 16).view(np.float32)
    return values


def _rebuild_parameter(data, *unused):
    return data


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, byteorder: str):
        super().__init__(io.BytesIO(data), encoding="utf-8")
        self.archive, self.prefix, self.byteorder = archive, prefix, byteorder
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"the checkpoint asks to import {module}.{name}, which is not part of a tensor state "
            "dict; refused without running it. Load only files from sources you trust, or ask "
            "for a safetensors file.")

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and len(saved_id) == 5 and saved_id[0] == "storage"
                and isinstance(saved_id[1], _StorageType)):
            raise UnsafeCheckpointError(f"unknown persistent object {saved_id!r} in the checkpoint")
        _, storage_type, key, _location, numel = saved_id
        if key not in self.storages:
            name = f"{self.prefix}/data/{key}"
            try:
                raw = self.archive.read(name)
            except KeyError:
                raise pickle.UnpicklingError(f"storage {name} is missing from the archive")
            bfloat16 = storage_type.dtype == "bfloat16"
            dtype = np.dtype(np.uint16 if bfloat16 else storage_type.dtype)
            dtype = dtype.newbyteorder("<" if self.byteorder == "little" else ">")
            if len(raw) < int(numel) * dtype.itemsize:
                raise pickle.UnpicklingError(
                    f"storage {name} holds {len(raw)} bytes, fewer than its {numel} elements "
                    "need; the file is truncated")
            array = np.frombuffer(raw, dtype=dtype, count=int(numel))
            array = array.astype(dtype.newbyteorder("="))
            self.storages[key] = _Storage(array, bfloat16)
        return self.storages[key]


def load(path: str):
    """The object a torch.save zip file holds, with tensors as NumPy arrays.

    Raises UnsafeCheckpointError for anything but tensors and plain containers, and
    pickle.UnpicklingError / zipfile.BadZipFile for damaged files.
    """
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise pickle.UnpicklingError(
                f"{path} is a zip file but not a PyTorch checkpoint (no single */data.pkl)")
        prefix = pickles[0][:-len("/data.pkl")]
        names = set(archive.namelist())
        byteorder = (archive.read(prefix + "/byteorder").decode().strip()
                     if prefix + "/byteorder" in names else "little")
        return _StateDictUnpickler(archive.read(pickles[0]), archive, prefix, byteorder).load()
