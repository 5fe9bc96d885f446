"""The paper's analysis tools for populations of trained networks (NumPy only).

- `edf`: the empirical distribution function of errors, F(e) = fraction of models with error
  < e, by which the paper compares design spaces (section 2.2).
- `bootstrap_best_ranges`: where the good models lie along one parameter, estimated as pycls
  does with the empirical bootstrap (resample, keep the best model of each resample, report the
  percentiles of its parameter value).
- `trend`: least-squares slope of error against a (log-scaled) parameter.
- `fit_quantized_linear`: the paper's test of the RegNet parameterization (section 3.3): grid
  search over w0, wa, wm for the quantized linear rule that best reproduces a network's per-block
  widths, measured by e_fit, the mean absolute log-ratio of predicted to observed widths.
- `pareto_front`, `select_under_latency`: hardware-aware selection from measured latency.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from regnet_keras.design_space import WIDTH_QUANTUM, AnyNetConfig, RegNetConfig


def edf(errors, grid) -> np.ndarray:
    """F(e) for each e of `grid`: the fraction of `errors` strictly below e."""
    errors = np.sort(np.asarray(errors, dtype=float))
    if errors.size == 0:
        raise ValueError("edf of an empty population: train some members first.")
    return np.searchsorted(errors, np.asarray(grid, dtype=float), side="left") / errors.size


def bootstrap_best_ranges(errors, values, *, fraction=0.25, resamples=2500, percentiles=(2.5,
                          50.0, 97.5), seed=0) -> tuple[float, float, float]:
    """Percentiles of `values` at the best model of each bootstrap resample (pycls' filters):
    a 95% interval of where the low-error models of the population lie."""
    errors, values = np.asarray(errors, float), np.asarray(values, float)
    if errors.size == 0 or errors.shape != values.shape:
        raise ValueError("bootstrap_best_ranges needs one value per error, and some errors.")
    rng = np.random.default_rng(seed)
    size = max(1, int(round(errors.size * fraction)))
    picks = rng.integers(0, errors.size, size=(resamples, size))
    best = picks[np.arange(resamples), np.argmin(errors[picks], axis=1)]
    low, mid, high = np.percentile(values[best], percentiles)
    return float(low), float(mid), float(high)


def trend(values, errors, log_scale=False) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line error = slope * x + intercept, with x the
    value or its log10."""
    x = np.log10(np.asarray(values, float)) if log_scale else np.asarray(values, float)
    if x.size < 2 or np.ptp(x) == 0:
        return 0.0, float(np.mean(errors)) if len(errors) else 0.0
    slope, intercept = np.polyfit(x, np.asarray(errors, float), 1)
    return float(slope), float(intercept)


# --------------------------------------------------------------------------------------------
# The quantized linear fit


def block_widths_of(design: RegNetConfig | AnyNetConfig) -> np.ndarray:
    """Per-block widths w_j (one entry per block, in order) of a design: for a RegNetConfig
    the generator's, before the group-compatibility adjustment moves some by a few channels."""
    if isinstance(design, RegNetConfig):
        return design.block_widths()
    anynet = design.to_anynet()
    return np.repeat(np.array(anynet.stage_widths), np.array(anynet.stage_depths))


def quantized_linear_widths(w0, wa, wm, depth: int) -> np.ndarray:
    """The paper's equations 2-4 for arrays of (w0, wa, wm): widths of shape (..., depth).
    Identical to RegNetConfig.block_widths() (NumPy's round half to even), vectorised."""
    w0, wa, wm = (np.asarray(v, float)[..., None] for v in (w0, wa, wm))
    continuous = w0 + wa * np.arange(depth)
    exponents = np.round(np.log(continuous / w0) / np.log(wm))
    return np.round(w0 * np.power(wm, exponents) / WIDTH_QUANTUM) * WIDTH_QUANTUM


@dataclasses.dataclass(frozen=True)
class QuantizedLinearFit:
    w0: int
    wa: float
    wm: float
    depth: int
    e_fit: float  # mean |log(predicted / observed)| over the blocks
    predicted: tuple[int, ...]
    observed: tuple[int, ...]


def fit_quantized_linear(widths, *, w0_grid=None, wa_grid=None, wm_grid=None
                         ) -> QuantizedLinearFit:
    """Grid search for the (w0, wa, wm) whose quantized linear widths best match `widths`.

    `widths` are per-block widths (see block_widths_of). The default grids cover w0 in multiples
    of 8 up to twice the first width, wa log-spaced from 0.5 to twice the widest step, wm from
    1.05 to 4 in steps of 0.01; each is replaceable.
    """
    observed = np.asarray(widths, dtype=float)
    if observed.ndim != 1 or observed.size == 0 or np.any(observed <= 0):
        raise ValueError("fit_quantized_linear needs a non-empty sequence of positive widths.")
    depth = observed.size
    if w0_grid is None:
        w0_grid = np.arange(WIDTH_QUANTUM, max(2 * observed[0], 2 * WIDTH_QUANTUM) + 1,
                            WIDTH_QUANTUM)
    if wa_grid is None:
        span = max((observed.max() - observed[0]) / max(depth - 1, 1), 1.0)
        wa_grid = np.geomspace(0.5, 2 * span + 1, 160)
    if wm_grid is None:
        wm_grid = np.round(np.arange(1.05, 4.0001, 0.01), 2)
    log_observed = np.log(observed)

    def search(w0s, was, wms):
        best = (np.inf, None)
        for w0 in np.asarray(w0s, float):
            grid_w0, grid_wa, grid_wm = np.meshgrid([w0], was, wms, indexing="ij")
            predicted = quantized_linear_widths(grid_w0, grid_wa, grid_wm, depth)
            predicted = np.maximum(predicted, WIDTH_QUANTUM)  # a zero width has no log
            errors = np.mean(np.abs(np.log(predicted) - log_observed), axis=-1)
            index = np.unravel_index(np.argmin(errors), errors.shape)
            if errors[index] < best[0]:
                best = (float(errors[index]), (w0, float(grid_wa[index]),
                                               float(grid_wm[index]), predicted[index]))
        return best

    e_fit, (w0, wa, wm, predicted) = search(w0_grid, wa_grid, wm_grid)
    if e_fit > 0:  # refine wa and wm around the coarse optimum
        refined = search([w0], np.linspace(wa * 0.95, wa * 1.05, 41),
                         np.linspace(max(wm - 0.01, 1.001), wm + 0.01, 21))
        if refined[0] < e_fit:
            e_fit, (w0, wa, wm, predicted) = refined
    return QuantizedLinearFit(int(w0), round(wa, 4), round(wm, 4), depth, e_fit,
                              tuple(int(v) for v in predicted), tuple(int(v) for v in observed))


# --------------------------------------------------------------------------------------------
# Accuracy against latency


def pareto_front(latencies, accuracies) -> np.ndarray:
    """Indices of the members no other member beats on both (lower latency, higher accuracy),
    ordered by latency."""
    latencies, accuracies = np.asarray(latencies, float), np.asarray(accuracies, float)
    order = np.lexsort((-accuracies, latencies))
    front, best = [], -np.inf
    for index in order:
        if accuracies[index] > best:
            front.append(int(index))
            best = accuracies[index]
    return np.array(front, dtype=int)


def select_under_latency(latencies, accuracies, budget_ms: float) -> int:
    """Index of the most accurate member whose latency is within budget (ties: the faster)."""
    latencies, accuracies = np.asarray(latencies, float), np.asarray(accuracies, float)
    within = np.flatnonzero(latencies <= budget_ms)
    if within.size == 0:
        raise ValueError(f"no member runs within {budget_ms} ms (the fastest takes "
                         f"{latencies.min():.3f} ms): raise the latency budget.")
    return int(within[np.lexsort((latencies[within], -accuracies[within]))[0]])
