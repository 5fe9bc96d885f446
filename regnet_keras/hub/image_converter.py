"""RegNetImageConverter: resizes raw images and normalises them as the weights were trained."""

import keras
from keras_hub.layers import ImageConverter

from regnet_keras.hub.backbone import RegNetHubBackbone


@keras.saving.register_keras_serializable(package="regnet_keras")
class RegNetImageConverter(ImageConverter):
    """KerasHub's ImageConverter for RegNetHubBackbone: `image_size`, `interpolation`, and
    `scale`/`offset` per channel (0-255 pixels to (x / 255 - mean) / std)."""

    backbone_cls = RegNetHubBackbone
