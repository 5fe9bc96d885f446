"""An exponential moving average (EMA) of a model's weights, for evaluation and the saved models.

The trainable weights are averaged by the optimizer itself (Keras' `use_ema`, `ema_momentum`):
their averages are optimizer variables, so the training checkpoint carries them. Keras averages
nothing else, and a network evaluated with averaged weights but the raw run's BatchNormalization
statistics mixes two networks; so the non-trainable weights (those statistics) get an average of
the same decay here, as torchvision's ExponentialMovingAverage does with `use_buffers=True`.

The decay warms up as TensorFlow's tf.train.ExponentialMovingAverage(num_updates=n) and timm's
EMA warm it up: min(decay, (1 + n) / (10 + n)) at the update after n steps. With a fixed 0.999,
the average after the first epoch of Fashion-MNIST (468 steps) would still be 63% the weights of
the first step, and every evaluation of the early epochs would score chance.
"""

from __future__ import annotations


class WeightAverage:
    """The EMA of `model`'s weights: the optimizer's for the trainable ones (built with
    use_ema), ours for the others. Create it in the strategy's scope; checkpoint `variables`;
    call `before_step` and `after_step` around each optimizer step (cross-replica context)."""

    def __init__(self, model, optimizer, decay: float):
        import tensorflow as tf
        self.decay = decay
        # Keras multiplies its averages by `ema_momentum` at every step: a variable there is
        # read at each step, which is how the warm-up reaches the optimizer's average.
        self.current_decay = tf.Variable(0.0, trainable=False, name="ema_decay",
                                         aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        optimizer.ema_momentum = self.current_decay
        self.sources = list(model.non_trainable_variables)
        self.variables = [
            tf.Variable(tf.identity(v.value), trainable=False, name=f"average_{i}",
                        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            for i, v in enumerate(self.sources)]

    def before_step(self, iterations):
        """Sets the decay of the update that follows `iterations` optimizer steps."""
        import tensorflow as tf
        steps = tf.cast(iterations, tf.float32)
        self.current_decay.assign(tf.minimum(self.decay, (1.0 + steps) / (10.0 + steps)))

    def after_step(self, iterations):
        """Averages the non-trainable weights; the first step copies them, as Keras' does."""
        import tensorflow as tf
        decay = tf.where(iterations > 1, self.current_decay, 0.0)
        for average, source in zip(self.variables, self.sources):
            value = tf.cast(source.value, tf.float32)
            blended = decay * tf.cast(average, tf.float32) + (1.0 - decay) * value
            average.assign(tf.cast(blended, average.dtype))


def copy_averaged(model, optimizer, average: WeightAverage | None, target):
    """Sets `target`'s weights to `model`'s averaged ones (its raw ones when `average` is None:
    no EMA), leaving `model` as it was. `target`: another model of `model`'s architecture, at
    any input size."""
    import tensorflow as tf
    if target is model:
        raise ValueError("copy_averaged needs a target model apart from the trained one.")
    replaced = ({id(v): a for v, a in zip(average.sources, average.variables)}
                if average is not None else {})
    trainable = list(model.trainable_variables)
    raw = [tf.identity(v.value) for v in trainable] if average is not None else []
    if average is not None:
        optimizer.finalize_variable_values(trainable)  # Keras: each trainable <- its average
    try:
        for source, destination in zip(model.weights, target.weights, strict=True):
            value = tf.convert_to_tensor(replaced.get(id(source), source))
            destination.assign(tf.cast(value, destination.dtype))
    finally:
        for variable, value in zip(trainable, raw):
            variable.assign(value)
