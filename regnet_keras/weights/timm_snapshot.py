"""timm's RegNets in the layout of their Hugging Face Hub repositories (`timm/<arch>.<tag>`):
`config.json` (architecture, num_classes, pretrained_cfg with input_size, mean, std,
interpolation, crop_pct, license) beside `model.safetensors`.

`read_snapshot` reads both: the tensors through regnet_keras.weights.pytorch (layout, architecture
from the tensors, every shape checked), the preprocessing and the origin from config.json, which
is checked against the tensors (class count, X or Y blocks) and bounded in size before it is parsed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

from regnet_keras.weights.h5 import WeightsFileError
from regnet_keras.weights.origin import INTERPOLATIONS, EvaluationTransform, WeightsOrigin
from regnet_keras.weights.pytorch import PyTorchWeights, read_pytorch_weights

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# timm's config.json files are about 1 KB; anything far larger is not one.
MAX_CONFIG_BYTES = 1 << 20
# Architectures built from RegNetX/Y blocks; regnetz_*, regnetv_* and *_sgn use other blocks.
ARCHITECTURE_PREFIXES = ("regnetx_", "regnety_")
OTHER_BLOCKS = ("_sgn",)


class TimmSnapshotError(WeightsFileError):
    """A directory that is not a readable timm RegNet repository snapshot."""


@dataclasses.dataclass(frozen=True)
class TimmPreprocessing:
    """How the weights were trained and evaluated: timm's `pretrained_cfg`."""

    image_size: tuple[int, int]  # (height, width) of input_size
    mean: tuple[float, float, float]  # RGB, of images scaled to [0, 1]
    std: tuple[float, float, float]
    interpolation: str  # "bilinear" or "bicubic"
    crop_pct: float


@dataclasses.dataclass
class TimmSnapshot:
    directory: str
    architecture: str  # e.g. "regnety_040"
    tag: str | None  # e.g. "ra3_in1k"
    preprocessing: TimmPreprocessing
    weights: PyTorchWeights

    @property
    def name(self) -> str:
        return f"{self.architecture}.{self.tag}" if self.tag else self.architecture


def is_timm_snapshot(directory) -> bool:
    """Whether `directory` holds timm's Hub layout (config.json naming an architecture)."""
    if not isinstance(directory, (str, os.PathLike)) or not os.path.isdir(directory):
        return False
    config = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(os.path.join(directory, WEIGHTS_FILE)) or not os.path.isfile(config):
        return False
    try:
        return "architecture" in read_config(config)
    except TimmSnapshotError:
        return False


def read_config(path: str) -> dict:
    """config.json as a dict, refused when it is not a small JSON object."""
    size = os.path.getsize(path)
    if size > MAX_CONFIG_BYTES:
        raise TimmSnapshotError(f"{path} holds {size} bytes; a timm config.json holds a few KB, "
                                "so this is not one.")
    try:
        with open(path, encoding="utf-8") as file:
            config = json.load(file)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise TimmSnapshotError(f"{path} is not valid JSON ({error}).") from error
    if not isinstance(config, dict):
        raise TimmSnapshotError(f"{path} holds a {type(config).__name__}, not a JSON object.")
    return config


def read_snapshot(directory: str, license_name: str | None = None,
                  top1: float | None = None) -> TimmSnapshot:
    """Reads a timm RegNet snapshot directory completely and checks it is consistent.

    `license_name` and `top1` (the published ImageNet top-1, %) complete the origin where
    config.json gives none (timm's configs carry the license, not the accuracy).
    """
    directory = os.fspath(directory)
    config_path = os.path.join(directory, CONFIG_FILE)
    weights_path = os.path.join(directory, WEIGHTS_FILE)
    for path in (config_path, weights_path):
        if not os.path.isfile(path):
            raise TimmSnapshotError(
                f"{directory} is not a timm repository snapshot: it has no {os.path.basename(path)}"
                f" (a timm Hub repository holds {CONFIG_FILE} and {WEIGHTS_FILE}).")
    config = read_config(config_path)
    architecture = _architecture(config, config_path)
    pretrained_cfg = config.get("pretrained_cfg") or {}
    if not isinstance(pretrained_cfg, dict):
        raise TimmSnapshotError(f"{config_path}: pretrained_cfg must be a JSON object.")
    tag = pretrained_cfg.get("tag")
    tag = tag if isinstance(tag, str) and tag else None
    preprocessing = _preprocessing(pretrained_cfg, config_path)
    license_name = pretrained_cfg.get("license") or license_name
    crop = preprocessing.image_size[0]
    origin = WeightsOrigin(
        library="timm", layout="timm", file=WEIGHTS_FILE, tag=tag,
        source_name=f"{architecture}.{tag}" if tag else architecture,
        license=license_name if isinstance(license_name, str) else None, top1=top1,
        transform=EvaluationTransform(math.floor(crop / preprocessing.crop_pct), crop,
                                      preprocessing.interpolation))
    weights = read_pytorch_weights(weights_path, origin)
    if weights.origin.layout != "timm":
        raise TimmSnapshotError(f"{weights_path} holds {weights.origin.layout}'s key layout, "
                                "not timm's; pass the file to regnet_keras.from_pytorch instead.")
    _check_against_tensors(config, architecture, weights, config_path)
    return TimmSnapshot(directory, architecture, tag, preprocessing, weights)


def _architecture(config: dict, config_path: str) -> str:
    architecture = config.get("architecture")
    if not isinstance(architecture, str):
        raise TimmSnapshotError(f"{config_path} names no architecture; it is not a timm "
                                "model's config.json.")
    if not architecture.startswith(ARCHITECTURE_PREFIXES) or architecture.endswith(OTHER_BLOCKS):
        raise TimmSnapshotError(
            f"{config_path}: timm architecture {architecture!r} is not a RegNetX/Y "
            "(regnetz_*, regnetv_* and *_sgn use other blocks); regnet_keras reads regnetx_* "
            "and regnety_* models.")
    return architecture


def _preprocessing(pretrained_cfg: dict, config_path: str) -> TimmPreprocessing:
    input_size = pretrained_cfg.get("input_size", (3, 224, 224))
    if (not isinstance(input_size, (list, tuple)) or len(input_size) != 3
            or any(not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 8192
                   for v in input_size) or input_size[0] != 3):
        raise TimmSnapshotError(f"{config_path}: pretrained_cfg.input_size={input_size!r} must "
                                "be [3, height, width] with sizes from 1 to 8192.")
    statistics = {}
    for field, default in (("mean", (0.485, 0.456, 0.406)), ("std", (0.229, 0.224, 0.225))):
        values = pretrained_cfg.get(field, default)
        if (not isinstance(values, (list, tuple)) or len(values) != 3
                or any(not isinstance(v, (int, float)) or isinstance(v, bool)
                       or not math.isfinite(v) for v in values)
                or (field == "std" and any(v <= 0 for v in values))):
            raise TimmSnapshotError(f"{config_path}: pretrained_cfg.{field}={values!r} must be "
                                    "three finite numbers (std > 0), one per RGB channel.")
        statistics[field] = tuple(float(v) for v in values)
    interpolation = pretrained_cfg.get("interpolation", "bicubic")
    if interpolation not in INTERPOLATIONS:
        raise TimmSnapshotError(f"{config_path}: pretrained_cfg.interpolation="
                                f"{interpolation!r} is not one of {INTERPOLATIONS}.")
    crop_pct = pretrained_cfg.get("crop_pct", 0.875)
    if (not isinstance(crop_pct, (int, float)) or isinstance(crop_pct, bool)
            or not 0.1 <= crop_pct <= 1.0):
        raise TimmSnapshotError(f"{config_path}: pretrained_cfg.crop_pct={crop_pct!r} must be a "
                                "number from 0.1 to 1.")
    return TimmPreprocessing((input_size[1], input_size[2]), statistics["mean"],
                             statistics["std"], interpolation, float(crop_pct))


def _check_against_tensors(config, architecture, weights: PyTorchWeights, config_path):
    num_classes = config.get("num_classes")
    if num_classes is not None and num_classes != (weights.classes or 0):
        raise TimmSnapshotError(
            f"{config_path} says num_classes={num_classes!r} but {WEIGHTS_FILE} has "
            f"{'no classifier' if weights.classes is None else f'{weights.classes} classes'}; "
            "the two files are from different models.")
    has_se = weights.config.se_ratio > 0
    if has_se != architecture.startswith("regnety_"):
        raise TimmSnapshotError(
            f"{config_path} names {architecture!r} but {WEIGHTS_FILE} has "
            f"{'Y (Squeeze-and-Excitation)' if has_se else 'X'} blocks; the two files are from "
            "different models.")
