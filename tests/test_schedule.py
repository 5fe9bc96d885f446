import math

import pytest

from regnet_keras.training import schedule


def test_linear_scaling_rule():
    assert schedule.scaled_learning_rate(128) == pytest.approx(0.1)
    assert schedule.scaled_learning_rate(1024) == pytest.approx(0.8)
    assert schedule.scaled_learning_rate(32, lr_per_128=0.2) == pytest.approx(0.05)


def test_warmup_then_cosine_values():
    peak, total, warmup = 0.8, 1000, 100
    at = lambda step: schedule.learning_rate_at(step, peak, total, warmup)
    assert at(0) == pytest.approx(0.08)                     # 0.1x the peak
    assert at(50) == pytest.approx(0.08 + 0.72 * 0.5)       # linear
    assert at(100) == pytest.approx(peak)                   # the peak after warmup
    assert at(550) == pytest.approx(peak / 2)               # cosine midpoint
    assert at(100 + 900 // 3) == pytest.approx(peak * 0.5 * (1 + math.cos(math.pi / 3)))
    assert at(1000) == pytest.approx(0.0, abs=1e-12)
    assert all(at(s) >= at(s + 1) for s in range(100, 1000))


def test_keras_schedule_matches_the_python_values():
    peak, total, warmup = 0.4, 300, 30
    keras_schedule = schedule.keras_schedule(peak, total, warmup)
    for step in (0, 1, 15, 29, 30, 31, 100, 299, 300):
        assert float(keras_schedule(step)) == pytest.approx(
            schedule.learning_rate_at(step, peak, total, warmup), rel=1e-5, abs=1e-7)
    no_warmup = schedule.keras_schedule(peak, total, 0)
    assert float(no_warmup(0)) == pytest.approx(peak)
