"""Fuzz harness: the metadata JSON beside a .tflite file, as the Python tools read it
(regnet_keras.lite.export.read_metadata), and what the tools then do with an accepted record.

Property: the only exception that escapes is the library's InputError (MetadataError here);
an accepted record is one every app-side function runs on.
"""

import json
import os
import tempfile

import numpy as np

from regnet_keras.lite import export, image_preprocessing

INSTRUMENTED_MODULES = ("regnet_keras.lite.export", "regnet_keras.lite.image_preprocessing",
                        "json")

_DIRECTORY = tempfile.mkdtemp(prefix="fuzz_tflite_metadata_")
_MODEL_PATH = os.path.join(_DIRECTORY, "model.tflite")
_METADATA_PATH = os.path.join(_DIRECTORY, "model.json")
# Accepted records with inputs up to this side are also run through prepare_image; larger
# ones (legal up to MAX_INPUT_SIDE) would make each execution slow, not find more.
_PREPARED_SIDE = 64


def test_one_input(data: bytes) -> None:
    with open(_METADATA_PATH, "wb") as file:
        file.write(data)
    record = export.read_metadata(_MODEL_PATH)
    export.normalization_of(record)
    _, height, width, _ = record["input"]["shape"]
    if max(height, width) <= _PREPARED_SIDE:
        picture = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
        tensor = image_preprocessing.prepare_image(picture, record)
        assert tensor.shape == (1, height, width, 3), tensor.shape
    raw = np.arange(len(record["labels"])) % 200
    top = image_preprocessing.classify_output(raw, record)
    assert len(top) == min(5, len(record["labels"])), top


def _seed_records():
    """The metadata the readers' tests share (tools.android_goldens, in tools.convert's
    format): its valid variants and the cases an app must refuse."""
    from tools import android_goldens
    variants = android_goldens.metadata_variants()
    records = dict(variants)
    for case in android_goldens.invalid_metadata_cases(variants["float32_crop0875"]):
        records["invalid_" + case["name"]] = case["metadata"]
    return records


def write_seeds(directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    for name, record in _seed_records().items():
        text = json.dumps(record, indent=2).encode()  # as export.write writes it
        with open(os.path.join(directory, name + ".json"), "wb") as file:
            file.write(text)
        if not name.startswith("invalid_"):
            # Near-valid: cut short, and with a non-finite number Python's json would read.
            with open(os.path.join(directory, name + "_truncated.json"), "wb") as file:
                file.write(text[:len(text) // 2])
            with open(os.path.join(directory, name + "_nan.json"), "wb") as file:
                file.write(text.replace(b'"crop_fraction": ', b'"crop_fraction": NaN, "x": '))
