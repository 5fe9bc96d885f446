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
Inference, Keras variants: `regnet_keras.inference.predict` ("predict": batch normalization
folded into the convolutions inside its compiled function), and Keras' own `model.predict`
("keras predict").
PyTorch: `model.eval()` under `torch.no_grad()`, given the same work as the Keras model does
in its graph: ImageNet mean/std normalisation of the 0-255 images before the network and a
softmax after it (what a PyTorch scoring loop does around a torchvision RegNet).
Training: Keras `train_on_batch` (the step `fit` runs) with the optimizer built first, as
regnet_keras' training loop builds it; PyTorch's loop with SGD. Memory is the process's peak RSS
above its import baseline (the peak after importing the framework, NumPy and regnet_keras), read
after inference ("predict MB") and after training ("train MB").

The machine's speed drifts by up to 2x for minutes at a time, so the variants' processes run side
by side in lockstep: one inference pass or one training step at a time, every variant in turn
(the order reversed at every turn), each process idle while another works, with a pause of
--settle_seconds before each command so that the previous process's threads are idle. A slow
spell then falls on every variant alike. Every figure is the median across --repeats rounds (fresh
processes each) with its range; a ratio to PyTorch is the median of the per-round ratios, with
their range.
"""

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from benchmarks import measurement

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
flags.DEFINE_integer("repeats", 5, "Rounds: fresh processes of every variant, run in lockstep. "
                     "The XLA-bound variants run in the first round only.")
flags.DEFINE_float("settle_seconds", 0.3, "Pause before each command to a worker, so that the "
                   "previous worker's threads are idle.")
flags.DEFINE_string("worker", None, "Internal: serve one variant's commands.")

CLASSES = 100
SLOW_VARIANTS = ("keras_native", "tf_keras_app")
PEER = "pytorch"


def _images(size, count):
    import numpy as np
    # float32 from the start: a float64 draw would add a transient copy to the peak.
    return np.random.default_rng(0).random((count, size, size, 3), dtype=np.float32) * 255


def _timed(run):
    start, cpu_start = time.perf_counter(), time.process_time()
    run()
    return {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu_start}


class _KerasSession:
    """One Keras variant in its worker process: inference passes, then training steps."""

    def __init__(self, variant, model_name, size):
        # regnet_keras before TensorFlow, as users import it: it turns on TensorFlow's oneDNN.
        import regnet_keras
        import numpy as np  # noqa: F401  (in the baseline)
        import tensorflow  # noqa: F401  (in the baseline)
        if variant == "tf_keras_app":
            import tf_keras as keras
        else:
            import keras
        self.keras, self.variant, self.size = keras, variant, size
        self.baseline = measurement.peak_rss_mb()
        if variant == "tf_keras_app":
            self.model = getattr(keras.applications, model_name)(
                weights=None, classes=CLASSES, input_shape=(size, size, 3))
        else:
            implementation = "keras" if variant == "keras_native" else "auto"
            self.model = regnet_keras.build_model(
                model_name, classes=CLASSES, input_shape=(size, size, 3),
                grouped_conv_implementation=implementation,
                fused_batch_norm_training=variant == "ours")
        # The inference images live only until training starts, so that its peak leaves them out.
        self.images = _images(size, FLAGS.predict_images)

    def predict_pass(self):
        if self.variant == "tf_keras_app":
            return None
        from regnet_keras import inference
        return _timed(lambda: inference.predict(self.model, self.images, FLAGS.batch_size))

    def keras_predict_pass(self):
        return _timed(lambda: self.model.predict(self.images, batch_size=FLAGS.batch_size,
                                                 verbose=0))

    def start_training(self):
        import numpy as np
        import tensorflow as tf
        keras, model = self.keras, self.model
        self.images = None
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                      loss=keras.losses.SparseCategoricalCrossentropy())
        # Built here, as regnet_keras' training loop does: left to Keras, the optimizer creates
        # its variables inside the first trace of the train step, which makes tf.function trace
        # the whole forward and backward pass a second time and keep both graphs.
        model.optimizer.build(model.trainable_variables)
        self.batch = (tf.constant(_images(self.size, FLAGS.batch_size)),
                      tf.constant(np.random.default_rng(0).integers(0, CLASSES, FLAGS.batch_size)))
        for _ in range(1 if self.variant in SLOW_VARIANTS else FLAGS.warmup_steps):
            self.train_step()

    def train_step(self):
        return _timed(lambda: self.model.train_on_batch(*self.batch))


class _PyTorchSession:
    """The same architecture in PyTorch: eval() under no_grad(), then SGD steps."""

    def __init__(self, variant, model_name, size):
        import regnet_keras
        import numpy as np  # noqa: F401  (in the baseline, as on the Keras side)
        import torch
        from benchmarks.pytorch_regnet import RegNet
        from regnet_keras.preprocessing import IMAGENET_MEAN, IMAGENET_STD
        self.torch, self.size = torch, size
        self.baseline = measurement.peak_rss_mb()
        torch.manual_seed(0)
        self.model = RegNet(regnet_keras.get_config(model_name), CLASSES).to(
            memory_format=torch.channels_last)
        images = torch.from_numpy(_images(size, FLAGS.predict_images)).permute(0, 3, 1, 2)
        self.images = images.contiguous(memory_format=torch.channels_last)
        # The Keras model normalises 0-255 pixels and ends in a softmax; PyTorch's loop does both.
        self.mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1) * 255
        self.std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1) * 255

    def predict_pass(self):
        torch, batch = self.torch, FLAGS.batch_size

        def run():
            with torch.no_grad():
                for start in range(0, len(self.images), batch):
                    logits = self.model((self.images[start:start + batch] - self.mean) / self.std)
                    logits.softmax(1).numpy()
        self.model.eval()
        return _timed(run)

    def keras_predict_pass(self):
        return None

    def start_training(self):
        torch = self.torch
        self.images = None
        self.model.train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), 0.1, momentum=0.9,
                                         nesterov=True)
        self.batch = (torch.rand(FLAGS.batch_size, 3, self.size, self.size).to(
            memory_format=torch.channels_last), torch.randint(0, CLASSES, (FLAGS.batch_size,)))
        for _ in range(FLAGS.warmup_steps):
            self.train_step()

    def train_step(self):
        def run():
            self.optimizer.zero_grad(set_to_none=True)
            images, labels = self.batch
            self.torch.nn.functional.cross_entropy(self.model(images), labels).backward()
            self.optimizer.step()
        return _timed(run)


def _serve(spec):
    """The worker: builds its session, then answers the coordinator's commands one per line."""
    variant, model_name, size = spec.split(":")
    session = (_PyTorchSession if variant == PEER else _KerasSession)(
        variant, model_name, int(size))
    commands = {"predict_pass": session.predict_pass,
                "keras_predict_pass": session.keras_predict_pass,
                "start_training": session.start_training, "train_step": session.train_step,
                "peak_mb": lambda: measurement.peak_rss_mb() - session.baseline}
    measurement.print_result(session.baseline)
    for line in sys.stdin:
        measurement.print_result(commands[line.strip()]())


class _Worker:
    """A variant's process; `call` sends a command and returns its answer (None once failed)."""

    def __init__(self, variant, model_name, size):
        self.name = f"{variant} {model_name} {size}"
        self.errors = tempfile.TemporaryFile(mode="w+")
        command = [sys.executable, "-m", "benchmarks.train_throughput",
                   f"--worker={variant}:{model_name}:{size}", f"--batch_size={FLAGS.batch_size}",
                   f"--warmup_steps={FLAGS.warmup_steps}",
                   f"--predict_images={FLAGS.predict_images}"]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors,
            text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        self.failed = False

    def call(self, command=None):
        if self.failed:
            return None
        try:
            if command:
                # The previous worker's threads wind down for a moment after it answers
                # (TensorFlow's kept working long enough to slow PyTorch's next step by 5-9%).
                time.sleep(FLAGS.settle_seconds)
                self.process.stdin.write(command + "\n")
                self.process.stdin.flush()
            for line in self.process.stdout:
                if line.startswith(measurement.RESULT_PREFIX):
                    return json.loads(line[len(measurement.RESULT_PREFIX):])
        except BrokenPipeError:
            pass
        self.failed = True
        self.process.wait()
        self.errors.seek(0)
        reason = (self.errors.read().strip().splitlines() or ["no output"])[-1]
        print(f"  {self.name}: failed: {reason}", file=sys.stderr)
        return None

    def close(self):
        if not self.failed:
            self.process.stdin.close()
            self.process.wait()
        self.errors.close()


def _lockstep(workers, command, repeats, round_index):
    """Runs `command` `repeats` times on every worker, one worker at a time, the order reversed
    at every repetition: a slow spell of the machine then falls on every variant alike."""
    answers = {variant: [] for variant in workers}
    for repetition in range(repeats):
        order = list(workers) if (round_index + repetition) % 2 == 0 else list(workers)[::-1]
        for variant in order:
            answers[variant].append(workers[variant].call(command))
    return answers


def _median_rate(timings, count):
    """Items per second over the median wall time, or None unless every timing exists."""
    if not timings or not all(timings):
        return None
    return count / statistics.median(t["wall"] for t in timings)


def _run_round(variants, model_name, size, round_index):
    """One result per variant ({figure: value}, or None where the process failed)."""
    workers = {variant: _Worker(variant, model_name, size) for variant in variants}
    results = {variant: {"import_mb": worker.call()} for variant, worker in workers.items()}
    # Inference: one untimed pass, then --predict_passes timed ones, pass by pass in turn.
    for command, key in (("predict_pass", "predict"), ("keras_predict_pass", "keras_predict")):
        answers = _lockstep(workers, command, 1 + FLAGS.predict_passes, round_index)
        for variant, timings in answers.items():
            results[variant][key] = _median_rate(timings[1:], FLAGS.predict_images)
        if key == "predict":
            for variant, worker in workers.items():
                results[variant]["predict_mb"] = worker.call("peak_mb")
    for worker in workers.values():
        worker.call("start_training")
    # Training: step by step in turn; the slow variants stop after --slow_steps.
    steps = {variant: [] for variant in variants}
    for step in range(FLAGS.steps):
        active = {variant: worker for variant, worker in workers.items()
                  if variant not in SLOW_VARIANTS or step < FLAGS.slow_steps}
        for variant, timings in _lockstep(active, "train_step", 1, round_index + step).items():
            steps[variant] += timings
    for variant, worker in workers.items():
        timings = steps[variant]
        if timings and all(timings):
            results[variant]["train"] = FLAGS.batch_size * len(timings) / sum(
                t["wall"] for t in timings)
            results[variant]["cpu_ms"] = 1000 * statistics.mean(t["cpu"] for t in timings)
        results[variant]["train_mb"] = worker.call("peak_mb")
        worker.close()
    return {variant: None if workers[variant].failed else result
            for variant, result in results.items()}


def _have_torch() -> bool:
    # Without importing it: the parent process would hold torch's memory for the whole run.
    return importlib.util.find_spec("torch") is not None


def _measure_rounds(variants, model_name, size):
    """{variant: [one result per round, or None where the process failed]}."""
    rounds = {variant: [] for variant in variants}
    for round_index in range(max(1, FLAGS.repeats)):
        running = [v for v in variants if not (round_index and v in SLOW_VARIANTS)]
        for variant, result in _run_round(running, model_name, size, round_index).items():
            rounds[variant].append(result)
    return rounds


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
        return measurement.spread(_ratios(results, peer_results, key), 2) if peer_results else "-"
    return [measurement.spread(_figure(results, "train"), 1), ratio("train"),
            measurement.spread(_figure(results, "predict"), 1), ratio("predict"),
            measurement.spread(_figure(results, "keras_predict"), 1), measurement.spread(_figure(results, "cpu_ms")),
            measurement.spread(_figure(results, "import_mb")), measurement.spread(_figure(results, "predict_mb")),
            ratio("predict_mb"), measurement.spread(_figure(results, "train_mb")), ratio("train_mb")]


def main(_):
    if FLAGS.worker:
        _serve(FLAGS.worker)
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
