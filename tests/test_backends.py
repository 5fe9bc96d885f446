"""regnet_keras under the JAX and PyTorch backends, checked against TensorFlow's outputs and files.

TensorFlow (this process) writes weights files, a .keras file and its outputs; tests/backend_process.py
runs under each other backend in its own process and reports back; files it writes are loaded
here. The PyTorch run is in the default set, the JAX run in the slow one (`-m slow`). Expected figures: TensorFlow's outputs (themselves checked against
keras.applications in test_weights) and the paper's parameter counts.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import regnet_keras
from regnet_keras import AnyNetConfig, feature_pyramid
from tests import backend_process
from tests.conftest import REPO

# JAX builds and first calls cost several times PyTorch's on CPU: its run is in the slow set.
BACKENDS = ("torch", pytest.param("jax", marks=pytest.mark.slow))
# Stem and stage widths of RegNetX002 (the paper's table).
X002_WIDTHS = (32, 24, 56, 152, 368)


def _randomise_batch_norm(model, rng):
    """Non-trivial BN statistics, so that a loader mixing up gamma/beta/mean/variance shows."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.1, channels),
                               rng.normal(0, 0.1, channels), rng.uniform(0.5, 1.5, channels)])


class BackendRuns(dict):
    """runs["jax"] -> (facts, outputs) of backend_process under that backend, run when first asked
    for; runs["tensorflow"] -> TensorFlow's outputs; runs["dir"] -> the shared directory."""

    def __missing__(self, backend):
        work_dir = self["dir"]
        env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND=backend)
        process = subprocess.run(
            [sys.executable, os.path.join(REPO, "tests", "backend_process.py"), str(work_dir)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
        assert process.returncode == 0, (f"{backend} process failed:\n{process.stdout[-3000:]}"
                                         f"\n{process.stderr[-6000:]}")
        with open(work_dir / f"{backend}.json") as f:
            facts = json.load(f)
        self[backend] = facts, dict(np.load(work_dir / f"{backend}.npz"))
        return self[backend]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """TensorFlow's files and outputs, and each other backend's run (see BackendRuns)."""
    work_dir = tmp_path_factory.mktemp("backends")
    rng = np.random.default_rng(0)
    size = backend_process.PARITY_SIZE
    images = rng.uniform(0, 255, (2, size, size, 3)).astype("float32")
    np.save(work_dir / "images.npy", images)
    expected = {}
    for name, config in backend_process.PARITY_MODELS.items():
        model = regnet_keras.RegNet(config, input_shape=(size, size, 3),
                                    classifier_activation=None)
        _randomise_batch_norm(model, rng)
        regnet_keras.save_weights(model, str(work_dir / f"{name}.h5"))
        expected[f"{name}_logits"] = np.asarray(model(images, training=False))
        if name == "RegNetX":
            model.save(work_dir / "tensorflow.keras")
            expected["tensorflow_keras_file_logits"] = expected[f"{name}_logits"]
    return BackendRuns(tensorflow=expected, dir=work_dir)


def _assert_close_to_scale(actual, expected, tolerance=1e-5):
    scale = np.abs(expected).max()
    assert np.abs(actual - expected).max() <= tolerance * scale, (
        np.abs(actual - expected).max(), scale)


@pytest.mark.parametrize("backend", BACKENDS)
def test_importing_the_package_loads_no_backend(runs, backend):
    facts, _ = runs[backend]
    assert facts["backend"] == backend
    assert facts["loaded_by_import"] == []


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", backend_process.PARITY_MODELS)
def test_same_weights_file_gives_tensorflow_predictions(runs, backend, name):
    _, outputs = runs[backend]
    _assert_close_to_scale(outputs[f"{name}_logits"], runs["tensorflow"][f"{name}_logits"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_design_and_parameters_read_back_with_plain_layers(runs, backend):
    facts, _ = runs[backend]
    for name in backend_process.PARITY_MODELS:
        # complexity counts from the design alone (checked against the paper in test_complexity).
        assert facts[name]["trainable_params"] == facts[name]["complexity_params"]
        assert facts[name]["design_matches"]
        # The TensorFlow speed-ups leave JAX and PyTorch models as plain Keras layers.
        assert facts[name]["speedups_applied"] == 0
        assert facts[name]["patched_layers"] == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_keras_file_written_by_tensorflow_loads_with_same_outputs(runs, backend):
    _, outputs = runs[backend]
    _assert_close_to_scale(outputs["tensorflow_keras_file_logits"],
                           runs["tensorflow"]["tensorflow_keras_file_logits"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_steps_lower_the_loss(runs, backend):
    losses = runs[backend][0]["train_losses"]
    assert len(losses) == backend_process.TRAIN_STEPS and np.all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("backend", BACKENDS)
def test_files_written_under_the_backend_load_in_tensorflow(runs, backend):
    _, outputs = runs[backend]
    work_dir = runs["dir"]
    images = outputs["trained_inputs"]
    # Keras records a model compiled under PyTorch with PyTorch's own optimizer class, which
    # only that backend can import: a file crossing backends loads without its compile state.
    restored = regnet_keras.load_model(str(work_dir / f"{backend}_trained.keras"), compile=False)
    _assert_close_to_scale(np.asarray(restored(images, training=False)),
                           outputs["trained_predictions"])
    rebuilt = regnet_keras.RegNet(backend_process.TINY, input_shape=(32, 32, 3),
                                  classes=backend_process.TINY_CLASSES,
                                  weights=str(work_dir / f"{backend}_trained.h5"))
    _assert_close_to_scale(np.asarray(rebuilt(images, training=False)),
                           outputs["trained_predictions"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_backbone_pyramid_at_a_non_square_input_and_across_backends(runs, backend):
    facts, outputs = runs[backend]
    assert facts["backbone_class"] == "RegNetBackbone"
    assert facts["backbone_pyramid_levels"] == ["P1", "P2", "P3", "P4", "P5"]
    assert facts["pyramid_layer_names"]["P3"] == "stage2_block2_out_relu"
    height, width = backend_process.PYRAMID_INPUT
    restored = keras.models.load_model(runs["dir"] / f"{backend}_backbone.keras")
    assert type(restored).__name__ == "RegNetBackbone"
    features = regnet_keras.feature_extractor(restored)(outputs["pyramid_inputs"])
    for level, channels in zip(range(1, 6), (16, *backend_process.TINY.stage_widths)):
        stride = 2 ** level
        # Symmetric padding: each stride-2 step gives ceil(size / 2).
        expected_shape = (1, -(-height // stride), -(-width // stride), channels)
        assert outputs[f"pyramid_P{level}"].shape == expected_shape
        _assert_close_to_scale(np.asarray(features[f"P{level}"]), outputs[f"pyramid_P{level}"])


@pytest.mark.parametrize("backend", (*BACKENDS, "tensorflow"))
@pytest.mark.parametrize("policy, compute_dtype", [("mixed_float16", "float16"),
                                                   ("mixed_bfloat16", "bfloat16")])
def test_mixed_precision_keeps_float32_probabilities_and_statistics(runs, backend, policy,
                                                                   compute_dtype):
    if backend == "tensorflow":
        keras.mixed_precision.set_global_policy(policy)
        try:
            model = regnet_keras.RegNet(backend_process.TINY, input_shape=(32, 32, 3),
                                        classes=backend_process.TINY_CLASSES)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        images = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
        facts = backend_process.mixed_precision_facts(model, images)
    else:
        facts = runs[backend][0]["mixed_precision"][policy]
    assert facts["output_dtype"] == "float32"
    assert facts["output_sum_error"] < 1e-5
    assert facts["conv_compute_dtype"] == compute_dtype
    assert facts["conv_kernel_dtype"] == "float32"
    assert facts["bn_dtypes"] == ["float32"]
    assert facts["bn_statistics_finite_and_moved"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_tools_refuse_other_backends_in_one_line(runs, backend):
    refusal = runs[backend][0]["tool_refusal"]
    assert refusal is not None and "\n" not in refusal
    assert "tools.train runs on TensorFlow only" in refusal
    assert "KERAS_BACKEND=tensorflow" in refusal


def test_feature_extractor_levels_of_a_classifier():
    model = regnet_keras.RegNetX002(input_shape=(64, 96, 3))
    extractor = regnet_keras.feature_extractor(model)
    assert sorted(extractor.output) == ["P1", "P2", "P3", "P4", "P5"]
    assert sorted(extractor.pyramid_outputs) == ["P1", "P2", "P3", "P4", "P5"]
    for level, channels in zip(range(1, 6), X002_WIDTHS):
        stride = 2 ** level
        assert tuple(extractor.output[f"P{level}"].shape) == (None, 64 // stride, 96 // stride,
                                                              channels)
    # The extractor shares the classifier's layers: its P5 is the classifier's last block.
    images = np.random.default_rng(0).uniform(0, 255, (1, 64, 96, 3)).astype("float32")
    last_block = keras.Model(model.input, model.get_layer("stage4_block7_out_relu").output)
    np.testing.assert_array_equal(np.asarray(extractor(images)["P5"]),
                                  np.asarray(last_block(images)))


def test_stride_one_stages_share_their_level():
    config = AnyNetConfig(stage_widths=(16, 24, 32), stage_depths=(1, 2, 1),
                          stage_group_widths=(8, 8, 8), stage_strides=(2, 1, 2),
                          stage_bottlenecks=(1.0, 1.0, 1.0), se_ratio=0.0, stem_width=16)
    model = regnet_keras.RegNet(config, include_top=False)
    assert feature_pyramid.pyramid_layer_names(model) == {
        "P1": "stem_relu", "P2": "stage2_block2_out_relu", "P3": "stage3_block1_out_relu"}


def test_feature_extractor_refuses_other_models():
    inputs = keras.Input((32, 32, 3))
    other = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs), name="other")
    with pytest.raises(ValueError, match="'other' was not built by regnet_keras"):
        regnet_keras.feature_extractor(other)


def test_keras_hub_retinanet_trains_saves_and_loads_on_a_regnet_backbone(tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    encoder = regnet_keras.RegNet(backend_process.TINY, include_top=False)
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=encoder, min_level=3, max_level=5, use_p5=False,
        image_shape=(None, None, 3))
    detector = keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone, num_classes=3, bounding_box_format="yxyx",
        pre_logits_num_conv_layers=1)
    height, width = 64, 96
    images = np.random.default_rng(0).uniform(0, 255, (2, height, width, 3)).astype("float32")
    features = backbone(images)
    assert {level: tuple(value.shape) for level, value in features.items()} == {
        f"P{level}": (2, height // 2 ** level, width // 2 ** level, 256) for level in (3, 4, 5)}

    boxes = np.array([[[8, 8, 40, 60], [20, 30, 60, 90]], [[4, 4, 30, 30], [0, 0, 0, 0]]],
                     "float32")
    labels = np.array([[0, 2], [1, -1]], "float32")  # -1: padding, no box
    stem_before = encoder.get_layer("stem_conv").kernel.numpy().copy()
    detector.compile(optimizer=keras.optimizers.SGD(1e-3))
    history = detector.fit(images, {"boxes": boxes, "labels": labels}, epochs=1, batch_size=2,
                           verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.allclose(encoder.get_layer("stem_conv").kernel.numpy(), stem_before)

    path = tmp_path / "retinanet.keras"
    detector.save(path)
    restored = keras.models.load_model(path)
    assert type(restored.backbone.image_encoder).__name__ == "RegNetBackbone"
    expected, actual = detector(images), restored(images)
    for key in ("bbox_regression", "cls_logits"):
        # The restored encoder runs Keras' grouped convolution, not TensorFlow's native one.
        _assert_close_to_scale(np.asarray(actual[key]), np.asarray(expected[key]))


def test_keras_hub_deeplabv3_takes_a_regnet_backbone():
    keras_hub = pytest.importorskip("keras_hub")
    encoder = regnet_keras.RegNet(backend_process.TINY, include_top=False)
    segmenter_backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=encoder, spatial_pyramid_pooling_key="P5", upsampling_size=8,
        dilation_rates=[6, 12], low_level_feature_key="P2", image_shape=(None, None, 3))
    output = segmenter_backbone(np.zeros((1, 64, 96, 3), "float32"))
    # DeepLabV3 upsamples P5 (stride 32) by 8 to meet P2 (stride 4), then by 4 to the input.
    assert tuple(output.shape) == (1, 64, 96, 256)
