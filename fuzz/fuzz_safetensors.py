"""Fuzzes the reading of safetensors state dicts (regnet_keras.weights.state_dict_files.read)."""

import json
import os
import struct

import numpy as np

from regnet_keras.weights import state_dict_files
from fuzz.input_file import InputFile

INSTRUMENTED_MODULES = ("regnet_keras.weights.state_dict_files", "safetensors")

_INPUT = InputFile("input.safetensors")


def test_one_input(data: bytes) -> None:
    state_dict_files.read(_INPUT.holding(data))


def _raw(header: dict, data: bytes) -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + data


def write_seeds(directory: str) -> None:
    rng = np.random.default_rng(0)
    state_dict_files.write(os.path.join(directory, "state_dict.safetensors"), {
        "stem.conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "stem.bn.num_batches_tracked": np.array(7, np.int64),
        "head.fc.bias": np.arange(3, dtype=np.float16), "mask": np.array([True, False])})
    state_dict_files.write(os.path.join(directory, "empty.safetensors"), {})
    seeds = {
        "bf16": _raw({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4),
        "outside": _raw({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1 << 40]}},
                        b"\0" * 16),
        "overflow": _raw({"w": {"dtype": "F32", "shape": [1 << 62, 1 << 62],
                                "data_offsets": [0, 16]}}, b"\0" * 16),
        "overlap": _raw({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
                        b"\0" * 12),
        "huge_header": struct.pack("<Q", 1 << 60) + b"{}",
    }
    for name, data in seeds.items():
        with open(os.path.join(directory, name + ".safetensors"), "wb") as file:
            file.write(data)
