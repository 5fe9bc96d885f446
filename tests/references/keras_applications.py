"""Writes reference files from tf-keras' keras.applications RegNets, in a process of their own.

For each model: weights saved with keras.applications' own save_weights (full and _notop files),
and its outputs on fixed random inputs, computed in float32 and, by a float64 twin holding the same
weights, free of rounding. The models are built with weights=None; their batch-norm
statistics are then set from one batch (momentum 0) so activations have realistic scale, and
gamma/beta are randomised so that every weight matters in the comparison.

    python tests/references/keras_applications.py OUT_DIR --size 64 RegNetX002 RegNetY002 ...
"""

import argparse
import os

import numpy as np
import tf_keras


def write_reference(name: str, out_dir: str, size: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    model = getattr(tf_keras.applications, name)(weights=None, input_shape=(size, size, 3))
    batch_norms = [l for l in model.layers if isinstance(l, tf_keras.layers.BatchNormalization)]
    for layer in batch_norms:
        gamma, beta, mean, variance = layer.get_weights()
        layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                           rng.normal(0, 0.1, beta.shape).astype("float32"), mean, variance])
        layer.momentum = 0.0
    calibration = rng.uniform(0, 255, (16, size, size, 3)).astype("float32")
    model(calibration, training=True)
    for layer in batch_norms:
        layer.momentum = 0.9
    inputs = rng.uniform(0, 255, (4, size, size, 3)).astype("float32")
    logits = model.predict(inputs, verbose=0)
    features = tf_keras.Model(model.input, model.layers[-3].output).predict(inputs, verbose=0)
    logits64, features64 = _float64_outputs(name, size, model.get_weights(), inputs)
    model.save_weights(os.path.join(out_dir, f"{name.lower()}.h5"))
    notop = getattr(tf_keras.applications, name)(weights=None, include_top=False,
                                                  input_shape=(size, size, 3))
    notop.set_weights(model.get_weights()[:len(notop.get_weights())])
    notop.save_weights(os.path.join(out_dir, f"{name.lower()}_notop.h5"))
    np.savez(os.path.join(out_dir, f"{name.lower()}_outputs.npz"), inputs=inputs, logits=logits,
             features=features, logits64=logits64, features64=features64)


def _float64_outputs(name, size, weights, inputs):
    tf_keras.backend.set_floatx("float64")
    try:
        model = getattr(tf_keras.applications, name)(weights=None, input_shape=(size, size, 3))
        model.set_weights(weights)
        inputs = inputs.astype("float64")
        logits = model.predict(inputs, verbose=0)
        features = tf_keras.Model(model.input, model.layers[-3].output).predict(inputs, verbose=0)
    finally:
        tf_keras.backend.set_floatx("float32")
    return logits, features


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for name in args.models:
        write_reference(name, args.out_dir, args.size)


if __name__ == "__main__":
    main()
