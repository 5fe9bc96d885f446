"""Evaluating a trained classifier (.keras, or .tflite on LiteRT): top-1, top-5, per-class and
balanced accuracy, the classes most often confused, and a confusion matrix (PNG and JSON) that
stays readable with 50+ classes."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from regnet_keras.errors import InputError
from regnet_keras.training import data as data_lib
from regnet_keras.training import run_file

REPORT_FILE = "report.json"
CONFUSION_PNG = "confusion_matrix.png"
# Above this many classes the PNG drops per-cell counts and shrinks its labels; above
# MAX_FIGURE_PIXELS it lowers its resolution so that the file stays viewable.
ANNOTATED_CLASSES = 20
MAX_FIGURE_PIXELS = 4000
MOST_CONFUSED = 10


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall of each true class (NaN for a class without examples)."""
    rows = confusion.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, np.diag(confusion) / rows, np.nan)


def balanced_accuracy(confusion: np.ndarray) -> float:
    """Mean of the per-class accuracies over classes with examples (scikit-learn's
    balanced_accuracy_score)."""
    return float(np.nanmean(per_class_accuracy(confusion)))


def most_confused(confusion: np.ndarray, class_names, count: int = MOST_CONFUSED) -> list:
    """The largest off-diagonal cells: [{"true", "predicted", "examples"}], largest first."""
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:count]
    pairs = [np.unravel_index(i, off.shape) for i in order]
    return [{"true": class_names[t], "predicted": class_names[p], "examples": int(off[t, p])}
            for t, p in pairs if off[t, p] > 0]


class KerasFileError(InputError, ValueError):
    """A .keras file that Keras cannot load."""


def count_predictions(predict, dataset, num_classes: int) -> dict:
    """Runs `predict` (a batch of images -> NumPy scores) over batches of (image, label); returns
    top-1, top-5 and the confusion matrix (rows: true classes, columns: predicted ones)."""
    confusion = np.zeros((num_classes, num_classes), np.int64)
    top5_hits = total = 0
    k = min(5, num_classes)
    for images, labels in dataset:
        scores = predict(images)
        labels = labels.numpy().astype(np.int64)
        predicted = scores.argmax(-1)
        np.add.at(confusion, (labels, predicted), 1)
        top_k = np.argpartition(-scores, k - 1, axis=-1)[:, :k]
        top5_hits += int((top_k == labels[:, None]).any(-1).sum())
        total += len(labels)
    if total == 0:
        raise ValueError("the evaluation data is empty.")
    return {"examples": total, "top1": float(np.trace(confusion) / total),
            "top5": float(top5_hits / total), "confusion_matrix": confusion}


def plot_confusion(confusion: np.ndarray, class_names, path: str, title: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(class_names)
    size = max(5.0, 0.22 * n + 3)
    dpi = min(120, int(MAX_FIGURE_PIXELS / (size + 1)))
    label_size = 8 if n <= 30 else max(3, int(8 - n / 20))
    figure, axes = plt.subplots(figsize=(size + 1, size))
    rows = confusion.sum(1, keepdims=True)
    normalised = confusion / np.maximum(rows, 1)
    image = axes.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(n), labels=class_names, rotation=90 if n > 30 else 60,
                    ha="center" if n > 30 else "right", fontsize=label_size)
    axes.set_yticks(range(n), labels=class_names, fontsize=label_size)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=9)
    if n <= ANNOTATED_CLASSES:
        for i in range(n):
            for j in range(n):
                if confusion[i, j]:
                    axes.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=6,
                              color="white" if normalised[i, j] > 0.5 else "black")
    figure.colorbar(image, ax=axes, fraction=0.046, label="fraction of the true class")
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    plt.close(figure)


def _load_predictor(model_path: str):
    """(predict: images -> scores, input size, number of outputs) of a .keras or .tflite file.

    A .tflite file gets its pixels as an app would: normalised with the mean and std of the
    metadata beside it (none without metadata: the file then takes 0-255 pixels)."""
    if model_path.endswith(".tflite"):
        from regnet_keras.lite import export
        record = export.read_metadata(model_path)
        try:
            content = export.read_tflite(model_path)
            export.check_in_child_process(content)
            runtime = export.interpreter(content)
            export.check_classifier(runtime)
        except export.TFLiteFileError as error:
            message = str(error)
            raise export.TFLiteFileError(
                message if message.startswith(model_path) else f"{model_path}: {message}") \
                from None
        if record is not None:
            export.check_metadata_matches(record, runtime)
        normalization = export.normalization_of(record)
        shape = runtime.get_input_details()[0]["shape"]
        outputs = int(runtime.get_output_details()[0]["shape"][-1])
        return ((lambda images: export.run(runtime, np.asarray(images), normalization)),
                int(shape[1]), outputs)
    from regnet_keras.saving import load_model
    try:
        model = load_model(model_path)
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise KerasFileError(f"{model_path}: not a loadable .keras model ({error}); it may be "
                             "truncated: use the run's best.keras or final.keras, or train "
                             "again.") from None
    import tensorflow as tf

    @tf.function
    def predict(images):
        return tf.cast(model(images, training=False), tf.float32)

    return (lambda images: predict(images).numpy()), model.input_shape[1], model.output_shape[-1]


def model_input_size(model_path: str) -> int | None:
    """The input height of a .keras or .tflite model (None: any size)."""
    return _load_predictor(model_path)[1]


def evaluate_model(model_path: str, run_info: dict, output_dir: str,
                   batch_size: int = 256, image_cache: str | None = None,
                   image_cache_max_bytes: int = data_lib.DEFAULT_CACHE_MAX_BYTES) -> dict:
    """Evaluates a .keras or .tflite model on the held-out data `run_info` describes (a .tflite
    on the LiteRT runtime, as phones run it); writes the report and the confusion-matrix PNG.
    `image_cache`, `image_cache_max_bytes`: where image folders' resized copies are kept and
    how much they may take (see data.source_of_run)."""
    if not os.path.isfile(model_path) or not model_path.endswith((".keras", ".tflite")):
        raise ValueError(f"model={model_path!r} is not an existing .keras or .tflite file "
                         "(e.g. runs/<run>/final.keras, runs/<run>/tflite/<run>_int8.tflite).")
    predict, size, classes = _load_predictor(model_path)
    if size is not None and int(run_info["image_size"]) != size:
        raise ValueError(f"image_size={run_info['image_size']} does not match the model's input "
                         f"({size}x{size}).")
    source = data_lib.source_of_run(run_info, image_cache, image_cache_max_bytes)
    if classes != source.num_classes:
        raise ValueError(f"the model has {classes} outputs but {source.description} has "
                         f"{source.num_classes} classes: evaluate it on the data it was "
                         "trained on.")
    dataset = data_lib.evaluation_dataset(run_info, batch_size, source=source)
    counts = count_predictions(predict, dataset, source.num_classes)
    os.makedirs(output_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(model_path))[0]
    png = os.path.join(output_dir, f"{stem}_{CONFUSION_PNG}")
    plot_confusion(counts["confusion_matrix"], source.class_names, png,
                   f"{os.path.basename(model_path)} on {source.description} "
                   f"({source.held_out_name}): top-1 {counts['top1']:.4f}")
    confusion = counts["confusion_matrix"]
    accuracies = per_class_accuracy(confusion)
    report = {"model": model_path, "dataset": source.name, "data_dir": source.data_dir,
              "split": source.held_out_name, "examples": counts["examples"],
              "top1": counts["top1"], "top5": counts["top5"],
              "balanced_accuracy": balanced_accuracy(confusion),
              # One line per class, worst first, so that the weak classes of a long list show.
              "per_class": sorted(
                  ({"class": name, "examples": int(confusion[i].sum()),
                    "accuracy": None if np.isnan(accuracies[i]) else float(accuracies[i])}
                   for i, name in enumerate(source.class_names)),
                  key=lambda row: (row["accuracy"] is None, row["accuracy"] or 0.0)),
              "most_confused": most_confused(confusion, source.class_names),
              "class_names": list(source.class_names),
              "confusion_matrix": counts["confusion_matrix"].tolist(),
              "confusion_matrix_png": png}
    report_path = os.path.join(output_dir, f"{stem}_{REPORT_FILE}")
    with open(report_path, "w") as file:
        json.dump(report, file, indent=2)
    report["report_path"] = report_path
    return report


def evaluate_run(model_dir: str, which: str = "final.keras") -> dict:
    """Evaluates a finished run's model with the data settings of its run.json."""
    run_info = run_file.read_run(model_dir)
    if run_info is None:
        raise run_file.RunDirectoryError(f"{model_dir} has no {run_file.RUN_FILE}: pass a "
                                         "tools.train run directory.")
    return evaluate_model(os.path.join(model_dir, which), run_info, model_dir)
