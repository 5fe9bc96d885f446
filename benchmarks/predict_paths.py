"""What each inference measure saves: time and memory of `predict` step by step, in rounds.

    python -m benchmarks.predict_paths [--model RegNetX002] [--size 128] [--repeats 5]

Each path runs in a process of its own (oneDNN is chosen when TensorFlow loads, and peak memory
is per process), over --images images in batches of 32, the paths in turn in every round:
  keras_predict_no_onednn  model.predict with TensorFlow's oneDNN kernels off
                           (TF_ENABLE_ONEDNN_OPTS=0, TensorFlow's default on CPUs without AVX-512)
  keras_predict            model.predict (oneDNN on, as `import regnet_keras` first sets it)
  compiled_loop            regnet_keras.inference.predict(model, fold_batch_norm=False): one
                           tf.function over slices of the array, no tf.data pipeline
  folded_copy              the same on the copy regnet_keras.fold_batch_norm(model) returns,
                           the model kept (as a process that also trains keeps it)
  folded_in_graph          regnet_keras.inference.predict(model): batch normalization folded
                           inside the compiled function, no copy
Prints img/s and peak RSS above the import baseline, median (range) across rounds.
"""

import statistics
import sys
import time

from absl import app, flags

from benchmarks import measurement

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "RegNetX002", "Zoo model.")
flags.DEFINE_integer("size", 128, "Input size.")
flags.DEFINE_integer("images", 256, "Images per timed pass.")
flags.DEFINE_integer("passes", 3, "Timed passes per process (the median).")
flags.DEFINE_integer("repeats", 5, "Rounds.")
flags.DEFINE_string("worker", None, "Internal: run one path and print its JSON result.")

PATHS = (
    "keras_predict_no_onednn", "keras_predict", "compiled_loop", "folded_copy", "folded_in_graph")


def _worker(path):
    import regnet_keras
    import numpy as np
    import tensorflow  # noqa: F401  (in the baseline)
    from regnet_keras import inference
    baseline = measurement.peak_rss_mb()
    size = FLAGS.size
    model = regnet_keras.build_model(FLAGS.model, classes=100, input_shape=(size, size, 3))
    images = np.random.default_rng(0).random((FLAGS.images, size, size, 3), np.float32) * 255
    if path.startswith("keras_predict"):
        def run():
            model.predict(images, batch_size=32, verbose=0)
    elif path == "folded_copy":
        folded = inference.fold_batch_norm(model)

        def run():
            inference.predict(folded, images, batch_size=32)
    else:
        def run():
            inference.predict(model, images, batch_size=32,
                              fold_batch_norm=path == "folded_in_graph")
    run()
    times = []
    for _ in range(FLAGS.passes):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    measurement.print_result({"img_s": len(images) / statistics.median(times),
                              "mb": measurement.peak_rss_mb() - baseline})


def _measure(path):
    command = [sys.executable, "-m", "benchmarks.predict_paths", f"--worker={path}",
               f"--model={FLAGS.model}", f"--size={FLAGS.size}", f"--images={FLAGS.images}",
               f"--passes={FLAGS.passes}"]
    return measurement.run_worker(
        command, path, TF_ENABLE_ONEDNN_OPTS="0" if path.endswith("no_onednn") else "1")


def main(_):
    if FLAGS.worker:
        _worker(FLAGS.worker)
        return
    results = {path: [] for path in PATHS}
    for round_index in range(FLAGS.repeats):
        for path in (PATHS if round_index % 2 == 0 else PATHS[::-1]):
            results[path].append(_measure(path))
    print(f"{FLAGS.model} {FLAGS.size}x{FLAGS.size}, batch 32, {FLAGS.images} images, "
          f"{FLAGS.repeats} rounds; median (range)")
    print(f"{'path':24s} {'img/s':>20s} {'peak RSS MB above import':>26s}")
    for path, runs in results.items():
        img_s = [r["img_s"] if r else None for r in runs]
        mb = [r["mb"] if r else None for r in runs]
        print(f"{path:24s} {measurement.spread(img_s, 1):>20s} {measurement.spread(mb, 0):>26s}", flush=True)


if __name__ == "__main__":
    app.run(main)
