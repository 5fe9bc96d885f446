"""Where a training process's memory goes, in Keras (TensorFlow) and in PyTorch.

    python -m benchmarks.train_memory [--models RegNetY002] [--sizes 128] [--repeats 2]

Each variant trains in a process of its own (batch 32, 100 classes, one in-memory batch), the
variants in turn in every round:
  keras_fit             Keras `fit`, the optimizer left for `fit` to build
  keras_fit_prebuilt    the same with `model.optimizer.build(model.trainable_variables)` first,
                        as regnet_keras' training loop does
  pytorch               the same architecture in PyTorch (benchmarks.pytorch_regnet), SGD
and prints, in MB: the peak RSS above the import baseline after the first step and after
--steps more; for TensorFlow, the peak of its allocator (the tensors alive at once: activations
kept for the gradient, weights, optimizer slots); for both, the C heap in use and free
(glibc's mallinfo2: graphs, kernels, Python objects, and the fragments they leave), and how
many times `fit` traced the train step.
"""

import ctypes
import sys

from absl import app, flags

from benchmarks import measurement

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["RegNetY002"], "Zoo models.")
flags.DEFINE_list("sizes", ["128"], "Input sizes.")
flags.DEFINE_integer("steps", 4, "Training steps after the first.")
flags.DEFINE_integer("repeats", 2, "Rounds.")
flags.DEFINE_string("worker", None, "Internal: variant:model:size.")

VARIANTS = ("keras_fit", "keras_fit_prebuilt", "pytorch")
BATCH, CLASSES = 32, 100


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _heap_mb():
    """(in use, free) MB of glibc's heap, or (None, None) where mallinfo2 is missing."""
    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None, None
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return info.uordblks / 2**20, info.fordblks / 2**20


def _keras_worker(variant, model_name, size):
    import regnet_keras  # before TensorFlow: it turns on oneDNN, as users import it
    import numpy as np
    import tensorflow as tf
    import keras
    baseline = measurement.peak_rss_mb()
    model = regnet_keras.build_model(model_name, classes=CLASSES, input_shape=(size, size, 3))
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                  loss=keras.losses.SparseCategoricalCrossentropy())
    if variant == "keras_fit_prebuilt":
        model.optimizer.build(model.trainable_variables)
    traces = []
    train_step = model.train_step

    def counted_train_step(data):
        traces.append(1)
        return train_step(data)
    model.train_step = counted_train_step
    images = np.random.default_rng(0).random((BATCH, size, size, 3), dtype=np.float32) * 255
    labels = np.random.default_rng(0).integers(0, CLASSES, BATCH)
    data = tf.data.Dataset.from_tensors((images, labels)).repeat()
    model.fit(data, steps_per_epoch=1, epochs=1, verbose=0)
    first = measurement.peak_rss_mb() - baseline
    model.fit(data, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0)
    tensors = tf.config.experimental.get_memory_info("CPU:0")["peak"] / 2**20
    return {"first": first, "peak": measurement.peak_rss_mb() - baseline, "tensors": tensors,
            "traces": len(traces)}


def _pytorch_worker(model_name, size):
    import regnet_keras
    import torch
    from benchmarks.pytorch_regnet import RegNet
    baseline = measurement.peak_rss_mb()
    torch.manual_seed(0)
    model = RegNet(regnet_keras.get_config(model_name), CLASSES).to(
        memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, nesterov=True)
    images = torch.rand(BATCH, 3, size, size).to(memory_format=torch.channels_last)
    labels = torch.randint(0, CLASSES, (BATCH,))
    result = {}
    for step in range(1 + FLAGS.steps):
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
        if step == 0:
            result["first"] = measurement.peak_rss_mb() - baseline
    result["peak"] = measurement.peak_rss_mb() - baseline
    return result


def _measure(variant, model_name, size):
    command = [sys.executable, "-m", "benchmarks.train_memory",
               f"--worker={variant}:{model_name}:{size}", f"--steps={FLAGS.steps}"]
    return measurement.run_worker(command, f"{variant} {model_name} {size}")


def _figure(results, key):
    return measurement.spread([r.get(key) if r else None for r in results])


def main(_):
    if FLAGS.worker:
        variant, model_name, size = FLAGS.worker.split(":")
        if variant == "pytorch":
            result = _pytorch_worker(model_name, int(size))
        else:
            result = _keras_worker(variant, model_name, int(size))
        result["heap_in_use"], result["heap_free"] = _heap_mb()
        measurement.print_result(result)
        return
    print(f"batch {BATCH}, {CLASSES} classes, {FLAGS.repeats} rounds; MB, median (range); "
          "peak RSS above the import baseline")
    columns = (("after 1 step", "first"), (f"after {1 + FLAGS.steps} steps", "peak"),
               ("TF tensors peak", "tensors"), ("heap in use", "heap_in_use"),
               ("heap free", "heap_free"), ("traces", "traces"))
    header = f"{'model':11s} {'size':>4s} {'variant':19s} " + " ".join(
        f"{name:>16s}" for name, _ in columns)
    print(header)
    print("-" * len(header))
    for model_name in FLAGS.models:
        for size in (int(s) for s in FLAGS.sizes):
            rounds = {variant: [] for variant in VARIANTS}
            for round_index in range(FLAGS.repeats):
                for variant in (VARIANTS if round_index % 2 == 0 else VARIANTS[::-1]):
                    rounds[variant].append(_measure(variant, model_name, size))
            for variant, results in rounds.items():
                print(f"{model_name:11s} {size:4d} {variant:19s} " + " ".join(
                    f"{_figure(results, key):>16s}" for _, key in columns), flush=True)


if __name__ == "__main__":
    app.run(main)
