"""RegNetImageClassifier: KerasHub's ImageClassifier task (average pooling, dense head) on a
RegNetHubBackbone, the head of RegNet's paper and of timm's, torchvision's and pycls' models."""

import keras
from keras_hub.models import ImageClassifier

from regnet_keras.hub.backbone import RegNetHubBackbone, record_in_metadata
from regnet_keras.hub.image_classifier_preprocessor import RegNetImageClassifierPreprocessor


@keras.saving.register_keras_serializable(package="regnet_keras")
class RegNetImageClassifier(ImageClassifier):
    backbone_cls = RegNetHubBackbone
    preprocessor_cls = RegNetImageClassifierPreprocessor

    def save_to_preset(self, preset_dir, max_shard_size=10):
        super().save_to_preset(preset_dir, max_shard_size=max_shard_size)
        record_in_metadata(preset_dir, self.backbone)
