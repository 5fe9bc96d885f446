"""Fuzzes the reader of HDF5 weights files, regnet_keras' own and keras.applications'
(regnet_keras.weights.h5.open_weights_file)."""

import os

import h5py
import numpy as np

from regnet_keras.weights import h5 as weights_h5
from tests import h5_crafting
from fuzz.input_file import InputFile

INSTRUMENTED_MODULES = ("regnet_keras.weights.h5", "regnet_keras.hdf5_files",
                        "regnet_keras.design_space", "regnet_keras.weights.origin", "h5py")

_INPUT = InputFile("input.h5")


def test_one_input(data: bytes) -> None:
    weights_h5.open_weights_file(_INPUT.holding(data))


def write_seeds(directory: str) -> None:
    tensors = h5_crafting.stem_tensors()
    h5_crafting.write_own_file(os.path.join(directory, "own.h5"), tensors, classes=10,
                               origin={"library": "timm", "layout": "timm"})
    h5_crafting.write_keras_applications_file(os.path.join(directory, "keras_applications.h5"),
                                              tensors)
    h5_crafting.write_own_file(os.path.join(directory, "chunked.h5"), tensors, chunks=True)
    with h5py.File(os.path.join(directory, "external_link.h5"), "w") as f:
        f.attrs[weights_h5.FORMAT_ATTRIBUTE] = 1
        f["stem_conv"] = h5py.ExternalLink("other.h5", "/stem_conv")
    with h5py.File(os.path.join(directory, "unwritten.h5"), "w") as f:
        f.attrs[weights_h5.FORMAT_ATTRIBUTE] = 1
        f.create_group("stem_conv").create_dataset("kernel", shape=(1 << 16, 1 << 10),
                                                   dtype="f4", chunks=(64, 64))
    h5_crafting.write_own_file(os.path.join(directory, "strings.h5"),
                               {"stem_conv": {"kernel": np.array([b"x", b"y"])}})
