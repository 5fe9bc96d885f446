"""The zoo constructors, regnet_keras.RegNetX002 ... RegNetY320, with keras.applications' signature.

Unlike keras.applications, `classifier_activation` is honoured, the graph holds only Keras layers,
the padding geometry follows the weights, and `weights` defaults to None (building a model never
touches the network unless asked to with weights="imagenet").
"""

from __future__ import annotations

from regnet_keras.builder import RegNet
from regnet_keras.zoo import get_entry


def _zoo_constructor(zoo_name: str):
    entry = get_entry(zoo_name)

    def constructor(include_top=True, weights=None, input_tensor=None, input_shape=None,
                    pooling=None, classes=1000, classifier_activation="softmax",
                    include_preprocessing=True, name=None, **options):
        return RegNet(entry.config, include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation,
                      include_preprocessing=include_preprocessing, name=name or zoo_name,
                      zoo_name=zoo_name, **options)

    constructor.__name__ = constructor.__qualname__ = zoo_name
    constructor.__doc__ = (
        f"Instantiates {zoo_name}: {entry.config} (paper top-1 error {entry.paper_top1_error}%).\n\n"
        "Arguments as regnet_keras.RegNet, which also accepts padding, preprocessing and "
        "zero_init_last_bn here.")
    return constructor


RegNetX002 = _zoo_constructor("RegNetX002")
RegNetX004 = _zoo_constructor("RegNetX004")
RegNetX006 = _zoo_constructor("RegNetX006")
RegNetX008 = _zoo_constructor("RegNetX008")
RegNetX016 = _zoo_constructor("RegNetX016")
RegNetX032 = _zoo_constructor("RegNetX032")
RegNetX040 = _zoo_constructor("RegNetX040")
RegNetX064 = _zoo_constructor("RegNetX064")
RegNetX080 = _zoo_constructor("RegNetX080")
RegNetX120 = _zoo_constructor("RegNetX120")
RegNetX160 = _zoo_constructor("RegNetX160")
RegNetX320 = _zoo_constructor("RegNetX320")
RegNetY002 = _zoo_constructor("RegNetY002")
RegNetY004 = _zoo_constructor("RegNetY004")
RegNetY006 = _zoo_constructor("RegNetY006")
RegNetY008 = _zoo_constructor("RegNetY008")
RegNetY016 = _zoo_constructor("RegNetY016")
RegNetY032 = _zoo_constructor("RegNetY032")
RegNetY040 = _zoo_constructor("RegNetY040")
RegNetY064 = _zoo_constructor("RegNetY064")
RegNetY080 = _zoo_constructor("RegNetY080")
RegNetY120 = _zoo_constructor("RegNetY120")
RegNetY160 = _zoo_constructor("RegNetY160")
RegNetY320 = _zoo_constructor("RegNetY320")


def build_model(name: str, **kwargs):
    """The zoo model called `name` (case-insensitive), e.g. build_model("regnety016", classes=10)."""
    return globals()[get_entry(name).name](**kwargs)
