"""Crafted HDF5 weights files (regnet_keras' own format and keras.applications') and safetensors
files end in the library's one-line error: links, virtual datasets and external storage that
would read other files are refused unread, declared sizes beyond the file are refused before
reading, other dtypes are refused, and no reader allocates out of proportion to the file."""

import json
import os
import struct
import subprocess
import sys
import tracemalloc

import h5py
import numpy as np
import pytest

from regnet_keras.errors import InputError
from regnet_keras.weights import h5 as weights_h5
from regnet_keras.weights import state_dict_files
from tests import h5_crafting
from tests.conftest import REPO

HOSTILE_FILES = os.path.join(os.path.dirname(__file__), "hostile_files")


def refused(read, path, *patterns):
    with pytest.raises(InputError) as raised:
        read(str(path))
    message = str(raised.value)
    assert "\n" not in message and str(path) in message
    for pattern in patterns:
        assert pattern in message, message
    return message


def peak_bytes(read, path):
    tracemalloc.start()
    try:
        try:
            read(str(path))
        except InputError:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def secret(tmp_path):
    """Another file on the machine, which a weights file must not be able to read."""
    path = tmp_path / "secret.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("values", data=np.arange(8.0))
    raw = tmp_path / "secret.bin"
    raw.write_bytes(np.arange(8.0).tobytes())
    return path, raw


def test_valid_files_read_back_exactly(tmp_path):
    tensors = h5_crafting.stem_tensors()
    for path in (h5_crafting.write_own_file(tmp_path / "own.h5", tensors, classes=10),
                 h5_crafting.write_keras_applications_file(tmp_path / "ka.h5", tensors)):
        read = weights_h5.open_weights_file(path)
        for layer, weights in tensors.items():
            for name, value in weights.items():
                np.testing.assert_array_equal(read.tensors[layer][name], value)
    assert weights_h5.open_weights_file(str(tmp_path / "own.h5")).classes == 10


def test_links_into_other_files_are_refused_unread(tmp_path, secret):
    secret_h5, raw = secret
    with h5py.File(tmp_path / "external_link.h5", "w") as f:
        f["stem_conv"] = h5py.ExternalLink(str(secret_h5), "/")
    refused(weights_h5.open_weights_file, tmp_path / "external_link.h5")  # not a weights file
    cases = {
        "external_link": lambda group: group.__setitem__(
            "kernel", h5py.ExternalLink(str(secret_h5), "values")),
        "soft_link": lambda group: group.__setitem__("kernel", h5py.SoftLink("/elsewhere")),
        "external_storage": lambda group: group.create_dataset(
            "kernel", shape=(8,), dtype="f8", external=[(str(raw), 0, 64)]),
        "virtual": lambda group: group.create_virtual_dataset("kernel", _virtual(secret_h5)),
    }
    for name, plant in cases.items():
        path = tmp_path / f"{name}.h5"
        h5_crafting.write_own_file(path, {})
        with h5py.File(path, "a") as f:
            plant(f.create_group("stem_conv"))
        message = refused(weights_h5.open_weights_file, path, "stem_conv")
        assert "0.0, 1.0" not in message


def _virtual(source):
    layout = h5py.VirtualLayout(shape=(8,), dtype="f8")
    layout[:] = h5py.VirtualSource(str(source), "values", shape=(8,))
    return layout


def test_keras_applications_weight_names_cannot_walk_out_of_their_layer(tmp_path, secret):
    secret_h5, _ = secret
    path = h5_crafting.write_keras_applications_file(tmp_path / "ka.h5",
                                                     h5_crafting.stem_tensors())
    with h5py.File(path, "a") as f:
        group = f["model_weights/regnetx002_stem_conv"]
        group["regnetx002_stem_conv"]["link"] = h5py.ExternalLink(str(secret_h5), "/")
        group.attrs["weight_names"] = [b"regnetx002_stem_conv/link/values", b"../x/kernel:0"]
    refused(weights_h5.open_weights_file, path, "ExternalLink")


@pytest.mark.parametrize("options,expected", [
    (dict(shape=(1 << 20, 1 << 10), dtype="f4", chunks=(256, 256)), "declares 4294967296 bytes"),
    (dict(data=np.zeros(1 << 22, np.float32), compression="gzip"), "declares 16777216 bytes"),
    (dict(data=np.array([b"ab", b"cd"])), "holds |S2"),
    (dict(data=np.zeros(2, [("a", "f4"), ("b", "i4")])), "holds"),
    (dict(shape=(2,), dtype=h5py.vlen_dtype(np.float32)), "holds object"),
    (dict(shape=None, dtype="f4"), "holds float32 values of shape None"),
])
def test_data_the_file_does_not_store_and_other_dtypes_are_refused(tmp_path, options, expected):
    path = tmp_path / "declared.h5"
    h5_crafting.write_own_file(path, {})
    with h5py.File(path, "a") as f:
        if options.get("shape", 1) is None:
            f.create_group("stem_conv").create_dataset("kernel", data=h5py.Empty("f4"))
        else:
            f.create_group("stem_conv").create_dataset("kernel", **options)
    assert path.stat().st_size < 1 << 20
    refused(weights_h5.open_weights_file, path, expected)
    assert peak_bytes(weights_h5.open_weights_file, path) < 8 << 20


def test_a_global_heap_that_hdf5_would_walk_forever_is_refused_before_reading():
    # A fuzzer's input: one object of size 0 in the heap holding its layer_names sends HDF5's
    # global-heap parser into an endless loop. Run in a subprocess, so that a regression fails
    # the test instead of hanging the suite.
    path = os.path.join(HOSTILE_FILES, "h5_vlen_attribute_endless_loop.h5")
    code = ("import sys; from regnet_keras.weights import h5\n"
            "try:\n    h5.open_weights_file(sys.argv[1])\n"
            "except h5.WeightsFileError as error:\n    print(error)\n")
    done = subprocess.run([sys.executable, "-c", code, path], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert "malformed HDF5 global heap" in done.stdout, done.stdout + done.stderr[-2000:]


def test_global_heap_objects_that_leave_their_collection_are_refused(tmp_path):
    path = h5_crafting.write_own_file(tmp_path / "own.h5", h5_crafting.stem_tensors())
    data = bytearray(open(path, "rb").read())
    heap = data.find(b"GCOL\x01")
    assert heap > 0  # h5py keeps str attributes in a global heap
    # The first object's size (after its index, reference count and reserved bytes).
    struct.pack_into("<Q", data, heap + 16 + 8, 1 << 40)
    crafted = tmp_path / "leaving.h5"
    crafted.write_bytes(bytes(data))
    refused(weights_h5.open_weights_file, crafted, "malformed HDF5 global heap")


@pytest.mark.parametrize("attribute,value,expected", [
    ("design", b"[" * 5000, "could not be read"),
    ("design", b'{"kind": "anynet", "stage_widths": "x"}', "could not be read"),
    ("classes", -3, "-3 classes"),
    ("weights_origin", b'{"library": 3, "unknown_field": 1}', "could not be read"),
    ("regnet_keras_weights_format", 99, "format 99"),
])
def test_attributes_of_the_wrong_kind_are_the_librarys_error(tmp_path, attribute, value,
                                                             expected):
    path = h5_crafting.write_own_file(tmp_path / "attributes.h5", h5_crafting.stem_tensors())
    with h5py.File(path, "a") as f:
        f.attrs[attribute] = np.bytes_(value) if isinstance(value, bytes) else value
    refused(weights_h5.open_weights_file, path, expected)


def test_all_datasets_together_hold_at_most_the_file(tmp_path):
    path = h5_crafting.write_own_file(tmp_path / "own.h5", h5_crafting.stem_tensors())
    data = open(path, "rb").read()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[:len(data) * 2 // 3])
    refused(weights_h5.open_weights_file, truncated, "truncated or corrupt")


# safetensors

def _safetensors(path, header, data=b"", length=None):
    encoded = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded) if length is None else length) + encoded
                     + data)
    return path


@pytest.mark.parametrize("name,header,data,length", [
    ("huge_header", {}, b"", 1 << 62),
    ("header_past_file", {}, b"", 10_000),
    ("not_json", b"{not json", b"", None),
    ("not_object", [1, 2], b"", None),
    ("outside", {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1 << 40]}},
     bytes(16), None),
    ("overlap", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                 "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12), None),
    ("unknown_dtype", {"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}},
     bytes(16), None),
    ("overflow", {"w": {"dtype": "F32", "shape": [1 << 62, 1 << 62], "data_offsets": [0, 16]}},
     bytes(16), None),
    ("size_mismatch", {"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 16]}},
     bytes(16), None),
    ("wrong_types", {"w": {"dtype": 5, "shape": "x", "data_offsets": None}}, b"", None),
])
def test_crafted_safetensors_files_are_the_librarys_error(tmp_path, name, header, data, length):
    path = _safetensors(tmp_path / f"{name}.safetensors", header, data, length)
    refused(state_dict_files.read, path, "could not be read as safetensors")
    assert peak_bytes(state_dict_files.read, path) < 8 << 20


def test_valid_safetensors_read_back_exactly(tmp_path):
    tensors = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(3, np.int64)}
    path = state_dict_files.write(str(tmp_path / "ok.safetensors"), tensors)
    read = state_dict_files.read(path).content
    for key, value in tensors.items():
        np.testing.assert_array_equal(read[key], value)
