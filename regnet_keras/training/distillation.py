"""Knowledge distillation (Hinton et al., 2015): a trained teacher's softened predictions as a
second target of the student's training.

The teacher is any W that `--weights` accepts (a run directory, our weights file, a PyTorch file,
named weights...), of any design and input size. It must predict the data's classes (the same
class names in the same order, where W records them). In the training step it runs in inference
mode on the student's own augmented batch, resized to its input size, and the student's loss per
image becomes

    (1 - alpha) * cross-entropy(labels, student) + alpha * T^2 * KL(teacher_T || student_T)

where x_T = softmax(logits / T); the T^2 keeps the soft term's gradients at the scale of the
hard one's as T changes. The teacher's weights are read when a session starts (they are not in
the checkpoints) and checked against the SHA-256 run.json recorded.
"""

from __future__ import annotations

import dataclasses
import os

from regnet_keras.errors import InputError


class TeacherError(InputError, ValueError):
    """The teacher cannot teach this run; the message names the problem and the way out."""


@dataclasses.dataclass(frozen=True)
class Distillation:
    teacher: str | None = None  # W, as for --weights; None: no distillation
    teacher_model: str | None = None  # the zoo name W needs when it carries no design
    alpha: float = 0.5  # weight of the soft term
    temperature: float = 1.0
    teacher_image_size: int | None = None  # None: W's run's size, else the student's crops

    def __post_init__(self):
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"distill_alpha={self.alpha} is invalid: it must be between 0 "
                             "(hard labels only) and 1 (the teacher only).")
        if self.temperature <= 0:
            raise ValueError(f"distill_temperature={self.temperature} is invalid: it must be "
                             "positive (1: the teacher's own probabilities).")
        if self.teacher_image_size is not None and self.teacher_image_size < 32:
            raise ValueError(f"teacher_image_size={self.teacher_image_size} is invalid: "
                             "RegNets need inputs of 32 pixels or more.")


@dataclasses.dataclass(frozen=True)
class Teacher:
    """The resolved teacher: its weights (pretrained.Pretrained) and what run.json records."""
    pretrained: object
    image_size: int

    def record(self) -> dict:
        return {**self.pretrained.record(), "classes": self.pretrained.classes,
                "image_size": self.image_size}


def resolve_teacher(distillation: Distillation, class_names, student_image_size: int,
                    ) -> Teacher:
    """Reads W and checks that it predicts the data's classes; every refusal is one line."""
    from regnet_keras.training import pretrained as pretrained_lib
    from regnet_keras.training.run_file import read_run
    name = distillation.teacher
    try:
        pretrained = pretrained_lib.resolve(name, distillation.teacher_model)
    except pretrained_lib.PretrainedWeightsError as error:
        raise TeacherError(f"teacher: {error}") from error
    classes = len(class_names)
    if pretrained.classes is None:
        raise TeacherError(f"teacher={name!r} has no classifier, so it predicts nothing to learn "
                           "from: pass a model trained on these classes.")
    if pretrained.classes != classes:
        raise TeacherError(
            f"teacher={name!r} predicts {pretrained.classes} classes and the data has {classes}: "
            f"pass a teacher trained (or fine-tuned with --weights) on these {classes} classes.")
    run = read_run(name) if os.path.isdir(os.path.expanduser(name)) else None
    taught = list(run.get("class_names", class_names)) if run is not None else list(class_names)
    if taught != list(class_names):
        index = next((i for i, (a, b) in enumerate(zip(taught, class_names)) if a != b),
                     min(len(taught), len(class_names)))
        theirs = taught[index][:100] if index < len(taught) else None
        ours = class_names[index][:100] if index < len(class_names) else None
        raise TeacherError(
            f"teacher={name!r} was trained on other classes (its class {index} is {theirs!r}, "
            f"the data's {ours!r}): its outputs would teach the wrong classes; pass a teacher "
            "trained on this data.")
    image_size = distillation.teacher_image_size
    if image_size is None:
        recorded = run.get("image_size") if run is not None else None
        image_size = recorded if isinstance(recorded, int) else student_image_size
    return Teacher(pretrained=pretrained, image_size=int(image_size))


def build_teacher(teacher: Teacher, build_model):
    """The teacher's logits model with W's weights, frozen. `build_model(design, image_size,
    classes, padding, preprocessing)` builds a network as the student's is built."""
    from regnet_keras import layer_names
    from regnet_keras.keras_backend import get_keras
    from regnet_keras.training import pretrained as pretrained_lib
    pretrained = teacher.pretrained
    model = build_model(pretrained.model, teacher.image_size, pretrained.classes,
                        pretrained.padding, pretrained.preprocessing or "imagenet")
    pretrained_lib.load_backbone(model, pretrained)
    pretrained.release_tensors()
    model.trainable = False
    return get_keras().Model(model.inputs, model.get_layer(layer_names.LOGITS).output)


def teacher_logits(teacher_model, images, image_size: int):
    """The teacher's logits (float32) for the student's batch (0-255 RGB), resized to its input."""
    import tensorflow as tf
    if images.shape[1] != image_size or images.shape[2] != image_size:
        images = tf.image.resize(images, (image_size, image_size), method="bilinear")
    return tf.cast(teacher_model(images, training=False), tf.float32)


def soft_loss(student_logits, teacher_logits, temperature: float):
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)) per image."""
    import tensorflow as tf
    teacher_log_probabilities = tf.nn.log_softmax(teacher_logits / temperature)
    student_log_probabilities = tf.nn.log_softmax(student_logits / temperature)
    kl = tf.reduce_sum(tf.exp(teacher_log_probabilities) * (
        teacher_log_probabilities - student_log_probabilities), axis=-1)
    return kl * temperature ** 2
