"""The training recipe against the `long` preset on Fashion-MNIST, and each ingredient's share.

    python -m benchmarks.recipe_ablation [--arms long,recipe_v2,...] [--seeds 0,1,2]
        [--epochs N] [--output_dir runs/recipe_ablation]

Each arm is a tools.train command (below) run once per seed, one run at a time, each in its own
model directory under --output_dir: an interrupted benchmark resumes where it stopped, and runs
already finished are read, not repeated. --epochs overrides every arm's (40 in both presets) for
shorter comparisons. Prints, per arm, the test top-1 of each seed, their mean and standard
deviation, and each run's wall time and peak memory (the tools.train process's maximum RSS).
"""

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags

FLAGS = flags.FLAGS
# tools.train flags of each arm; "recipe_v2-X" arms leave one ingredient out.
ARMS = {
    "long": ["--preset", "long"],
    "recipe_v2": ["--preset", "recipe_v2"],
    "recipe_v2-ema": ["--preset", "recipe_v2", "--ema_decay", "0"],
    "recipe_v2-mixing": ["--preset", "recipe_v2", "--mixup_alpha", "0", "--cutmix_alpha", "0"],
    "recipe_v2-auto_augment": ["--preset", "recipe_v2", "--auto_augment", "none"],
    # The one ingredient that did not cost accuracy at 8 epochs, on `long` alone.
    "long+ema": ["--preset", "long", "--ema_decay", "0.999"],
}
flags.DEFINE_list("arms", list(ARMS), f"Arms to run, of {list(ARMS)}.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of each arm.")
flags.DEFINE_integer("epochs", None, "Epochs of every arm (default: each preset's).")
flags.DEFINE_string("output_dir", os.path.join("runs", "recipe_ablation"),
                    "Where the runs' model directories go.")


def _train(arm, seed, model_dir):
    """Runs (or resumes, or finds finished) one arm's run; its run.json, wall seconds and peak
    RSS in MB (None for a run finished earlier)."""
    command = [sys.executable, "-m", "tools.train", *ARMS[arm], "--seed", str(seed),
               "--model_dir", model_dir, "--noevaluate"]
    if FLAGS.epochs:
        command += ["--epochs", str(FLAGS.epochs)]
    started = time.time()
    process = subprocess.Popen(command, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                               stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)  # this child's own peak memory
    if os.waitstatus_to_exitcode(status) != 0:
        raise app.UsageError(f"{arm} seed {seed} failed: {' '.join(command)}")
    with open(os.path.join(model_dir, "run.json")) as file:
        info = json.load(file)
    return info, time.time() - started, usage.ru_maxrss / 1024


def main(argv):
    del argv
    unknown = sorted(set(FLAGS.arms) - set(ARMS))
    if unknown:
        raise app.UsageError(f"unknown arms {unknown}: choose from {list(ARMS)}.")
    rows = []
    for arm in FLAGS.arms:
        results = []
        for seed in FLAGS.seeds:
            model_dir = os.path.join(FLAGS.output_dir, f"{arm}_e{FLAGS.epochs or 'preset'}"
                                     f"_seed{seed}")
            info, seconds, peak_mb = _train(arm, int(seed), model_dir)
            results.append((info["test_top1"], info.get("train_seconds_last_session"), peak_mb))
            print(f"{arm} seed {seed}: top-1 {info['test_top1']:.4f}, {seconds / 60:.1f} min, "
                  f"peak {peak_mb:.0f} MB", flush=True)
        rows.append((arm, results))
    print("\n| arm | epochs | top-1 per seed | mean | std | train min per run | peak MB |")
    print("|---|---|---|---|---|---|---|")
    for arm, results in rows:
        top1 = [r[0] for r in results]
        spread = statistics.stdev(top1) if len(top1) > 1 else 0.0
        minutes = ", ".join(f"{r[1] / 60:.0f}" if r[1] else "-" for r in results)
        print(f"| {arm} | {FLAGS.epochs or 40} | {', '.join(f'{t:.4f}' for t in top1)} | "
              f"{statistics.mean(top1):.4f} | {spread:.4f} | {minutes} | "
              f"{max(r[2] for r in results):.0f} |")


if __name__ == "__main__":
    app.run(main)
