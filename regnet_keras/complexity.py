"""Analytic cost of a RegNet/AnyNet: flops, trainable parameters and activations, per stage.

Counted as the reference code (pycls) counts them, from the design description alone, without
building a model:
- flops are multiply-adds of convolutions and the fully connected layer, plus one per output
  element of layers with a bias (the SE convolutions and the classifier); batch norm, ReLU,
  pooling, the SE multiply and the residual add are free;
- params are trainable weights (batch norm: gamma and beta);
- activations are the output elements of every convolution and fully connected layer.
"""

from __future__ import annotations

import dataclasses
from typing import Union

from regnet_keras.design_space import AnyNetConfig, RegNetConfig, StageSpec


@dataclasses.dataclass(frozen=True)
class Cost:
    flops: int = 0
    params: int = 0
    activations: int = 0

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.flops + other.flops, self.params + other.params,
                    self.activations + other.activations)


@dataclasses.dataclass(frozen=True)
class StageComplexity:
    index: int  # 1-based, as in the paper
    spec: StageSpec
    output_size: tuple[int, int]
    cost: Cost


@dataclasses.dataclass(frozen=True)
class Complexity:
    input_size: tuple[int, int]
    stem: Cost
    stem_output_size: tuple[int, int]
    stages: tuple[StageComplexity, ...]
    head: Cost

    @property
    def total(self) -> Cost:
        total = self.stem + self.head
        for stage in self.stages:
            total = total + stage.cost
        return total

    @property
    def flops(self) -> int:
        return self.total.flops

    @property
    def params(self) -> int:
        return self.total.params

    @property
    def activations(self) -> int:
        return self.total.activations


class _Counter:
    """Walks a network layer by layer, tracking the spatial size as pycls' *_cx functions do."""

    def __init__(self, height: int, width: int):
        self.height, self.width = height, width
        self.cost = Cost()

    def conv(self, in_channels, out_channels, kernel, stride=1, groups=1, bias=False):
        padding = (kernel - 1) // 2
        self.height = (self.height + 2 * padding - kernel) // stride + 1
        self.width = (self.width + 2 * padding - kernel) // stride + 1
        outputs = out_channels * self.height * self.width
        flops = kernel * kernel * in_channels * out_channels * self.height * self.width // groups
        params = kernel * kernel * in_channels * out_channels // groups
        if bias:
            flops, params = flops + outputs, params + out_channels
        self.cost = self.cost + Cost(flops, params, outputs)

    def batch_norm(self, channels):
        self.cost = self.cost + Cost(params=2 * channels)

    def global_pool(self):
        self.height = self.width = 1

    def dense(self, in_features, out_features):
        self.cost = self.cost + Cost(in_features * out_features + out_features,
                                     in_features * out_features + out_features, out_features)


def _block(counter: _Counter, in_width: int, spec: StageSpec, stride: int, se_ratio: float):
    height, width = counter.height, counter.width
    inner = spec.inner_width
    counter.conv(in_width, inner, 1)
    counter.batch_norm(inner)
    counter.conv(inner, inner, 3, stride, spec.groups)
    counter.batch_norm(inner)
    if se_ratio > 0:
        after_conv = counter.height, counter.width
        counter.global_pool()
        se_width = squeeze_excite_width(in_width, se_ratio)
        counter.conv(inner, se_width, 1, bias=True)
        counter.conv(se_width, inner, 1, bias=True)
        counter.height, counter.width = after_conv
    counter.conv(inner, spec.width, 1)
    counter.batch_norm(spec.width)
    if has_projection(in_width, spec.width, stride):
        after_block = counter.height, counter.width
        counter.height, counter.width = height, width
        counter.conv(in_width, spec.width, 1, stride)
        counter.batch_norm(spec.width)
        counter.height, counter.width = after_block


def squeeze_excite_width(block_in_width: int, se_ratio: float) -> int:
    """Inner width of a Y block's SE: from the block's INPUT width, as the reference does."""
    return int(round(se_ratio * block_in_width))


def se_ratio_of(widths: list[tuple[int, int]]) -> float | None:
    """The SE ratio that sizes every (block input width, SE width) pair, or None if none does.

    The widest block input measures the ratio most precisely; a designed ratio is a round
    number, so it is tried rounded first.
    """
    if not widths:
        return 0.0
    in_width, se_width = max(widths)
    measured = se_width / in_width
    for candidate in (round(measured, 2), round(measured, 3), round(measured, 4), measured):
        if 0 < candidate <= 1 and all(squeeze_excite_width(i, candidate) == s
                                      for i, s in widths):
            return float(candidate)
    return None


def has_projection(in_width: int, out_width: int, stride: int) -> bool:
    """A block's shortcut is a strided 1x1 conv + BN when its shape changes, else the identity."""
    return in_width != out_width or stride != 1


Designable = Union[str, RegNetConfig, AnyNetConfig]


def complexity(model_or_name_or_config, resolution=224, *, num_classes: int = 1000,
               include_top: bool = True, in_channels: int = 3) -> Complexity:
    """Flops, params and activations of a network, in total and per stage.

    `model_or_name_or_config` is a zoo name ('RegNetY016'), a RegNetConfig or AnyNetConfig, or a
    model built by regnet_keras (its own resolution, classes and top are then used and the other
    arguments ignored). `resolution` is an int or (height, width).
    """
    design = model_or_name_or_config
    if not isinstance(design, (str, RegNetConfig, AnyNetConfig)):
        from regnet_keras.introspect import design_of_model
        found = design_of_model(design)
        design, resolution = found.config, found.input_size
        num_classes, include_top, in_channels = found.classes, found.include_top, found.in_channels
        if resolution is None:
            raise ValueError("the model has no fixed input size; pass the config with "
                             "resolution=... instead, or build the model with input_shape=(H, W, C).")
    if isinstance(design, str):
        from regnet_keras.zoo import get_config
        design = get_config(design)
    anynet = design.to_anynet()
    height, width = (resolution, resolution) if isinstance(resolution, int) else resolution
    if min(height, width) < 1:
        raise ValueError(f"resolution={resolution!r} is invalid: it must be positive.")

    counter = _Counter(height, width)
    counter.conv(in_channels, anynet.stem_width, 3, 2)
    counter.batch_norm(anynet.stem_width)
    stem, stem_output_size = counter.cost, (counter.height, counter.width)

    stages = []
    in_width = anynet.stem_width
    for index, spec in enumerate(anynet.stages, start=1):
        counter.cost = Cost()
        for block in range(spec.depth):
            stride = spec.stride if block == 0 else 1
            _block(counter, in_width, spec, stride, anynet.se_ratio)
            in_width = spec.width
        stages.append(StageComplexity(index, spec, (counter.height, counter.width), counter.cost))

    counter.cost = Cost()
    if include_top:
        counter.global_pool()
        counter.dense(in_width, num_classes)
    return Complexity((height, width), stem, stem_output_size, tuple(stages), counter.cost)
