import math

import pytest

import regnet_keras
from regnet_keras import AnyNetConfig, complexity
from tests.zoo_table import ZOO_TABLE

TABLE = {row[0]: row for row in ZOO_TABLE}


@pytest.mark.parametrize("name, params, flops, activations",
                         [(r[0], r[3], r[4], r[5]) for r in ZOO_TABLE])
def test_complexity_equals_the_published_figures(name, params, flops, activations):
    measured = complexity(name, 224)
    assert (measured.params, measured.flops, measured.activations) == (params, flops, activations)


def test_per_stage_figures_add_up_and_describe_the_stages():
    measured = complexity("RegNetY016")
    total = measured.stem + measured.head
    for stage in measured.stages:
        total = total + stage.cost
    assert total == measured.total
    assert [s.spec.width for s in measured.stages] == list(TABLE["RegNetY016"][2])
    assert [s.output_size for s in measured.stages] == [(56, 56), (28, 28), (14, 14), (7, 7)]
    # The classifier of a 888-wide network with 1000 classes: weights plus bias.
    assert measured.head.params == 888 * 1000 + 1000


def test_complexity_without_top_and_at_other_resolutions():
    no_top = complexity("RegNetX002", include_top=False)
    assert no_top.params == TABLE["RegNetX002"][3] - (368 * 1000 + 1000)
    # Odd sizes follow the reference's floor((h + 2p - k) / s) + 1 per layer.
    assert complexity("RegNetX002", (225, 97)).stages[-1].output_size == (8, 4)


def _trainable_params(model):
    return sum(math.prod(v.shape) for v in model.trainable_weights)


@pytest.mark.parametrize("name", ["RegNetX002", "RegNetY002", "RegNetX080", "RegNetY016"])
def test_built_model_has_the_counted_params(name):
    model = regnet_keras.build_model(name)
    assert _trainable_params(model) == complexity(name).params == TABLE[name][3]
    assert complexity(model) == complexity(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [row[0] for row in ZOO_TABLE])
def test_every_zoo_model_builds_with_the_counted_params(name):
    model = regnet_keras.build_model(name)
    assert _trainable_params(model) == TABLE[name][3]


def test_complexity_of_anynet_and_of_foreign_models():
    anynet = AnyNetConfig((32, 64), (1, 2), (16, 16), (2, 2), (1.0, 1.0))
    assert complexity(anynet, 64).stages[1].output_size == (8, 8)
    import keras
    foreign = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3)])
    with pytest.raises(ValueError, match="not built by regnet_keras"):
        complexity(foreign)
