"""RegNetHubBackbone: a RegNetX/Y trunk as a KerasHub FeaturePyramidBackbone.

The graph is regnet_keras' own (builder.build_network without top and without preprocessing:
the image converter normalises), so its layer names, weights and padding are those of every
other regnet_keras model, and `pyramid_outputs` are its levels "P1" (stem) to "P5" (stage 4).
Its config is the explicit design (AnyNetConfig fields), the padding, the input shape and the
origin of its weights, which saving a preset also writes into metadata.json.
"""

from __future__ import annotations

import json
import os

import keras
from keras_hub.models import FeaturePyramidBackbone

from regnet_keras import builder, feature_pyramid
from regnet_keras.design_space import DEFAULT_STEM_WIDTH, AnyNetConfig

METADATA_FILE = "metadata.json"
METADATA_KEY = "regnet_keras"


@keras.saving.register_keras_serializable(package="regnet_keras")
class RegNetHubBackbone(FeaturePyramidBackbone):
    """RegNetX/Y trunk: normalised images in, stage-4 features (stride 32) out.

    Args:
      stage_widths, stage_depths, stage_group_widths, stage_strides, stage_bottlenecks,
      se_ratio, stem_width: the network, as regnet_keras.AnyNetConfig.
      padding: "symmetric" (PyTorch's geometry, what timm/torchvision/pycls weights need) or
        "same" (TensorFlow's).
      image_shape: (height, width, 3); None sizes accept any image of at least 32 pixels.
      weights_origin: where the weights came from (regnet_keras.WeightsOrigin as a dict).
    """

    def __init__(self, stage_widths, stage_depths, stage_group_widths,
                 stage_strides=(2, 2, 2, 2), stage_bottlenecks=(1.0, 1.0, 1.0, 1.0),
                 se_ratio=0.0, stem_width=DEFAULT_STEM_WIDTH, padding="symmetric",
                 image_shape=(None, None, 3), weights_origin=None, dtype=None, **kwargs):
        design = AnyNetConfig(tuple(stage_widths), tuple(stage_depths),
                              tuple(stage_group_widths), tuple(stage_strides),
                              tuple(stage_bottlenecks), se_ratio, stem_width)
        network = builder.build_network(design, include_top=False, input_shape=image_shape,
                                        include_preprocessing=False, padding=padding)
        pyramid = feature_pyramid.pyramid_outputs(network)
        super().__init__(inputs=network.input, outputs=network.output, dtype=dtype, **kwargs)
        self.pyramid_outputs = pyramid
        self.design = design
        self.padding = padding
        self.image_shape = tuple(image_shape)
        self.weights_origin = dict(weights_origin) if weights_origin else None

    def get_config(self):
        config = super().get_config()
        design = self.design
        config.update({
            "stage_widths": list(design.stage_widths),
            "stage_depths": list(design.stage_depths),
            "stage_group_widths": list(design.stage_group_widths),
            "stage_strides": list(design.stage_strides),
            "stage_bottlenecks": list(design.stage_bottlenecks),
            "se_ratio": design.se_ratio,
            "stem_width": design.stem_width,
            "padding": self.padding,
            "image_shape": list(self.image_shape),
            "weights_origin": self.weights_origin,
        })
        return config

    def save_to_preset(self, preset_dir, max_shard_size=10):
        super().save_to_preset(preset_dir, max_shard_size=max_shard_size)
        record_in_metadata(preset_dir, self)


def record_in_metadata(preset_dir: str, backbone: RegNetHubBackbone) -> None:
    """Adds the design and the weights' origin to the preset's metadata.json (what Kaggle and the
    Hub show of a preset), as regnet_keras' weights files and TFLite metadata carry them."""
    path = os.path.join(preset_dir, METADATA_FILE)
    with open(path, encoding="utf-8") as file:
        metadata = json.load(file)
    metadata[METADATA_KEY] = {"design": backbone.design.to_dict(), "padding": backbone.padding,
                              "weights_origin": backbone.weights_origin}
    with open(path, "w", encoding="utf-8") as file:
        json.dump(metadata, file, indent=4)
