"""The paper's analysis tools: EDF, bootstrap ranges, the quantized linear fit, Pareto selection."""

import numpy as np
import pytest

from regnet_keras import get_config, list_models
from regnet_keras.design.analysis import (block_widths_of, bootstrap_best_ranges, edf,
                                          fit_quantized_linear, pareto_front,
                                          quantized_linear_widths, select_under_latency, trend)
from regnet_keras.design_space import AnyNetConfig, RegNetConfig


def test_edf_is_the_fraction_strictly_below():
    assert list(edf([4.0, 1.0, 3.0, 2.0], [0.0, 2.0, 2.5, 5.0])) == [0.0, 0.25, 0.5, 1.0]
    with pytest.raises(ValueError, match="empty population"):
        edf([], [1.0])


def test_vectorised_widths_equal_the_generator():
    rng = np.random.default_rng(0)
    for _ in range(50):
        config = RegNetConfig(w0=8 * int(rng.integers(1, 32)), wa=float(rng.uniform(1, 100)),
                              wm=float(rng.uniform(1.5, 3)), depth=int(rng.integers(1, 40)),
                              group_width=8)
        widths = quantized_linear_widths(config.w0, config.wa, config.wm, config.depth)
        assert list(widths) == list(config.block_widths())


@pytest.mark.parametrize("name", ["RegNetX002", "RegNetX016", "RegNetY032", "RegNetY080"])
def test_every_regnet_has_a_zero_fit_error(name):
    # The paper (section 3.3): RegNets are exactly quantized linear, e_fit = 0.
    fit = fit_quantized_linear(block_widths_of(get_config(name)))
    assert fit.e_fit == 0.0 and fit.predicted == fit.observed


def test_an_irregular_anynet_fits_badly_and_a_near_linear_one_well():
    irregular = AnyNetConfig(stage_widths=(256, 16, 176, 32), stage_depths=(1, 2, 3, 12),
                             stage_group_widths=(8, 8, 8, 8))
    assert fit_quantized_linear(block_widths_of(irregular)).e_fit > 0.4
    # RegNetX002's stages with one block moved between stages: close, but not exact.
    near = AnyNetConfig(stage_widths=(24, 56, 152, 368), stage_depths=(1, 1, 5, 6),
                        stage_group_widths=(8, 8, 8, 8))
    assert 0 < fit_quantized_linear(block_widths_of(near)).e_fit < 0.1


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=() if name in ("RegNetX080", "RegNetX160", "RegNetY016")
                 else pytest.mark.slow) for name in list_models()])
def test_zoo_widths_after_group_adjustment_stay_close_to_linear(name):
    # The adjustment moves a stage's width to a multiple of its group width (up to 64 channels
    # in the big models), so the built widths are near, not on, the rule.
    anynet = get_config(name).to_anynet()
    assert fit_quantized_linear(block_widths_of(anynet)).e_fit < 0.1


def test_fit_rejects_empty_widths():
    with pytest.raises(ValueError, match="non-empty sequence of positive widths"):
        fit_quantized_linear([])


def test_bootstrap_ranges_find_where_the_good_models_are():
    values = np.linspace(1, 10, 200)
    errors = 20 - values + np.random.default_rng(0).normal(0, 0.2, 200)  # bigger is better
    low, middle, high = bootstrap_best_ranges(errors, values)
    assert 8.5 < low <= middle <= high <= 10


def test_trend_slope():
    slope, intercept = trend([1, 10, 100], [3.0, 2.0, 1.0], log_scale=True)
    assert slope == pytest.approx(-1.0) and intercept == pytest.approx(3.0)


def test_pareto_front_and_selection():
    latencies = [1.0, 2.0, 1.5, 3.0, 2.5]
    accuracies = [0.80, 0.90, 0.85, 0.89, 0.90]
    assert list(pareto_front(latencies, accuracies)) == [0, 2, 1]
    assert select_under_latency(latencies, accuracies, 2.6) == 1  # tie at 0.90: the faster
    assert select_under_latency(latencies, accuracies, 1.6) == 2
    with pytest.raises(ValueError, match="no member runs within 0.5 ms.*raise the latency"):
        select_under_latency(latencies, accuracies, 0.5)
