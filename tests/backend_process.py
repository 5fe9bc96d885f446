"""Runs regnet_keras under the Keras backend KERAS_BACKEND names; test_backends compares with TensorFlow.

    KERAS_BACKEND=jax python tests/backend_process.py WORK_DIR

Reads from WORK_DIR what the TensorFlow side wrote (images.npy, the weights files and .keras file of
`tensorflow_files`), and writes `{backend}.json` (facts and measured values), `{backend}.npz`
(outputs) and files of its own for TensorFlow to load. Every check lives in one process because
starting JAX or PyTorch costs most of the time.
"""

import json
import os
import subprocess
import sys
import time

# The package is imported before anything else so that the check sees what it alone loads.
import regnet_keras  # noqa: E402

LOADED_BY_IMPORT = sorted(module for module in ("keras", "tensorflow", "jax", "torch")
                          if module in sys.modules)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from regnet_keras import AnyNetConfig, RegNetConfig, feature_pyramid  # noqa: E402
from regnet_keras.tf_speedups import fused_batch_norm, grouped_conv  # noqa: E402

# A RegNetX and a RegNetY (RegNetX002's design parameters, 5 blocks instead of 13: building a
# model costs seconds per hundred layers under JAX) whose weights files TensorFlow writes.
PARITY_MODELS = {
    "RegNetX": RegNetConfig(w0=24, wa=36.44, wm=2.49, depth=5, group_width=8, se_ratio=0.0),
    "RegNetY": RegNetConfig(w0=24, wa=36.44, wm=2.49, depth=5, group_width=8, se_ratio=0.25),
}
PARITY_SIZE = 32
# A 4-stage Y network small enough to train in seconds on any backend.
TINY = AnyNetConfig(stage_widths=(16, 24, 32, 48), stage_depths=(1, 2, 1, 1),
                    stage_group_widths=(8, 8, 8, 8), stage_strides=(2, 2, 2, 2),
                    stage_bottlenecks=(1.0, 1.0, 1.0, 1.0), se_ratio=0.25, stem_width=16)
TINY_CLASSES = 4
TRAIN_STEPS = 6
PYRAMID_INPUT = (64, 96)  # height, width: non-square


def to_numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value))


def speedups_applied(model) -> int:
    return grouped_conv.enable(model) + fused_batch_norm.enable(model)


def parity(work_dir, images, facts, outputs):
    for name, config in PARITY_MODELS.items():
        model = regnet_keras.RegNet(config, weights=os.path.join(work_dir, f"{name}.h5"),
                                    input_shape=(PARITY_SIZE, PARITY_SIZE, 3),
                                    classifier_activation=None)
        outputs[f"{name}_logits"] = to_numpy(model.predict_on_batch(images))
        facts[name] = {
            "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
            "complexity_params": regnet_keras.complexity(config, PARITY_SIZE).params,
            "design_matches": (regnet_keras.design_of_model(model).config
                               == config.to_anynet()),
            "speedups_applied": speedups_applied(model),
            "patched_layers": sum(1 for layer in model.layers
                                  if {"call", "convolution_op"} & set(layer.__dict__)),
        }
    restored = regnet_keras.load_model(os.path.join(work_dir, "tensorflow.keras"))
    outputs["tensorflow_keras_file_logits"] = to_numpy(restored.predict_on_batch(images))


def train(work_dir, facts, outputs):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    labels = np.arange(8) % TINY_CLASSES
    model = regnet_keras.RegNet(TINY, input_shape=(32, 32, 3), classes=TINY_CLASSES)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    history = model.fit(images, labels, epochs=TRAIN_STEPS, batch_size=8, verbose=0)
    facts["train_losses"] = [float(loss) for loss in history.history["loss"]]
    backend = keras.backend.backend()
    model.save(os.path.join(work_dir, f"{backend}_trained.keras"))
    regnet_keras.save_weights(model, os.path.join(work_dir, f"{backend}_trained.h5"))
    outputs["trained_inputs"] = images
    outputs["trained_predictions"] = to_numpy(model(images, training=False))

    backbone = regnet_keras.RegNet(TINY, include_top=False)
    backbone.save(os.path.join(work_dir, f"{backend}_backbone.keras"))
    pyramid_images = rng.uniform(0, 255, (1, *PYRAMID_INPUT, 3)).astype("float32")
    features = regnet_keras.feature_extractor(backbone)(pyramid_images)
    outputs["pyramid_inputs"] = pyramid_images
    for level, value in features.items():
        outputs[f"pyramid_{level}"] = to_numpy(value)
    facts["backbone_class"] = type(backbone).__name__
    facts["backbone_pyramid_levels"] = sorted(backbone.pyramid_outputs)
    facts["pyramid_layer_names"] = feature_pyramid.pyramid_layer_names(backbone)


def mixed_precision(facts):
    """Per policy: output dtype and sum, BN variable dtypes, whether a training call moved them."""
    x = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    facts["mixed_precision"] = {}
    for policy in ("mixed_float16", "mixed_bfloat16"):
        keras.mixed_precision.set_global_policy(policy)
        try:
            model = regnet_keras.RegNet(TINY, input_shape=(32, 32, 3), classes=TINY_CLASSES)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        facts["mixed_precision"][policy] = mixed_precision_facts(model, x)


def mixed_precision_facts(model, images) -> dict:
    bn = model.get_layer("stage1_block1_b_bn")
    conv = model.get_layer("stage1_block1_b_conv")
    before = to_numpy(bn.moving_variance).copy()
    probabilities = model(images, training=True)
    after = to_numpy(bn.moving_variance)
    return {
        "output_dtype": keras.backend.standardize_dtype(probabilities.dtype),
        "output_sum_error": float(np.abs(to_numpy(probabilities).sum(axis=1) - 1).max()),
        "conv_compute_dtype": conv.compute_dtype,
        "conv_kernel_dtype": keras.backend.standardize_dtype(conv.kernel.dtype),
        "bn_dtypes": sorted({keras.backend.standardize_dtype(w.dtype) for w in bn.weights}),
        "bn_statistics_finite_and_moved": bool(np.all(np.isfinite(after))
                                               and not np.allclose(after, before)),
    }


def tool_refusal(facts):
    """What a user sees running a TensorFlow-only tool under this backend: stderr of a refusal
    (exit status 2), or None when the tool went ahead."""
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-m", "tools.train"], cwd=repository,
                            capture_output=True, text=True, timeout=600)
    facts["tool_refusal"] = result.stderr.strip() if result.returncode == 2 else None


def main(work_dir):
    backend = keras.backend.backend()
    facts = {"backend": backend, "loaded_by_import": LOADED_BY_IMPORT, "seconds": {}}
    outputs = {}
    images = np.load(os.path.join(work_dir, "images.npy"))
    for check in (lambda: parity(work_dir, images, facts, outputs),
                  lambda: train(work_dir, facts, outputs),
                  lambda: mixed_precision(facts), lambda: tool_refusal(facts)):
        started = time.time()
        check()
        facts["seconds"][len(facts["seconds"])] = round(time.time() - started, 1)
    np.savez(os.path.join(work_dir, f"{backend}.npz"), **outputs)
    with open(os.path.join(work_dir, f"{backend}.json"), "w") as f:
        json.dump(facts, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
