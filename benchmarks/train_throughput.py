"""Training and inference throughput and memory of RegNets on this machine, beside the peers.

    python -m benchmarks.train_throughput [--models RegNetX002,RegNetY002] [--sizes 128,224]

For each model and input size, with batch 32 and 100 classes, each variant runs in a process of
its own (so its memory is its own) on in-memory float32 data (so the input pipeline costs
nothing):
  ours          regnet_keras, Keras 3, grouped convolutions routed to TensorFlow's own op and
                batch normalization trained through TensorFlow's fused kernel
  ours_keras_bn the same with Keras' own (unfused) batch normalization
  keras_native  regnet_keras with grouped_conv_implementation="keras" (Keras' XLA path)
  tf_keras_app  tf-keras' keras.applications RegNet of the same name
  pytorch       the same architecture in PyTorch, channels_last (if torch is installed)

Each process first runs inference over --predict_images images in batches of 32, then trains.
Inference, Keras variants: `regnet_keras.inference.predict` on the batch-norm-folded copy
(`fold_batch_norm`; "predict"), and Keras' own `model.predict` on the model ("keras predict").
PyTorch: `model.eval()` under `torch.no_grad()`, given the same work as the Keras model does
in its graph: ImageNet mean/std normalisation of the 0-255 images before the network and a
softmax after it (what a PyTorch scoring loop does around a torchvision RegNet). Memory is the
process's peak RSS above its import baseline (the peak after importing the framework, NumPy and
regnet_keras), read after inference ("predict MB") and after training ("train MB").

The machine's speed drifts by up to 2x for minutes at a time, so the variants run in --repeats
rounds, in turn (the order reversed every other round), and every figure is the median across
rounds with its range; a ratio to PyTorch is the median of the per-round ratios, with their range.
"""

import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["RegNetX002", "RegNetY002"], "Zoo models to run.")
flags.DEFINE_list("sizes", ["128", "224"], "Input sizes.")
flags.DEFINE_list("variants", ["ours", "pytorch"], "Variants to run (see the module docstring).")
flags.DEFINE_integer("batch_size", 32, "Images per step.")
flags.DEFINE_integer("steps", 10, "Timed training steps of the fast variants.")
flags.DEFINE_integer("slow_steps", 2, "Timed training steps of the XLA-bound variants.")
flags.DEFINE_integer("warmup_steps", 2, "Untimed steps before timing.")
flags.DEFINE_integer("predict_images", 256, "Images per timed inference pass.")
flags.DEFINE_integer("predict_passes", 3, "Timed inference passes per process (the median).")
flags.DEFINE_integer("repeats", 5, "Rounds: processes per fast variant, run in turn with the "
                     "other variants'. The XLA-bound variants run in the first round only.")
flags.DEFINE_string("worker", None, "Internal: run one variant and print its JSON result.")

CLASSES = 100
SLOW_VARIANTS = ("keras_native", "tf_keras_app")
PEER = "pytorch"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _images(size, count):
    import numpy as np
    # float32 from the start: a float64 draw would add a transient copy to the peak.
    return np.random.default_rng(0).random((count, size, size, 3), dtype=np.float32) * 255


def _passes_per_second(run, images, passes):
    """Images per second: the median of `passes` timed passes after one untimed pass."""
    run()
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return images / statistics.median(times)


def _keras_inference(model, size, batch, baseline, fold):
    """Inference figures; the images live only here, so that training's peak leaves them out."""
    images = _images(size, FLAGS.predict_images)
    result = {}
    if fold:
        from regnet_keras import inference
        folded = inference.fold_batch_norm(model)
        result["predict"] = _passes_per_second(
            lambda: inference.predict(folded, images, batch), len(images), FLAGS.predict_passes)
        result["predict_mb"] = _peak_rss_mb() - baseline
    result["keras_predict"] = _passes_per_second(
        lambda: model.predict(images, batch_size=batch, verbose=0), len(images),
        FLAGS.predict_passes)
    result.setdefault("predict_mb", _peak_rss_mb() - baseline)
    return result


def _keras_worker(variant, model_name, size, batch, warmup, steps):
    # regnet_keras before TensorFlow, as users import it: it turns on TensorFlow's oneDNN kernels.
    import regnet_keras
    import numpy as np
    import tensorflow as tf
    if variant == "tf_keras_app":
        import tf_keras as keras
    else:
        import keras
    baseline = _peak_rss_mb()
    if variant == "tf_keras_app":
        model = getattr(keras.applications, model_name)(
            weights=None, classes=CLASSES, input_shape=(size, size, 3))
    else:
        implementation = "keras" if variant == "keras_native" else "auto"
        model = regnet_keras.build_model(model_name, classes=CLASSES, input_shape=(size, size, 3),
                                         grouped_conv_implementation=implementation,
                                         fused_batch_norm_training=variant == "ours")
    result = {"import_mb": baseline, **_keras_inference(model, size, batch, baseline,
                                                       fold=variant != "tf_keras_app")}
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                  loss=keras.losses.SparseCategoricalCrossentropy())
    train_images = _images(size, batch)
    labels = np.random.default_rng(0).integers(0, CLASSES, batch)
    data = tf.data.Dataset.from_tensors((train_images, labels)).repeat()
    model.fit(data, steps_per_epoch=warmup, epochs=1, verbose=0)
    start, cpu_start = time.perf_counter(), time.process_time()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    result["train"] = batch * steps / (time.perf_counter() - start)
    result["cpu_ms"] = (time.process_time() - cpu_start) * 1000 / steps
    result["train_mb"] = _peak_rss_mb() - baseline
    return result


def _pytorch_inference(model, size, batch, baseline):
    import torch
    images = torch.from_numpy(_images(size, FLAGS.predict_images)).permute(0, 3, 1, 2)
    images = images.contiguous(memory_format=torch.channels_last)

    from regnet_keras.preprocessing import IMAGENET_MEAN, IMAGENET_STD
    # The Keras model normalises 0-255 pixels and ends in a softmax; PyTorch's loop does both.
    mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1) * 255

    def run_inference():
        with torch.no_grad():
            for start in range(0, len(images), batch):
                logits = model((images[start:start + batch] - mean) / std)
                logits.softmax(1).numpy()

    model.eval()
    result = {"predict": _passes_per_second(run_inference, len(images), FLAGS.predict_passes)}
    result["predict_mb"] = _peak_rss_mb() - baseline
    return result


def _pytorch_worker(model_name, size, batch, warmup, steps):
    import regnet_keras
    import numpy as np  # noqa: F401  (in the baseline, as on the Keras side)
    import torch
    from benchmarks.pytorch_regnet import RegNet
    baseline = _peak_rss_mb()
    torch.manual_seed(0)
    model = RegNet(regnet_keras.get_config(model_name), CLASSES).to(
        memory_format=torch.channels_last)
    result = {"import_mb": baseline, **_pytorch_inference(model, size, batch, baseline)}
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, nesterov=True)
    train_images = torch.rand(batch, 3, size, size).to(memory_format=torch.channels_last)
    labels = torch.randint(0, CLASSES, (batch,))
    for step in range(warmup + steps):
        if step == warmup:
            start, cpu_start = time.perf_counter(), time.process_time()
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(train_images), labels).backward()
        optimizer.step()
    result["train"] = batch * steps / (time.perf_counter() - start)
    result["cpu_ms"] = (time.process_time() - cpu_start) * 1000 / steps
    result["train_mb"] = _peak_rss_mb() - baseline
    return result


def _run_worker(spec):
    variant, model_name, size = spec.split(":")
    size = int(size)
    steps = FLAGS.slow_steps if variant in SLOW_VARIANTS else FLAGS.steps
    warmup = 1 if variant in SLOW_VARIANTS else FLAGS.warmup_steps
    if variant == PEER:
        result = _pytorch_worker(model_name, size, FLAGS.batch_size, warmup, steps)
    else:
        result = _keras_worker(variant, model_name, size, FLAGS.batch_size, warmup, steps)
    print("RESULT " + json.dumps(result))


def _measure(variant, model_name, size):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-m", "benchmarks.train_throughput",
               f"--worker={variant}:{model_name}:{size}", f"--batch_size={FLAGS.batch_size}",
               f"--steps={FLAGS.steps}", f"--slow_steps={FLAGS.slow_steps}",
               f"--warmup_steps={FLAGS.warmup_steps}", f"--predict_images={FLAGS.predict_images}",
               f"--predict_passes={FLAGS.predict_passes}"]
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
    print(f"  {variant} {model_name} {size}: failed: {reason}", file=sys.stderr)
    return None


def _have_torch() -> bool:
    # Without importing it: the parent process would hold torch's memory for the whole run.
    return importlib.util.find_spec("torch") is not None


def _measure_rounds(variants, model_name, size):
    """{variant: [one result per round, or None where the process failed]}."""
    rounds = {variant: [] for variant in variants}
    for round_index in range(max(1, FLAGS.repeats)):
        order = variants if round_index % 2 == 0 else variants[::-1]
        for variant in order:
            if round_index and variant in SLOW_VARIANTS:
                continue
            rounds[variant].append(_measure(variant, model_name, size))
    return rounds


def _spread(values, digits=0):
    """'median (min-max)' of the values that exist, or '-'."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return (f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def _figure(results, key):
    return [r.get(key) if r else None for r in results]


def _ratios(results, peer_results, key):
    """Per-round ratios of `key` to the peer's in the same round."""
    return [r[key] / p[key] if r and p and r.get(key) and p.get(key) else None
            for r, p in zip(results, peer_results)]


COLUMNS = (("train img/s", 20), ("vs PyTorch", 18), ("predict img/s", 20), ("vs PyTorch", 18),
           ("keras predict", 20), ("CPU ms/step", 18), ("import MB", 16), ("predict MB", 16),
           ("vs PyTorch", 18), ("train MB", 18), ("vs PyTorch", 18))


def _row(results, peer_results):
    def ratio(key):
        return _spread(_ratios(results, peer_results, key), 2) if peer_results else "-"
    return [_spread(_figure(results, "train"), 1), ratio("train"),
            _spread(_figure(results, "predict"), 1), ratio("predict"),
            _spread(_figure(results, "keras_predict"), 1), _spread(_figure(results, "cpu_ms")),
            _spread(_figure(results, "import_mb")), _spread(_figure(results, "predict_mb")),
            ratio("predict_mb"), _spread(_figure(results, "train_mb")), ratio("train_mb")]


def main(_):
    if FLAGS.worker:
        _run_worker(FLAGS.worker)
        return
    variants = [v for v in FLAGS.variants if v != PEER or _have_torch()]
    if PEER in FLAGS.variants and PEER not in variants:
        print("torch is not installed: PyTorch column skipped.")
    print(f"batch {FLAGS.batch_size}, {CLASSES} classes, float32, {os.cpu_count()} CPU cores, "
          f"{FLAGS.repeats} rounds; each figure: median (range) across rounds; MB: peak RSS "
          "above the import baseline")
    header = f"{'model':11s} {'size':>4s} {'variant':13s} " + " ".join(
        f"{name:>{width}s}" for name, width in COLUMNS)
    print(header)
    print("-" * len(header))
    for model_name in FLAGS.models:
        for size in (int(s) for s in FLAGS.sizes):
            rounds = _measure_rounds(variants, model_name, size)
            peer_results = rounds.get(PEER)
            for variant, results in rounds.items():
                row = _row(results, peer_results if variant != PEER else None)
                print(f"{model_name:11s} {size:4d} {variant:13s} " + " ".join(
                    f"{cell:>{width}s}" for cell, (_, width) in zip(row, COLUMNS)), flush=True)
    # Other jobs on the machine slow PyTorch's spinning OpenMP threads most: say how busy it was.
    print("load average over the last 1, 5, 15 minutes at the end: " +
          ", ".join(f"{load:.1f}" for load in os.getloadavg()))


if __name__ == "__main__":
    app.run(main)
