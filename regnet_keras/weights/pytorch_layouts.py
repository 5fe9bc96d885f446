"""The key layouts of PyTorch RegNet state dicts, and their translation to and from our layers.

Four publishers name the same modules differently (stages and blocks count from 1 here):

    ours                 torchvision             timm                  pycls
    stem_conv / _bn      stem.0 / stem.1         stem.conv / stem.bn   stem.conv / stem.bn
    block prefix         trunk_output.blockS.    sS.bB.                sS.bB.
                           blockS-{B-1}.
    a_conv / a_bn        f.a.0 / f.a.1           conv1.conv / .bn      f.a / f.a_bn
    b_conv / b_bn        f.b.0 / f.b.1           conv2.conv / .bn      f.b / f.b_bn
    se_reduce / _expand  f.se.fc1 / f.se.fc2     se.fc1 / se.fc2       f.se.f_ex.0 / .2
    c_conv / c_bn        f.c.0 / f.c.1           conv3.conv / .bn      f.c / f.c_bn
    proj_conv / _bn      proj.0 / proj.1         downsample.conv/.bn   proj / bn
    logits               fc                      head.fc               head.fc

SEER (classy-vision/VISSL): stem _feature_blocks.conv1.stem.0 / .1, blocks
_feature_blocks.res{S+1}.blockS-{B-1}. with f.a.0/.1, f.b.0/.1, f.se.excitation.0/.2, f.c,
f.final_bn, proj, bn, and the classifier in the heads as 0.clf.0.

Tensors become Keras layouts on the way in (convolution kernels (out, in, kh, kw) ->
(kh, kw, in, out), dense (out, in) -> (in, out), batch norm weight/bias/running_mean/running_var
-> gamma/beta/moving_mean/moving_variance) and go back on the way out. pycls trained on BGR
images, so its stem kernel's input channels are reversed on import (and on export to pycls):
every imported model takes RGB. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from regnet_keras import layer_names as names

LAYOUTS = ("torchvision", "timm", "pycls", "seer")
WRITABLE_LAYOUTS = ("torchvision", "timm", "pycls")
# Which library each layout comes from, for the model's recorded origin.
LIBRARIES = {"torchvision": "torchvision", "timm": "timm", "pycls": "pycls",
             "seer": "classy-vision/VISSL (SEER)"}
# SEER's self-supervised heads; a pretrained trunk's file carries them and they are not the model.
SEER_IGNORED_HEADS = ("projection_head", "prototypes")
# Keys that carry nothing for inference.
IGNORED_SUFFIXES = (".num_batches_tracked",)


class StateDictLayoutError(ValueError):
    """A state dict that is not a RegNetX/Y in a layout regnet_keras knows, or one that is damaged."""


@dataclasses.dataclass(frozen=True)
class Layout:
    name: str
    stem_conv: str
    stem_bn: str
    logits: str
    block_pattern: re.Pattern  # groups: stage, block, rest
    first_block: int  # the block number of a stage's first block in this layout
    parts: dict  # module name inside a block -> our block part
    block_format: str  # a block's prefix from stage, block (layout's numbering) and res


TORCHVISION = Layout(
    "torchvision", "stem.0", "stem.1", "fc",
    re.compile(r"^trunk_output\.block(\d+)\.block\1-(\d+)\.(.+)$"), 0,
    {"f.a.0": "a_conv", "f.a.1": "a_bn", "f.b.0": "b_conv", "f.b.1": "b_bn",
     "f.se.fc1": "se_reduce", "f.se.fc2": "se_expand", "f.c.0": "c_conv", "f.c.1": "c_bn",
     "proj.0": "proj_conv", "proj.1": "proj_bn"},
    "trunk_output.block{stage}.block{stage}-{block}.")
TIMM = Layout(
    "timm", "stem.conv", "stem.bn", "head.fc", re.compile(r"^s(\d+)\.b(\d+)\.(.+)$"), 1,
    {"conv1.conv": "a_conv", "conv1.bn": "a_bn", "conv2.conv": "b_conv", "conv2.bn": "b_bn",
     "se.fc1": "se_reduce", "se.fc2": "se_expand", "conv3.conv": "c_conv", "conv3.bn": "c_bn",
     "downsample.conv": "proj_conv", "downsample.bn": "proj_bn"},
    "s{stage}.b{block}.")
PYCLS = Layout(
    "pycls", "stem.conv", "stem.bn", "head.fc", re.compile(r"^s(\d+)\.b(\d+)\.(.+)$"), 1,
    {"f.a": "a_conv", "f.a_bn": "a_bn", "f.b": "b_conv", "f.b_bn": "b_bn",
     "f.se.f_ex.0": "se_reduce", "f.se.f_ex.2": "se_expand", "f.c": "c_conv", "f.c_bn": "c_bn",
     "proj": "proj_conv", "bn": "proj_bn"},
    "s{stage}.b{block}.")
SEER = Layout(
    "seer", "_feature_blocks.conv1.stem.0", "_feature_blocks.conv1.stem.1", "heads.0.clf.0",
    re.compile(r"^_feature_blocks\.res\d+\.block(\d+)-(\d+)\.(.+)$"), 0,
    {"f.a.0": "a_conv", "f.a.1": "a_bn", "f.b.0": "b_conv", "f.b.1": "b_bn",
     "f.se.excitation.0": "se_reduce", "f.se.excitation.2": "se_expand", "f.c": "c_conv",
     "f.final_bn": "c_bn", "proj": "proj_conv", "bn": "proj_bn"},
    # classy-vision names the feature block of stage S "res{S+1}".
    "_feature_blocks.res{res}.block{stage}-{block}.")
BY_NAME = {layout.name: layout for layout in (TORCHVISION, TIMM, PYCLS, SEER)}

# Keras weight name <- PyTorch parameter name, per kind of layer.
_CONV = {"kernel": "weight", "bias": "bias"}
_BATCH_NORM = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
               "moving_variance": "running_var"}
_DENSE = {"kernel": "weight", "bias": "bias"}


def _kind(layer: str) -> dict:
    if layer == names.LOGITS:
        return _DENSE
    return _BATCH_NORM if layer.endswith("_bn") else _CONV


@dataclasses.dataclass
class CanonicalStateDict:
    """Tensors under our layer and weight names, Keras layouts, with the source key of each."""

    layout: str
    tensors: dict  # {our layer: {keras weight: np.ndarray}}
    source_keys: dict  # {(our layer, keras weight): source key}

    def key(self, layer: str, weight: str) -> str:
        """The source key of a tensor, or the key it would have when it is missing."""
        if (layer, weight) in self.source_keys:
            return self.source_keys[(layer, weight)]
        try:
            return f"{source_module(BY_NAME[self.layout], layer)}.{_kind(layer)[weight]}"
        except (StateDictLayoutError, KeyError):
            return f"{layer}/{weight}"


def unwrap(content) -> tuple[dict, str | None]:
    """(flat {key: array} state dict, layout hint) from what a checkpoint file holds: a state
    dict, pycls' {"model_state": ...}, a training checkpoint's {"state_dict"|"model": ...}, or
    classy-vision/VISSL's {"classy_state_dict": ...}."""
    if not isinstance(content, dict):
        raise StateDictLayoutError(f"the checkpoint holds a {type(content).__name__}, not a "
                                   "state dict (a mapping of names to tensors).")
    if "classy_state_dict" in content:
        try:
            model = content["classy_state_dict"]["base_model"]["model"]
            trunk, heads = model["trunk"], model.get("heads", {})
        except (KeyError, TypeError) as error:
            raise StateDictLayoutError(f"a classy-vision checkpoint without "
                                       f"base_model.model.trunk ({error!r}).") from error
        flat = dict(trunk)
        flat.update({f"heads.{key}": value for key, value in heads.items()
                     if not any(ignored in key for ignored in SEER_IGNORED_HEADS)})
        return flat, "seer"
    for wrapper, hint in (("model_state", "pycls"), ("state_dict", None), ("model", None)):
        if isinstance(content.get(wrapper), dict):
            return content[wrapper], hint
    return content, None


def detect_layout(state_dict: dict) -> Layout:
    """The layout of a flat state dict, or an error naming why it is not a RegNetX/Y."""
    keys = set(state_dict)
    if any(key.startswith("_feature_blocks.") for key in keys):
        return SEER
    if "stem.0.weight" in keys and any(key.startswith("trunk_output.") for key in keys):
        return TORCHVISION
    if any(key.startswith("stages.") for key in keys) and "stem.conv.weight" in keys:
        raise StateDictLayoutError(
            "this is a RegNetZ (timm's regnetz_*: different blocks, stages.N.M keys), not a "
            "RegNetX/Y; regnet_keras builds only RegNetX/Y blocks.")
    if any(re.match(r"^s\d+\.b\d+\.norm1\.", key) for key in keys):
        raise StateDictLayoutError(
            "this is a pre-activation RegNet (timm's regnetv_*: batch norm before each "
            "convolution, s1.b1.norm1 keys), not a RegNetX/Y, whose blocks normalise after "
            "each convolution.")
    if any(re.match(r"^s\d+\.b\d+\.conv1\.conv\.", key) for key in keys):
        return TIMM
    if any(re.match(r"^s\d+\.b\d+\.f\.a\.", key) for key in keys):
        return PYCLS
    sample = ", ".join(sorted(keys)[:4])
    raise StateDictLayoutError(
        f"the state dict is not a RegNet in a layout regnet_keras knows (torchvision, timm, "
        f"pycls or SEER); its keys start with: {sample}.")


def _our_layer(layout: Layout, module: str) -> str | None:
    if module == layout.stem_conv:
        return names.STEM_CONV
    if module == layout.stem_bn:
        return names.STEM_BN
    if module == layout.logits:
        return names.LOGITS
    match = layout.block_pattern.match(module + ".")
    if match is None:
        return None
    stage, block, rest = int(match.group(1)), int(match.group(2)), match.group(3)[:-1]
    part = layout.parts.get(rest)
    if part is None:
        return None
    return names.block_layer(stage, block - layout.first_block + 1, part)


def to_keras_array(layer: str, weight: str, value: np.ndarray) -> np.ndarray:
    value = np.asarray(value)
    if weight == "kernel" and layer == names.LOGITS:
        return value.T if value.ndim == 2 else value
    if weight == "kernel":
        return value.transpose(2, 3, 1, 0) if value.ndim == 4 else value
    return value


def to_torch_array(layer: str, weight: str, value: np.ndarray) -> np.ndarray:
    if weight == "kernel" and layer == names.LOGITS:
        return value.T
    if weight == "kernel":
        return value.transpose(3, 2, 0, 1)
    return value


def to_canonical(state_dict: dict, layout: Layout) -> CanonicalStateDict:
    """Our layer and weight names for every tensor; unknown keys raise, naming them."""
    tensors, source_keys, unknown = {}, {}, []
    for key, value in state_dict.items():
        if key.endswith(IGNORED_SUFFIXES):
            continue
        module, _, parameter = key.rpartition(".")
        layer = _our_layer(layout, module)
        inverse = {torch_name: keras_name for keras_name, torch_name in
                   _kind(layer).items()} if layer else {}
        if layer is None or parameter not in inverse:
            unknown.append(key)
            continue
        if not isinstance(value, np.ndarray):
            raise StateDictLayoutError(f"{key} is a {type(value).__name__}, not a tensor.")
        weight = inverse[parameter]
        tensors.setdefault(layer, {})[weight] = to_keras_array(layer, weight, value)
        source_keys[(layer, weight)] = key
    if unknown:
        raise StateDictLayoutError(
            f"{len(unknown)} key(s) of the {layout.name} state dict are not part of a RegNetX/Y: "
            f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}; nothing was loaded.")
    _check_batch_norm_statistics(tensors, source_keys)
    canonical = CanonicalStateDict(layout.name, tensors, source_keys)
    if layout.name == "pycls":
        flip_stem_channels(canonical.tensors)
    return canonical


def _check_batch_norm_statistics(tensors, source_keys):
    for layer, weights in tensors.items():
        if layer.endswith("_bn") and not {"moving_mean", "moving_variance"} <= set(weights):
            key = source_keys.get((layer, "gamma"), layer)
            raise StateDictLayoutError(
                f"{key} has no running statistics: its normalisation is GroupNorm or another "
                "norm without them (e.g. timm's regnety_040_sgn, GroupNorm + SiLU), not the "
                "batch norm of a RegNetX/Y.")


def flip_stem_channels(tensors: dict) -> None:
    """Reverses the stem kernel's input channels (BGR <-> RGB), in place."""
    stem = tensors.get(names.STEM_CONV)
    if stem is not None and "kernel" in stem:
        stem["kernel"] = np.ascontiguousarray(stem["kernel"][:, :, ::-1, :])


def source_module(layout: Layout, layer: str) -> str:
    """The module of `layout` that holds our layer `layer`."""
    if layer == names.STEM_CONV:
        return layout.stem_conv
    if layer == names.STEM_BN:
        return layout.stem_bn
    if layer == names.LOGITS:
        return layout.logits
    match = re.match(r"^stage(\d+)_block(\d+)_(\w+)$", layer)
    if match is None:
        raise StateDictLayoutError(f"layer {layer!r} has no place in a {layout.name} RegNet.")
    stage, block, part = int(match.group(1)), int(match.group(2)), match.group(3)
    modules = {ours: theirs for theirs, ours in layout.parts.items()}
    prefix = layout.block_format.format(stage=stage, block=block - 1 + layout.first_block,
                                        res=stage + 1)
    return prefix + modules[part]


def from_canonical(tensors: dict, layout_name: str) -> dict:
    """A flat state dict in `layout_name` from our {layer: {weight: array}} tensors, with the
    `num_batches_tracked` counters batch norm modules carry (0: no training step recorded)."""
    if layout_name not in WRITABLE_LAYOUTS:
        raise StateDictLayoutError(f"layout={layout_name!r} is invalid: choose one of "
                                   f"{WRITABLE_LAYOUTS}.")
    layout = BY_NAME[layout_name]
    tensors = {layer: dict(weights) for layer, weights in tensors.items()}
    if layout_name == "pycls":
        flip_stem_channels(tensors)
    state_dict = {}
    for layer, weights in tensors.items():
        module = source_module(layout, layer)
        kind = _kind(layer)
        for weight, value in weights.items():
            state_dict[f"{module}.{kind[weight]}"] = np.ascontiguousarray(
                to_torch_array(layer, weight, np.asarray(value, np.float32)))
        if kind is _BATCH_NORM:
            state_dict[f"{module}.num_batches_tracked"] = np.zeros((), np.int64)
    return state_dict
