"""Does the input pipeline keep up? Times a preset's training step with and without it.

    python -m tools.benchmark_input [--preset quick] [--steps 60]

Prints three figures: the pipeline alone (ms per batch, no model), the training step on one
batch held in memory (no pipeline), and the training step fed by the pipeline. When the last two
agree, the pipeline never starves the model.
"""

import time

from absl import app, flags, logging

from tools import train as train_tool
from tools import backend as tool_backend

FLAGS = flags.FLAGS
flags.DEFINE_integer("steps", 60, "Timed steps of each measurement (after 5 warm-up steps).")


def _timed(function, steps):
    for _ in range(5):
        function()
    started = time.perf_counter()
    for _ in range(steps):
        function()
    return (time.perf_counter() - started) / steps


def main(argv):
    tool_backend.exit_unless_tensorflow("tools.benchmark_input")
    del argv
    logging.set_verbosity(logging.WARNING)
    import tensorflow as tf
    from regnet_keras.training import data as data_lib
    from regnet_keras.training import loop as training
    from regnet_keras.keras_backend import get_keras
    config = train_tool.train_config_from_flags()
    strategy = tf.distribute.get_strategy()
    source = data_lib.open_source(config.dataset, config.data_dir,
                                  holdout_fraction=config.holdout_fraction,
                                  corrupt_images=config.corrupt_images)
    pipeline = data_lib.TrainPipeline(source, config.image_size, config.augmentation,
                                      config.seed)
    steps = FLAGS.steps
    total = pipeline.steps_per_epoch(config.batch_size) * config.epochs
    get_keras().utils.set_random_seed(config.seed)
    model = training.build_model(config, source.num_classes)
    optimizer, _ = training.make_optimizer(config, total, 0)
    train_step = training.make_train_step(model, optimizer, config, source.num_classes,
                                          strategy)

    batches = iter(pipeline.dataset(0, 0, config.batch_size).repeat())
    pipeline_only = _timed(lambda: next(batches), steps)
    images, labels = next(batches)
    in_memory = _timed(lambda: float(train_step(images, labels)[0]), steps)
    fed = _timed(lambda: float(train_step(*next(batches))[0]), steps)
    model_name = config.model if isinstance(config.model, str) else type(config.model).__name__
    print(f"{model_name} at {config.image_size}px, batch {config.batch_size}, "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'all'} threads")
    print(f"input pipeline alone:        {pipeline_only * 1000:7.1f} ms/batch")
    print(f"training step, no pipeline:  {in_memory * 1000:7.1f} ms/step "
          f"({config.batch_size / in_memory:.0f} img/s)")
    print(f"training step with pipeline: {fed * 1000:7.1f} ms/step "
          f"({config.batch_size / fed:.0f} img/s)")


if __name__ == "__main__":
    app.run(main)
