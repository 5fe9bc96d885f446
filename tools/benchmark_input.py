"""Does the input pipeline keep up? Times a preset's training step with and without it.

    python -m tools.benchmark_input [--preset quick] [--steps 60]
    python -m tools.benchmark_input --dataset folder --data_dir PHOTOS --model RegNetX002 \\
        --image_size 224 --batch_size 32 --steps 12

Prints the time to open the data (for image folders: building or finding the image cache, see
--image_cache), then three figures: the pipeline alone (ms per batch, no model; with the CPU
time it takes), the training step on one batch held in memory (no pipeline), and the training
step fed by the pipeline. When the last two agree, the pipeline never starves the model. The
held and fed steps are timed in alternating rounds (--rounds) and their medians compared, so
that a machine whose load changes meanwhile affects both alike. Each held round starts once the
pipeline has refilled its prefetch buffers and gone idle (so it never shares the cores with the
pipeline), and each fed round first drains those buffers untimed (so it is timed in the steady
state of training, the pipeline producing while the model trains).
"""

import json
import statistics
import time

from absl import flags

from tools import train as train_tool
from tools import cli

FLAGS = flags.FLAGS
flags.DEFINE_integer("steps", 60, "Timed steps of each measurement (after 5 warm-up steps).")
flags.DEFINE_integer("rounds", 3, "Alternating rounds of held and fed steps; --steps is "
                     "divided among them.")
flags.DEFINE_bool("result_line", False, "Also print the figures as one 'RESULT {json}' line "
                  "(for benchmarks/input_pipeline.py).")

WARM_UP_STEPS = 5
# Untimed fed steps at the start of each fed round: they consume the batches the prefetch
# buffers filled while the held round ran, which would otherwise arrive for free.
DRAIN_STEPS = 5
# Seconds the pipeline is given before each held round to refill its buffers and go idle (it
# makes a batch in about 0.1 s of CPU, and its buffers hold a few).
SETTLE_SECONDS = 3.0


def _timed(function, steps):
    """(wall seconds, process CPU seconds) per call, over `steps` calls."""
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(steps):
        function()
    return ((time.perf_counter() - started) / steps,
            (time.process_time() - cpu_started) / steps)


def _batches(pipeline, batch_size, count):
    """At least `count` training batches, epoch after epoch, prefetched across epoch ends."""
    import tensorflow as tf
    per_epoch = pipeline.steps_per_epoch(batch_size)
    epochs = -(-count // per_epoch)
    ds = pipeline.dataset(0, 0, batch_size)
    for epoch in range(1, epochs):
        ds = ds.concatenate(pipeline.dataset(epoch, 0, batch_size))
    return iter(ds.prefetch(tf.data.AUTOTUNE))


def main(argv):
    del argv
    import tensorflow as tf
    from regnet_keras.keras_backend import get_keras
    from regnet_keras.training import data as data_lib
    from regnet_keras.training import loop as training
    config = train_tool.train_config_from_flags()
    strategy = tf.distribute.get_strategy()
    started = time.perf_counter()
    source = train_tool.open_source(config)
    open_seconds = time.perf_counter() - started
    print(f"data opened in {open_seconds:.1f} s ({source.train.num_examples} training, "
          f"{source.held_out.num_examples} held-out images)", flush=True)
    # The batches and the step of tools.train with the same flags (the automatic augmentation,
    # MixUp/CutMix and training crops included; a teacher is not run).
    pipeline = data_lib.TrainPipeline(source, config.crop_size, config.augmentation,
                                      config.seed, auto_augment=config.auto_augment,
                                      mixing=config.mixing)
    steps, rounds = max(1, FLAGS.steps), max(1, FLAGS.rounds)
    per_round = max(1, steps // rounds)
    total = pipeline.steps_per_epoch(config.batch_size) * config.epochs
    get_keras().utils.set_random_seed(config.seed)
    model = training.build_model(config, source.num_classes, config.crop_size)
    optimizer, _ = training.make_optimizer(config, total, 0)
    train_step = training.make_train_step(model, optimizer, config, source.num_classes,
                                          strategy)

    alone_batches = _batches(pipeline, config.batch_size, WARM_UP_STEPS + steps)
    _timed(lambda: next(alone_batches), WARM_UP_STEPS)
    pipeline_only, pipeline_cpu = _timed(lambda: next(alone_batches), steps)
    batches = _batches(pipeline, config.batch_size,
                       1 + WARM_UP_STEPS + (DRAIN_STEPS + per_round) * rounds)
    images, labels = next(batches)
    _timed(lambda: float(train_step(images, labels)[0]), WARM_UP_STEPS)
    _timed(lambda: float(train_step(*next(batches))[0]), WARM_UP_STEPS)
    held, fed = [], []
    for _ in range(rounds):
        time.sleep(SETTLE_SECONDS)
        held.append(_timed(lambda: float(train_step(images, labels)[0]), per_round)[0])
        _timed(lambda: float(train_step(*next(batches))[0]), DRAIN_STEPS)
        fed.append(_timed(lambda: float(train_step(*next(batches))[0]), per_round)[0])
    in_memory, with_pipeline = statistics.median(held), statistics.median(fed)
    model_name = config.model if isinstance(config.model, str) else type(config.model).__name__
    batch = config.batch_size
    print(f"{model_name} at {config.crop_size}px, batch {batch}, "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'all'} threads")
    print(f"input pipeline alone:        {pipeline_only * 1000:7.1f} ms/batch "
          f"({batch / pipeline_only:.0f} img/s; {pipeline_cpu * 1000:.0f} ms of CPU)")
    print(f"training step, no pipeline:  {in_memory * 1000:7.1f} ms/step "
          f"({batch / in_memory:.0f} img/s)")
    print(f"training step with pipeline: {with_pipeline * 1000:7.1f} ms/step "
          f"({batch / with_pipeline:.0f} img/s; {with_pipeline / in_memory:.2f}x the step "
          "without)")
    if FLAGS.result_line:
        report = source.cache_report
        # The line benchmarks.measurement.run_worker reads.
        print("RESULT " + json.dumps({
            "model": model_name, "image_size": config.image_size, "batch_size": batch,
            "open_seconds": open_seconds,
            "images": source.train.num_examples + source.held_out.num_examples,
            "cache_built": report.built if report else None,
            "cache_reused": report.reused if report else None,
            "cache_bytes": report.total_bytes if report else None,
            "pipeline_ms": pipeline_only * 1000, "pipeline_cpu_ms": pipeline_cpu * 1000,
            "held_ms": in_memory * 1000, "fed_ms": with_pipeline * 1000,
            "held_rounds_ms": [h * 1000 for h in held],
            "fed_rounds_ms": [f * 1000 for f in fed]}), flush=True)


if __name__ == "__main__":
    cli.run(main)
