"""Design spaces of the paper and random sampling from them under a complexity budget.

A design space is a distribution over networks. The paper (sections 3.1-3.3, 4) compares them by
sampling n models, training each briefly and plotting the error EDF; this module is the sampling
half. Named spaces:

    AnyNetXA  4 stages, each with its own depth d_i <= 16, width w_i <= 1024 (multiple of 8),
              bottleneck ratio b_i in {1, 2, 4} and group width g_i in {1, 2, ..., 32}
    AnyNetXB  A with one bottleneck ratio shared by all stages
    AnyNetXC  B with one group width shared by all stages
    AnyNetXD  C with widths that never decrease (w_{i+1} >= w_i)
    AnyNetXE  D with depths that never decrease (d_{i+1} >= d_i)
    RegNet    the quantized linear space: d < 64, w0 and wa < 256, 1.5 <= wm <= 3, b and g as in
              AnyNetXE
    RegNetX   the refined space: b = 1, 12 <= d <= 28, wm >= 2
    RegNetY   RegNetX with Squeeze-and-Excitation (ratio 0.25)

Values are drawn as pycls' sweep samplers draw them: depths uniformly (RegNet) or log-uniformly
(AnyNet), widths, w0, wa and wm log-uniformly and quantized up to their step, group widths as
powers of two below 8 and log-uniform multiples of 8 above, bottleneck ratios uniformly from
their list. Ordering constraints (XD, XE) and the budget are met by rejection, so the accepted
models follow the space's distribution conditioned on them. Identical designs are drawn once.

Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from regnet_keras.complexity import complexity
from regnet_keras.design_space import (WIDTH_QUANTUM, AnyNetConfig, RegNetConfig,
                                       adjust_group_compatibility)
from regnet_keras.errors import InputError


class SamplingError(InputError, ValueError):
    """The space and budget do not yield the requested population."""


@dataclasses.dataclass(frozen=True)
class DesignSpace:
    """Ranges (inclusive) of the design parameters, and the constraints that tie them.

    family "anynet": per-stage depth, width, bottleneck ratio and group width, `num_stages`
    stages; the `shared_*` and `increasing_*` switches are the paper's XB..XE refinements.
    family "regnet": depth, w0, wa, wm, group width and bottleneck ratio of a RegNetConfig; the
    generated network must have `min_stages`..`max_stages` stages.
    Bottleneck ratios are the paper's b: the 3x3 convolution has width / b channels.
    """

    name: str
    family: str
    depth: tuple[int, int]
    group_width: tuple[int, int] = (1, 32)
    bottleneck_ratios: tuple[float, ...] = (1.0,)
    se_ratio: float = 0.0
    # AnyNet
    width: tuple[int, int] = (8, 1024)
    num_stages: int = 4
    shared_bottleneck: bool = False
    shared_group_width: bool = False
    increasing_widths: bool = False
    increasing_depths: bool = False
    # RegNet
    w0: tuple[int, int] = (8, 256)
    wa: tuple[float, float] = (8.0, 256.0)
    wm: tuple[float, float] = (2.0, 3.0)
    min_stages: int = 4
    max_stages: int = 4

    def __post_init__(self):
        if self.family not in ("anynet", "regnet"):
            raise ValueError(f"family={self.family!r} is invalid: a design space is 'anynet' "
                             "or 'regnet'.")
        for field in ("depth", "group_width", "width", "w0", "wa", "wm"):
            low, high = getattr(self, field)
            if not 0 < low <= high:
                raise ValueError(f"{self.name}: {field}={getattr(self, field)!r} is invalid: "
                                 "give (low, high) with 0 < low <= high.")
        if self.w0[0] % WIDTH_QUANTUM or self.width[0] % WIDTH_QUANTUM:
            raise ValueError(f"{self.name}: w0 and width ranges must start at a multiple of "
                             f"{WIDTH_QUANTUM}.")
        if self.wm[0] <= 1:
            raise ValueError(f"{self.name}: wm={self.wm!r} is invalid: wm must be > 1.")
        if not self.bottleneck_ratios or any(b <= 0 for b in self.bottleneck_ratios):
            raise ValueError(f"{self.name}: bottleneck_ratios={self.bottleneck_ratios!r} is "
                             "invalid: give one or more ratios > 0.")
        if not 0 <= self.se_ratio <= 1:
            raise ValueError(f"{self.name}: se_ratio={self.se_ratio!r} must be in [0, 1].")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "DesignSpace":
        """A user-defined space from its JSON form (the fields above; ranges as [low, high])."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown design space fields {unknown}: valid fields are "
                             f"{sorted(names)}.")
        return cls(**{key: tuple(value) if isinstance(value, list) else value
                      for key, value in values.items()})


_ANYNET = dict(family="anynet", depth=(1, 16), width=(8, 1024), group_width=(1, 32),
               bottleneck_ratios=(1.0, 2.0, 4.0))
_REGNETX = dict(family="regnet", depth=(12, 28), w0=(8, 256), wa=(8.0, 256.0), wm=(2.0, 3.0),
                group_width=(1, 32), bottleneck_ratios=(1.0,))
SPACES = {
    "AnyNetXA": DesignSpace("AnyNetXA", **_ANYNET),
    "AnyNetXB": DesignSpace("AnyNetXB", **_ANYNET, shared_bottleneck=True),
    "AnyNetXC": DesignSpace("AnyNetXC", **_ANYNET, shared_bottleneck=True,
                            shared_group_width=True),
    "AnyNetXD": DesignSpace("AnyNetXD", **_ANYNET, shared_bottleneck=True,
                            shared_group_width=True, increasing_widths=True),
    "AnyNetXE": DesignSpace("AnyNetXE", **_ANYNET, shared_bottleneck=True,
                            shared_group_width=True, increasing_widths=True,
                            increasing_depths=True),
    "RegNet": DesignSpace("RegNet", family="regnet", depth=(1, 63), w0=(8, 248),
                          wa=(1.0, 255.0), wm=(1.5, 3.0), group_width=(1, 32),
                          bottleneck_ratios=(1.0, 2.0, 4.0)),
    "RegNetX": DesignSpace("RegNetX", **_REGNETX),
    "RegNetY": DesignSpace("RegNetY", **_REGNETX, se_ratio=0.25),
}


def get_space(name: str) -> DesignSpace:
    if name not in SPACES:
        raise ValueError(f"unknown design space {name!r}: choose one of {sorted(SPACES)}, or "
                         "describe your own in a JSON file (DesignSpace fields).")
    return SPACES[name]


# --------------------------------------------------------------------------------------------
# Draws of one value, as pycls' sweep samplers make them


def _quantize_up(value: float, quantum: float) -> float:
    return math.ceil(round(value / quantum, 9)) * quantum


def log_uniform(rng: np.random.Generator, low: float, high: float, quantum: float) -> float:
    """Log-uniform on (low - q*, high], then rounded up to a multiple of quantum (q* = min(q,
    low/2)), so that every multiple in [low, high] gets the mass of the interval below it."""
    value = math.exp(rng.uniform(math.log(low - min(quantum, low / 2)), math.log(high)))
    return min(max(_quantize_up(value, quantum), low), high)


def uniform_int(rng: np.random.Generator, low: int, high: int) -> int:
    return int(rng.integers(low, high + 1))


def power2_or_log_uniform(rng: np.random.Generator, low: int, high: int, quantum: int) -> int:
    """Powers of two below `quantum` and log-uniform multiples of it above: a log-linear CDF."""
    exponent = math.floor(rng.uniform(math.log2(low), math.log2(high) + 1))
    value = 2 ** exponent
    if value >= quantum:
        return int(log_uniform(rng, max(low, quantum), high, min(high, quantum)))
    return int(value)


def _group_width(rng, space: DesignSpace) -> int:
    low, high = space.group_width
    return power2_or_log_uniform(rng, low, high, min(WIDTH_QUANTUM, high))


# --------------------------------------------------------------------------------------------
# Draws of one network


def _draw_anynet(rng, space: DesignSpace) -> AnyNetConfig | None:
    stages = space.num_stages
    # Each ordering constraint is checked as soon as its values exist: XE rejects all but
    # 1 in ~600 draws, and the later draws are then not made.
    depths = [int(log_uniform(rng, *space.depth, 1)) for _ in range(stages)]
    if space.increasing_depths and any(b < a for a, b in zip(depths, depths[1:])):
        return None
    widths = [int(log_uniform(rng, *space.width, WIDTH_QUANTUM)) for _ in range(stages)]
    if space.increasing_widths and any(b < a for a, b in zip(widths, widths[1:])):
        return None
    ratios = [float(rng.choice(space.bottleneck_ratios))
              for _ in range(1 if space.shared_bottleneck else stages)]
    groups = [_group_width(rng, space) for _ in range(1 if space.shared_group_width else stages)]
    ratios = ratios * stages if len(ratios) == 1 else ratios
    groups = groups * stages if len(groups) == 1 else groups
    multipliers = [1.0 / r for r in ratios]
    if any(w * m < 1 or (w * m) % 1 for w, m in zip(widths, multipliers)):
        return None  # the 3x3 convolution would have a fractional channel count
    # As in pycls, a group wider than its stage's 3x3 convolution shrinks to it, so a shared
    # group width can end up smaller in narrow stages.
    widths, groups = adjust_group_compatibility(widths, groups, multipliers)
    return AnyNetConfig(stage_widths=tuple(widths), stage_depths=tuple(depths),
                        stage_group_widths=tuple(groups), stage_strides=(2,) * stages,
                        stage_bottlenecks=tuple(multipliers), se_ratio=space.se_ratio)


def _draw_regnet(rng, space: DesignSpace) -> RegNetConfig | None:
    config = RegNetConfig(
        w0=int(log_uniform(rng, *space.w0, WIDTH_QUANTUM)),
        wa=round(log_uniform(rng, *space.wa, 0.1), 1),
        wm=round(log_uniform(rng, *space.wm, 0.001), 3),
        depth=uniform_int(rng, *space.depth),
        group_width=_group_width(rng, space),
        bottleneck=1.0 / float(rng.choice(space.bottleneck_ratios)),
        se_ratio=space.se_ratio)
    widths = config.block_widths()
    if np.any(widths * config.bottleneck < 1):
        return None
    if not space.min_stages <= len(config.stages) <= space.max_stages:
        return None
    return config


def draw(rng: np.random.Generator, space: DesignSpace):
    """One network of the space, or None when the draw breaks one of its constraints."""
    return _draw_anynet(rng, space) if space.family == "anynet" else _draw_regnet(rng, space)


# --------------------------------------------------------------------------------------------
# Populations


@dataclasses.dataclass(frozen=True)
class Budget:
    """Inclusive complexity ranges at `resolution` (None: unconstrained), counted as
    complexity() counts them, for `num_classes` outputs."""

    resolution: int = 32
    num_classes: int = 10
    flops: tuple[float, float] | None = None
    params: tuple[float, float] | None = None
    activations: tuple[float, float] | None = None

    def admits(self, cost) -> bool:
        for name in ("flops", "params", "activations"):
            bounds = getattr(self, name)
            if bounds is not None and not bounds[0] <= getattr(cost, name) <= bounds[1]:
                return False
        return True


@dataclasses.dataclass(frozen=True)
class Member:
    """One sampled network with its cost."""

    id: str
    space: str
    design: RegNetConfig | AnyNetConfig
    flops: int
    params: int
    activations: int

    def to_dict(self) -> dict:
        return {"id": self.id, "space": self.space, "design": self.design.to_dict(),
                "flops": self.flops, "params": self.params, "activations": self.activations}


def sample(space: DesignSpace, count: int, budget: Budget, seed: int = 0,
           max_draws: int = 2_000_000, accept=None) -> list[Member]:
    """`count` distinct networks of `space` within `budget`, reproducibly from `seed`.

    `accept(member) -> bool`, when given, is a further test made after the budget's (e.g. a
    measured latency range); it sees each candidate once.
    """
    rng = np.random.default_rng([seed, _stable_hash(space.name)])
    members, seen, draws = [], set(), 0
    while len(members) < count:
        if draws >= max_draws:
            raise SamplingError(
                f"{space.name}: only {len(members)} of {count} networks fall within the budget "
                f"{budget} after {draws} draws; widen the budget or the space's ranges.")
        draws += 1
        design = draw(rng, space)
        if design is None:
            continue
        key = json.dumps(design.to_dict(), sort_keys=True)
        if key in seen:
            continue
        cost = complexity(design, resolution=budget.resolution,
                          num_classes=budget.num_classes).total
        if not budget.admits(cost):
            continue
        seen.add(key)
        member = Member(f"{space.name.lower()}-{len(members):03d}", space.name, design,
                        cost.flops, cost.params, cost.activations)
        if accept is None or accept(member):
            members.append(member)
    return members


def _stable_hash(text: str) -> int:
    # Python's hash() of a str changes between processes; populations must not.
    return int.from_bytes(text.encode(), "little") % (2 ** 63)
