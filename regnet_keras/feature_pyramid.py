"""Feature pyramids of a RegNet: which layer gives each level "P1" ... "P5", and a model returning them.

Level L is the output at stride 2**L, KerasHub's convention (`pyramid_outputs`): "P1" is the stem,
then each stage's last block output. A stage of stride 1 stays at its predecessor's level, whose
feature it replaces (the deepest feature at each resolution), so a RegNet (every stage stride 2)
has P1 (stem, stride 2) to P5 (stage 4, stride 32).
"""

from __future__ import annotations

from regnet_keras import layer_names as names
from regnet_keras.introspect import design_of_model


def pyramid_layer_names(model) -> dict[str, str]:
    """{"P1": "stem_relu", "P2": "stage1_block{last}_out_relu", ...} for a regnet_keras model."""
    config = design_of_model(model).config
    levels = {"P1": names.STEM_RELU}
    level = 1
    for stage, (depth, stride) in enumerate(zip(config.stage_depths, config.stage_strides),
                                            start=1):
        level += stride // 2
        levels[f"P{level}"] = names.block_layer(stage, depth, "out_relu")
    return levels


def pyramid_outputs(model) -> dict:
    """The symbolic outputs of `model`'s pyramid levels, keyed "P1", "P2", ..."""
    return {level: model.get_layer(layer).output
            for level, layer in pyramid_layer_names(model).items()}


def feature_extractor(model, name: str | None = None):
    """A model with `model`'s input whose outputs are the dict {"P1": stem, ..., "P5": stage 4}.

    `model` is any model regnet_keras built or loaded (with or without its top); the extractor
    shares its layers and weights. Under Keras 3 it also exposes the same dict as
    `pyramid_outputs`, so it can serve as a KerasHub `image_encoder`.
    """
    outputs = pyramid_outputs(model)
    return model_class(with_pyramid=True)(model.input, outputs,
                                          name=name or f"{model.name}_features")


def model_class(with_pyramid: bool):
    """The functional model class the builder uses: RegNetBackbone where a pyramid is wanted and
    Keras 3 builds the graph, else the Keras module's own Model."""
    from regnet_keras.keras_backend import get_keras, uses_legacy_keras
    if with_pyramid and not uses_legacy_keras():
        from regnet_keras.backbone import RegNetBackbone
        return RegNetBackbone
    return get_keras().Model


def register_serializables() -> None:
    """Registers regnet_keras' Keras classes, which loading a file that holds them needs.

    Importing regnet_keras loads no Keras, so its classes are registered when first used; loading
    a `.keras` file with them in a fresh process needs this call (regnet_keras.load_model makes
    it) or `import regnet_keras.backbone`.
    """
    from regnet_keras.keras_backend import uses_legacy_keras
    if not uses_legacy_keras():
        import regnet_keras.backbone  # noqa: F401  (registration happens at import)
