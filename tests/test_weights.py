import hashlib
import os
import shutil

import keras
import numpy as np
import pytest

import regnet_keras
from regnet_keras.weights import h5 as weights_io
from tests.conftest import PARITY_MODELS, PARITY_SIZE, write_keras_applications_references
from tests.loopback_server import serve_directory
from tests.zoo_table import ZOO_TABLE

SHAPE = (PARITY_SIZE, PARITY_SIZE, 3)


def reference(directory, name):
    return np.load(os.path.join(directory, f"{name.lower()}_outputs.npz"))


def assert_matches_keras_applications(directory, name):
    expected = reference(directory, name)
    model = regnet_keras.build_model(name, weights=os.path.join(directory, f"{name.lower()}.h5"),
                                     input_shape=SHAPE, classifier_activation=None)
    assert regnet_keras.design_of_model(model).padding == "same"
    assert regnet_keras.design_of_model(model).preprocessing == "unit"
    logits = model.predict(expected["inputs"], verbose=0)
    # Float32 against float32: the two runtimes round differently (oneDNN's summation order even
    # varies with load), and a deep random network amplifies that to about 1e-4 of the logits'
    # scale, as far as either side is from the float64 result. The float64 check below is the
    # exact one.
    scale = max(1.0, np.abs(expected["logits"]).max())
    assert np.abs(logits - expected["logits"]).max() <= 2e-4 * scale
    # Float64 against float64: the same function, up to rounding at 1e-16.
    logits64 = build_float64(name, os.path.join(directory, f"{name.lower()}.h5")).predict(
        expected["inputs"].astype("float64"), verbose=0)
    assert np.abs(logits64 - expected["logits64"]).max() <= 1e-9 * scale

    features = regnet_keras.build_model(
        name, weights=os.path.join(directory, f"{name.lower()}_notop.h5"), include_top=False,
        input_shape=SHAPE).predict(expected["inputs"], verbose=0)
    # The same float32 rounding as the logits above (RegNetY016's features measured 1.02e-4).
    scale = np.abs(expected["features"]).max()
    assert np.abs(features - expected["features"]).max() <= 2e-4 * scale


def build_float64(name, weights):
    keras.config.set_dtype_policy("float64")
    try:
        return regnet_keras.build_model(name, weights=weights, input_shape=SHAPE,
                                        classifier_activation=None)
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_keras_applications_weights_reproduce_its_outputs(keras_applications_references, name):
    assert_matches_keras_applications(keras_applications_references, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [row[0] for row in ZOO_TABLE])
def test_every_zoo_model_reproduces_keras_applications(tmp_path, name):
    directory = write_keras_applications_references(tmp_path, [name])
    assert_matches_keras_applications(directory, name)
    shutil.rmtree(directory)


def test_geometry_from_the_file_cannot_be_contradicted(keras_applications_references):
    path = os.path.join(keras_applications_references, "regnetx002.h5")
    with pytest.raises(ValueError, match="padding='symmetric' contradicts the weights file"):
        regnet_keras.RegNetX002(weights=path, padding="symmetric")


def test_classifier_mismatches_are_explained(keras_applications_references):
    top = os.path.join(keras_applications_references, "regnetx002.h5")
    notop = os.path.join(keras_applications_references, "regnetx002_notop.h5")
    with pytest.raises(weights_io.WeightsFileError, match="1000 classes but classes=10"):
        regnet_keras.RegNetX002(weights=top, classes=10)
    with pytest.raises(weights_io.WeightsFileError, match="no classifier.*include_top=False"):
        regnet_keras.RegNetX002(weights=notop)
    # A full file serves a feature extractor: its classifier is left out.
    features = regnet_keras.RegNetX002(weights=top, include_top=False)
    assert features.output_shape[-1] == 368


def snapshot(model):
    return [w.copy() for w in model.get_weights()]


def assert_unchanged(model, before):
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_own_weights_round_trip_with_their_design(tmp_path):
    model = regnet_keras.RegNetY002(input_shape=SHAPE, classes=10)
    path = str(tmp_path / "y002.h5")
    regnet_keras.save_weights(model, path)
    stored = regnet_keras.open_weights_file(path)
    assert stored.config == regnet_keras.design_of_model(model).config
    assert (stored.padding, stored.preprocessing, stored.classes) == ("symmetric", "imagenet", 10)
    restored = regnet_keras.RegNetY002(input_shape=SHAPE, classes=10, weights=path)
    x = reference_inputs()
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def reference_inputs():
    return np.random.default_rng(1).uniform(0, 255, (2, *SHAPE)).astype("float32")


def test_truncated_file_is_a_clear_error(tmp_path):
    model = regnet_keras.RegNetX002(input_shape=SHAPE)
    path = str(tmp_path / "x002.h5")
    regnet_keras.save_weights(model, path)
    with open(path, "rb") as f:
        head = f.read(os.path.getsize(path) // 2)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(head)
    with pytest.raises(weights_io.WeightsFileError, match="truncated or corrupt"):
        regnet_keras.RegNetX002(weights=str(truncated))
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5")
    with pytest.raises(weights_io.WeightsFileError, match="truncated or corrupt"):
        regnet_keras.open_weights_file(str(garbage))


def test_mismatched_files_never_half_load(tmp_path, keras_applications_references):
    x002 = regnet_keras.RegNetX002(input_shape=SHAPE)
    path = str(tmp_path / "x002.h5")
    regnet_keras.save_weights(x002, path)

    y002 = regnet_keras.RegNetY002(input_shape=SHAPE)
    before = snapshot(y002)
    with pytest.raises(weights_io.WeightsFileError, match="another architecture"):
        regnet_keras.open_weights_file(path).load_into(y002)
    assert_unchanged(y002, before)

    # A file that fits every layer but the very last one: still nothing is assigned.
    stored = regnet_keras.open_weights_file(path)
    stored.config = None
    stored.tensors["logits"]["kernel"] = np.zeros((368, 999), "float32")
    other = regnet_keras.RegNetX002(input_shape=SHAPE)
    before = snapshot(other)
    with pytest.raises(weights_io.WeightsFileError, match=r"logits/kernel has shape \(368, 999\)"):
        stored.load_into(other)
    assert_unchanged(other, before)

    keras_file = os.path.join(keras_applications_references, "regnetx002.h5")
    x004 = regnet_keras.RegNetX004(input_shape=SHAPE, padding="same", preprocessing="unit")
    before = snapshot(x004)
    with pytest.raises(weights_io.WeightsFileError, match="nothing was loaded"):
        regnet_keras.open_weights_file(keras_file).load_into(x004)
    assert_unchanged(x004, before)


@pytest.fixture
def weights_server(keras_applications_references):
    """A loopback HTTP server serving the reference directory, like Keras' weights storage."""
    with serve_directory(keras_applications_references) as served:
        yield served


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_imagenet_weights_download_once_verified_and_cached(
        weights_server, keras_applications_references, tmp_path, monkeypatch):
    url, requests = weights_server
    directory = keras_applications_references
    monkeypatch.setenv(weights_io.WEIGHTS_URL_ENVIRONMENT, url)
    monkeypatch.setenv(weights_io.CACHE_DIR_ENVIRONMENT, str(tmp_path))
    monkeypatch.setitem(weights_io.KERAS_APPLICATIONS_SHA256, "RegNetX002", (
        sha256(os.path.join(directory, "regnetx002.h5")),
        sha256(os.path.join(directory, "regnetx002_notop.h5"))))
    expected = reference(directory, "RegNetX002")
    for _ in range(2):
        model = regnet_keras.RegNetX002(weights="imagenet", input_shape=SHAPE,
                                        classifier_activation=None)
        logits = model.predict(expected["inputs"], verbose=0)
        assert np.abs(logits - expected["logits"]).max() <= 1e-4
    assert requests == ["/regnetx002.h5"]
    assert os.path.isfile(tmp_path / "models" / "regnetx002.h5")
    regnet_keras.RegNetX002(weights="imagenet", include_top=False)
    assert requests == ["/regnetx002.h5", "/regnetx002_notop.h5"]


def test_imagenet_weights_with_a_wrong_checksum_are_refused(weights_server, tmp_path,
                                                            monkeypatch):
    url, _ = weights_server
    monkeypatch.setenv(weights_io.WEIGHTS_URL_ENVIRONMENT, url)
    monkeypatch.setenv(weights_io.CACHE_DIR_ENVIRONMENT, str(tmp_path))
    monkeypatch.setitem(weights_io.KERAS_APPLICATIONS_SHA256, "RegNetY002", ("0" * 64, "0" * 64))
    with pytest.raises(weights_io.WeightsDownloadError, match="(?s)RegNetY002.*hash"):
        regnet_keras.RegNetY002(weights="imagenet")


def test_offline_download_names_the_url_and_the_way_out(tmp_path, monkeypatch):
    # Nothing listens on port 9 of the loopback interface, as on a machine without network.
    monkeypatch.setenv(weights_io.WEIGHTS_URL_ENVIRONMENT, "http://127.0.0.1:9/regnet")
    monkeypatch.setenv(weights_io.CACHE_DIR_ENVIRONMENT, str(tmp_path))
    with pytest.raises(weights_io.WeightsDownloadError) as error:
        regnet_keras.RegNetY016(weights="imagenet")
    message = str(error.value)
    assert "http://127.0.0.1:9/regnet/regnety016.h5" in message
    assert "RegNetY016(weights='/path/to/regnety016.h5')" in message
    assert weights_io.imagenet_weights_url("RegNetY016", False).endswith("regnety016_notop.h5")
    monkeypatch.delenv(weights_io.WEIGHTS_URL_ENVIRONMENT)
    assert weights_io.imagenet_weights_url("RegNetX002", True) == (
        "https://storage.googleapis.com/tensorflow/keras-applications/regnet/regnetx002.h5")
