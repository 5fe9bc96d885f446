"""Quantization-aware training checks run in a TF_USE_LEGACY_KERAS=1 process (test_quantization).

    python tests/qat_process.py WORK_DIR

WORK_DIR holds weights.h5 (a regnet_keras weights file written by Keras 3) and data.npz (images,
labels, float_outputs). Prints one JSON report line.
"""

import json
import os
import sys

import numpy as np

from regnet_keras.lite import export, quantization
from regnet_keras.tf_speedups import grouped_conv


def main(work_dir):
    data = np.load(os.path.join(work_dir, "data.npz"))
    images, labels = data["images"], data["labels"]
    model = quantization.rebuild_from_weights(os.path.join(work_dir, "weights.h5"),
                                              images.shape[1:])
    report = {"float_difference": float(np.abs(model.predict(images, verbose=0)
                                               - data["float_outputs"]).max())}
    qat_model, summary = quantization.quantize_model(model)
    report["quantized_layers"] = len(summary.quantized_layers)
    report["float_layers"] = list(summary.float_layers)
    wrappers = {w.layer.name: w for w in qat_model.layers if hasattr(w, "quantize_config")}
    grouped = wrappers["stage2_block1_b_conv"]
    report["grouped_conv_implementation"] = grouped_conv.implementation_of(grouped.layer)
    report["grouped_weights_per_channel"] = bool(
        grouped.quantize_config.get_weights_and_quantizers(grouped.layer)[0][1].per_axis)
    report["se_scale_quantized"] = "stage1_block1_se_scale" in wrappers

    qat_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    history = qat_model.fit(images, labels, batch_size=16, epochs=3, verbose=0)
    report["loss_first_last"] = [history.history["loss"][0], history.history["loss"][-1]]

    content = export.convert(qat_model, "qat", input_type="uint8")
    export.check_converted(qat_model, content, "qat")
    report["tflite_ops"] = dict(export.op_counts(content))
    tflite = export.run(content, images)
    keras_outputs = qat_model.predict(images, verbose=0)
    report["qat_tflite_agreement"] = float((tflite.argmax(1) == keras_outputs.argmax(1)).mean())

    # The app normalises instead: the file loses its first op and keeps its answers.
    normalization = export.app_normalization(qat_model, "qat", "app")
    app_content = export.convert(qat_model, "qat", input_type="uint8", normalization="app")
    export.check_converted(qat_model, app_content, "qat")
    app_outputs = export.run(app_content, images, normalization)
    report["app_normalization"] = [list(map(float, values)) for values in normalization]
    report["app_tflite_ops"] = dict(export.op_counts(app_content))
    report["app_agreement"] = float((app_outputs.argmax(1) == tflite.argmax(1)).mean())
    report["app_max_difference"] = float(np.abs(app_outputs - tflite).max())
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
