"""The same builder makes tf-keras models (what tfmot needs) in a TF_USE_LEGACY_KERAS=1 process."""

import json

import numpy as np

import regnet_keras
from tests.conftest import run_python
from tests.zoo_table import ZOO_TABLE


def test_legacy_keras_process_builds_the_same_network(tmp_path):
    model = regnet_keras.RegNetY002(input_shape=(64, 64, 3))
    regnet_keras.save_weights(model, str(tmp_path / "keras3_weights.h5"))
    inputs = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.savez(tmp_path / "keras3_outputs.npz", inputs=inputs,
             outputs=model.predict(inputs, verbose=0))

    result = run_python(["tests/legacy_keras_process.py", str(tmp_path)],
                        extra_env={"TF_USE_LEGACY_KERAS": "1"})
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["model_class"].startswith("tf_keras.")
    assert report["layer_modules"] == ["tf_keras"]
    assert "TFOpLambda" not in report["layer_types"] and "Lambda" not in report["layer_types"]
    assert {"Add", "Multiply", "ReLU", "Conv2D"} <= set(report["layer_types"])
    y002_params = next(row[3] for row in ZOO_TABLE if row[0] == "RegNetY002")
    assert report["trainable_params"] == report["complexity_params"] == y002_params
    # Weights written from Keras 3 give the same function in tf-keras.
    assert report["max_difference_to_keras3"] <= 1e-4
    assert report["keras_file_exact"] and report["keras_file_class"] == "tf_keras"
    assert report["grouped_conv"] == "auto" and np.isfinite(report["fit_loss"])


def test_importing_the_package_loads_no_keras_tfmot_or_tensorflow():
    code = ("import sys, regnet_keras; regnet_keras.complexity('RegNetY016'); "
            "print(sorted(m for m in ('tf_keras', 'tensorflow_model_optimization', "
            "'tensorflow', 'keras') if m in sys.modules))")
    result = run_python(["-c", code])
    assert result.stdout.strip() == "[]"
