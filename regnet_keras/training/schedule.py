"""The reference recipe's learning rate: linear warmup from a fraction of the peak, then cosine to 0.

pycls scales the peak by the batch size (0.1 per 128 images) and warms up over the first epochs
from 0.1x; both are arguments here. Fine-tuning prepends a phase of `head_steps` at a constant
`head_lr` (the new classifier trains alone on a frozen backbone); the warmup and cosine then
run over the remaining steps. Pure Python for the values, and a Keras schedule for the
optimizer, so tests and logs see the same numbers training uses.
"""

from __future__ import annotations

import math

REFERENCE_LR_PER_128 = 0.1
WARMUP_START_FACTOR = 0.1


def scaled_learning_rate(global_batch_size: int, lr_per_128: float = REFERENCE_LR_PER_128) -> float:
    """The linear scaling rule: lr_per_128 x global_batch_size / 128."""
    return lr_per_128 * global_batch_size / 128.0


def learning_rate_at(step: int, peak: float, total_steps: int, warmup_steps: int,
                     warmup_start_factor: float = WARMUP_START_FACTOR, head_steps: int = 0,
                     head_lr: float = 0.0) -> float:
    """Learning rate of optimizer step `step` (0-based)."""
    if step < head_steps:
        return head_lr
    step, total_steps = step - head_steps, total_steps - head_steps
    if warmup_steps > 0 and step < warmup_steps:
        fraction = step / warmup_steps
        return peak * (warmup_start_factor + (1.0 - warmup_start_factor) * fraction)
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))


def keras_schedule(peak: float, total_steps: int, warmup_steps: int,
                   warmup_start_factor: float = WARMUP_START_FACTOR, head_steps: int = 0,
                   head_lr: float = 0.0):
    """The same curve as a Keras LearningRateSchedule (evaluated on optimizer.iterations)."""
    from regnet_keras.keras_backend import get_keras
    keras = get_keras()

    class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self, peak, total_steps, warmup_steps, warmup_start_factor,
                     head_steps=0, head_lr=0.0):
            self.head_steps = int(head_steps)
            self.head_lr = float(head_lr)
            self.peak = float(peak)
            self.total_steps = int(total_steps)
            self.warmup_steps = int(warmup_steps)
            self.warmup_start_factor = float(warmup_start_factor)

        def __call__(self, step):
            import tensorflow as tf
            absolute = tf.cast(step, tf.float32)
            step = absolute - self.head_steps
            warmup = float(max(self.warmup_steps, 1))
            warming = self.peak * (self.warmup_start_factor +
                                   (1.0 - self.warmup_start_factor) * step / warmup)
            decay_steps = float(max(1, self.total_steps - self.head_steps - self.warmup_steps))
            progress = tf.minimum(1.0, (step - self.warmup_steps) / decay_steps)
            cosine = self.peak * 0.5 * (1.0 + tf.cos(math.pi * progress))
            curve = cosine if self.warmup_steps <= 0 else tf.where(
                step < self.warmup_steps, warming, cosine)
            if self.head_steps <= 0:
                return curve
            return tf.where(absolute < self.head_steps, self.head_lr, curve)

        def get_config(self):
            return {"peak": self.peak, "total_steps": self.total_steps,
                    "warmup_steps": self.warmup_steps,
                    "warmup_start_factor": self.warmup_start_factor,
                    "head_steps": self.head_steps, "head_lr": self.head_lr}

    return WarmupCosine(peak, total_steps, warmup_steps, warmup_start_factor, head_steps,
                        head_lr)
