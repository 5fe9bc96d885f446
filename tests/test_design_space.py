import dataclasses

import pytest

from regnet_keras import AnyNetConfig, RegNetConfig, get_config, list_models
from regnet_keras.design_space import adjust_group_compatibility, config_from_dict
from tests.zoo_table import ZOO_TABLE


def test_zoo_lists_the_24_keras_applications_names():
    assert list_models() == [row[0] for row in ZOO_TABLE]
    assert len(list_models()) == 24


@pytest.mark.parametrize("name, depths, widths", [row[:3] for row in ZOO_TABLE])
def test_generated_stages_match_the_paper(name, depths, widths):
    stages = get_config(name).to_anynet()
    assert stages.stage_depths == depths
    assert stages.stage_widths == widths
    assert stages.stage_strides == (2, 2, 2, 2)


def test_group_width_compatibility_of_the_zoo():
    for name in list_models():
        config = get_config(name)
        expected = ((80, 120, 120, 120) if name == "RegNetX080"
                    else (config.group_width,) * 4)
        assert config.to_anynet().stage_group_widths == expected, name


def test_rounding_is_half_to_even_like_the_reference():
    # 20 / 8 = 2.5: half to even gives 16 channels, half up would give 24.
    assert adjust_group_compatibility([20], [8], [1.0]) == ([16], [8])
    # A group wider than the stage shrinks to the stage.
    assert adjust_group_compatibility([80], [120], [1.0]) == ([80], [80])


def test_lookup_is_case_insensitive_and_unknown_names_list_the_valid_ones():
    assert get_config("regnety016") == get_config("RegNetY016")
    with pytest.raises(ValueError, match=r"model='RegNetZ999'.*Valid names: RegNetX002"):
        get_config("RegNetZ999")


@pytest.mark.parametrize("field, value, allowed", [
    ("w0", 0, "positive integer multiple of 8"),
    ("w0", 20, "positive integer multiple of 8"),
    ("w0", -8, "positive integer multiple of 8"),
    ("wm", 1.0, "> 1"),
    ("wa", -1.0, ">= 0"),
    ("depth", 0, ">= 1"),
    ("group_width", 0, ">= 1"),
    ("bottleneck", 0, "> 0"),
    ("se_ratio", 1.5, r"\[0, 1\]"),
])
def test_invalid_design_parameters_name_parameter_value_and_range(field, value, allowed):
    parameters = dict(w0=24, wa=36.44, wm=2.49, depth=13, group_width=8)
    parameters[field] = value
    with pytest.raises(ValueError, match=rf"{field}={value!r} is invalid.*{allowed}"):
        RegNetConfig(**parameters)


def test_anynet_validation():
    with pytest.raises(ValueError, match="stage 2: inner width 40 .* not a multiple of group "
                                         "width 16"):
        AnyNetConfig((32, 40), (1, 1), (16, 16), (2, 2), (1.0, 1.0))
    with pytest.raises(ValueError, match="stage_depths=.* same length"):
        AnyNetConfig((32, 64), (1,), (16, 16), (2, 2), (1.0, 1.0))
    with pytest.raises(ValueError, match="stage_strides=.* 1s and 2s"):
        AnyNetConfig((32,), (1,), (16,), (3,), (1.0,))


def test_configs_are_frozen_hashable_and_serialisable():
    config = get_config("RegNetY016")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.w0 = 8
    assert len({config, get_config("RegNetY016")}) == 1
    assert config_from_dict(config.to_dict()) == config
    anynet = config.to_anynet()
    assert config_from_dict(anynet.to_dict()) == anynet
    with pytest.raises(ValueError, match="kind"):
        config_from_dict({"kind": "resnet"})


def _half_up_stages(config):
    """The generator with half-up rounding (torchvision's _make_divisible, C's round())."""
    import math
    widths = []
    for j in range(config.depth):
        u = config.w0 + config.wa * j
        s = math.floor(math.log(u / config.w0) / math.log(config.wm) + 0.5)
        widths.append(int(math.floor(config.w0 * config.wm ** s / 8 + 0.5)) * 8)
    stages = sorted(set(widths))
    depths = tuple(widths.count(w) for w in stages)
    compatible = []
    for width in stages:
        group = min(config.group_width, width)
        compatible.append(max(group, int(math.floor(width / group + 0.5)) * group))
    return depths, tuple(compatible)


def test_the_zoo_table_tells_half_up_rounding_apart():
    # Exact .5 ties in the group-width adjustment: RegNetX004's 392 / 16 = 24.5, RegNetY008's
    # 136 / 16 = 8.5 and 776 / 16 = 48.5. The table check above fails for a half-up generator.
    differing = {name for name, depths, widths, *_ in ZOO_TABLE
                 if _half_up_stages(get_config(name)) != (depths, widths)}
    assert {"RegNetX004", "RegNetY008"} <= differing
