"""HDF5 files from anyone, checked before h5py reads their data: weights files (regnet_keras' own
and keras.applications') and legacy .h5 Keras models.

HDF5 can point outside the file (external and soft links, virtual datasets, external raw
storage), declare datasets far larger than what it stores, and its C parser loops forever on
some malformed global heaps. The checks here follow hard links only, accept numeric datasets
stored in full in the file and no more bytes in all than the file has, and walk every global heap
as HDF5 would before h5py opens the file. docs/SECURITY.md says how they are tested.
"""

from __future__ import annotations

import mmap
import os
import struct

import h5py
import numpy as np

from regnet_keras.errors import InputError


class HDF5FileError(InputError, ValueError):
    """An HDF5 file that is damaged, crafted, or points at data outside itself."""


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_GLOBAL_HEAP_SIGNATURE = b"GCOL\x01"
# Global heaps of weights files hold a few layer and weight names.
MAX_GLOBAL_HEAP_OBJECTS = 1_000_000


def check_global_heaps(path: str, error_type=None) -> None:
    """Refuses a file holding an HDF5 global heap collection that HDF5's own parser
    (H5HG__cache_heap_deserialize, which reads variable-length strings) would walk forever or
    past its end: an object whose size does not move the walk forward or leaves the collection.
    Every place such a parse can start carries the collection signature, so all of them are
    checked, walking as HDF5 walks. Raises `error_type` (HDF5FileError by default)."""
    error_type = error_type or HDF5FileError
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            return
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            length_size = _hdf5_length_size(data)
            if length_size is None:
                return  # not HDF5: h5py refuses it
            length_format = {2: "<H", 4: "<I", 8: "<Q"}.get(length_size)
            if length_format is None:
                raise error_type(f"{path} declares {length_size}-byte lengths; the file is "
                                       "corrupt or crafted. Download or save it again.")
            header, object_header = 8 + length_size, 8 + length_size
            objects = 0
            start = data.find(_GLOBAL_HEAP_SIGNATURE)
            while start >= 0:
                if start + header <= len(data):
                    size = struct.unpack_from(length_format, data, start + 8)[0]
                    end = start + size
                    position = start + header
                    while end <= len(data) and position < end \
                            and position + object_header <= end:
                        index = struct.unpack_from("<H", data, position)[0]
                        object_size = struct.unpack_from(length_format, data, position + 8)[0]
                        # HDF5's walk: a free-space object (index 0) spans `size` bytes, any
                        # other its header and its data padded to 8 bytes.
                        need = object_size if index == 0 else \
                            object_header + (object_size + 7) // 8 * 8
                        objects += 1
                        if need == 0 or need > end - position or \
                                objects > MAX_GLOBAL_HEAP_OBJECTS:
                            raise error_type(
                                f"{path} holds a malformed HDF5 global heap at byte {start} (an "
                                f"object of {object_size} bytes at byte {position}), which "
                                "HDF5 would read forever or out of bounds; the file is corrupt "
                                "or was crafted. Download or save it again.")
                        position += need
                start = data.find(_GLOBAL_HEAP_SIGNATURE, start + 1)


def _hdf5_length_size(data) -> int | None:
    """The size of lengths a superblock declares (it lies at byte 0, 512, 1024, ...)."""
    offset = 0
    while offset + 16 <= len(data):
        if data[offset:offset + 8] == _HDF5_SIGNATURE:
            version = data[offset + 8]
            return data[offset + 14] if version < 2 else data[offset + 10]
        offset = 512 if offset == 0 else offset * 2
    return None


# Weights are numbers: floats, or integers for counters.
_WEIGHT_DTYPE_KINDS = "fiu"
# A Keras model file nests a few levels (layers, sublayers, variables) and holds a few thousand
# objects; the bounds stop hard-link cycles and floods.
MAX_HDF5_DEPTH = 64
MAX_HDF5_OBJECTS = 200_000


class DatasetReader:
    """Reads datasets through hard links only, each proven stored in full in the file, and no
    more bytes in all than the file has; refusals raise `error_type`."""

    def __init__(self, path: str, file_size: int, error_type=None):
        self.path, self.bytes_left = path, file_size
        self.error_type = error_type or HDF5FileError

    def _refuse(self, name, problem):
        raise self.error_type(f"{self.path}: {name} {problem}; the file is truncated or corrupt, "
                               "or was crafted (weights files hold only numeric datasets stored "
                               "in the file itself). Download or save it again from a source "
                               "you trust.")

    def _object(self, parent, name: str):
        current = parent
        for part in name.split("/"):
            if part in ("", ".", ".."):
                self._refuse(repr(name), "is not a plain path inside the file")
            link = current.get(part, getlink=True)
            if link is None:
                raise self.error_type(f"{self.path}: {name} is missing; the file is incomplete "
                                       "or not a RegNet weights file.")
            if not isinstance(link, h5py.HardLink):
                self._refuse(f"{current.name.rstrip('/')}/{part}",
                             f"is an HDF5 {type(link).__name__} (it points elsewhere)")
            current = current[part]
        return current

    def group(self, parent, name: str) -> h5py.Group:
        found = self._object(parent, name)
        if not isinstance(found, h5py.Group):
            self._refuse(name, "is not a group")
        return found

    def attribute(self, owner, name: str, default=None):
        """An attribute's value: numbers or strings only (variable-length strings are read from
        global heaps, which check_global_heaps has proven parseable)."""
        if name not in owner.attrs:
            if default is None:
                raise self.error_type(f"{self.path}: {owner.name} lacks its {name!r} attribute; "
                                       "the file is incomplete or not a RegNet weights file.")
            return default
        dtype = owner.attrs.get_id(name).dtype
        if (dtype.kind not in "SUfiub" and h5py.check_string_dtype(dtype) is None) \
                or dtype.subdtype is not None:
            self._refuse(f"attribute {name!r} of {owner.name}", f"holds {dtype} values")
        return owner.attrs[name]

    def groups(self, parent):
        return [(name, self.group(parent, name)) for name in parent.keys()]

    def array(self, parent, name: str) -> np.ndarray:
        dataset = self._object(parent, name)
        if not isinstance(dataset, h5py.Dataset):
            self._refuse(name, "is not a dataset")
        self.check(dataset, dataset.name)
        return np.asarray(dataset[()])

    def walk(self, root) -> None:
        """Checks every link, group and dataset under `root` without reading data; hard-link
        cycles and floods are stopped by the bounds."""
        pending, seen = [(root, 0)], 0
        for attribute in root.attrs.keys():
            self.attribute(root, attribute)
        while pending:
            group, depth = pending.pop()
            for name in group.keys():
                seen += 1
                if depth >= MAX_HDF5_DEPTH or seen > MAX_HDF5_OBJECTS:
                    self._refuse(group.name, f"nests deeper than {MAX_HDF5_DEPTH} or holds more "
                                 f"than {MAX_HDF5_OBJECTS} objects")
                found = self._object(group, name)
                if isinstance(found, h5py.Group):
                    pending.append((found, depth + 1))
                elif isinstance(found, h5py.Dataset):
                    self.check(found, found.name)
                else:
                    self._refuse(found.name, "is neither a group nor a dataset")
                for attribute in found.attrs.keys():
                    self.attribute(found, attribute)

    def check(self, dataset: h5py.Dataset, name: str) -> None:
        if dataset.is_virtual or dataset.external:
            self._refuse(name, "is a virtual dataset or stored in external files")
        if dataset.shape is None or dataset.dtype.kind not in _WEIGHT_DTYPE_KINDS \
                or dataset.dtype.subdtype is not None:
            self._refuse(name, f"holds {dataset.dtype} values of shape {dataset.shape}")
        declared = int(np.prod(dataset.shape, dtype=object)) * dataset.dtype.itemsize
        stored = dataset.id.get_storage_size()
        if stored < declared or declared > self.bytes_left:
            self._refuse(name, f"declares {declared} bytes of shape {dataset.shape} but the "
                         f"file stores {stored} for it ({self.bytes_left} left of its size)")
        self.bytes_left -= declared


def check_hdf5_file(path: str, error_type=None) -> None:
    """Refuses (`error_type`, HDF5FileError by default) an HDF5 file that links or maps data from
    other files, or declares data it does not store; what Keras' legacy .h5 model loader would
    otherwise read."""
    error_type = error_type or HDF5FileError
    try:
        check_global_heaps(path, error_type)
        with h5py.File(path, "r") as f:
            DatasetReader(path, os.path.getsize(path), error_type).walk(f)
    except error_type:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as error:
        raise error_type(f"{path} could not be read as HDF5 ({str(error)[:200]}); the "
                               "file is truncated or corrupt.") from error
