"""Checks run inside a TF_USE_LEGACY_KERAS=1 process (tf-keras), driven by test_legacy_keras.py.

    python tests/legacy_keras_process.py WORK_DIR

WORK_DIR holds keras3_weights.h5 and keras3_outputs.npz written by a Keras 3 process.
"""

import json
import os
import sys

import numpy as np

import regnet_keras


def main(work_dir):
    report = {}
    model = regnet_keras.RegNetY002(input_shape=(64, 64, 3),
                                    weights=os.path.join(work_dir, "keras3_weights.h5"))
    report["model_class"] = f"{type(model).__module__}.{type(model).__name__}"
    report["layer_types"] = sorted({type(layer).__name__ for layer in model.layers})
    report["layer_modules"] = sorted({type(layer).__module__.split(".")[0]
                                      for layer in model.layers})
    report["trainable_params"] = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    report["complexity_params"] = regnet_keras.complexity(model).params

    expected = np.load(os.path.join(work_dir, "keras3_outputs.npz"))
    outputs = model.predict(expected["inputs"], verbose=0)
    report["max_difference_to_keras3"] = float(np.abs(outputs - expected["outputs"]).max())

    report["grouped_conv"] = regnet_keras.tf_speedups.grouped_conv.implementation_of(
        model.get_layer("stage4_block2_b_conv"))
    # One training step through tf-keras' fit and the fast grouped convolution.
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = model.fit(expected["inputs"], np.array([1, 2]), epochs=1, verbose=0)
    report["fit_loss"] = float(history.history["loss"][0])

    path = os.path.join(work_dir, "legacy.keras")
    model.save(path)
    restored = regnet_keras.load_model(path)
    report["keras_file_exact"] = bool(np.array_equal(
        restored.predict(expected["inputs"], verbose=0),
        model.predict(expected["inputs"], verbose=0)))
    report["keras_file_class"] = type(restored).__module__.split(".")[0]
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
