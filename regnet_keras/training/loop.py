"""Training a RegNet with a tf.distribute custom loop: resumable, logged, evaluated each epoch.

Why a custom loop and not Keras' `fit`: Keras 3's fit has open defects under
MultiWorkerMirroredStrategy, and a loop of our own makes the resumable state explicit: model,
optimizer (its step counter included) and the best accuracy so far are one tf.train.Checkpoint,
and the data position follows from the step (each epoch's order and augmentation are a pure
function of seed, epoch and position; see data.TrainPipeline). One code path serves the default,
Mirrored, MultiWorkerMirrored and TPU strategies.

A model directory holds:
    run.json                 the run's identity (model, data, classes...) and, once finished, its
                             results; a restart with another model or data is refused
    checkpoints/             the latest two states (written every N steps and at each epoch end)
    best.keras, final.keras  the best model on the held-out split, and the last one
    history.csv, logs/       per-epoch metrics; TensorBoard scalars
    .lock                    held by the live process writing here (see run_lock)

Fine-tuning (`weights`, see pretrained.py) starts from W's backbone, with W's design, padding and
normalisation, and a new classifier when the class count differs. Its first `freeze_epochs`
train only the classifier, at `head_lr`, with the backbone frozen and its BN layers in inference
mode (statistics unchanged); the whole network then trains on the warmup-cosine schedule.
`freeze_bn` keeps every BN layer in inference mode, its scale and offset fixed, the whole run.
W is read only when the run starts: a resumed run continues from its checkpoint.

The recipe's ingredients: the pipeline's automatic augmentation and MixUp/CutMix (data.py);
training crops of `train_image_size` while the saved model takes `image_size` (FixRes); an EMA
of the weights (weight_averaging.py: the optimizer's average of the trainable weights and ours of
the BN statistics, both in the checkpoint, the decay warmed up); distillation from a teacher (distillation.py), read
when each session starts. With EMA or FixRes, evaluation and best.keras / final.keras use a
second network at `image_size` holding the averaged (or raw) weights of the trained one.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from regnet_keras import keras_backend
from regnet_keras.training import data as data_lib
from regnet_keras.training import distillation as distillation_lib
from regnet_keras.training import distribute as distribute_lib
from regnet_keras.training import pretrained as pretrained_lib
from regnet_keras.training import run_lock
# run.json is read and refused in run_file; its names stay importable from here.
from regnet_keras.training.run_file import (  # noqa: F401
    MAX_RUN_FILE_BYTES, RUN_FILE, RunDirectoryError, read_run)
from regnet_keras.training import schedule as schedule_lib
from regnet_keras.training import weight_averaging
from regnet_keras.training.auto_augment import POLICIES as AUTO_AUGMENT_POLICIES
from regnet_keras.training.mixing import Mixing

BEST_MODEL = "best.keras"
FINAL_MODEL = "final.keras"
HISTORY_FILE = "history.csv"
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"
# What a restart must agree on with the run already in a model directory.
IDENTITY_KEYS = ("model", "dataset", "data_dir", "image_size", "num_classes", "class_names",
                 "preprocessing", "batch_size", "epochs", "seed", "weights", "freeze_epochs",
                 "freeze_bn", "train_image_size", "auto_augment", "mixup_alpha", "cutmix_alpha",
                 "cutmix_probability", "ema_decay", "teacher", "distill_alpha",
                 "distill_temperature")
# What runs written before fine-tuning and the recipe's ingredients existed mean by the keys
# they lack (train_image_size: None, the evaluation size).
IDENTITY_DEFAULTS = {"weights": None, "freeze_epochs": 0.0, "freeze_bn": False,
                     "train_image_size": None, "auto_augment": "none", "mixup_alpha": 0.0,
                     "cutmix_alpha": 0.0, "cutmix_probability": 0.5, "ema_decay": 0.0,
                     "teacher": None, "distill_alpha": 0.5, "distill_temperature": 1.0}
CLASS_WEIGHTINGS = ("balanced",)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    model: object  # a zoo name (str) or a RegNetConfig/AnyNetConfig; None: W's design
    dataset: str = data_lib.DEFAULT_DATASET
    data_dir: str | None = None
    image_size: int = 32
    batch_size: int = 128  # global
    epochs: int = 6
    lr: float | None = None  # peak learning rate; None: 0.1 per 128 images
    warmup_epochs: float = 5.0
    weight_decay: float = 5e-5
    label_smoothing: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    augmentation: data_lib.Augmentation = data_lib.Augmentation()
    eval_crop_fraction: float = 0.875
    holdout_fraction: float = 0.1
    corrupt_images: str = "error"
    preprocessing: str | None = None  # None: W's, else "imagenet"
    padding: str | None = None  # None: W's, else "symmetric"
    mixed_precision: bool = False
    jit_compile: bool = False
    model_dir: str = "runs/default"
    seed: int = 0
    checkpoint_every_steps: int = 100
    eval_batch_size: int = 256
    max_steps: int | None = None  # stop after this many optimizer steps (smoke tests)
    preset: str | None = None
    weights: str | None = None  # W: where fine-tuning starts (pretrained.resolve)
    freeze_epochs: float = 0.0  # classifier-only epochs on the frozen backbone
    head_lr: float | None = None  # their learning rate; None: 0.1 per 128 images
    freeze_bn: bool = False
    class_weights: str | None = None  # None or "balanced"
    min_images_per_class: int = data_lib.MIN_IMAGES_PER_CLASS
    # The recipe's ingredients (tools.train's flags of the same names).
    train_image_size: int | None = None  # training crops (FixRes); None: image_size
    auto_augment: str = "none"  # auto_augment.POLICIES
    mixing: Mixing = Mixing()  # MixUp / CutMix
    ema_decay: float = 0.0  # EMA of the weights per step; 0: off
    distillation: distillation_lib.Distillation = distillation_lib.Distillation()

    @property
    def crop_size(self) -> int:
        """The size of the training crops (the model is evaluated and saved at image_size)."""
        return self.train_image_size or self.image_size

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else schedule_lib.scaled_learning_rate(
            self.batch_size)

    @property
    def head_peak_lr(self) -> float:
        return self.head_lr if self.head_lr is not None else schedule_lib.scaled_learning_rate(
            self.batch_size)

    def model_description(self):
        return self.model if isinstance(self.model, str) else self.model.to_dict()


def build_network(design, image_size: int, classes: int, padding: str, preprocessing: str):
    """A RegNet classifier: 0-255 RGB in (its own normalisation layer), softmax out."""
    import regnet_keras
    kwargs = dict(include_top=True, weights=None, input_shape=(image_size, image_size, 3),
                  classes=classes, classifier_activation="softmax", include_preprocessing=True,
                  preprocessing=preprocessing, padding=padding)
    if isinstance(design, str):
        return regnet_keras.build_model(design, **kwargs)
    return regnet_keras.RegNet(design, **kwargs)


def build_model(config: TrainConfig, num_classes: int, image_size: int | None = None):
    """The run's RegNet at `image_size` (default: the evaluation size)."""
    return build_network(config.model, image_size or config.image_size, num_classes,
                         config.padding or "symmetric", config.preprocessing or "imagenet")


def with_pretrained(config: TrainConfig, pretrained) -> TrainConfig:
    """`config` with the design, padding and normalisation W dictates; a flag that contradicts
    W is an error."""
    if pretrained is None:
        if config.model is None:
            raise ValueError("no model: pass --model (or a design), or --weights to start from.")
        return dataclasses.replace(config, padding=config.padding or "symmetric",
                                   preprocessing=config.preprocessing or "imagenet")
    for name, wanted in (("padding", pretrained.padding),
                         ("preprocessing", pretrained.preprocessing)):
        given = getattr(config, name)
        if given is not None and wanted is not None and given != wanted:
            raise ValueError(f"{name}={given!r} contradicts weights={pretrained.name!r}, which "
                             f"was trained with {name}={wanted!r}; leave --{name} unset.")
    return dataclasses.replace(config, model=pretrained.model, padding=pretrained.padding,
                               preprocessing=config.preprocessing or pretrained.preprocessing)


def class_loss_weights(config: TrainConfig, source: data_lib.Source) -> np.ndarray | None:
    """Per-class loss weights: "balanced" gives class c the weight n / (classes x n_c), so every
    class carries the same total weight in an epoch (scikit-learn's "balanced")."""
    if config.class_weights is None:
        return None
    if config.class_weights not in CLASS_WEIGHTINGS:
        raise ValueError(f"class_weights={config.class_weights!r} is invalid: choose one of "
                         f"{CLASS_WEIGHTINGS} or leave it unset.")
    counts = np.bincount(source.train.labels, minlength=source.num_classes)
    return (counts.sum() / (source.num_classes * np.maximum(counts, 1))).astype(np.float32)


def _logits_model(model):
    """The same layers up to the classifier's logits (training loss from logits is stable)."""
    from regnet_keras import layer_names
    from regnet_keras.keras_backend import get_keras
    return get_keras().Model(model.inputs, model.get_layer(layer_names.LOGITS).output)


def _write_json_atomically(path, values):
    directory = os.path.dirname(path) or "."
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as file:
        json.dump(values, file, indent=2)
        temporary = file.name
    os.replace(temporary, path)


def _save_model_atomically(model, path):
    directory = os.path.dirname(path) or "."
    temporary = os.path.join(directory, f".{os.path.basename(path)}.tmp.keras")
    model.save(temporary)
    os.replace(temporary, path)


def run_identity(config: TrainConfig, source: data_lib.Source, pretrained=None,
                 teacher=None) -> dict:
    """What makes a run this run, in its JSON form (tuples become lists), so that it compares
    equal to the run.json a previous session wrote."""
    return json.loads(json.dumps(_identity_values(config, source, pretrained, teacher)))


def _identity_values(config: TrainConfig, source: data_lib.Source, pretrained, teacher) -> dict:
    distillation = config.distillation
    return {
        "model": config.model_description(),
        "dataset": config.dataset,
        "data_dir": source.data_dir,
        "image_size": config.image_size,
        "num_classes": source.num_classes,
        "class_names": list(source.class_names),
        "preprocessing": config.preprocessing,
        "padding": config.padding,
        "channels": 3,
        "batch_size": config.batch_size,
        "epochs": config.epochs,
        "seed": config.seed,
        "eval_crop_fraction": config.eval_crop_fraction,
        "holdout_fraction": config.holdout_fraction,
        "corrupt_images": config.corrupt_images,
        "held_out_split": source.held_out_name,
        "train_examples": source.train.num_examples,
        "held_out_examples": source.held_out.num_examples,
        "preset": config.preset,
        # Recorded so that fine-tuning (tools.qat) can train on the same distribution.
        "augmentation": dataclasses.asdict(config.augmentation),
        "label_smoothing": config.label_smoothing,
        "weights": pretrained.record() if pretrained is not None else None,
        "weights_origin": pretrained.origin if pretrained is not None else None,
        "freeze_epochs": config.freeze_epochs,
        "freeze_bn": config.freeze_bn,
        "class_weights": config.class_weights,
        "min_images_per_class": config.min_images_per_class,
        # The recipe's ingredients, under the names of their tools.train flags.
        "train_image_size": config.train_image_size,
        "auto_augment": config.auto_augment,
        "mixup_alpha": config.mixing.mixup_alpha,
        "cutmix_alpha": config.mixing.cutmix_alpha,
        "cutmix_probability": config.mixing.cutmix_probability,
        "ema_decay": config.ema_decay,
        "teacher": teacher.record() if teacher is not None else None,
        "distill_alpha": distillation.alpha,
        "distill_temperature": distillation.temperature,
    }


def check_model_dir(model_dir, identity: dict):
    """Refuses a model directory that holds a run of another model, data or class count."""
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise RunDirectoryError(f"model_dir={model_dir!r} is a file: pass a directory.")
    previous = read_run(model_dir) if os.path.isdir(model_dir) else None
    if previous is None:
        has_state = os.path.isdir(model_dir) and any(
            os.path.exists(os.path.join(model_dir, name))
            for name in (CHECKPOINT_DIR, BEST_MODEL, FINAL_MODEL))
        if has_state:
            raise RunDirectoryError(
                f"model_dir={model_dir!r} holds checkpoints or models but no {RUN_FILE}, so "
                "they cannot be matched to this run; pass another --model_dir.")
        return None
    differences = [
        f"{key}: {previous.get(key, IDENTITY_DEFAULTS.get(key))!r} there, "
        f"{identity.get(key)!r} now" for key in IDENTITY_KEYS
        if previous.get(key, IDENTITY_DEFAULTS.get(key)) != identity.get(key)]
    if differences:
        raise RunDirectoryError(
            f"model_dir={model_dir!r} holds another run (" + "; ".join(differences) +
            "). Its checkpoints are kept: pass another --model_dir, or the same flags to "
            "resume it.")
    return previous


class Progress:
    """A Keras progress bar with ETA on a terminal; plain log lines otherwise."""

    def __init__(self, total_steps, start_step, steps_per_epoch, log_every=50, stream=None):
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty()
        self.total, self.start = total_steps, start_step
        self.steps_per_epoch = steps_per_epoch
        self.log_every = log_every
        self.started = time.time()
        self.bar = None

    def epoch_start(self, epoch, epochs, step_in_epoch):
        if self.interactive:
            from regnet_keras.keras_backend import get_keras
            print(f"epoch {epoch + 1}/{epochs}", file=self.stream)
            self.bar = get_keras().utils.Progbar(self.steps_per_epoch,
                                                 stateful_metrics=["loss", "top1", "lr"])
            if step_in_epoch:
                self.bar.update(step_in_epoch)

    def update(self, step, epoch, loss, top1, lr):
        done = step - self.start
        if self.interactive:
            self.bar.update(step - epoch * self.steps_per_epoch,
                            [("loss", loss), ("top1", top1), ("lr", lr)])
            return
        if done % self.log_every and step != self.total:
            return
        elapsed = time.time() - self.started
        eta = elapsed / max(done, 1) * (self.total - step)
        print(f"step {step}/{self.total} epoch {epoch + 1} loss {loss:.4f} top1 {top1:.4f} "
              f"lr {lr:.5f} {elapsed / max(done, 1) * 1000:.0f} ms/step "
              f"eta {_duration(eta)}", file=self.stream, flush=True)


def _duration(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _weights_digest(model) -> str:
    import hashlib
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight.numpy(), np.float32)).tobytes())
    return digest.hexdigest()


def make_train_step(model, optimizer, config: TrainConfig, num_classes: int, strategy,
                    head_only: bool = False, class_weights=None, teacher=None,
                    weight_average=None):
    """The distributed training step: (global batch images, labels) -> (loss sum, correct).

    labels: class indices, or class probabilities (batch, classes) from MixUp/CutMix; an image
    counts as correct when the model's top class is its labels' largest.
    head_only: train the classifier alone, the rest of the model (BN included) in inference
    mode, so neither backbone weights nor BN statistics change.
    class_weights: per-class factors of the loss (class_loss_weights), or None.
    teacher: (logits model, input size) of distillation, or None.
    weight_average: weight_averaging.WeightAverage kept over the steps, or None.
    """
    import tensorflow as tf
    from regnet_keras import layer_names
    from regnet_keras.keras_backend import get_keras
    keras = get_keras()
    logits_model = _logits_model(model)
    trained = (model.get_layer(layer_names.LOGITS).trainable_variables if head_only
               else model.trainable_variables)
    # Kernels of convolutions and the classifier carry L2 weight decay (PyTorch's coupled
    # decay: gradient += wd * w); BN parameters and biases do not.
    decayed = [v for v in trained if v.path.endswith("kernel") and len(v.shape) >= 2]
    loss_weights = None if class_weights is None else tf.constant(class_weights, tf.float32)
    loss_fn = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=config.label_smoothing, reduction="none")
    replicas = strategy.num_replicas_in_sync
    statistics = list(model.non_trainable_variables)

    distillation = config.distillation

    def replica_step(images, labels):
        if labels.shape.rank == 1:
            targets = tf.one_hot(tf.cast(labels, tf.int32), num_classes)
        else:
            targets = tf.cast(labels, tf.float32)
        if teacher is not None:
            teacher_model, teacher_size = teacher
            soft_targets = tf.stop_gradient(distillation_lib.teacher_logits(
                teacher_model, images, teacher_size))
        with tf.GradientTape() as tape:
            logits = tf.cast(logits_model(images, training=not head_only), tf.float32)
            per_example = loss_fn(targets, logits)
            if loss_weights is not None:
                per_example = per_example * tf.linalg.matvec(targets, loss_weights)
            if teacher is not None:
                per_example = ((1.0 - distillation.alpha) * per_example +
                               distillation.alpha * distillation_lib.soft_loss(
                                   logits, soft_targets, distillation.temperature))
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=config.batch_size)
            if config.weight_decay:
                loss += 0.5 * config.weight_decay * tf.add_n(
                    [tf.reduce_sum(tf.square(tf.cast(v, tf.float32))) for v in decayed]
                ) / replicas
            scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
        gradients = tape.gradient(scaled, trained)
        optimizer.apply_gradients(zip(gradients, trained))
        if replicas > 1 and statistics and not head_only:
            # Keras 3 creates BN moving statistics with aggregation NONE, so each replica would
            # keep averaging only its own batches and the workers' models would drift apart.
            # Averaging them every step makes them the moving average over the global batch
            # (what tf-keras' MEAN-aggregated statistics do) and keeps every copy identical.
            context = tf.distribute.get_replica_context()
            averaged = context.all_reduce(
                tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in statistics])
            for variable, value in zip(statistics, averaged):
                variable.assign(value)
        correct = tf.reduce_sum(tf.cast(tf.equal(
            tf.argmax(logits, -1, output_type=tf.int32),
            tf.argmax(targets, -1, output_type=tf.int32)), tf.float32))
        return tf.reduce_sum(per_example), correct

    @tf.function(jit_compile=config.jit_compile or None)
    def train_step(images, labels):
        if weight_average is not None:
            weight_average.before_step(optimizer.iterations)
        loss_sum, correct = strategy.run(replica_step, args=(images, labels))
        if weight_average is not None:
            weight_average.after_step(optimizer.iterations)
        return (strategy.reduce("SUM", loss_sum, axis=None),
                strategy.reduce("SUM", correct, axis=None))

    return train_step


def make_optimizer(config: TrainConfig, total_steps: int, warmup_steps: int,
                   head_steps: int = 0):
    """SGD with Nesterov momentum on the warmup-cosine schedule (loss-scaled for float16),
    after `head_steps` at the classifier-only rate; with `ema_decay`, keeping Keras' moving
    average of the trainable weights."""
    from regnet_keras.keras_backend import get_keras
    keras = get_keras()
    learning_rate = schedule_lib.keras_schedule(config.peak_lr, total_steps, warmup_steps,
                                                head_steps=head_steps,
                                                head_lr=config.head_peak_lr)
    averaging = (dict(use_ema=True, ema_momentum=config.ema_decay) if config.ema_decay
                 else {})
    optimizer = keras.optimizers.SGD(learning_rate, momentum=config.momentum,
                                     nesterov=config.nesterov, **averaging)
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
    return optimizer, learning_rate


def train(config: TrainConfig, strategy=None, source: data_lib.Source | None = None,
          log=print) -> dict:
    """Trains (or resumes, or finds finished) the run in config.model_dir; returns its run.json.

    Everything that can be checked is checked before the first step: the data, the model name,
    the model directory's previous run.
    """
    keras_backend.require_tensorflow_backend("regnet_keras.training.loop.train")
    import tensorflow as tf
    import regnet_keras

    strategy = strategy or tf.distribute.get_strategy()
    worker_index, num_workers, is_chief = distribute_lib.worker_identity(strategy)
    if config.batch_size % strategy.num_replicas_in_sync:
        raise ValueError(f"batch_size={config.batch_size} is invalid: the global batch must be "
                         f"a multiple of the {strategy.num_replicas_in_sync} replicas.")
    if isinstance(config.model, str):
        regnet_keras.get_config(config.model)  # unknown names: the error lists the valid ones
    if config.image_size < 32:
        raise ValueError(f"image_size={config.image_size} is invalid: RegNets need inputs of 32 "
                         "pixels or more.")
    if not 0 <= config.freeze_epochs <= config.epochs:
        raise ValueError(f"freeze_epochs={config.freeze_epochs} is invalid: it must be between "
                         f"0 and epochs={config.epochs}.")
    if config.freeze_epochs and not config.weights:
        raise ValueError(f"freeze_epochs={config.freeze_epochs} freezes a pretrained backbone: "
                         "pass --weights, or --freeze_epochs 0 to train from scratch.")
    _check_recipe(config)
    if is_chief:
        run_lock.check_free(config.model_dir)  # before reading any data: refused at once
    source = source or data_lib.open_source(
        config.dataset, config.data_dir, holdout_fraction=config.holdout_fraction,
        corrupt_images=config.corrupt_images,
        min_images_per_class=config.min_images_per_class)
    ignored = sum(source.ignored_files.values())
    if ignored:
        log(f"skipped {source.ignored_files.get('hidden', 0)} hidden and "
            f"{source.ignored_files.get('not_images', 0)} non-image files in {source.data_dir}")
    if source.skipped_files:
        log(f"skipped {len(source.skipped_files)} corrupt image files "
            f"(--corrupt_images=skip): {', '.join(source.skipped_files[:5])}"
            f"{' ...' if len(source.skipped_files) > 5 else ''}")
    pretrained = (pretrained_lib.resolve(config.weights, config.model) if config.weights
                  else None)
    config = with_pretrained(config, pretrained)
    teacher = (distillation_lib.resolve_teacher(config.distillation, source.class_names,
                                                config.crop_size)
               if config.distillation.teacher else None)
    class_weights = class_loss_weights(config, source)
    identity = run_identity(config, source, pretrained, teacher)
    previous = check_model_dir(config.model_dir, identity)
    pipeline = data_lib.TrainPipeline(source, config.crop_size, config.augmentation,
                                      config.seed, auto_augment=config.auto_augment,
                                      mixing=config.mixing)
    if pipeline.steps_per_epoch(config.batch_size) < 1:
        raise ValueError(f"batch_size={config.batch_size} is larger than the "
                         f"{source.train.num_examples} training examples; lower --batch_size.")
    if is_chief:
        run_lock.acquire(config.model_dir)
    try:
        return _train(config, strategy, source, pipeline, log, pretrained, class_weights,
                      previous, identity, worker_index, is_chief, teacher)
    finally:
        if is_chief:
            run_lock.release(config.model_dir)


def _check_recipe(config: TrainConfig):
    if config.train_image_size is not None and config.train_image_size < 32:
        raise ValueError(f"train_image_size={config.train_image_size} is invalid: RegNets need "
                         "inputs of 32 pixels or more.")
    if config.auto_augment not in AUTO_AUGMENT_POLICIES:
        raise ValueError(f"auto_augment={config.auto_augment!r} is invalid: choose one of "
                         f"{AUTO_AUGMENT_POLICIES}.")
    if not 0 <= config.ema_decay < 1:
        raise ValueError(f"ema_decay={config.ema_decay} is invalid: it must be 0 (off) or "
                         "below 1 (0.999 averages about the last 1000 steps).")


def _train(config, strategy, source, pipeline, log, pretrained, class_weights, previous,
           identity, worker_index, is_chief, teacher):
    import tensorflow as tf
    from regnet_keras.keras_backend import get_keras
    keras = get_keras()

    steps_per_epoch = pipeline.steps_per_epoch(config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    head_steps = int(round(config.freeze_epochs * steps_per_epoch))
    warmup_steps = min(int(round(config.warmup_epochs * steps_per_epoch)),
                       total_steps - head_steps)

    if is_chief:
        os.makedirs(config.model_dir, exist_ok=True)
        if previous is None:
            _write_json_atomically(os.path.join(config.model_dir, RUN_FILE),
                                   {**identity, "status": "running"})
    # Non-chief workers write their (identical) checkpoints to a private directory that they
    # delete: every worker must take part in saving, but only the chief's files are kept.
    checkpoint_dir = (os.path.join(config.model_dir, CHECKPOINT_DIR) if is_chief else
                      tempfile.mkdtemp(prefix=f"regnet-worker{worker_index}-"))

    if config.mixed_precision:
        has_gpu = bool(tf.config.list_logical_devices("GPU"))
        keras.mixed_precision.set_global_policy("mixed_float16" if has_gpu
                                                else "mixed_bfloat16")
    keras.utils.set_random_seed(config.seed)

    with strategy.scope():
        # The trained network takes the training crops; the one evaluated and saved takes
        # image_size and holds the averaged weights with EMA. Without either it is the same.
        model = build_model(config, source.num_classes, config.crop_size)
        if config.freeze_bn:
            for layer in model.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False  # Keras 3: inference mode, scale and offset fixed
        published = (model if config.crop_size == config.image_size and not config.ema_decay
                     else build_model(config, source.num_classes))
        optimizer, learning_rate = make_optimizer(config, total_steps, warmup_steps,
                                                  head_steps)
        optimizer.build(model.trainable_variables)
        weight_average = (weight_averaging.WeightAverage(model, optimizer, config.ema_decay)
                          if config.ema_decay else None)
        best_top1 = tf.Variable(-1.0, trainable=False, dtype=tf.float32)
        state = dict(model=model, optimizer=optimizer, best_top1=best_top1)
        if weight_average is not None:
            state["statistics_average"] = weight_average.variables
        checkpoint = tf.train.Checkpoint(**state)
        teacher_network = None
        if teacher is not None:
            teacher_network = (distillation_lib.build_teacher(teacher, build_network),
                               teacher.image_size)
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=2)
    restore_dir = os.path.join(config.model_dir, CHECKPOINT_DIR)
    latest = tf.train.latest_checkpoint(restore_dir)
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
    elif pretrained is not None:
        # Only a run's first session reads W: a resumed one continues from its checkpoint.
        kept = pretrained_lib.load_backbone(model, pretrained)
        log(f"starting from {pretrained.name} ({pretrained.kind}, {pretrained.file}): "
            f"{'its classifier kept' if kept else f'a new {source.num_classes}-class classifier'}")
    if pretrained is not None:
        pretrained.release_tensors()  # in the model now, or restored from the checkpoint
    if teacher is not None:
        log(f"distilling from {teacher.pretrained.name} ({teacher.pretrained.kind}, "
            f"{teacher.image_size}px), alpha {config.distillation.alpha}, temperature "
            f"{config.distillation.temperature}")
    step = int(optimizer.iterations.numpy())
    if step:
        log(f"resumed from {latest} at step {step} of {total_steps}")

    step_options = dict(class_weights=class_weights, teacher=teacher_network,
                        weight_average=weight_average)
    whole_step = make_train_step(model, optimizer, config, source.num_classes, strategy,
                                 **step_options)
    head_step = (make_train_step(model, optimizer, config, source.num_classes, strategy,
                                 head_only=True, **step_options)
                 if head_steps else None)

    def publish():
        """`published` <- the trained network's weights (averaged with EMA)."""
        if published is not model:
            weight_averaging.copy_averaged(model, optimizer, weight_average, published)

    @tf.function(autograph=False)  # straight-line code; AutoGraph only warns about it
    def eval_step(images, labels):
        probabilities = tf.cast(published(images, training=False), tf.float32)
        top5 = tf.math.in_top_k(tf.cast(labels, tf.int32), probabilities,
                                min(5, source.num_classes))
        top1 = tf.equal(tf.argmax(probabilities, -1, output_type=tf.int32),
                        tf.cast(labels, tf.int32))
        return tf.reduce_sum(tf.cast(top1, tf.int32)), tf.reduce_sum(tf.cast(top5, tf.int32))

    eval_data = data_lib.held_out_dataset(source, config.image_size,
                                          config.eval_crop_fraction, config.eval_batch_size)

    def evaluate():
        # Every worker evaluates the whole held-out split on its own copy of the (identical)
        # weights: no collective ops, so uneven last batches cannot stall a cluster.
        top1 = top5 = 0
        for images, labels in eval_data:
            a, b = eval_step(images, labels)
            top1 += int(a)
            top5 += int(b)
        return top1 / source.held_out.num_examples, top5 / source.held_out.num_examples

    writer = tf.summary.create_file_writer(os.path.join(config.model_dir, LOG_DIR)) \
        if is_chief else tf.summary.create_noop_writer()
    history_path = os.path.join(config.model_dir, HISTORY_FILE)

    def save_state():
        manager.save(checkpoint_number=int(optimizer.iterations.numpy()))

    stop_at = total_steps if config.max_steps is None else min(total_steps, config.max_steps)
    progress = Progress(total_steps, step, steps_per_epoch)
    train_started = time.time()
    stepping_seconds = 0.0
    waiting_seconds = 0.0  # blocked on the input pipeline: ~0 when it keeps up
    steps_run = 0
    while step < stop_at:
        epoch, step_in_epoch = divmod(step, steps_per_epoch)
        epoch_started = time.time()

        def dataset_fn(input_context, epoch=epoch, skip=step_in_epoch):
            return pipeline.dataset(
                epoch, skip, input_context.get_per_replica_batch_size(config.batch_size),
                input_context.input_pipeline_id, input_context.num_input_pipelines)

        distributed = strategy.distribute_datasets_from_function(dataset_fn)
        iterator = iter(distributed)
        progress.epoch_start(epoch, config.epochs, step_in_epoch)
        loss_total = correct_total = seen = 0.0
        while step_in_epoch < steps_per_epoch and step < stop_at:
            tick = time.time()
            images, labels = next(iterator)
            waiting_seconds += time.time() - tick
            tick = time.time()
            train_step = head_step if step < head_steps else whole_step
            loss_sum, correct = train_step(images, labels)
            loss_sum, correct = float(loss_sum), float(correct)
            stepping_seconds += time.time() - tick
            steps_run += 1
            step += 1
            step_in_epoch += 1
            loss_total += loss_sum
            correct_total += correct
            seen += config.batch_size
            lr = float(learning_rate(step - 1))
            progress.update(step, epoch, loss_total / seen, correct_total / seen, lr)
            if step % config.checkpoint_every_steps == 0:
                save_state()
                with writer.as_default(step=step):
                    tf.summary.scalar("train/loss", loss_total / seen)
                    tf.summary.scalar("train/learning_rate", lr)
        if step_in_epoch < steps_per_epoch:
            save_state()  # stopped by max_steps inside an epoch
            break
        if step % config.checkpoint_every_steps:
            save_state()
        publish()
        top1, top5 = evaluate()
        is_best = top1 > float(best_top1.numpy())
        if is_best:
            best_top1.assign(top1)
        row = {"epoch": epoch + 1, "step": step, "learning_rate": lr,
               "train_loss": loss_total / max(seen, 1), "train_top1": correct_total / max(seen, 1),
               "test_top1": top1, "test_top5": top5,
               "epoch_seconds": round(time.time() - epoch_started, 1)}
        log(f"epoch {epoch + 1}/{config.epochs}: train loss {row['train_loss']:.4f} top1 "
            f"{row['train_top1']:.4f}, {source.held_out_name} top1 {top1:.4f} top5 {top5:.4f} "
            f"({row['epoch_seconds']:.0f} s)")
        if is_chief:
            if is_best:
                _save_model_atomically(published, os.path.join(config.model_dir, BEST_MODEL))
            new_file = not os.path.exists(history_path)
            with open(history_path, "a", newline="") as file:
                writer_csv = csv.DictWriter(file, fieldnames=list(row))
                if new_file:
                    writer_csv.writeheader()
                writer_csv.writerow(row)
            with writer.as_default(step=step):
                for name in ("train_loss", "train_top1", "test_top1", "test_top5"):
                    tf.summary.scalar(name.replace("_", "/", 1), row[name])
            writer.flush()
        save_state()  # after best_top1 changed: a restart keeps the right best model
    train_seconds = time.time() - train_started

    finished = step >= total_steps
    result = dict(read_run(config.model_dir) or identity) if is_chief else dict(identity)
    result.update(identity)
    result["optimizer_steps"] = step
    result["steps_per_epoch"] = steps_per_epoch
    publish()
    result["weights_sha256"] = _weights_digest(published)
    if steps_run:
        result["step_seconds"] = round(stepping_seconds / steps_run, 4)
        result["input_wait_seconds_per_step"] = round(waiting_seconds / steps_run, 4)
    if finished:
        top1, top5 = evaluate()
        if float(best_top1.numpy()) < 0:
            best_top1.assign(top1)
        result.update({"status": "finished", "test_top1": top1, "test_top5": top5,
                       "best_test_top1": round(float(best_top1.numpy()), 6)})
        if is_chief:
            if not os.path.exists(os.path.join(config.model_dir, BEST_MODEL)):
                _save_model_atomically(published, os.path.join(config.model_dir, BEST_MODEL))
            if steps_run or not os.path.exists(os.path.join(config.model_dir, FINAL_MODEL)):
                _save_model_atomically(published, os.path.join(config.model_dir, FINAL_MODEL))
            if steps_run:
                result["train_seconds_last_session"] = round(train_seconds, 1)
    else:
        result["status"] = "running"
    if is_chief:
        _write_json_atomically(os.path.join(config.model_dir, RUN_FILE), result)
    else:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    result["is_chief"] = is_chief
    return result
