"""`from_preset`: a RegNetImageClassifier from any handle a KerasHub user has, and
`starting_weights`: the same handles as the starting weights of a tools.train run.

Handles:
  a KerasHub preset directory written by save_to_preset (config.json naming RegNetHubBackbone)
  a timm Hub repository snapshot (config.json naming a regnetx_/regnety_ architecture, and
      model.safetensors), converted by regnet_keras.weights
  hf://ORG/NAME[@REVISION]: either of the two on the Hugging Face Hub, every file checked against
      the digest the Hub announced (regnet_keras.weights.hub_download)
  kaggle://OWNER/MODEL/keras/VARIATION[/VERSION]: a preset on Kaggle Models, fetched by
      KerasHub through kagglehub
  a timm name with published weights, e.g. "regnety_040.ra3_in1k" (hf://timm/<name>)
"""

from __future__ import annotations

import dataclasses
import json
import os

from regnet_keras.errors import InputError
from regnet_keras.hub.registration import register_classes
from regnet_keras.weights import hub_download, timm_snapshot
from regnet_keras.weights.optional_packages import require

CONFIG_FILE = "config.json"
KAGGLE_SCHEME = "kaggle://"
# What save_to_preset writes; metadata.json and the backbone-only weights are optional.
PRESET_FILES = ("config.json", "preprocessor.json")
OPTIONAL_PRESET_FILES = ("task.json", "task.weights.h5", "model.weights.h5", "image_converter.json",
                         "metadata.json")
# The registered names (package>class) a RegNet preset's json files must name.
REGISTERED_NAMES = {
    "config.json": "regnet_keras>RegNetHubBackbone",
    "task.json": "regnet_keras>RegNetImageClassifier",
    "preprocessor.json": "regnet_keras>RegNetImageClassifierPreprocessor",
    "image_converter.json": "regnet_keras>RegNetImageConverter",
}


class PresetError(InputError, ValueError):
    """A handle that is not a RegNet preset or timm RegNet repository."""


def from_preset(handle: str, **kwargs):
    """The RegNetImageClassifier (KerasHub task: preprocessor for raw images, backbone, head) of
    `handle` (see the module docstring for the kinds).

    Keyword arguments go where KerasHub sends them: for presets to
    `RegNetImageClassifier.from_preset` (num_classes, load_weights, dtype, ...); for timm
    repositories to the task (num_classes: a new head of that size unless it is the file's;
    image_shape: the backbone's input shape, default any size; activation, dropout).
    """
    if hub_download.is_hf_handle(handle):
        require("huggingface_hub")
    require("keras_hub")
    register_classes()
    local, kind = _local_directory(handle)
    if kind == "timm":
        from regnet_keras.hub.conversion import classifier_from_snapshot
        return classifier_from_snapshot(_read_timm(local, handle), **kwargs)
    from regnet_keras.hub.image_classifier import RegNetImageClassifier
    if kind == "kaggle":
        _check_kaggle_preset(handle)
    return RegNetImageClassifier.from_preset(local or handle, **kwargs)


@dataclasses.dataclass(frozen=True)
class StartingWeights:
    """What tools.train needs of a handle: design, classes, tensors in regnet_keras' layer names,
    the input normalisation, the weights file and the origin."""

    config: object  # AnyNetConfig
    classes: int | None
    tensors: dict
    padding: str
    preprocessing: str  # regnet_keras.preprocessing.MODES
    file: str
    origin: dict | None


def is_handle(weights) -> bool:
    """Whether `weights` is a handle from_preset takes rather than a regnet_keras file or run."""
    if not isinstance(weights, str):
        return False
    if weights.startswith((hub_download.HF_SCHEME, KAGGLE_SCHEME)):
        return True
    return os.path.isdir(weights) and os.path.isfile(os.path.join(weights, CONFIG_FILE))


def starting_weights(handle: str) -> StartingWeights:
    """The starting weights of a fine-tuning run from `handle`."""
    from regnet_keras.weights.pytorch import PADDING
    local, kind = _local_directory(handle)
    if kind == "timm":
        snapshot = _read_timm(local, handle)
        weights = snapshot.weights
        return StartingWeights(weights.config, weights.classes, weights.canonical.tensors,
                               PADDING, _preprocessing_mode(snapshot.preprocessing.mean,
                                                            snapshot.preprocessing.std, handle),
                               os.path.join(local, timm_snapshot.WEIGHTS_FILE),
                               weights.origin.to_dict())
    from regnet_keras import layer_names
    from regnet_keras.weights.h5 import model_tensors, weight_short_name
    classifier = from_preset(local or handle)
    backbone = classifier.backbone
    tensors = model_tensors(backbone)
    tensors[layer_names.LOGITS] = {weight_short_name(variable): variable.numpy()
                                   for variable in classifier.output_dense.weights}
    converter = classifier.preprocessor.image_converter
    mean, std = _mean_and_std(converter.scale, converter.offset, handle)
    return StartingWeights(backbone.design, classifier.num_classes, tensors, backbone.padding,
                           _preprocessing_mode(mean, std, handle),
                           _preset_weights_file(local, handle), backbone.weights_origin)


def _preset_weights_file(local: str | None, handle: str) -> str:
    """The weights file of a preset (task weights, else backbone weights), local or in
    kagglehub's cache."""
    names = ("task.weights.h5", "model.weights.h5")
    if local is None:
        from keras_hub.src.utils.preset_utils import check_file_exists, get_file
        name = next((name for name in names if check_file_exists(handle, name)), names[-1])
        return get_file(handle, name)
    return next((os.path.join(local, name) for name in names
                 if os.path.isfile(os.path.join(local, name))), os.path.join(local, names[-1]))


def _local_directory(handle: str) -> tuple[str | None, str]:
    """(local directory, "timm" | "keras_hub" | "kaggle") of a handle, downloading hf:// ones."""
    from regnet_keras.hub import presets
    if not isinstance(handle, (str, os.PathLike)):
        raise PresetError(f"handle={handle!r} is invalid: pass a preset directory, a timm "
                          "repository snapshot, an hf:// or kaggle:// handle, or a timm name.")
    handle = os.fspath(handle)
    if handle.startswith(KAGGLE_SCHEME):
        require("kagglehub")
        return None, "kaggle"
    if not hub_download.is_hf_handle(handle) and not os.path.exists(handle):
        known = presets.hf_handle(handle)
        if known is None:
            raise PresetError(
                f"{handle!r} is neither a directory nor an hf:// or kaggle:// handle nor a timm "
                f"RegNet with published weights ({', '.join(presets.names()[:3])}, ...: "
                "regnet_keras.hub.presets.names()).")
        handle = known
    if hub_download.is_hf_handle(handle):
        return _download(handle)
    if not os.path.isdir(handle) or not os.path.isfile(os.path.join(handle, CONFIG_FILE)):
        raise PresetError(f"{handle} is not a preset directory or timm repository snapshot: it "
                          f"has no {CONFIG_FILE}.")
    return handle, _kind(handle)


def _download(handle: str) -> tuple[str, str]:
    config = hub_download.download(handle, [CONFIG_FILE])[CONFIG_FILE]
    directory = os.path.dirname(config)
    kind = _kind(directory, handle)
    if kind == "timm":
        hub_download.download(handle, [timm_snapshot.WEIGHTS_FILE])
    else:
        found = hub_download.download(handle, PRESET_FILES, optional=OPTIONAL_PRESET_FILES)
        if not {"task.weights.h5", "model.weights.h5"} & set(found):
            raise PresetError(f"{handle} has neither task.weights.h5 nor model.weights.h5; it "
                              "is not a complete preset.")
        _check_registered_names(directory, handle)
    return directory, kind


def _kind(directory: str, handle: str | None = None) -> str:
    config = timm_snapshot.read_config(os.path.join(directory, CONFIG_FILE))
    if "architecture" in config:
        return "timm"
    if config.get("registered_name") == REGISTERED_NAMES[CONFIG_FILE]:
        if handle is None:
            _check_registered_names(directory, directory)
        return "keras_hub"
    named = config.get("registered_name") or config.get("model_type")
    raise PresetError(
        f"{handle or directory} is not a RegNet: its {CONFIG_FILE} describes "
        f"{named!r}; regnet_keras.from_preset reads RegNet presets and timm's regnetx_/regnety_ "
        "repositories (use keras_hub's from_preset for other models).")


def _check_registered_names(directory: str, handle: str) -> None:
    for file_name, expected in REGISTERED_NAMES.items():
        path = os.path.join(directory, file_name)
        if not os.path.isfile(path):
            continue
        named = timm_snapshot.read_config(path).get("registered_name")
        if named != expected:
            raise PresetError(f"{handle}: {file_name} describes {named!r}, not {expected!r}; "
                              "the preset was altered or is not a RegNet preset.")


def _check_kaggle_preset(handle: str) -> None:
    """The registered names of a kaggle:// preset, each file fetched by KerasHub (kagglehub)."""
    from keras_hub.src.utils.preset_utils import check_file_exists, get_file
    for file_name, expected in REGISTERED_NAMES.items():
        if file_name == CONFIG_FILE or check_file_exists(handle, file_name):
            named = timm_snapshot.read_config(get_file(handle, file_name)).get("registered_name")
            if named != expected:
                raise PresetError(f"{handle}: {file_name} describes {named!r}, not "
                                  f"{expected!r}; it is not a RegNet preset.")


def _read_timm(directory: str, handle: str):
    from regnet_keras.hub import presets
    config = timm_snapshot.read_config(os.path.join(directory, CONFIG_FILE))
    tag = (config.get("pretrained_cfg") or {}).get("tag") if isinstance(
        config.get("pretrained_cfg"), dict) else None
    published = presets.published(f"{config.get('architecture')}.{tag}")
    return timm_snapshot.read_snapshot(directory, license_name=published.get("license"),
                                       top1=published.get("top1"))


def _mean_and_std(scale, offset, handle):
    if scale is None or offset is None or len(scale) != 3 or len(offset) != 3:
        raise PresetError(f"{handle}: its image converter does not normalise each RGB channel "
                          "with a scale and an offset, so tools.train cannot reproduce it.")
    std = [1.0 / (255.0 * s) for s in scale]
    mean = [-o * s for o, s in zip(offset, std)]
    return mean, std


def _preprocessing_mode(mean, std, handle) -> str:
    from regnet_keras.preprocessing import MODES, scale_and_offset
    for mode in MODES:
        scale, offset = scale_and_offset(mode)
        expected_std = [1.0 / (255.0 * s) for s in scale]
        expected_mean = [-o * s for o, s in zip(offset, expected_std)]
        if all(abs(a - b) < 1e-4 for a, b in zip(list(mean) + list(std),
                                                  expected_mean + expected_std)):
            return mode
    raise PresetError(
        f"{handle} normalises images with mean {json.dumps(list(mean))} and std "
        f"{json.dumps(list(std))}; tools.train builds models with ImageNet's or unit "
        "normalisation only. Fine-tune it with KerasHub's fit instead.")
