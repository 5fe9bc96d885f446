"""Where a model's weights came from, and how those weights were evaluated.

An imported model carries its origin (source library, layout, file, SHA-256, weights tag, license,
published top-1, evaluation transform) as a JSON string in a model attribute that
`design_of_model` reads, `save_weights` writes into the file and `RegNet(weights=file)` restores;
a training run keeps it in run.json (`run_info_fields`), from where tools.evaluate,
tools.convert and the TFLite metadata take it.
"""

from __future__ import annotations

import dataclasses
import json

from regnet_keras.introspect import ORIGIN_ATTRIBUTE

INTERPOLATIONS = ("bilinear", "bicubic")


@dataclasses.dataclass(frozen=True)
class EvaluationTransform:
    """Resize the shorter side to `resize` with `interpolation`, then centre-crop `crop`."""

    resize: int
    crop: int
    interpolation: str = "bilinear"

    @property
    def crop_fraction(self) -> float:
        return self.crop / self.resize


@dataclasses.dataclass(frozen=True)
class WeightsOrigin:
    library: str  # "torchvision", "timm", "pycls", "classy-vision/VISSL (SEER)"
    layout: str  # pytorch_layouts.LAYOUTS
    file: str | None = None  # file name (no directory); None for an in-memory state dict
    sha256: str | None = None
    tag: str | None = None  # named weights, e.g. "torchvision_v2"
    source_name: str | None = None  # the publisher's name for them
    license: str | None = None
    top1: float | None = None  # published ImageNet top-1 (%), with the transform below
    transform: EvaluationTransform | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "WeightsOrigin":
        values = dict(values)
        if values.get("transform") is not None:
            values["transform"] = EvaluationTransform(**values["transform"])
        return cls(**values)


def attach(model, origin: WeightsOrigin | dict | None) -> None:
    """Records `origin` on `model` (a JSON string, which neither Keras nor tf-keras wraps)."""
    if origin is None:
        return
    record = origin.to_dict() if isinstance(origin, WeightsOrigin) else dict(origin)
    setattr(model, ORIGIN_ATTRIBUTE, json.dumps(record, sort_keys=True))


def run_info_fields(origin: WeightsOrigin | dict | None) -> dict:
    """run.json fields of a run that starts from these weights: the origin, and the evaluation
    crop and interpolation of their transform when they have one."""
    if origin is None:
        return {}
    origin = origin if isinstance(origin, WeightsOrigin) else WeightsOrigin.from_dict(origin)
    fields = {"weights_origin": origin.to_dict()}
    if origin.transform is not None:
        fields["eval_crop_fraction"] = origin.transform.crop_fraction
        fields["eval_interpolation"] = origin.transform.interpolation
    return fields
