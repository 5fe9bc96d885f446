"""Converts a trained RegNet to TFLite variants, verifies each on the LiteRT runtime, and reports.

    python -m tools.convert --model runs/fashion_mnist
        [--variants float32,float16,dynamic,int8,int8_per_tensor,qat]
        [--representative_images 300]
        [--input_type uint8] [--output_type float32] [--android_assets android_demo/app/src/main/assets]
        [--web_assets web_demo/models]

--model is a tools.train run directory (its best.keras, run.json and, after tools.qat, its
qat/ weights) or a .keras file with the run.json of its run beside it. For every variant
it writes NAME_VARIANT.tflite and NAME_VARIANT.json (labels, input size and numerics: see
docs/MODEL_METADATA.md) to --output_dir, each conversion in a process of its own (TF 2.21's
converter leaks memory). Files of models trained with ImageNet mean/std leave that
normalisation to the app, through the metadata (--normalization): float files take normalised
floats, integer files normalised values quantized with the input's scale and zero point. Then,
on LiteRT, each file fed
as its metadata says: the float32 file must reproduce the Keras model (max
|output difference| <= 1e-4 of the output scale), every grouped convolution must be one CONV_2D,
integer variants must compute in int8, and every variant's held-out accuracy is printed (size,
top-1, top-5, top-1 agreement with the float Keras model).
"""

import json
import os
import shutil
import subprocess
import sys
import time

from absl import app, flags
import numpy as np

from regnet_keras.training.run_file import read_run
from tools import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A run directory or a .keras file.", required=True)
flags.DEFINE_string("model_file", "best.keras", "Model file of a run directory.")
flags.DEFINE_list("variants", None, "Variants to write: float32, float16, dynamic, int8, "
                  "int8_per_tensor (one weight scale per tensor: smaller, may be less "
                  "accurate), qat. "
                  "Default: float32, float16, dynamic, int8, and qat when tools.qat has run.")
flags.DEFINE_string("output_dir", None, "Where the files go (default: RUN/tflite).")
flags.DEFINE_integer("representative_images", 300, "Training images calibrating int8 "
                     "post-training quantization (evaluation preprocessing).")
flags.DEFINE_enum("input_type", "uint8", ["float32", "uint8", "int8"], "Input tensor type of "
                  "the integer variants (float variants always take float32).")
flags.DEFINE_enum("output_type", "float32", ["float32", "uint8", "int8"], "Output tensor type "
                  "of the integer variants.")
flags.DEFINE_enum("normalization", "app", ["app", "model"], "Models trained with ImageNet "
                  "mean/std: 'app' leaves the normalisation to the app (the metadata's mean "
                  "and std, applied while the app makes the input tensor anyway; integer files "
                  "then take the normalised values quantized with the input's scale and zero "
                  "point), which saves the file a pass over the input image; 'model' keeps it "
                  "in the file, which then takes 0-255 pixels.")
flags.DEFINE_integer("eval_images", 0, "Held-out images to score each variant on (0: all).")
flags.DEFINE_string("android_assets", None, "Also copy the float32, int8 and qat files with "
                    "their metadata here (the Android demo's assets folder).")
flags.DEFINE_string("web_assets", None, "Also copy the float32, int8 and qat files with their "
                    "metadata here and list them in its models.json (the web demo's models "
                    "folder, web_demo/models).")
flags.DEFINE_string("worker", None, "Internal: convert one variant in this process.")

FLOAT_TOLERANCE = 1e-4
# The variants the demo apps (Android, web) bundle.
APP_VARIANTS = ("float32", "int8", "qat")
# int8_per_tensor is asked for by name: it may trade accuracy for size.
DEFAULT_VARIANTS = ("float32", "float16", "dynamic", "int8", "qat")


def _locate(model_argument):
    """(run directory, .keras path, run.json values) of --model."""
    if os.path.isdir(model_argument):
        run_dir, model_path = model_argument, os.path.join(model_argument, FLAGS.model_file)
    else:
        run_dir, model_path = os.path.dirname(os.path.abspath(model_argument)), model_argument
    run_file = os.path.join(run_dir, "run.json")
    if not os.path.isfile(model_path) or not os.path.isfile(run_file):
        raise app.UsageError(
            f"--model={model_argument!r} is not a trained run: expected {model_path} and "
            f"{run_file} (train with `python -m tools.train --model_dir DIR`).")
    return run_dir, model_path, read_run(run_dir)


def _qat_path(run_dir, name="qat_weights.h5"):
    return os.path.join(run_dir, "qat", name)


def _file_stem(run_dir, variant):
    return f"{os.path.basename(os.path.normpath(run_dir))}_{variant}"


def _convert_one(variant, run_dir, model_path, info, output_dir):
    """Runs in its own process (TF_USE_LEGACY_KERAS=1 for qat)."""
    from regnet_keras.introspect import design_of_model
    from regnet_keras.lite import export
    from regnet_keras.training import data as data_lib
    representative = None
    if variant == "qat":
        from regnet_keras.lite import quantization
        size = int(info["image_size"])
        model = quantization.load_qat_model(_qat_path(run_dir, "float_weights.h5"),
                                            _qat_path(run_dir), (size, size, 3))
    else:
        import regnet_keras
        model = regnet_keras.load_model(model_path)
        if variant in export.CALIBRATED_VARIANTS:
            representative = np.stack(list(data_lib.calibration_dataset(
                info, FLAGS.representative_images).as_numpy_iterator()))
    integer = variant in export.INTEGER_VARIANTS
    content = export.convert(model, variant, representative_images=representative,
                             input_type=FLAGS.input_type if integer else "float32",
                             output_type=FLAGS.output_type if integer else "float32",
                             normalization=FLAGS.normalization)
    export.check_converted(model, content, variant)
    if variant == "qat":  # the QAT model is the float model rebuilt from its weights file
        from regnet_keras.weights.h5 import open_weights_file
        activation = open_weights_file(
            _qat_path(run_dir, "float_weights.h5")).classifier_activation
    else:
        activation = design_of_model(model).classifier_activation
    record = export.metadata(content, model_name=os.path.basename(os.path.normpath(run_dir)),
                             variant=variant, labels=info["class_names"],
                             preprocessing=info.get("preprocessing", "imagenet"),
                             crop_fraction=float(info.get("eval_crop_fraction", 0.875)),
                             output_activation=activation or "none",
                             app_normalization=export.app_normalization(
                                 model, variant, FLAGS.normalization),
                             weights_origin=info.get("weights_origin"))
    export.write(content, record, os.path.join(output_dir, _file_stem(run_dir, variant)))


def _spawn(variant):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if variant == "qat":
        environment["TF_USE_LEGACY_KERAS"] = "1"
    command = [sys.executable, "-m", "tools.convert", f"--worker={variant}"] + [
        arg for arg in sys.argv[1:] if not arg.startswith("--worker")]
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [l for l in done.stderr.strip().splitlines() if "Error" in l or "error" in l]
        raise app.UsageError(f"the {variant} conversion failed: "
                             f"{(lines or done.stderr.strip().splitlines() or ['?'])[-1]}")


def _verify(variants, run_dir, model_path, info, output_dir):
    import regnet_keras
    from regnet_keras.lite import export
    from regnet_keras.training import data as data_lib
    model = regnet_keras.load_model(model_path)
    dataset = data_lib.evaluation_dataset(info, 256)
    images, labels = [], []
    for batch_images, batch_labels in dataset.as_numpy_iterator():
        images.append(batch_images)
        labels.append(batch_labels)
    images, labels = np.concatenate(images), np.concatenate(labels)
    if FLAGS.eval_images:
        images, labels = images[:FLAGS.eval_images], labels[:FLAGS.eval_images]
    reference = model.predict(images, batch_size=256, verbose=0)
    rows = []
    for variant in variants:
        path = os.path.join(output_dir, _file_stem(run_dir, variant) + ".tflite")
        with open(path, "rb") as f:
            content = f.read()
        outputs = export.run(content, images,
                             export.normalization_of(export.read_metadata(path)))
        row = {"variant": variant, "file": path, "bytes": len(content),
               "top1": float((outputs.argmax(1) == labels).mean()),
               "top5": float((np.argsort(-outputs, 1)[:, :5] == labels[:, None]).any(1).mean()),
               "agreement": float((outputs.argmax(1) == reference.argmax(1)).mean())}
        if variant == "float32":
            difference = float(np.abs(outputs - reference).max() / np.abs(reference).max())
            row["max_relative_difference"] = difference
            if difference > FLOAT_TOLERANCE:
                raise app.UsageError(f"float32 TFLite differs from Keras by {difference:.2e} of "
                                     f"the output scale (> {FLOAT_TOLERANCE}).")
        rows.append(row)
    keras_top1 = float((reference.argmax(1) == labels).mean())
    return rows, keras_top1, len(labels)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}: see --helpfull.")
    from regnet_keras.lite import export
    run_dir, model_path, info = _locate(FLAGS.model)
    output_dir = FLAGS.output_dir or os.path.join(run_dir, "tflite")
    if FLAGS.worker:
        _convert_one(FLAGS.worker, run_dir, model_path, info, output_dir)
        return
    variants = FLAGS.variants or [v for v in DEFAULT_VARIANTS
                                  if v != "qat" or os.path.isfile(_qat_path(run_dir))]
    for variant in variants:
        if variant not in export.VARIANTS:
            raise app.UsageError(f"variant {variant!r} is unknown: choose from "
                                 f"{', '.join(export.VARIANTS)}.")
        if variant == "qat" and not os.path.isfile(_qat_path(run_dir)):
            raise app.UsageError(f"no QAT model in {run_dir}: run `python -m tools.qat "
                                 f"--model_dir {run_dir}` first.")
    os.makedirs(output_dir, exist_ok=True)
    for variant in variants:
        start = time.time()
        _spawn(variant)
        print(f"{variant}: converted in {time.time() - start:.0f} s", flush=True)
    rows, keras_top1, examples = _verify(variants, run_dir, model_path, info, output_dir)
    report = {"model": model_path, "examples": examples, "keras_top1": keras_top1,
              "variants": rows}
    with open(os.path.join(output_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"\n{model_path}: Keras float top-1 {keras_top1:.4f} on {examples} held-out images")
    print(f"{'variant':15s} {'size KB':>9s} {'top-1':>7s} {'top-5':>7s} {'agreement':>9s}  file")
    for row in rows:
        print(f"{row['variant']:15s} {row['bytes'] / 1024:9.1f} {row['top1']:7.4f} "
              f"{row['top5']:7.4f} {row['agreement']:9.4f}  {row['file']}")
    for kind, assets in (("Android", FLAGS.android_assets), ("web", FLAGS.web_assets)):
        if not assets:
            continue
        os.makedirs(assets, exist_ok=True)
        for variant in (v for v in variants if v in APP_VARIANTS):
            for suffix in (".tflite", ".json"):
                shutil.copy(os.path.join(output_dir, _file_stem(run_dir, variant) + suffix),
                            assets)
        if kind == "web":
            export.write_model_index(assets)
        print(f"{kind} assets: {assets}")


if __name__ == "__main__":
    cli.run(main)
