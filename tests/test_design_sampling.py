"""Design spaces and their sampling: the paper's constraints, pycls' distributions, budgets."""

import math

import numpy as np
import pytest

from regnet_keras import complexity
from regnet_keras.design.sampling import (SPACES, Budget, DesignSpace, SamplingError, get_space,
                                          log_uniform, power2_or_log_uniform, sample)
from regnet_keras.design_space import AnyNetConfig, RegNetConfig

# Around RegNetX002 at 32x32 with 10 classes (4.06 MF): the budget of the docs/ experiment.
BUDGET = Budget(resolution=32, num_classes=10, flops=(3.5e6, 4.5e6))


def test_log_uniform_gives_each_integer_the_log_mass_below_it():
    # pycls' definition: f log-uniform on (low - min(q, low/2), high], rounded up to q. For
    # [1, 32] with q = 1: P(1) = log(1/0.5)/log(32/0.5), P(k) = log(k/(k-1))/log(64).
    rng = np.random.default_rng(0)
    draws = np.array([log_uniform(rng, 1, 32, 1) for _ in range(40000)])
    assert draws.min() == 1 and draws.max() == 32
    expected = {1: math.log(2) / math.log(64), 2: math.log(2) / math.log(64),
                10: math.log(10 / 9) / math.log(64), 32: math.log(32 / 31) / math.log(64)}
    for value, probability in expected.items():
        assert np.mean(draws == value) == pytest.approx(probability, abs=0.006)


def test_group_widths_are_powers_of_two_below_8_and_multiples_of_8_above():
    rng = np.random.default_rng(1)
    draws = np.array([power2_or_log_uniform(rng, 1, 32, 8) for _ in range(12000)])
    assert set(draws) == {1, 2, 4, 8, 16, 24, 32}
    # Six equally likely powers of two (1..32) decide first: half of the mass is below 8.
    for value in (1, 2, 4):
        assert np.mean(draws == value) == pytest.approx(1 / 6, abs=0.015)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_members_meet_their_space_and_the_budget(name):
    space = get_space(name)
    members = sample(space, 12, BUDGET, seed=3)
    assert len({m.id for m in members}) == 12
    assert len({str(m.design) for m in members}) == 12  # distinct designs
    for member in members:
        design = member.design
        cost = complexity(design, resolution=32, num_classes=10).total
        assert (member.flops, member.params, member.activations) == (
            cost.flops, cost.params, cost.activations)
        assert 3.5e6 <= member.flops <= 4.5e6
        anynet = design.to_anynet()
        assert len(anynet.stage_widths) == 4 and design.se_ratio == space.se_ratio
        assert all(w % 8 == 0 for w in anynet.stage_widths)
        ratios = [round(1 / b) for b in anynet.stage_bottlenecks]
        assert set(ratios) <= set(space.bottleneck_ratios)
        if space.family == "regnet":
            assert isinstance(design, RegNetConfig)
            assert space.depth[0] <= design.depth <= space.depth[1]
            assert space.wm[0] <= design.wm <= space.wm[1]
            assert space.w0[0] <= design.w0 <= space.w0[1]
            continue
        assert isinstance(design, AnyNetConfig)
        assert all(1 <= d <= 16 for d in anynet.stage_depths)
        assert all(w <= 1024 for w in anynet.stage_widths)
        if space.shared_bottleneck:
            assert len(set(anynet.stage_bottlenecks)) == 1
        if space.shared_group_width:
            # One g for all stages, shrunk where a stage's 3x3 convolution is narrower than g.
            inner = [s.inner_width for s in anynet.stages]
            shared = max(anynet.stage_group_widths)
            assert list(anynet.stage_group_widths) == [min(shared, v) for v in inner]
        if space.increasing_widths:
            assert list(anynet.stage_widths) == sorted(anynet.stage_widths)
        if space.increasing_depths:
            assert list(anynet.stage_depths) == sorted(anynet.stage_depths)


def test_anynetxa_is_free_where_the_refined_spaces_are_constrained():
    members = sample(get_space("AnyNetXA"), 30, BUDGET, seed=0)
    stages = [m.design.to_anynet() for m in members]
    assert any(len(set(a.stage_bottlenecks)) > 1 for a in stages)
    assert any(list(a.stage_widths) != sorted(a.stage_widths) for a in stages)
    assert any(list(a.stage_depths) != sorted(a.stage_depths) for a in stages)


def test_sampling_is_reproducible_from_the_seed():
    space = get_space("RegNetX")
    first = [m.design for m in sample(space, 6, BUDGET, seed=7)]
    assert first == [m.design for m in sample(space, 6, BUDGET, seed=7)]
    assert first != [m.design for m in sample(space, 6, BUDGET, seed=8)]


def test_accept_filters_candidates_after_the_budget():
    seen = []

    def accept(member):
        seen.append(member)
        return member.params < 1e6

    members = sample(get_space("RegNetX"), 4, BUDGET, seed=0, accept=accept)
    assert all(m.params < 1e6 for m in members) and len(seen) >= 4


def test_an_unreachable_budget_says_how_far_it_got_and_what_to_change():
    with pytest.raises(SamplingError, match=r"only 0 of 3 .*widen the budget"):
        sample(get_space("RegNetX"), 3, Budget(flops=(1, 2)), max_draws=500)


def test_user_defined_spaces_come_from_json_fields():
    space = DesignSpace.from_dict({"name": "tiny", "family": "regnet", "depth": [6, 10],
                                   "w0": [16, 48], "wa": [8.0, 32.0], "wm": [2.0, 2.5],
                                   "group_width": [8, 16], "se_ratio": 0.25,
                                   "min_stages": 2, "max_stages": 4})
    members = sample(space, 5, Budget(resolution=32), seed=0)
    assert all(6 <= m.design.depth <= 10 and m.design.se_ratio == 0.25 for m in members)
    with pytest.raises(ValueError, match="unknown design space fields.*'colour'"):
        DesignSpace.from_dict({"name": "x", "family": "regnet", "depth": [1, 2], "colour": 1})
    with pytest.raises(ValueError, match="wm must be > 1"):
        DesignSpace("x", family="regnet", depth=(1, 2), wm=(1.0, 2.0))
    with pytest.raises(ValueError, match="unknown design space 'AnyNetXZ'.*AnyNetXA"):
        get_space("AnyNetXZ")


def test_sampled_designs_build_with_the_counted_parameters():
    # Keras' own count of a built member equals the analytic one (AnyNet with bottlenecks and
    # shrunk groups, RegNetY with SE).
    import regnet_keras
    for name in ("AnyNetXA", "RegNetY"):
        member = sample(get_space(name), 1, BUDGET, seed=5)[0]
        model = regnet_keras.RegNet(member.design, classes=10, input_shape=(32, 32, 3))
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        assert trainable == member.params
