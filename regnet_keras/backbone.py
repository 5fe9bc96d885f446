"""RegNetBackbone: a Keras 3 functional model that also exposes its feature pyramid (KerasHub's way).

KerasHub's detectors and segmenters (RetinaNetBackbone, DeepLabV3Backbone) take an `image_encoder`
with a `pyramid_outputs` dict and serialise it with `keras.layers.serialize`. A plain functional
model restored from its config carries no extra attribute, so the pyramid is a property computed
from the layer names, and the class is registered: a detector built on a regnet_keras backbone saves
and loads like any other. Importing this module loads Keras.
"""

from __future__ import annotations

import keras

from regnet_keras import feature_pyramid


@keras.saving.register_keras_serializable(package="regnet_keras")
class RegNetBackbone(keras.Model):
    """A functional model built by regnet_keras with `pyramid_outputs` {"P1": ..., "P5": ...}.

    Construct it as a functional model, `RegNetBackbone(inputs, outputs, name=...)`; the builder
    does so for every Keras 3 model built with include_top=False, and `feature_extractor` for its
    extractors. Its config is the functional config, so it restores as one.
    """

    @property
    def pyramid_outputs(self) -> dict:
        return feature_pyramid.pyramid_outputs(self)
