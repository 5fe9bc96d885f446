"""Writes torch.save-format zip checkpoints opcode by opcode, without torch: valid ones as torch
writes them, and crafted ones that no torch would write (views outside their storage, zero
strides, declared sizes the archive does not hold, wrong kinds of objects in the structure).

A value to pickle is a plain container or scalar, or one of the records below: `Global` (a name
the unpickler must resolve), `Call` (a reduce of a callable with arguments), `Persistent` (a
persistent id) and `Tensor` (a storage view as torch.save writes it).
"""

from __future__ import annotations

import dataclasses
import io
import struct
import zipfile

import numpy as np

STORAGE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
                 np.dtype(np.float16): "HalfStorage", np.dtype(np.int64): "LongStorage",
                 np.dtype(np.int32): "IntStorage", np.dtype(np.uint8): "ByteStorage",
                 np.dtype(np.bool_): "BoolStorage"}


@dataclasses.dataclass(frozen=True)
class Global:
    module: str
    name: str


@dataclasses.dataclass(frozen=True)
class Call:
    function: object
    arguments: tuple


@dataclasses.dataclass(frozen=True)
class Persistent:
    saved_id: object


@dataclasses.dataclass(frozen=True)
class Tensor:
    storage_key: str
    numel: int
    offset: int
    size: tuple
    stride: tuple
    storage_type: str = "FloatStorage"


def storage_id(key: str, numel: int, storage_type: str = "FloatStorage") -> Persistent:
    return Persistent(("storage", Global("torch", storage_type), key, "cpu", numel))


def tensor_call(tensor: Tensor) -> Call:
    return Call(Global("torch._utils", "_rebuild_tensor_v2"),
                (storage_id(tensor.storage_key, tensor.numel, tensor.storage_type), tensor.offset,
                 tuple(tensor.size), tuple(tensor.stride), False,
                 Call(Global("collections", "OrderedDict"), ())))


def pickle_bytes(value) -> bytes:
    out = io.BytesIO()
    out.write(b"\x80\x02")  # PROTO 2
    _emit(value, out)
    out.write(b".")  # STOP
    return out.getvalue()


def _emit(value, out):
    if isinstance(value, Tensor):
        _emit(tensor_call(value), out)
    elif isinstance(value, Global):
        out.write(b"c" + value.module.encode() + b"\n" + value.name.encode() + b"\n")
    elif isinstance(value, Call):
        _emit(value.function, out)
        _emit(tuple(value.arguments), out)
        out.write(b"R")
    elif isinstance(value, Persistent):
        _emit(value.saved_id, out)
        out.write(b"Q")
    elif isinstance(value, dict):
        out.write(b"}(")  # EMPTY_DICT, MARK
        for key, item in value.items():
            _emit(key, out)
            _emit(item, out)
        out.write(b"u")  # SETITEMS
    elif isinstance(value, list):
        out.write(b"](")
        for item in value:
            _emit(item, out)
        out.write(b"e")  # APPENDS
    elif isinstance(value, tuple):
        out.write(b"(")
        for item in value:
            _emit(item, out)
        out.write(b"t")
    elif value is None:
        out.write(b"N")
    elif value is True or value is False:
        out.write(b"\x88" if value else b"\x89")
    elif isinstance(value, int):
        if -(1 << 31) <= value < (1 << 31):
            out.write(b"J" + struct.pack("<i", value))
        else:
            encoded = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            out.write(b"\x8a" + bytes([len(encoded)]) + encoded)
    elif isinstance(value, float):
        out.write(b"G" + struct.pack(">d", value))
    elif isinstance(value, str):
        encoded = value.encode("utf-8")
        out.write(b"X" + struct.pack("<I", len(encoded)) + encoded)
    elif isinstance(value, bytes):
        out.write(b"C" + bytes([len(value)]) + value if len(value) < 256 else
                  b"B" + struct.pack("<I", len(value)) + value)
    else:
        raise TypeError(f"cannot craft {type(value).__name__}")


def write_checkpoint(path, content, storages: dict, compression=zipfile.ZIP_STORED,
                     prefix: str = "archive", byteorder: str | None = "little") -> str:
    """A zip checkpoint: `content` pickled (see pickle_bytes) and `storages` ({key: bytes})."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr(f"{prefix}/data.pkl", pickle_bytes(content))
        if byteorder is not None:
            archive.writestr(f"{prefix}/byteorder", byteorder)
        archive.writestr(f"{prefix}/version", "3\n")
        for key, data in storages.items():
            archive.writestr(f"{prefix}/data/{key}", data)
    return str(path)


def state_dict_checkpoint(path, arrays: dict, **options) -> str:
    """A valid checkpoint of {key: array}, one storage per tensor, as torch.save lays it out."""
    content, storages = {}, {}
    for index, (key, array) in enumerate(arrays.items()):
        array = np.ascontiguousarray(array)
        strides = tuple(s // array.itemsize for s in array.strides) if array.ndim else ()
        content[key] = Tensor(str(index), array.size, 0, array.shape, strides,
                              STORAGE_NAMES[array.dtype])
        storages[str(index)] = array.astype(array.dtype.newbyteorder("<")).tobytes()
    return write_checkpoint(path, Call(Global("collections", "OrderedDict"), ()) if not content
                            else content, storages, **options)
