"""RegNetImageClassifierPreprocessor: raw images (and labels) to the classifier's inputs."""

import keras
from keras_hub.models import ImageClassifierPreprocessor

from regnet_keras.hub.backbone import RegNetHubBackbone
from regnet_keras.hub.image_converter import RegNetImageConverter


@keras.saving.register_keras_serializable(package="regnet_keras")
class RegNetImageClassifierPreprocessor(ImageClassifierPreprocessor):
    backbone_cls = RegNetHubBackbone
    image_converter_cls = RegNetImageConverter
