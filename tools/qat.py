"""Quantization-aware training (int8, per-channel weights) of a trained RegNet run.

    python -m tools.qat --model_dir runs/fashion_mnist [--epochs 2] [--lr 0.002]

Reads RUN/best.keras and RUN/run.json, fine-tunes the model with tensorflow-model-optimization's
quantization-aware training on the run's training data, evaluates it on the run's held-out split
and writes RUN/qat/qat_weights.h5 with RUN/qat/float_weights.h5 (the QAT model, rebuilt by
regnet_keras.lite.quantization.load_qat_model; `python -m tools.convert --model RUN` turns it into the
`qat` TFLite variant) and RUN/qat/qat.json. tfmot needs tf-keras: the work runs
in a child process started with TF_USE_LEGACY_KERAS=1, on the same architecture rebuilt from a
regnet_keras weights file. A run directory that another live tools.train or tools.qat is using
is refused at once (regnet_keras.training.run_lock).
"""

import json
import math
import os
import subprocess
import sys
import time

from absl import app, flags, logging

from tools import cli
from tools import image_cache_flags  # noqa: F401 (--image_cache, --image_cache_max_gb)

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A finished tools.train run directory.", required=True)
flags.DEFINE_string("model_file", "best.keras", "Which model of the run to start from.")
flags.DEFINE_integer("epochs", 2, "Quantization-aware fine-tuning epochs.")
flags.DEFINE_integer("min_steps", 300, "Fewest optimizer steps: a small dataset gets more epochs "
                     "than --epochs, since tfmot's activation ranges start at [-6, 6] and move "
                     "0.1% of the way to the data's per step.")
flags.DEFINE_float("lr", None, "Peak learning rate (cosine decay to 0). Default: 1% of the "
                   "reference rate for --batch_size (0.1 per 128 images).")
flags.DEFINE_integer("batch_size", 128, "Global batch size.")
flags.DEFINE_bool("allow_float_layers", False, "Accept layers tfmot leaves in float (they are "
                  "listed); otherwise such a model is refused.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored"], "tf.distribute strategy of "
                  "the fine-tuning (tfmot's QAT runs under MirroredStrategy; multi-worker and "
                  "TPU are not supported by tfmot).")
flags.DEFINE_integer("log_every_steps", 50, "A progress line every this many steps (a progress "
                     "bar on a terminal), as tools.train prints.")
flags.DEFINE_bool("worker", False, "Internal: the tf-keras part, in a TF_USE_LEGACY_KERAS=1 "
                  "process.")

QAT_DIRECTORY = "qat"
QAT_WEIGHTS = "qat_weights.h5"
FLOAT_WEIGHTS = "float_weights.h5"
REPORT = "qat.json"
MILD_AUGMENTATION = dict(min_crop_area=1.0, crop_aspect_ratio=1.0, flip=True, lighting_std=0.0)


def _run_info(model_dir):
    from regnet_keras.training import loop as training
    info = training.read_run(model_dir)
    model_path = os.path.join(model_dir, FLAGS.model_file)
    if info is None or not os.path.isfile(model_path):
        raise app.UsageError(
            f"{model_dir} holds no trained model ({FLAGS.model_file} and run.json): train one "
            f"first with `python -m tools.train --model_dir {model_dir}`.")
    return info, model_path


def _export_float_weights(model_path, path):
    import regnet_keras
    regnet_keras.save_weights(regnet_keras.load_model(model_path), path)


def _fine_tune(info, output_dir):
    """The tf-keras part: quantize, fine-tune, evaluate, save."""
    import tensorflow as tf
    import tf_keras as keras
    from regnet_keras.lite import quantization
    from regnet_keras.training import data as data_lib
    from regnet_keras.training import schedule
    from regnet_keras.training.loop import Progress
    from regnet_keras.training.progress_callback import progress_callback
    strategy = (tf.distribute.MirroredStrategy() if FLAGS.strategy == "mirrored"
                else tf.distribute.get_strategy())
    image_size = int(info["image_size"])
    source = data_lib.source_of_run(info, FLAGS.image_cache,
                                    int(FLAGS.image_cache_max_gb * 1e9))
    if source.cache_report is not None:
        print(source.cache_report.summary(), flush=True)
    # The run's own augmentation; runs that did not record it get flips only, since heavy
    # augmentation only drags a fine-tuning away from what the model learned.
    augmentation = data_lib.Augmentation(**info.get("augmentation", MILD_AUGMENTATION))
    pipeline = data_lib.TrainPipeline(source, image_size, augmentation,
                                      seed=int(info.get("seed", 0)) + 1)
    steps_per_epoch = pipeline.steps_per_epoch(FLAGS.batch_size)
    if steps_per_epoch < 1:
        raise app.UsageError(f"batch_size={FLAGS.batch_size} is larger than the "
                             f"{source.train.num_examples} training images; lower --batch_size.")
    # The ranges are moving averages (decay 0.999) from [-6, 6]: after 24 steps they have moved
    # 2% of the way, and a model fine-tuned on 387 images fell from 62% to 47%; after 300 steps
    # it kept 60%.
    epochs = max(FLAGS.epochs, math.ceil(FLAGS.min_steps / steps_per_epoch))
    peak_lr = FLAGS.lr or 0.01 * schedule.scaled_learning_rate(FLAGS.batch_size)
    learning_rate = keras.optimizers.schedules.CosineDecay(peak_lr, epochs * steps_per_epoch)
    with strategy.scope():
        model = quantization.rebuild_from_weights(os.path.join(output_dir, FLOAT_WEIGHTS),
                                                  (image_size, image_size, 3))
        qat_model, report = quantization.quantize_model(model, FLAGS.allow_float_layers)
        qat_model.compile(
            optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True),
            loss=keras.losses.CategoricalCrossentropy(
                label_smoothing=float(info.get("label_smoothing", 0.0))),
            metrics=[keras.metrics.CategoricalAccuracy(name="top1")])

    def one_hot(images, labels):  # label smoothing needs one-hot targets
        return images, tf.one_hot(labels, source.num_classes)

    progress = Progress(epochs * steps_per_epoch, 0, steps_per_epoch,
                        log_every=FLAGS.log_every_steps)
    start = time.time()
    for epoch in range(epochs):
        data = pipeline.dataset(epoch, 0, FLAGS.batch_size).map(one_hot)
        # One fit per epoch (each epoch its own batches); the callback numbers the steps.
        callback = progress_callback(keras, progress, epoch, epochs, steps_per_epoch,
                                     learning_rate)
        history = qat_model.fit(data, epochs=1, verbose=0, callbacks=[callback])
        logging.info("QAT epoch %d: loss %.4f", epoch + 1, history.history["loss"][-1])
    seconds = time.time() - start
    evaluation = data_lib.evaluation_dataset(info, 256, source=source).map(one_hot)
    _, top1 = qat_model.evaluate(evaluation, verbose=0)
    quantization.save_qat_model(qat_model, os.path.join(output_dir, QAT_WEIGHTS))
    summary = {"model_dir": FLAGS.model_dir, "start_model": FLAGS.model_file,
               "epochs": epochs, "optimizer_steps": epochs * steps_per_epoch,
               "peak_lr": peak_lr, "batch_size": FLAGS.batch_size,
               "fine_tune_seconds": seconds, "qat_keras_top1": float(top1),
               "quantized_layers": len(report.quantized_layers),
               "float_layers": list(report.float_layers)}
    with open(os.path.join(output_dir, REPORT), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}: see --helpfull.")
    info, model_path = _run_info(FLAGS.model_dir)
    output_dir = os.path.join(FLAGS.model_dir, QAT_DIRECTORY)
    if FLAGS.worker:
        _fine_tune(info, output_dir)  # the parent holds the run directory's lock
        return
    from regnet_keras.training import run_lock
    try:
        run_lock.acquire(FLAGS.model_dir)
    except run_lock.RunDirectoryInUseError as error:
        raise app.UsageError(str(error))
    os.makedirs(output_dir, exist_ok=True)
    _export_float_weights(model_path, os.path.join(output_dir, FLOAT_WEIGHTS))
    environment = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-m", "tools.qat", "--worker"] + [
        arg for arg in sys.argv[1:] if arg != "--worker"]
    done = subprocess.run(command, env=environment)
    if done.returncode != 0:
        sys.exit(done.returncode)
    with open(os.path.join(output_dir, REPORT)) as f:
        summary = json.load(f)
    print(f"QAT model: {os.path.join(output_dir, QAT_WEIGHTS)} (Keras top-1 "
          f"{summary['qat_keras_top1']:.4f} after {summary['epochs']} epochs, "
          f"{summary['fine_tune_seconds'] / 60:.1f} min). Convert it with "
          f"`python -m tools.convert --model {FLAGS.model_dir}`.")


if __name__ == "__main__":
    cli.run(main)
