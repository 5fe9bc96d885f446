"""RegNet presets in KerasHub's own terms: save_to_preset, then KerasHub's from_preset in a fresh
process; fit on raw images; LiteRT export; tools.train starting from a preset; optional packages."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("timm")
pytest.importorskip("keras_hub")

import regnet_keras  # noqa: E402
from regnet_keras import layer_names  # noqa: E402
from regnet_keras.errors import InputError  # noqa: E402
from regnet_keras.training import loop as training  # noqa: E402
from regnet_keras.training import pretrained as pretrained_lib  # noqa: E402
from tests import pytorch_helpers  # noqa: E402
from tests.conftest import REPO  # noqa: E402
from tests.timm_snapshots import write_snapshot  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """A preset saved from timm's RegNetY-200MF, with raw images, timm's logits and ours."""
    root = tmp_path_factory.mktemp("preset")
    timm_model = write_snapshot(root / "snapshot", "regnety_002.pycls_in1k", seed=5,
                                image_size=SIZE)
    pixels = pytorch_helpers.images(SIZE, count=3, seed=2)
    classifier = regnet_keras.from_preset(str(root / "snapshot"))
    classifier.save_to_preset(str(root / "preset"))
    np.save(root / "pixels.npy", pixels)
    np.save(root / "ours.npy", classifier.predict(pixels, verbose=0))
    np.save(root / "timm.npy", pytorch_helpers.torch_logits(timm_model, pixels))
    return root, classifier


FRESH_PROCESS = """
import sys
import numpy as np
{imports}
root = sys.argv[1]
pixels = np.load(root + "/pixels.npy")
classifier = keras_hub.models.ImageClassifier.from_preset(root + "/preset")
backbone = keras_hub.models.Backbone.from_preset(root + "/preset")
features = backbone.predict(classifier.preprocessor(pixels), verbose=0)
pooled = features.mean(axis=(1, 2))
print(type(classifier).__name__, type(backbone).__name__, sorted(backbone.pyramid_outputs))
np.save(root + "/fresh.npy", classifier.predict(pixels, verbose=0))
np.save(root + "/fresh_backbone.npy", pooled)
"""


@pytest.mark.parametrize("imports", [
    "import regnet_keras\nimport keras_hub",
    pytest.param("import keras_hub\nimport regnet_keras", marks=pytest.mark.slow),
])
def test_keras_hubs_own_from_preset_in_a_fresh_process_gives_the_same_predictions(preset,
                                                                                  imports):
    root, classifier = preset
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS.format(imports=imports),
                             str(root)], cwd=REPO, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RegNetImageClassifier RegNetHubBackbone ['P1', 'P2', 'P3', 'P4', 'P5']" \
        in result.stdout
    fresh, ours, reference = (np.load(root / f"{name}.npy") for name in ("fresh", "ours", "timm"))
    np.testing.assert_allclose(fresh, ours, rtol=0, atol=1e-5 * np.abs(ours).max())
    assert pytorch_helpers.relative_difference(fresh, reference) < 1e-5
    # The backbone alone, with the saved head applied by hand, gives the same logits.
    kernel, bias = classifier.output_dense.get_weights()
    from_backbone = np.load(root / "fresh_backbone.npy") @ kernel + bias
    np.testing.assert_allclose(from_backbone, ours, rtol=0, atol=1e-4 * np.abs(ours).max())


def test_preset_metadata_and_config_carry_the_weights_origin(preset):
    root, _ = preset
    with open(root / "preset" / "metadata.json") as file:
        metadata = json.load(file)
    record = metadata["regnet_keras"]
    origin = record["weights_origin"]
    assert (origin["library"], origin["source_name"], origin["license"]) == (
        "timm", "regnety_002.pycls_in1k", "mit")
    assert origin["top1"] == 70.4  # pycls MODEL_ZOO.md: RegNetY-200MF, 29.6 % top-1 error
    assert record["design"]["stage_widths"] == [24, 56, 152, 368]
    assert record["padding"] == "symmetric"
    with open(root / "preset" / "config.json") as file:
        assert json.load(file)["config"]["weights_origin"] == origin
    assert metadata["tasks"] == ["ImageClassifier"]


def test_an_altered_preset_naming_another_class_is_refused(preset, tmp_path):
    root, _ = preset
    altered = tmp_path / "altered"
    shutil.copytree(root / "preset", altered)
    task = json.loads((altered / "task.json").read_text())
    task["registered_name"] = "keras_hub>ResNetImageClassifier"
    (altered / "task.json").write_text(json.dumps(task))
    with pytest.raises(InputError, match="task.json describes"):
        regnet_keras.from_preset(str(altered))


def test_one_fit_step_on_raw_images_of_another_size(preset):
    """The preprocessor resizes raw uint8 images (96x80 here) and normalises them; fit trains."""
    _, classifier = preset
    model = regnet_keras.from_preset(str(preset[0] / "preset"), num_classes=3)
    images = np.random.default_rng(0).integers(0, 256, (4, 80, 96, 3)).astype(np.uint8)
    before = [w.numpy().copy() for w in model.backbone.weights]
    model.compile(optimizer="sgd")
    history = model.fit(images, np.array([0, 1, 2, 0]), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.backbone.weights))
    assert model.predict(images, verbose=0).shape == (4, 3)


@pytest.mark.slow  # the LiteRT converter takes over a minute here
def test_litert_export_with_builtin_ops_matches_keras(preset, tmp_path):
    tf = pytest.importorskip("tensorflow")
    from ai_edge_litert.interpreter import Interpreter
    root, classifier = preset
    pixels = np.load(root / "pixels.npy")
    path = str(tmp_path / "regnety_002.tflite")
    classifier.export(path, format="litert",
                      input_signature=[tf.TensorSpec([1, SIZE, SIZE, 3], tf.float32)],
                      target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]})
    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not any(op.startswith("Flex") for op in ops) and "CONV_2D" in ops
    # The exported graph is the task's model: normalised images in (the preprocessor's output).
    normalised = np.asarray(classifier.preprocessor(pixels))
    keras_logits = classifier.predict(pixels, verbose=0)
    runner = interpreter.get_signature_runner()
    input_name = next(iter(runner.get_input_details()))
    lite = np.concatenate([next(iter(runner(**{input_name: image[None]}).values()))
                           for image in normalised])
    difference = pytorch_helpers.relative_difference(lite, keras_logits)
    print(f"LiteRT float32 vs Keras: {difference:.2e}")
    assert difference < 1e-5


def test_tools_train_starts_from_a_preset_directory_with_its_design_and_head(preset):
    root, classifier = preset
    pretrained = pretrained_lib.resolve(str(root / "preset"))
    assert (pretrained.kind, pretrained.padding, pretrained.preprocessing, pretrained.classes) \
        == ("keras_hub", "symmetric", "imagenet", 1000)
    assert pretrained.model == classifier.backbone.design
    assert pretrained.origin["source_name"] == "regnety_002.pycls_in1k"
    with pytest.raises(pretrained_lib.PretrainedWeightsError, match="its own design"):
        pretrained_lib.resolve(str(root / "preset"), model="RegNetX002")
    config = training.TrainConfig(model=None, dataset="folder", data_dir="unused", image_size=SIZE,
                                  batch_size=8, epochs=1, model_dir="unused")
    model = training.build_model(training.with_pretrained(config, pretrained), 1000)
    assert pretrained_lib.load_backbone(model, pretrained) is True
    np.testing.assert_array_equal(model.get_layer(layer_names.LOGITS).kernel.numpy(),
                                  classifier.output_dense.kernel.numpy())
    # The tools.train model (normalisation in its graph, softmax out) computes the preset's
    # probabilities on the same images.
    pixels = np.load(root / "pixels.npy")
    probabilities = model.predict(pixels, verbose=0)
    logits = classifier.predict(pixels, verbose=0)
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-3, atol=1e-6)


MISSING = """
import sys
sys.modules[{module!r}] = None  # as if it were not installed
import regnet_keras
try:
    regnet_keras.from_preset({handle!r})
except regnet_keras.errors.InputError as error:
    print("ERROR", type(error).__name__, str(error))
"""


@pytest.mark.parametrize("module, handle, package", [
    ("keras_hub", "somewhere", "keras-hub"),
    ("huggingface_hub", "hf://timm/regnetx_002.pycls_in1k", "huggingface_hub"),
])
def test_missing_optional_packages_give_one_line_naming_them(module, handle, package):
    result = subprocess.run([sys.executable, "-c", MISSING.format(module=module, handle=handle)],
                            cwd=REPO, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=REPO))
    lines = [line for line in result.stdout.splitlines() if line.startswith("ERROR")]
    assert len(lines) == 1 and "MissingPackageError" in lines[0], result.stdout + result.stderr
    assert f"pip install {package}" in lines[0]


def test_importing_regnet_keras_loads_neither_keras_nor_the_hub_packages():
    code = ("import sys, regnet_keras; print(sorted(m for m in ('keras', 'tensorflow', "
            "'keras_hub', 'huggingface_hub', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=300, env=dict(os.environ, PYTHONPATH=REPO))
    assert result.stdout.strip() == "[]", result.stderr
