"""Crafted model files given to regnet_keras.load_model end in the library's one-line error:
Keras' safe mode stays on (a Lambda's code is refused), no class is imported from a module the
file names, a legacy .h5 model cannot map data from other files, and damaged archives or
configs are a ModelFileError, an InputError."""

import json
import os
import sys
import zipfile

import h5py
import numpy as np
import pytest

import regnet_keras
from regnet_keras.errors import InputError
from regnet_keras.keras_backend import get_keras
from regnet_keras.saving import ModelFileError


@pytest.fixture(scope="module")
def keras():
    return get_keras()


@pytest.fixture
def dense_file(keras, tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="logits")])
    path = tmp_path / "dense.keras"
    model.save(path)
    return path


def refused(path, *patterns):
    with pytest.raises(ModelFileError) as raised:
        regnet_keras.load_model(str(path))
    message = str(raised.value)
    assert isinstance(raised.value, InputError) and "\n" not in message
    for pattern in patterns:
        assert pattern in message, message
    return message


def rewrite_config(source, target, change):
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as crafted:
        for info in original.infolist():
            data = original.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            crafted.writestr(info, data)
    return target


def test_a_valid_file_loads(dense_file):
    model = regnet_keras.load_model(str(dense_file))
    assert model.get_layer("logits").kernel.shape == (4, 2)


def test_safe_mode_cannot_be_switched_off(dense_file):
    with pytest.raises(ValueError, match="safe mode"):
        regnet_keras.load_model(str(dense_file), safe_mode=False)


def test_a_lambda_layer_is_refused(keras, tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)])
    model.save(tmp_path / "lambda.keras")
    refused(tmp_path / "lambda.keras", "safe_mode")


def test_a_class_from_another_module_is_never_imported(dense_file, tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "planted_module.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Dense:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def plant(config):
        layer = config["config"]["layers"][-1]
        layer.update(module="planted_module", class_name="Dense", registered_name=None)

    refused(rewrite_config(dense_file, tmp_path / "planted.keras", plant))
    assert not marker.exists() and "planted_module" not in sys.modules


@pytest.mark.parametrize("change", [
    lambda config: config.update(config=[1, 2]),
    lambda config: config["config"]["layers"][-1]["config"].update(units="two"),
    lambda config: config["config"]["layers"][-1]["config"].update(units=-5),
    lambda config: config.clear(),
])
def test_configs_of_the_wrong_shape_are_the_librarys_error(dense_file, tmp_path, change):
    refused(rewrite_config(dense_file, tmp_path / "wrong.keras", change))


def test_damaged_archives_are_the_librarys_error(dense_file, tmp_path):
    data = dense_file.read_bytes()
    for cut in (100, len(data) // 2, len(data) - 30):
        damaged = tmp_path / f"cut{cut}.keras"
        damaged.write_bytes(data[:cut])
        refused(damaged, "could not be loaded")


def test_a_config_bomb_is_refused(dense_file, tmp_path):
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(dense_file) as original, \
            zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as crafted:
        for info in original.infolist():
            data = original.read(info.filename)
            if info.filename == "config.json":
                data = b" " * (512 << 20) + data  # 512 MB of spaces, about 500 KB deflated
            crafted.writestr(info.filename, data)
    assert bomb.stat().st_size < 4 << 20
    refused(bomb, "config.json", "more than a model's config takes")


def test_a_legacy_h5_model_cannot_read_other_files(keras, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(8, dtype=np.float32).tobytes())
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="logits")])
    path = tmp_path / "model.h5"
    model.save(path)
    with h5py.File(path, "a") as f:
        datasets = []
        f.visititems(lambda name, item: datasets.append(name)
                     if isinstance(item, h5py.Dataset) and "bias" in name else None)
        parent, name = datasets[0].rsplit("/", 1)
        del f[datasets[0]]
        f[parent].create_dataset(name, shape=(2,), dtype="f4", external=[(str(secret), 0, 8)])
    message = refused(path, "external")
    assert os.path.basename(str(path)) in message
