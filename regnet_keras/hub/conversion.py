"""A timm RegNet repository snapshot as a RegNetImageClassifier: the conversion of
regnet_keras.weights (layout, architecture and every tensor checked) put into KerasHub's classes,
with timm's pretrained_cfg as the image converter."""

from __future__ import annotations

import dataclasses

import numpy as np

from regnet_keras import layer_names
from regnet_keras.weights.h5 import assign_tensors
from regnet_keras.weights.pytorch import PADDING
from regnet_keras.weights.timm_snapshot import TimmSnapshot, TimmSnapshotError


def classifier_from_snapshot(snapshot: TimmSnapshot, image_shape=(None, None, 3),
                             include_head: bool = True, num_classes: int | None = None,
                             **kwargs):
    """The RegNetImageClassifier of a read snapshot.

    include_head=False, or a `num_classes` other than the snapshot's, keeps the backbone's
    weights and gives a freshly initialised head of `num_classes` (default: the snapshot's).
    Other keyword arguments go to RegNetImageClassifier (activation, dropout, ...).
    """
    from regnet_keras.hub.backbone import RegNetHubBackbone
    from regnet_keras.hub.image_classifier import RegNetImageClassifier
    from regnet_keras.hub.image_classifier_preprocessor import RegNetImageClassifierPreprocessor
    from regnet_keras.hub.image_converter import RegNetImageConverter
    weights = snapshot.weights
    if weights.classes is None and num_classes is None:
        raise TimmSnapshotError(f"{snapshot.directory} has no classifier ({snapshot.name} is a "
                                "trunk); pass num_classes=N for a new head of N classes.")
    keep_head = include_head and num_classes in (None, weights.classes)
    design = dataclasses.asdict(weights.config)
    backbone = RegNetHubBackbone(**design, padding=PADDING, image_shape=image_shape,
                                 weights_origin=weights.origin.to_dict())
    tensors = {layer: values for layer, values in weights.canonical.tensors.items()
               if layer != layer_names.LOGITS}
    assign_tensors(backbone, tensors, snapshot.directory)
    preprocessing = snapshot.preprocessing
    converter = RegNetImageConverter(
        image_size=preprocessing.image_size,
        scale=[1.0 / (255.0 * s) for s in preprocessing.std],
        offset=[-m / s for m, s in zip(preprocessing.mean, preprocessing.std)],
        interpolation=preprocessing.interpolation, crop_to_aspect_ratio=True)
    classifier = RegNetImageClassifier(
        backbone=backbone, num_classes=num_classes or weights.classes or 1000,
        preprocessor=RegNetImageClassifierPreprocessor(image_converter=converter), **kwargs)
    if keep_head:
        head = weights.canonical.tensors[layer_names.LOGITS]
        classifier.output_dense.set_weights([np.asarray(head["kernel"], np.float32),
                                             np.asarray(head["bias"], np.float32)])
    return classifier
