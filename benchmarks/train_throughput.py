"""Training and inference throughput of RegNets on this machine, side by side with the peers.

    python -m benchmarks.train_throughput [--models RegNetX002,RegNetY002] [--sizes 128,224]

For each model and input size, with batch 32 and 100 classes, each variant trains in a process of
its own (so its peak memory is its own) on in-memory data (so the input pipeline costs nothing):
  ours          regnet_keras, Keras 3, grouped convolutions routed to TensorFlow's own op and
                batch normalization trained through TensorFlow's fused kernel
  ours_keras_bn the same with Keras' own (unfused) batch normalization
  keras_native  regnet_keras with grouped_conv_implementation="keras" (Keras' XLA path)
  tf_keras_app  tf-keras' keras.applications RegNet of the same name
  pytorch       the same architecture in PyTorch, channels_last (if torch is installed)
and the table gives training img/s (the fastest of --repeats processes per fast variant, run in
rounds with the other variants', and the range), training CPU milliseconds per step (all
threads) and predict img/s (batch 32) of that fastest process, the ratios to PyTorch and to the
native Keras layer, and peak RSS.
"""

import json
import os
import resource
import subprocess
import sys
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["RegNetX002", "RegNetY002"], "Zoo models to train.")
flags.DEFINE_list("sizes", ["128", "224"], "Input sizes.")
flags.DEFINE_list("variants", ["ours", "ours_keras_bn", "keras_native", "tf_keras_app",
                                "pytorch"],
                  "Variants to run (see the module docstring).")
flags.DEFINE_integer("batch_size", 32, "Images per step.")
flags.DEFINE_integer("steps", 12, "Timed training steps of the fast variants.")
flags.DEFINE_integer("slow_steps", 2, "Timed training steps of the XLA-bound variants.")
flags.DEFINE_integer("warmup_steps", 2, "Untimed steps before timing.")
flags.DEFINE_integer("repeats", 3, "Processes per fast variant, run in rounds with the other "
                     "variants' (ours, PyTorch, ours, PyTorch...); the table shows the fastest "
                     "and the range. On a shared virtual machine the cores run at full or at "
                     "half speed for minutes at a time, so one process per variant can mislead "
                     "by 2x; the fastest of several is the unthrottled speed.")
flags.DEFINE_string("worker", None, "Internal: run one variant and print its JSON result.")

CLASSES = 100
SLOW_VARIANTS = ("keras_native", "tf_keras_app")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _keras_worker(variant, model_name, size, batch, warmup, steps):
    import numpy as np
    import tensorflow as tf
    if variant == "tf_keras_app":
        import tf_keras as keras
        model = getattr(keras.applications, model_name)(
            weights=None, classes=CLASSES, input_shape=(size, size, 3))
    else:
        import keras
        import regnet_keras
        implementation = "keras" if variant == "keras_native" else "auto"
        model = regnet_keras.build_model(model_name, classes=CLASSES, input_shape=(size, size, 3),
                                         grouped_conv_implementation=implementation,
                                         fused_batch_norm_training=variant == "ours")
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                  loss=keras.losses.SparseCategoricalCrossentropy())
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    labels = rng.integers(0, CLASSES, batch)
    data = tf.data.Dataset.from_tensors((images, labels)).repeat()
    model.fit(data, steps_per_epoch=warmup, epochs=1, verbose=0)
    start, cpu_start = time.perf_counter(), time.process_time()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    train = batch * steps / (time.perf_counter() - start)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / steps
    many = np.repeat(images, 8, axis=0)
    model.predict(many, batch_size=batch, verbose=0)
    start = time.perf_counter()
    model.predict(many, batch_size=batch, verbose=0)
    predict = len(many) / (time.perf_counter() - start)
    return {"train": train, "cpu_ms": cpu_ms, "predict": predict, "rss_mb": _peak_rss_mb()}


def _pytorch_worker(model_name, size, batch, warmup, steps):
    import torch
    import regnet_keras
    from benchmarks.pytorch_regnet import RegNet
    torch.manual_seed(0)
    model = RegNet(regnet_keras.get_config(model_name), CLASSES).to(
        memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, nesterov=True)
    images = torch.rand(batch, 3, size, size).to(memory_format=torch.channels_last)
    labels = torch.randint(0, CLASSES, (batch,))
    for step in range(warmup + steps):
        if step == warmup:
            start, cpu_start = time.perf_counter(), time.process_time()
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    train = batch * steps / (time.perf_counter() - start)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / steps
    model.eval()
    with torch.no_grad():
        model(images)
        start = time.perf_counter()
        for _ in range(8):
            model(images)
    predict = 8 * batch / (time.perf_counter() - start)
    return {"train": train, "cpu_ms": cpu_ms, "predict": predict, "rss_mb": _peak_rss_mb()}


def _run_worker(spec):
    variant, model_name, size = spec.split(":")
    size = int(size)
    steps = FLAGS.slow_steps if variant in SLOW_VARIANTS else FLAGS.steps
    warmup = 1 if variant in SLOW_VARIANTS else FLAGS.warmup_steps
    if variant == "pytorch":
        result = _pytorch_worker(model_name, size, FLAGS.batch_size, warmup, steps)
    else:
        result = _keras_worker(variant, model_name, size, FLAGS.batch_size, warmup, steps)
    print("RESULT " + json.dumps(result))


def _measure(variant, model_name, size):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-m", "benchmarks.train_throughput",
               f"--worker={variant}:{model_name}:{size}", f"--batch_size={FLAGS.batch_size}",
               f"--steps={FLAGS.steps}", f"--slow_steps={FLAGS.slow_steps}",
               f"--warmup_steps={FLAGS.warmup_steps}"]
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
    print(f"  {variant} {model_name} {size}: failed: {reason}", file=sys.stderr)
    return None


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def main(_):
    if FLAGS.worker:
        _run_worker(FLAGS.worker)
        return
    variants = [v for v in FLAGS.variants if v != "pytorch" or _have_torch()]
    if "pytorch" in FLAGS.variants and "pytorch" not in variants:
        print("torch is not installed (pip install torch==2.13.0): PyTorch column skipped.")
    header = (f"{'model':11s} {'size':>4s} {'variant':13s} {'train img/s':>11s} "
              f"{'range':>11s} {'CPU ms/step':>11s} {'vs PyTorch':>10s} {'vs native':>9s} "
              f"{'peak RSS MB':>11s} {'predict img/s':>13s} {'predict vs native':>17s}")
    print(f"batch {FLAGS.batch_size}, {CLASSES} classes, float32, {os.cpu_count()} CPU cores")
    print(header)
    print("-" * len(header))
    for model_name in FLAGS.models:
        for size in (int(s) for s in FLAGS.sizes):
            results = _measure_interleaved(variants, model_name, size)
            torch_result, native = results.get("pytorch"), results.get("keras_native")
            for variant, result in results.items():
                if result is None:
                    continue
                vs_torch = (f"{result['train'] / torch_result['train']:9.2f}x"
                            if torch_result else f"{'-':>10s}")
                vs_native = (f"{result['train'] / native['train']:8.1f}x"
                             if native else f"{'-':>9s}")
                predict_vs_native = (f"{result['predict'] / native['predict']:16.2f}x"
                                     if native else f"{'-':>17s}")
                spread = f"{result['train_min']:.0f}-{result['train_max']:.0f}"
                print(f"{model_name:11s} {size:4d} {variant:13s} {result['train']:11.1f} "
                      f"{spread:>11s} {result['cpu_ms']:11.0f} {vs_torch} {vs_native} "
                      f"{result['rss_mb']:11.0f} {result['predict']:13.1f} {predict_vs_native}",
                      flush=True)


def _measure_interleaved(variants, model_name, size):
    """Runs every variant once per round (the slow XLA-bound ones in the first round only) and
    keeps each variant's fastest process, so that every variant gets the same chances of running
    while the machine is at full speed."""
    runs = {variant: [] for variant in variants}
    for round_index in range(max(1, FLAGS.repeats)):
        for variant in variants:
            if round_index and variant in SLOW_VARIANTS:
                continue
            result = _measure(variant, model_name, size)
            if result is not None:
                runs[variant].append(result)
    return {variant: _fastest(results) if results else None for variant, results in runs.items()}


def _fastest(results):
    train = [r["train"] for r in results]
    best = max(results, key=lambda r: r["train"])
    return {**best, "train_min": min(train), "train_max": max(train),
            "predict": max(r["predict"] for r in results),
            "rss_mb": max(r["rss_mb"] for r in results)}


if __name__ == "__main__":
    app.run(main)
