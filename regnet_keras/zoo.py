"""The 24 RegNetX/RegNetY models of the paper (its Table, appendix), by their keras.applications names.

Each entry is the paper's design parameters; the stages are generated from them, never tabulated.
Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import dataclasses

from regnet_keras.design_space import RegNetConfig


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    name: str
    config: RegNetConfig
    # ImageNet top-1 error (%) reported by the paper for the reference training recipe.
    paper_top1_error: float


def _entry(name, wa, w0, wm, depth, group_width, se_ratio, top1_error):
    return ZooEntry(name, RegNetConfig(w0=w0, wa=wa, wm=wm, depth=depth, group_width=group_width,
                                       se_ratio=se_ratio), top1_error)


_ZOO = (
    #      name          wa      w0   wm    depth  g   se    err
    _entry("RegNetX002", 36.44, 24, 2.49, 13, 8, 0.0, 31.1),
    _entry("RegNetX004", 24.48, 24, 2.54, 22, 16, 0.0, 27.4),
    _entry("RegNetX006", 36.97, 48, 2.24, 16, 24, 0.0, 25.9),
    _entry("RegNetX008", 35.73, 56, 2.28, 16, 16, 0.0, 24.8),
    _entry("RegNetX016", 34.01, 80, 2.25, 18, 24, 0.0, 23.0),
    _entry("RegNetX032", 26.31, 88, 2.25, 25, 48, 0.0, 21.7),
    _entry("RegNetX040", 38.65, 96, 2.43, 23, 40, 0.0, 21.4),
    _entry("RegNetX064", 60.83, 184, 2.07, 17, 56, 0.0, 20.8),
    _entry("RegNetX080", 49.56, 80, 2.88, 23, 120, 0.0, 20.7),
    _entry("RegNetX120", 73.36, 168, 2.37, 19, 112, 0.0, 20.3),
    _entry("RegNetX160", 55.59, 216, 2.10, 22, 128, 0.0, 20.0),
    _entry("RegNetX320", 69.86, 320, 2.00, 23, 168, 0.0, 19.5),
    _entry("RegNetY002", 36.44, 24, 2.49, 13, 8, 0.25, 29.7),
    _entry("RegNetY004", 27.89, 48, 2.09, 16, 8, 0.25, 25.9),
    _entry("RegNetY006", 32.54, 48, 2.32, 15, 16, 0.25, 24.5),
    _entry("RegNetY008", 38.84, 56, 2.40, 14, 16, 0.25, 23.7),
    _entry("RegNetY016", 20.71, 48, 2.65, 27, 24, 0.25, 22.1),
    _entry("RegNetY032", 42.63, 80, 2.66, 21, 24, 0.25, 21.1),
    _entry("RegNetY040", 31.41, 96, 2.24, 22, 64, 0.25, 20.6),
    _entry("RegNetY064", 33.22, 112, 2.27, 25, 72, 0.25, 20.1),
    _entry("RegNetY080", 76.82, 192, 2.19, 17, 56, 0.25, 20.1),
    _entry("RegNetY120", 73.36, 168, 2.37, 19, 112, 0.25, 19.7),
    _entry("RegNetY160", 106.23, 200, 2.48, 18, 112, 0.25, 19.6),
    _entry("RegNetY320", 115.89, 232, 2.53, 20, 232, 0.25, 19.1),
)
ZOO = {entry.name: entry for entry in _ZOO}


def list_models() -> list[str]:
    """Names of the zoo models, RegNetX first, by increasing flops."""
    return [entry.name for entry in _ZOO]


def get_entry(name: str) -> ZooEntry:
    """The zoo entry called `name` (case-insensitive: 'regnety016' works too)."""
    for entry in _ZOO:
        if entry.name.lower() == str(name).lower():
            return entry
    raise ValueError(f"model={name!r} is invalid: unknown model name. Valid names: "
                     f"{', '.join(list_models())}.")


def get_config(name: str) -> RegNetConfig:
    return get_entry(name).config
