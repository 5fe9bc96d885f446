"""Design descriptions of RegNet and AnyNet networks, and the rule that turns one into the other.

A `RegNetConfig` holds the paper's six design parameters (w0, wa, wm, depth, group width, bottleneck
multiplier) plus the SE ratio; `RegNetConfig.to_anynet()` generates the explicit per-stage
description (`AnyNetConfig`) exactly as the reference code (pycls) does, including its two rounding
steps (numpy's round half to even) and the group-width compatibility adjustment. Both descriptions
are frozen dataclasses: hashable, printable, comparable, and independent of input resolution.

Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

# Stage widths are quantized to multiples of this number (the paper's q).
WIDTH_QUANTUM = 8
# Output channels of the stem convolution in every RegNet.
DEFAULT_STEM_WIDTH = 32


def _require(condition: bool, parameter: str, value, allowed: str) -> None:
    if not condition:
        raise ValueError(f"{parameter}={value!r} is invalid: {parameter} must be {allowed}.")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """One stage of an AnyNet: `depth` blocks of `width` output channels.

    The first block has stride `stride`; the others have stride 1. `bottleneck` is the ratio of the
    blocks' inner width to `width`; `group_width` is the channel count of each group of the 3x3
    convolution, so that convolution has `inner_width // group_width` groups.
    """

    width: int
    depth: int
    stride: int
    group_width: int
    bottleneck: float = 1.0

    @property
    def inner_width(self) -> int:
        """Channels of the block's 1x1 -> 3x3 -> 1x1 bottleneck (pycls' w_b)."""
        return int(round(self.width * self.bottleneck))

    @property
    def groups(self) -> int:
        return self.inner_width // self.group_width


@dataclasses.dataclass(frozen=True)
class AnyNetConfig:
    """An explicit network: per-stage widths, depths, strides, group widths and bottlenecks.

    Blocks are X blocks when `se_ratio` is 0 and Y blocks (X + Squeeze-and-Excitation whose inner
    width is round(se_ratio * block input width)) otherwise.
    """

    stage_widths: tuple[int, ...]
    stage_depths: tuple[int, ...]
    stage_group_widths: tuple[int, ...]
    stage_strides: tuple[int, ...] = (2, 2, 2, 2)
    stage_bottlenecks: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    se_ratio: float = 0.0
    stem_width: int = DEFAULT_STEM_WIDTH

    def __post_init__(self):
        for field in ("stage_widths", "stage_depths", "stage_group_widths", "stage_strides",
                      "stage_bottlenecks"):
            value = getattr(self, field)
            if not isinstance(value, (tuple, list)) or not value:
                raise ValueError(f"{field}={value!r} is invalid: {field} must be a non-empty "
                                 "sequence with one entry per stage.")
            object.__setattr__(self, field, tuple(value))
        num_stages = len(self.stage_widths)
        for field in ("stage_depths", "stage_group_widths", "stage_strides", "stage_bottlenecks"):
            value = getattr(self, field)
            _require(len(value) == num_stages, field, value,
                     f"of the same length as stage_widths ({num_stages} stages)")
        for field in ("stage_widths", "stage_depths", "stage_group_widths"):
            for value in getattr(self, field):
                _require(_is_int(value) and value >= 1, field, getattr(self, field),
                         "a sequence of integers >= 1")
        for value in self.stage_strides:
            _require(value in (1, 2), "stage_strides", self.stage_strides,
                     "a sequence of 1s and 2s")
        for value in self.stage_bottlenecks:
            _require(_is_number(value) and value > 0, "stage_bottlenecks",
                     self.stage_bottlenecks, "a sequence of numbers > 0")
        _require(_is_number(self.se_ratio) and 0 <= self.se_ratio <= 1, "se_ratio",
                 self.se_ratio, "a number in [0, 1] (0: X blocks, 0.25: Y blocks)")
        _require(_is_int(self.stem_width) and self.stem_width >= 1, "stem_width",
                 self.stem_width, "an integer >= 1")
        for index, stage in enumerate(self.stages, start=1):
            if stage.inner_width % stage.group_width:
                raise ValueError(
                    f"stage {index}: inner width {stage.inner_width} (width {stage.width} x "
                    f"bottleneck {stage.bottleneck}) is not a multiple of group width "
                    f"{stage.group_width}; choose a group width that divides it, or describe the "
                    "network as a RegNetConfig, whose generator makes them compatible.")

    @property
    def stages(self) -> tuple[StageSpec, ...]:
        return tuple(
            StageSpec(w, d, s, g, b) for w, d, s, g, b in zip(
                self.stage_widths, self.stage_depths, self.stage_strides,
                self.stage_group_widths, self.stage_bottlenecks))

    @property
    def block_type(self) -> str:
        return "Y" if self.se_ratio > 0 else "X"

    @property
    def depth(self) -> int:
        return sum(self.stage_depths)

    def to_anynet(self) -> "AnyNetConfig":
        return self

    def to_dict(self) -> dict:
        return {"kind": "anynet", **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class RegNetConfig:
    """The RegNet design parameters of the paper (section 3.3).

    w0: initial width (> 0, a multiple of 8); wa: slope of the linear width rule (>= 0);
    wm: width multiplier between stages (> 1); depth: total number of blocks (>= 1);
    group_width: channels per group of the 3x3 convolutions (>= 1); bottleneck: inner width over
    block width (1.0 in RegNetX/Y); se_ratio: 0 for RegNetX, 0.25 for RegNetY.
    """

    w0: int
    wa: float
    wm: float
    depth: int
    group_width: int
    bottleneck: float = 1.0
    se_ratio: float = 0.0
    stem_width: int = DEFAULT_STEM_WIDTH

    def __post_init__(self):
        _require(_is_int(self.w0) and self.w0 > 0 and self.w0 % WIDTH_QUANTUM == 0, "w0", self.w0,
                 f"a positive integer multiple of {WIDTH_QUANTUM}")
        _require(_is_number(self.wa) and self.wa >= 0 and math.isfinite(self.wa), "wa", self.wa,
                 "a finite number >= 0")
        _require(_is_number(self.wm) and self.wm > 1 and math.isfinite(self.wm), "wm", self.wm,
                 "a finite number > 1")
        _require(_is_int(self.depth) and self.depth >= 1, "depth", self.depth, "an integer >= 1")
        _require(_is_int(self.group_width) and self.group_width >= 1, "group_width",
                 self.group_width, "an integer >= 1")
        _require(_is_number(self.bottleneck) and self.bottleneck > 0, "bottleneck",
                 self.bottleneck, "a number > 0")
        _require(_is_number(self.se_ratio) and 0 <= self.se_ratio <= 1, "se_ratio", self.se_ratio,
                 "a number in [0, 1] (0: RegNetX, 0.25: RegNetY)")
        _require(_is_int(self.stem_width) and self.stem_width >= 1, "stem_width",
                 self.stem_width, "an integer >= 1")

    def block_widths(self) -> np.ndarray:
        """Quantized per-block widths w_j (the paper's equations 2-4), before stage grouping."""
        continuous = self.w0 + self.wa * np.arange(self.depth)
        exponents = np.round(np.log(continuous / self.w0) / np.log(self.wm))
        return (np.round(self.w0 * np.power(self.wm, exponents) / WIDTH_QUANTUM)
                * WIDTH_QUANTUM).astype(int)

    def to_anynet(self) -> AnyNetConfig:
        widths, depths = np.unique(self.block_widths(), return_counts=True)
        stage_widths, stage_group_widths = adjust_group_compatibility(
            [int(w) for w in widths], [self.group_width] * len(widths),
            [self.bottleneck] * len(widths))
        num_stages = len(stage_widths)
        return AnyNetConfig(
            stage_widths=tuple(stage_widths),
            stage_depths=tuple(int(d) for d in depths),
            stage_group_widths=tuple(stage_group_widths),
            stage_strides=(2,) * num_stages,
            stage_bottlenecks=(float(self.bottleneck),) * num_stages,
            se_ratio=float(self.se_ratio),
            stem_width=self.stem_width,
        )

    @property
    def stages(self) -> tuple[StageSpec, ...]:
        return self.to_anynet().stages

    @property
    def block_type(self) -> str:
        return "Y" if self.se_ratio > 0 else "X"

    def to_dict(self) -> dict:
        return {"kind": "regnet", **dataclasses.asdict(self)}


def adjust_group_compatibility(widths: Sequence[int], group_widths: Sequence[int],
                               bottlenecks: Sequence[float]) -> tuple[list[int], list[int]]:
    """Makes each stage's inner width a multiple of its group width, as pycls does.

    A group wider than the stage's inner width shrinks to it; the inner width is then rounded
    (half to even) to a multiple of the group width, and the stage width follows from it.
    """
    inner = [int(max(1, w * b)) for w, b in zip(widths, bottlenecks)]
    groups = [int(min(g, v)) for g, v in zip(group_widths, inner)]
    inner = [max(g, int(round(v / g) * g)) for v, g in zip(inner, groups)]
    return [int(v / b) for v, b in zip(inner, bottlenecks)], groups


def config_from_dict(values: dict) -> RegNetConfig | AnyNetConfig:
    """Inverse of `to_dict()`: rebuilds a config from its JSON-friendly form."""
    values = dict(values)
    kind = values.pop("kind", None)
    if kind == "regnet":
        return RegNetConfig(**values)
    if kind == "anynet":
        return AnyNetConfig(**{k: tuple(v) if isinstance(v, list) else v
                               for k, v in values.items()})
    raise ValueError(f"kind={kind!r} is invalid: a stored design must say kind 'regnet' or "
                     "'anynet'.")
