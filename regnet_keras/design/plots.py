"""The sweep's figures as PNG files: error EDFs, error against design parameters, accuracy
against latency. Uses matplotlib without a display."""

from __future__ import annotations

import numpy as np

from regnet_keras.design import analysis as design_analysis


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_edfs(errors_by_space: dict, path: str, title: str) -> None:
    """One error EDF per space, with n and the minimum and median error in the legend."""
    plt = _pyplot()
    everything = np.concatenate([np.asarray(e, float) for e in errors_by_space.values()])
    grid = np.linspace(everything.min() - 0.5, everything.max() + 0.5, 400)
    figure, axis = plt.subplots(figsize=(6, 4.2))
    for name, errors in errors_by_space.items():
        axis.plot(grid, design_analysis.edf(errors, grid), linewidth=2,
                  label=f"{name} (n={len(errors)}, min {np.min(errors):.2f}, "
                        f"median {np.median(errors):.2f})")
    axis.set_xlabel("error (%)")
    axis.set_ylabel("cumulative prob.")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_parameter_trends(rows, parameters, path: str, title: str) -> dict:
    """Error against each parameter: scatter per space, least-squares trend, and the bootstrap
    95% interval of where the best models lie (shaded). Returns the numbers drawn."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(parameters), figsize=(3.3 * len(parameters), 3.2),
                                squeeze=False)
    drawn = {}
    errors = np.array([row["error"] for row in rows], float)
    spaces = sorted({row["space"] for row in rows})
    for axis, (parameter, log_scale) in zip(axes[0], parameters):
        values = np.array([row[parameter] for row in rows], float)
        for space in spaces:
            mine = [row["space"] == space for row in rows]
            axis.scatter(values[mine], errors[mine], s=14, alpha=0.7, label=space)
        slope, intercept = design_analysis.trend(values, errors, log_scale)
        low, middle, high = design_analysis.bootstrap_best_ranges(errors, values)
        xs = np.linspace(values.min(), values.max(), 50)
        axis.plot(xs, slope * (np.log10(xs) if log_scale else xs) + intercept, "k--",
                  linewidth=1)
        axis.axvspan(low, high, color="tab:green", alpha=0.12)
        axis.axvline(middle, color="tab:green", linewidth=1)
        if log_scale:
            from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter
            axis.set_xscale("log")
            # 1-2-5 ticks as plain numbers: narrow ranges get labels without crowding.
            axis.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel(parameter)
        axis.grid(alpha=0.3)
        drawn[parameter] = {"slope_per_" + ("decade" if log_scale else "unit"): round(slope, 4),
                            "best_range": [round(low, 4), round(middle, 4), round(high, 4)]}
    axes[0][0].set_ylabel("error (%)")
    axes[0][0].legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return drawn


def plot_pareto(rows, front, selected, reference, path: str, budget_ms: float) -> None:
    """Top-1 against measured latency; the Pareto front, the selection and the reference."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4.2))
    for space in sorted({row["space"] for row in rows}):
        mine = [row for row in rows if row["space"] == space]
        axis.scatter([r["latency_ms"] for r in mine], [100 * r["top1"] for r in mine], s=16,
                     alpha=0.7, label=space)
    front_rows = [rows[i] for i in front]
    axis.plot([r["latency_ms"] for r in front_rows], [100 * r["top1"] for r in front_rows],
              "k-", linewidth=1, label="Pareto front")
    axis.axvline(budget_ms, color="gray", linestyle=":", label=f"budget {budget_ms:.3f} ms")
    chosen = rows[selected]
    axis.scatter([chosen["latency_ms"]], [100 * chosen["top1"]], s=120, facecolors="none",
                 edgecolors="red", linewidths=2, label=f"selected {chosen['id']}")
    if reference is not None:
        axis.scatter([reference["latency_ms"]], [100 * reference["top1"]], marker="*", s=160,
                     color="black", label=reference["id"])
    axis.set_xlabel("LiteRT latency (ms, median)")
    axis.set_ylabel("top-1 (%)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
