"""Where an inference process's memory goes, stage by stage, in regnet_keras and in PyTorch.

    python -m benchmarks.inference_memory [--model RegNetY002] [--size 128]

Runs both frameworks, each in a process of its own, and prints the resident memory (RSS, MB)
above the import baseline after each stage: building the model, the first batch (tracing,
graph optimisation, kernel selection; ours: `inference.predict`, batch normalization folded in
its graph), and --passes passes over --images images in batches of 32.
"""

import os
import subprocess
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "RegNetY002", "Zoo model.")
flags.DEFINE_integer("size", 128, "Input size.")
flags.DEFINE_integer("images", 64, "Images per pass.")
flags.DEFINE_integer("passes", 3, "Passes after the first batch.")
flags.DEFINE_string("worker", None, "Internal: 'ours' or 'pytorch'.")


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _report(stages):
    baseline = stages[0][1]
    for name, rss in stages:
        print(f"  {name:34s} {rss - baseline if name != 'import' else rss:8.0f}", flush=True)


def _ours():
    import regnet_keras
    import numpy as np
    import tensorflow  # noqa: F401  (in the baseline)
    from regnet_keras import inference
    stages = [("import", _rss_mb())]
    size = FLAGS.size
    model = regnet_keras.build_model(FLAGS.model, classes=100, input_shape=(size, size, 3))
    stages.append(("build", _rss_mb()))
    images = np.random.default_rng(0).random((FLAGS.images, size, size, 3), np.float32) * 255
    stages.append(("input array", _rss_mb()))
    inference.predict(model, images[:32])
    stages.append(("first batch (trace, optimise)", _rss_mb()))
    for _ in range(FLAGS.passes):
        inference.predict(model, images)
    stages.append(("passes", _rss_mb()))
    _report(stages)


def _pytorch():
    import regnet_keras
    import numpy as np
    import torch
    from benchmarks.pytorch_regnet import RegNet
    stages = [("import", _rss_mb())]
    size = FLAGS.size
    model = RegNet(regnet_keras.get_config(FLAGS.model), 100).to(
        memory_format=torch.channels_last).eval()
    stages.append(("build", _rss_mb()))
    images = torch.from_numpy(
        np.random.default_rng(0).random((FLAGS.images, size, size, 3), np.float32) * 255)
    images = images.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    stages.append(("input array", _rss_mb()))
    with torch.no_grad():
        model(images[:32])
        stages.append(("first batch", _rss_mb()))
        for _ in range(FLAGS.passes):
            for start in range(0, len(images), 32):
                model(images[start:start + 32])
    stages.append(("passes", _rss_mb()))
    _report(stages)


def main(_):
    if FLAGS.worker:
        (_ours if FLAGS.worker == "ours" else _pytorch)()
        return
    print(f"{FLAGS.model} {FLAGS.size}x{FLAGS.size}: RSS MB above the import baseline "
          "(the import row: RSS itself)")
    for worker in ("ours", "pytorch"):
        print(worker, flush=True)
        subprocess.run([sys.executable, "-m", "benchmarks.inference_memory", f"--worker={worker}",
                        f"--model={FLAGS.model}", f"--size={FLAGS.size}",
                        f"--images={FLAGS.images}", f"--passes={FLAGS.passes}"],
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), check=True)


if __name__ == "__main__":
    app.run(main)
