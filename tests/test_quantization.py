"""Quantization-aware training with tfmot, in a tf-keras process, from a Keras 3 model."""

import json

import numpy as np
import pytest

import regnet_keras
from regnet_keras import AnyNetConfig, RegNet
from regnet_keras.lite import quantization
from tests.conftest import run_python

TINY = AnyNetConfig(stage_widths=(16, 32), stage_depths=(1, 2), stage_group_widths=(8, 8),
                    stage_strides=(2, 2), stage_bottlenecks=(1.0, 1.0), se_ratio=0.25,
                    stem_width=16)


def test_qat_of_a_regnety_quantizes_every_layer_and_converts_to_int8(tmp_path):
    model = RegNet(TINY, input_shape=(32, 32, 3), classes=3)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (48, 32, 32, 3)).astype("float32")
    labels = (images[..., 0].mean(axis=(1, 2)) // 86).astype("int32")
    regnet_keras.save_weights(model, str(tmp_path / "weights.h5"))
    np.savez(tmp_path / "data.npz", images=images, labels=labels,
             float_outputs=model.predict(images, verbose=0))

    result = run_python(["tests/qat_process.py", str(tmp_path)],
                        extra_env={"TF_USE_LEGACY_KERAS": "1"})
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["float_difference"] <= 1e-4  # the tf-keras twin is the same function
    assert report["float_layers"] == []
    assert report["quantized_layers"] == len(model.layers) - 1  # all but the input
    assert report["grouped_conv_implementation"] == "auto"
    assert report["grouped_weights_per_channel"] and report["se_scale_quantized"]
    assert report["loss_first_last"][1] < report["loss_first_last"][0]
    convolutions = sum(type(l).__name__ == "Conv2D" for l in model.layers)
    assert report["tflite_ops"]["CONV_2D"] == convolutions
    assert "BATCH_NORMALIZATION" not in report["tflite_ops"]  # folded by the converter
    assert report["qat_tflite_agreement"] >= 0.9
    # The statistics are the QAT model's own (QAT fine-tunes the normalisation with the rest).
    mean, std = report["app_normalization"]
    assert min(std) > 0 and len(mean) == 3
    in_graph = dict(report["tflite_ops"], DEPTHWISE_CONV_2D=0)
    assert report["app_tflite_ops"] == {op: n for op, n in in_graph.items() if n}
    assert report["app_agreement"] >= 0.9 and report["app_max_difference"] <= 0.1


def test_qat_needs_a_tf_keras_process():
    with pytest.raises(RuntimeError, match="TF_USE_LEGACY_KERAS=1"):
        quantization.quantize_model(RegNet(TINY, input_shape=(32, 32, 3)))
