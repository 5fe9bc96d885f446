"""Training progress for loops that Keras' `fit` runs (tools.qat's tf-keras fine-tuning): the
lines and bar of the training loop's Progress, one fit per epoch."""


def progress_callback(keras, progress, epoch: int, epochs: int, steps_per_epoch: int,
                      learning_rate):
    """A callback of `keras` (Keras 3 or tf-keras) for epoch `epoch`'s fit that reports each
    step to `progress` (a training.loop.Progress over all epochs): step, epoch, loss, top-1
    (the metric named "top1"), learning rate (`learning_rate(step)`), ms/step and ETA."""

    class ProgressLines(keras.callbacks.Callback):
        def on_epoch_begin(self, _, logs=None):
            progress.epoch_start(epoch, epochs, 0)

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            step = epoch * steps_per_epoch + batch + 1
            progress.update(step, epoch, float(logs.get("loss", float("nan"))),
                            float(logs.get("top1", float("nan"))),
                            float(learning_rate(step)))

    return ProgressLines()
