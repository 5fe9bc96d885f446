"""Writes HDF5 weights files with h5py, without Keras: regnet_keras' own format (the attributes
and groups save_weights writes) and keras.applications' layout, each with optional crafted
parts (links to other files, virtual datasets, unwritten or compressed data, other dtypes)."""

from __future__ import annotations

import json

import h5py
import numpy as np

from regnet_keras.design_space import AnyNetConfig
from regnet_keras.weights import h5 as weights_h5

# A small AnyNet design (one block per stage) and a tensor per weight that its stem holds.
TINY_DESIGN = AnyNetConfig(stage_widths=(8, 16, 24, 32), stage_depths=(1, 1, 1, 1),
                           stage_group_widths=(8, 8, 8, 8), stem_width=8)


def stem_tensors(rng=None) -> dict:
    rng = rng or np.random.default_rng(0)
    return {"stem_conv": {"kernel": rng.standard_normal((3, 3, 3, 8)).astype(np.float32)},
            "stem_bn": {name: np.ones(8, np.float32) for name in
                        ("gamma", "beta", "moving_mean", "moving_variance")}}


def write_own_file(path, tensors: dict, design=TINY_DESIGN, classes: int = 0,
                   origin: dict | None = None, **dataset_options) -> str:
    """A file in save_weights' format holding `tensors` ({layer: {weight: array}})."""
    with h5py.File(path, "w") as f:
        f.attrs[weights_h5.FORMAT_ATTRIBUTE] = weights_h5.FORMAT_VERSION
        f.attrs["design"] = json.dumps(design.to_dict())
        f.attrs["padding"] = "same"
        f.attrs["preprocessing"] = ""
        f.attrs["classes"] = classes
        f.attrs["classifier_activation"] = ""
        f.attrs["weights_origin"] = json.dumps(origin) if origin else ""
        for layer, weights in tensors.items():
            group = f.create_group(layer)
            for name, value in weights.items():
                group.create_dataset(name, data=value, **dataset_options)
    return str(path)


def write_keras_applications_file(path, tensors: dict, prefix: str = "regnetx002") -> str:
    """A keras.applications-style file: model_weights/<layer>/<layer>/<weight>:0 datasets,
    layer_names and weight_names attributes (stem layers only, named as keras.applications
    names them)."""
    names = {"stem_conv": f"{prefix}_stem_conv", "stem_bn": f"{prefix}_stem_bn"}
    with h5py.File(path, "w") as f:
        weights_group = f.create_group("model_weights")
        layer_names = []
        for layer, weights in tensors.items():
            theirs = names.get(layer, layer)
            layer_names.append(theirs.encode())
            group = weights_group.create_group(theirs)
            weight_names = []
            for name, value in weights.items():
                weight_name = f"{theirs}/{name}:0"
                group.create_dataset(weight_name, data=value)
                weight_names.append(weight_name.encode())
            group.attrs["weight_names"] = weight_names
        weights_group.attrs["layer_names"] = layer_names
    return str(path)
