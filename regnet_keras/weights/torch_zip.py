"""Reads PyTorch's zip checkpoint format (torch.save since PyTorch 1.6) into NumPy, without torch.

A .pth file is a zip archive: `ARCHIVE/data.pkl` pickles the object graph, and every tensor's
storage lies in `ARCHIVE/data/KEY`. Unpickling an arbitrary pickle runs whatever code it names, so
this reader's unpickler resolves only the names a state dict needs (torch's tensor-rebuild
functions, its storage types and OrderedDict) and refuses every other one before it is imported:
a file that asks for `os.system` or any other callable fails with the name in the error, and
nothing from it runs. Tensors come back as NumPy arrays, containers as dicts, lists and tuples.

Every file is treated as crafted. What the reader proves before it touches memory:
- a storage's archive member holds at least the bytes its declared element count needs, is
  stored or deflated (whose ratio is at most 1032:1, so the declared size is backed by the file),
  and is inflated with a read bounded by that element count, never beyond;
- every tensor view lies inside its storage: its lowest and highest element index, whatever the
  signs of its strides and offset, are within the storage, and it has no more elements than the
  storage holds (so a zero stride cannot turn one element into a gigabyte);
- the pickle is at most MAX_PICKLE_BYTES, every argument of every call it makes has the type
  torch.save writes there, and what it builds is a tree of at most MAX_DEPTH levels and
  MAX_NODES objects, of tensors, containers and plain values only.
Any failure is a CheckpointError (a regnet_keras InputError) naming the file and, where the
tensor's key is known, the key.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import math
import pickle
import re
import struct
import zipfile
import zlib

import numpy as np

from regnet_keras.errors import InputError

# A RegNetY-32GF state dict pickles into about 100 KB, a pycls checkpoint with its optimizer
# state into a few hundred; anything near this bound is not a checkpoint of a vision model.
MAX_PICKLE_BYTES = 64 << 20
# A checkpoint is a shallow tree (checkpoint -> state dict -> tensor); the bounds keep the
# recursive walks of the callers and their memory in proportion to the file.
MAX_DEPTH = 32
MAX_NODES = 1_000_000
# How much of a tensor's key errors quote.
MAX_KEY_CHARS = 200
# Deflate's largest expansion: every compressed bit pair can stand for at most 258 bytes.
DEFLATE_MAX_RATIO = 1032
# Element counts and indices beyond 2**48 cannot be backed by any file on a real disk.
MAX_INDEX = 1 << 48
# NumPy's limit on dimensions.
MAX_DIMENSIONS = 32
# Every tensor of a checkpoint owns its storage or shares it with a few others (tied weights,
# views); views adding up to more than this many times the storages' elements make memory out
# of nothing.
MAX_VIEW_TO_STORAGE_RATIO = 2
_STORAGE_KEY = re.compile(r"^[0-9A-Za-z_.-]{1,64}$")
_BYTEORDERS = {"little": "<", "big": ">"}


class CheckpointError(InputError, pickle.UnpicklingError):
    """A checkpoint that is damaged, crafted, or not a tensor state dict."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint whose pickle asks for something other than tensors and plain containers."""


# torch's storage classes, as torch.save names them, and the NumPy dtype of their elements.
# bfloat16 has no NumPy dtype: it is read as uint16 and widened to float32 (exactly).
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


def _refuse_state(record, state):
    raise CheckpointError(f"the pickle sets the state of a {type(record).__name__.strip('_')}; "
                          "torch writes none")


def _record(cls):
    """A frozen slotted dataclass whose __setstate__ refuses: a pickle's BUILD opcode can neither
    add nor change its fields after the checks of its construction. The refusal is installed
    after dataclass() because some Python 3.11 releases (Debian 12's 3.11.2) replace a frozen
    slotted dataclass's own __setstate__ with one that writes every field."""
    record = dataclasses.dataclass(frozen=True, slots=True)(cls)
    record.__setstate__ = _refuse_state
    return record


@_record
class _StorageType:
    name: str


@_record
class _Storage:
    """One storage's elements, in native byte order, read once from the archive."""

    member: str
    type_name: str
    array: np.ndarray
    bfloat16: bool


@_record
class _TensorView:
    """A tensor as the pickle describes it; checked and copied out of its storage by _Tree,
    which knows the tensor's key."""

    storage: _Storage
    offset: int
    size: tuple
    stride: tuple


def _is_int(value) -> bool:
    # Not isinstance: bool is an int subclass, and torch.save writes plain ints in sizes,
    # strides, offsets and element counts.
    return type(value) is int


def _index(value, what: str) -> int:
    if not _is_int(value) or not -MAX_INDEX <= value <= MAX_INDEX:
        raise CheckpointError(f"{what} is {_describe(value)}, not an integer of a tensor's size")
    return value


def _describe(value) -> str:
    """A short description of a value from the file for an error (never its whole repr: a
    string may be megabytes, an integer too long to print)."""
    if isinstance(value, int) and not -10**30 < value < 10**30:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, (str, bytes)):
        text = repr(value[:40])
    elif isinstance(value, (int, float, type(None))):
        text = repr(value)
    else:
        text = f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."


def _int_tuple(value, what: str) -> tuple:
    if not isinstance(value, tuple) or len(value) > MAX_DIMENSIONS:
        raise CheckpointError(f"{what} is {_describe(value)}, not a tuple of at most "
                              f"{MAX_DIMENSIONS} integers")
    return tuple(_index(item, what) for item in value)


def _rebuild_tensor(storage, offset, size, stride, *rest):
    # torch._utils._rebuild_tensor(storage, offset, size, stride) and _rebuild_tensor_v2(...,
    # requires_grad, backward_hooks[, metadata]); the extra arguments carry nothing for NumPy.
    if len(rest) not in (0, 2, 3):
        raise CheckpointError(f"a tensor is rebuilt with {4 + len(rest)} arguments; torch "
                              "writes 4, 6 or 7")
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"a tensor's storage is {_describe(storage)}, not a storage")
    return _TensorView(storage, _index(offset, "a tensor's storage offset"),
                       _int_tuple(size, "a tensor's size"), _int_tuple(stride, "a tensor's stride"))


def _rebuild_parameter(data, *rest):
    # torch._utils._rebuild_parameter(data, requires_grad, backward_hooks) and
    # _rebuild_parameter_with_state(..., state).
    if len(rest) not in (2, 3) or not isinstance(data, _TensorView):
        raise CheckpointError(f"a parameter is rebuilt from {_describe(data)} with "
                              f"{1 + len(rest)} arguments; torch writes a tensor and 2 or 3 more")
    return data


def _ordered_dict(*items):
    # collections.OrderedDict as torch.save reduces it: no arguments, items set afterwards.
    if items:
        raise CheckpointError("an OrderedDict is built with arguments; torch writes none")
    return collections.OrderedDict()


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): _ordered_dict,
}


def _member(archive: zipfile.ZipFile, name: str, needed: int, what: str) -> bytes:
    """`needed` bytes of member `name`, proven available before anything is inflated."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise CheckpointError(f"{what} ({name}) is missing from the archive") from None
    if info.compress_type == zipfile.ZIP_STORED:
        backed = info.compress_size
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        backed = info.compress_size * DEFLATE_MAX_RATIO
    else:
        raise CheckpointError(f"{what} ({name}) uses zip compression method "
                              f"{info.compress_type}; torch.save writes stored members")
    if info.file_size < needed or backed < needed:
        raise CheckpointError(f"{what} ({name}) holds {min(info.file_size, backed)} bytes, "
                              f"fewer than the {needed} it declares; the file is truncated")
    with archive.open(info) as member:
        data = member.read(needed)
    if len(data) != needed:
        raise CheckpointError(f"{what} ({name}) ends after {len(data)} of its {needed} bytes; "
                              "the file is truncated")
    return data


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
            "for a safetensors file")

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and len(saved_id) == 5 and saved_id[0] == "storage"
                and isinstance(saved_id[1], _StorageType)):
            raise UnsafeCheckpointError(
                f"unknown persistent object {_describe(saved_id)} in the checkpoint")
        _, storage_type, key, location, numel = saved_id
        if not isinstance(key, str) or not _STORAGE_KEY.match(key) or \
                not isinstance(location, str):
            raise CheckpointError(f"a storage is named {_describe(key)} at {_describe(location)}; "
                                  "torch writes short names of letters and digits")
        numel = _index(numel, f"storage {key}'s element count")
        if numel < 0:
            raise CheckpointError(f"storage {key} declares {numel} elements")
        known = self.storages.get(key)
        if known is not None:
            if known.type_name != storage_type.name or known.array.size != numel:
                # torch.save refuses to write one storage as two types, so no real file does it.
                raise CheckpointError(f"storage {key} is declared as {known.array.size} "
                                      f"{known.type_name} and as {numel} {storage_type.name}")
            return known
        bfloat16 = STORAGE_DTYPES[storage_type.name] == "bfloat16"
        dtype = np.dtype(np.uint16 if bfloat16 else STORAGE_DTYPES[storage_type.name])
        dtype = dtype.newbyteorder(self.byteorder)
        member = f"{self.prefix}/data/{key}"
        raw = _member(self.archive, member, numel * dtype.itemsize, f"storage {key}")
        array = np.frombuffer(raw, dtype=dtype, count=numel).astype(dtype.newbyteorder("="))
        self.storages[key] = _Storage(member, storage_type.name, array, bfloat16)
        return self.storages[key]


class _Tree:
    """Turns what the unpickler built into plain containers and NumPy arrays, proving every
    tensor view inside its storage and bounding the tree's depth, size and tensor memory."""

    def __init__(self, storages: dict):
        self.nodes = 0
        storage_elements = sum(storage.array.size for storage in storages.values())
        self.elements_left = MAX_VIEW_TO_STORAGE_RATIO * storage_elements

    def convert(self, value, key: str, depth: int = 0):
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise CheckpointError(f"the checkpoint's objects nest deeper than {MAX_DEPTH} or "
                                  f"number more than {MAX_NODES} (at {key or 'the top'}); a "
                                  "state dict is a shallow tree of tensors")
        if isinstance(value, _TensorView):
            return self.tensor(value, key)
        if isinstance(value, dict):
            converted = {}
            for name, item in value.items():
                if not isinstance(name, str) and not (_is_int(name) and abs(name) < MAX_INDEX):
                    raise CheckpointError(f"{key or 'the top'} has a key {_describe(name)}; "
                                          "state dicts are keyed by names")
                # Bounded, so that long names under long names cannot multiply into memory.
                path = (f"{key}.{str(name)[:MAX_KEY_CHARS]}" if key else str(name))[
                    :MAX_KEY_CHARS]
                converted[name] = self.convert(item, path, depth + 1)
            return converted
        if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
            return type(value)(self.convert(item, f"{key}[{index}]"[:MAX_KEY_CHARS], depth + 1)
                               for index, item in enumerate(value))
        if value is None or type(value) in (bool, int, float, str, bytes):
            return value
        raise CheckpointError(f"{key or 'the top'} is {_describe(value)} where a checkpoint "
                              "holds tensors, containers and plain values")

    def tensor(self, view: _TensorView, key: str) -> np.ndarray:
        where = f"tensor {key or '(top)'}"
        array, size, stride = view.storage.array, view.size, view.stride
        if len(size) != len(stride):
            raise CheckpointError(f"{where} has size {size} but stride {stride}")
        if any(n < 0 for n in size) or view.offset < 0:
            raise CheckpointError(f"{where} has size {size} and offset {view.offset}; neither "
                                  "can be negative")
        elements = math.prod(size)
        if elements > array.size or elements > self.elements_left:
            raise CheckpointError(
                f"{where} of size {size} has {elements} elements, more than its storage "
                f"({view.storage.member}) holds ({array.size}) or the file's storages back")
        self.elements_left -= elements
        if elements == 0:
            values = np.zeros(size, array.dtype)
        else:
            lowest = view.offset + sum((n - 1) * s for n, s in zip(size, stride) if s < 0)
            highest = view.offset + sum((n - 1) * s for n, s in zip(size, stride) if s > 0)
            if lowest < 0 or highest >= array.size:
                raise CheckpointError(
                    f"{where} (size {size}, stride {stride}, offset {view.offset}) reaches "
                    f"elements {lowest} to {highest} of its storage ({view.storage.member}), "
                    f"which holds {array.size}")
            values = np.lib.stride_tricks.as_strided(
                array[view.offset:], shape=size,
                strides=tuple(s * array.itemsize for s in stride), writeable=False).copy()
        if view.storage.bfloat16:
            values = (values.astype(np.uint32) << 16).view(np.float32)
        return values


# What a damaged or crafted archive or pickle raises inside zipfile, zlib and the unpickler;
# the types and bounds above are checked by this module itself.
_FORMAT_ERRORS = (pickle.UnpicklingError, zipfile.BadZipFile, zlib.error, EOFError, ValueError,
                  TypeError, AttributeError, KeyError, IndexError, OverflowError, struct.error,
                  UnicodeDecodeError, NotImplementedError, RuntimeError, OSError)


def load(path: str):
    """The object a torch.save zip file holds, with tensors as NumPy arrays.

    Raises UnsafeCheckpointError for anything but tensors and plain containers, and
    CheckpointError for damaged or crafted files; both name the file.
    """
    path = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            return _load(archive)
    except UnsafeCheckpointError as error:
        raise UnsafeCheckpointError(f"{path}: {error}.") from None
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}; the file is damaged or was crafted: download "
                              "it again from its publisher, or ask for a safetensors "
                              "file.") from None
    except FileNotFoundError:
        raise
    except _FORMAT_ERRORS as error:
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path} could not be read as a PyTorch checkpoint ({problem}); "
                              "it is truncated or corrupt: download or write it again.") from None


def _load(archive: zipfile.ZipFile):
    names = archive.namelist()
    pickles = [name for name in names if name.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise CheckpointError("a zip file but not a PyTorch checkpoint (no single */data.pkl)")
    prefix = pickles[0][:-len("/data.pkl")]
    byteorder = "little"
    if prefix + "/byteorder" in names:
        size = min(archive.getinfo(prefix + "/byteorder").file_size, 8)
        byteorder = _member(archive, prefix + "/byteorder", size, "the byte order").decode(
            "ascii", "replace").strip()
    if byteorder not in _BYTEORDERS:
        raise CheckpointError(f"byte order {byteorder!r} is neither 'little' nor 'big'")
    info = archive.getinfo(pickles[0])
    if info.file_size > MAX_PICKLE_BYTES:
        raise CheckpointError(f"its pickle declares {info.file_size} bytes, more than the "
                              f"{MAX_PICKLE_BYTES} of any state dict")
    data = _member(archive, pickles[0], info.file_size, "the pickle")
    unpickler = _StateDictUnpickler(data, archive, prefix, _BYTEORDERS[byteorder])
    content = unpickler.load()
    return _Tree(unpickler.storages).convert(content, "")
