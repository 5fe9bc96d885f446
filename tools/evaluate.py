"""Evaluates a trained RegNet (.keras, or .tflite on the LiteRT runtime): top-1, top-5 and a
confusion matrix saved as a PNG.

    python -m tools.evaluate --model runs/RegNetX002_fashion_mnist_32px/final.keras
    python -m tools.evaluate --model runs/fashion_mnist/tflite/fashion_mnist_int8.tflite
    python -m tools.evaluate --model best.keras --dataset folder --data_dir ~/photos \\
        --image_size 224

Data settings not given on the command line come from the run.json next to the model (the
run that trained it). The report (JSON) and the PNG go to --output_dir (default: the model's
directory).
"""

import os

from absl import app, flags

from regnet_keras.training import data as data_lib
from regnet_keras.training.run_file import read_run
from tools import cli
from tools import image_cache_flags  # noqa: F401 (--image_cache, --image_cache_max_gb)

FLAGS = flags.FLAGS
# Confusion matrices up to this many classes are printed whole; larger ones as summaries.
CONFUSION_ROWS_PRINTED = 20
flags.DEFINE_string("model", None, "The .keras or .tflite model file to evaluate.",
                    required=True)
flags.DEFINE_string("dataset", None, "Dataset name ('fashion_mnist', 'folder' or a "
                    "tensorflow-datasets name). Default: the run.json next to the model.")
flags.DEFINE_string("data_dir", None, "Where the data is (see tools.train --helpfull).")
flags.DEFINE_integer("image_size", None, "Input size. Default: run.json's, else the model's.")
flags.DEFINE_float("eval_crop_fraction", None, "Resize the shorter side to image_size / this, "
                   "then center crop. Default: run.json's, else 0.875.")
flags.DEFINE_float("holdout_fraction", None, "As in tools.train, for image folders without a "
                   "test split. Default: run.json's, else 0.1.")
flags.DEFINE_integer("batch_size", 256, "Evaluation batch size.")
flags.DEFINE_string("output_dir", None, "Where report.json and the confusion-matrix PNG go. "
                    "Default: the model's directory.")


def run_info_for(model_path):
    """run.json of the model's run (beside it, or one level up for tflite/), overridden by the
    flags given."""
    info = {}
    directory = os.path.dirname(os.path.abspath(model_path))
    for run_dir in (directory, os.path.dirname(directory)):
        info = read_run(run_dir)
        if info is not None:
            break
    info = info or {}
    overrides = {"dataset": FLAGS.dataset, "data_dir": FLAGS.data_dir,
                 "image_size": FLAGS.image_size, "eval_crop_fraction": FLAGS.eval_crop_fraction,
                 "holdout_fraction": FLAGS.holdout_fraction}
    if FLAGS.dataset is not None and FLAGS.data_dir is None:
        overrides["data_dir"] = None  # another dataset: not the run's data directory
        info.pop("data_dir", None)
    info.update({k: v for k, v in overrides.items() if v is not None})
    info.setdefault("dataset", data_lib.DEFAULT_DATASET)
    return info


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}: see --helpfull.")
    from regnet_keras.training import evaluation
    model_path = FLAGS.model
    if not os.path.isfile(model_path):
        raise app.UsageError(f"--model={model_path!r} does not exist: pass a .keras or .tflite "
                             "file.")
    if not model_path.endswith((".keras", ".tflite")):
        raise app.UsageError(f"--model={model_path!r} is neither a .keras nor a .tflite file.")
    info = run_info_for(model_path)
    if "image_size" not in info:
        size = evaluation.model_input_size(model_path)
        if size is None:
            raise app.UsageError("the model takes any input size: pass --image_size.")
        info["image_size"] = size
    output_dir = FLAGS.output_dir or os.path.dirname(os.path.abspath(model_path))
    try:
        report = evaluation.evaluate_model(
            model_path, info, output_dir, FLAGS.batch_size, image_cache=FLAGS.image_cache,
            image_cache_max_bytes=int(FLAGS.image_cache_max_gb * 1e9))
    except (ValueError, data_lib.DataError) as error:
        raise app.UsageError(str(error))
    print(f"{model_path} on {report['dataset']} ({report['split']}, {report['examples']} "
          f"images): top-1 {report['top1']:.4f} top-5 {report['top5']:.4f}")
    print(f"balanced accuracy (mean of per-class accuracies) {report['balanced_accuracy']:.4f}")
    names = report["class_names"]
    width = max(len(n) for n in names)
    if len(names) <= CONFUSION_ROWS_PRINTED:
        print("confusion matrix (rows: true, columns: predicted):")
        for name, row in zip(names, report["confusion_matrix"]):
            print(f"  {name:>{width}} " + " ".join(f"{v:5d}" for v in row))
    else:
        # A wide matrix wraps into noise on a terminal: the weakest classes and the most
        # confused pairs instead (the whole matrix is in the report and the PNG).
        print(f"weakest classes of {len(names)} (accuracy, examples):")
        for row in report["per_class"][:CONFUSION_ROWS_PRINTED]:
            accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
            print(f"  {row['class']:>{width}} {accuracy:>6} {row['examples']:6d}")
        print("most confused (true -> predicted: examples):")
        for pair in report["most_confused"]:
            print(f"  {pair['true']} -> {pair['predicted']}: {pair['examples']}")
    print(f"report: {report['report_path']}")
    print(f"confusion matrix PNG: {report['confusion_matrix_png']}")


if __name__ == "__main__":
    cli.run(main)
