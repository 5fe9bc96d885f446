"""The starting weights of a fine-tuning run: `resolve` turns the user's W into one description
(design, padding, normalisation, classes, tensors, file and SHA-256), and `load_backbone` puts it
into a freshly built model, with a new classifier when the class count differs.

W is one of:
  "imagenet"                  keras.applications' ImageNet file of the zoo model given with it,
                              fetched and checked as `regnet_keras.RegNet(weights="imagenet")`
                              does (weights.h5.fetch_imagenet_weights)
  a regnet_keras weights file written by regnet_keras.save_weights (carries its design)
  a keras.applications RegNet .h5 file (the zoo model must be given with it)
  a .keras model saved by regnet_keras, or a finished tools.train run directory (its final.keras)
  a PyTorch state dict (torchvision, timm, pycls, SEER; .safetensors, .pth, ...), read by
                              regnet_keras.weights.pytorch with its architecture from its tensors
  named published weights of the zoo model given with it ("torchvision_v2", "pycls", timm tags:
                              regnet_keras.list_weights), fetched and checked once
  a KerasHub RegNet preset or a timm RegNet repository: a directory, an hf://ORG/NAME handle
                              (e.g. list_weights' hub_handle) or a kaggle:// preset, read by
                              regnet_keras.hub.loading as regnet_keras.from_preset reads it
"""

from __future__ import annotations

import dataclasses
import os

from regnet_keras import layer_names
from regnet_keras.errors import InputError
from regnet_keras.weights.state_dict_files import sha256_of

IMAGENET = "imagenet"
KERAS_MODEL_SUFFIX = ".keras"
RUN_FILE = "run.json"
RUN_MODEL = "final.keras"


class PretrainedWeightsError(InputError, ValueError):
    """W cannot be used as asked; the message names the problem and the way out."""


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """Starting weights, read completely, with what they say about the model they fit."""

    name: str  # W as the user gave it
    kind: str  # "imagenet", "regnet_keras", "keras.applications", "keras_model", "pytorch",
    # "timm" (a timm Hub repository) or "keras_hub" (a KerasHub preset)
    file: str  # the file that was read
    sha256: str
    model: object  # the design to build: a zoo name or an AnyNetConfig
    padding: str
    preprocessing: str | None
    classes: int | None  # None: W has no classifier
    tensors: dict = dataclasses.field(repr=False, compare=False)
    # Where published weights came from (regnet_keras.weights.origin.WeightsOrigin as a dict):
    # library, layout, tag, license, published top-1; the TFLite metadata carries it on.
    origin: dict | None = None

    def release_tensors(self):
        """Drops W's tensors once the model holds them (or will not need them): a large W,
        such as a teacher, would otherwise stay in memory beside the model for the whole run."""
        self.tensors.clear()

    def record(self) -> dict:
        """What run.json keeps of W, so that resume, evaluate, QAT and convert know the origin."""
        return {"name": self.name, "kind": self.kind, "file": os.path.abspath(self.file),
                "sha256": self.sha256}


def resolve(weights: str, model=None) -> Pretrained:
    """Reads W. `model`: the zoo name (or config) the user asked for, or None to take W's design.

    W's design wins: giving a design that builds another network than the one W carries is an
    error (the same network, by zoo name or by parameters, is accepted), and W without a design
    ("imagenet", keras.applications files) needs a zoo name.
    """
    from regnet_keras.weights import h5 as weights_h5
    weights = os.path.expanduser(str(weights))
    if weights == IMAGENET:
        zoo_name = _zoo_name(model, weights)
        path = weights_h5.fetch_imagenet_weights(zoo_name, include_top=True)
        return _from_weights_file(weights, IMAGENET, weights_h5.open_weights_file(path), model)
    from regnet_keras.hub import loading as hub_loading
    if hub_loading.is_handle(weights) and not os.path.isfile(os.path.join(weights, RUN_FILE)):
        return _from_hub(weights, model)
    if os.path.isdir(weights):
        run_model = os.path.join(weights, RUN_MODEL)
        if not os.path.isfile(os.path.join(weights, RUN_FILE)) or not os.path.isfile(run_model):
            raise PretrainedWeightsError(
                f"weights={weights!r} is a directory but not a finished tools.train run (no "
                f"{RUN_FILE} and {RUN_MODEL}); finish that run first or pass a weights file.")
        return _from_keras_model(weights, run_model, model)
    from regnet_keras.weights import pytorch as pytorch_weights
    if pytorch_weights.is_pytorch_file(weights) and os.path.isfile(weights):
        pretrained = _from_pytorch(weights, weights, pytorch_weights.read_pytorch_weights(weights))
        _check_design(model, weights, pretrained.model)
        return pretrained
    if not os.path.exists(weights) and os.sep not in weights and "." not in weights:
        return _from_named_weights(weights, model)
    if not os.path.isfile(weights):
        raise PretrainedWeightsError(
            f"weights={weights!r} does not exist: pass 'imagenet', a named weight "
            "(regnet_keras.list_weights()), a regnet_keras or keras.applications .h5 file, a "
            "PyTorch state dict, a .keras model or a finished run directory.")
    if weights.endswith(KERAS_MODEL_SUFFIX):
        return _from_keras_model(weights, weights, model)
    weights_file = weights_h5.open_weights_file(weights)
    kind = "regnet_keras" if weights_file.config is not None else "keras.applications"
    return _from_weights_file(weights, kind, weights_file, model)


def _zoo_name(model, weights) -> str:
    from regnet_keras.zoo import get_entry
    if not isinstance(model, str):
        raise PretrainedWeightsError(
            f"weights={weights!r} holds no design of its own: name the zoo model it belongs to "
            "with --model (e.g. --model RegNetX002).")
    return get_entry(model).name


def _as_anynet(design):
    """The network a zoo name or design config builds, as an AnyNetConfig."""
    if isinstance(design, str):
        from regnet_keras.zoo import get_config
        design = get_config(design)
    return design.to_anynet()


def _check_design(model, weights, carried):
    """Refuses a `model` that builds another network than `carried`, the design W carries."""
    if model is None or _as_anynet(model) == _as_anynet(carried):
        return
    raise PretrainedWeightsError(
        f"weights={weights!r} carries its own design, which is not {model!r}: the model comes "
        "from W, so leave --model, --w0 and --stage_widths unset or give W's design.")


def _from_weights_file(name, kind, weights_file, model) -> Pretrained:
    if weights_file.config is None:
        design = _zoo_name(model, name)
    else:
        _check_design(model, name, weights_file.config)
        design = weights_file.config
    return Pretrained(name=name, kind=kind, file=weights_file.path,
                      sha256=sha256_of(weights_file.path), model=design,
                      padding=weights_file.padding, preprocessing=weights_file.preprocessing,
                      classes=weights_file.classes, tensors=weights_file.tensors)


def _from_named_weights(tag, model) -> Pretrained:
    """Published weights of the zoo model `model` by their tag, e.g. "torchvision_v2"."""
    from regnet_keras.weights import pytorch as pytorch_weights
    from regnet_keras.weights import registry
    zoo_name = _zoo_name(model, tag)
    entry = registry.find(zoo_name, tag)
    if entry is None:
        raise PretrainedWeightsError(
            f"weights={tag!r} is neither a file nor a named weight of {zoo_name}; its named "
            f"weights are: {', '.join(['imagenet'] + registry.tags_of(zoo_name))}.")
    path = registry.fetch_weights(zoo_name, tag)
    # The file's own architecture: torchvision's group-width variants differ from the zoo's.
    return _from_pytorch(tag, path, pytorch_weights.read_pytorch_weights(path, entry.origin(path)))


def _from_pytorch(name, path, imported) -> Pretrained:
    from regnet_keras.weights import pytorch as pytorch_weights
    return Pretrained(name=name, kind="pytorch", file=path,
                      sha256=imported.origin.sha256 or sha256_of(path), model=imported.config,
                      padding=pytorch_weights.PADDING, preprocessing=pytorch_weights.PREPROCESSING,
                      classes=imported.classes, tensors=imported.canonical.tensors,
                      origin=imported.origin.to_dict())


def _from_hub(handle, model) -> Pretrained:
    """A KerasHub preset or timm repository (local, hf:// or kaggle://) with its own design."""
    from regnet_keras.hub import loading as hub_loading
    found = hub_loading.starting_weights(handle)
    _check_design(model, handle, found.config)
    kind = "timm" if found.file.endswith(".safetensors") else "keras_hub"
    return Pretrained(name=handle, kind=kind, file=found.file, sha256=sha256_of(found.file),
                      model=found.config, padding=found.padding,
                      preprocessing=found.preprocessing, classes=found.classes,
                      tensors=found.tensors, origin=found.origin)


def _from_keras_model(name, path, model) -> Pretrained:
    from regnet_keras.introspect import design_of_model
    from regnet_keras.saving import load_model
    from regnet_keras.weights import h5 as weights_h5
    try:
        keras_model = load_model(path)
    except Exception as error:  # Keras raises many types for unreadable archives
        raise PretrainedWeightsError(f"weights={name!r}: {path} cannot be loaded as a Keras "
                                     f"model ({error}).") from error
    try:
        design = design_of_model(keras_model)
    except ValueError as error:
        raise PretrainedWeightsError(f"weights={name!r}: {error}") from error
    _check_design(model, name, design.config)
    return Pretrained(name=name, kind="keras_model", file=path, sha256=sha256_of(path),
                      model=design.config, padding=design.padding,
                      preprocessing=design.preprocessing, classes=design.classes,
                      tensors=weights_h5.model_tensors(keras_model))


def load_backbone(model, pretrained: Pretrained) -> bool:
    """Sets every weight of `model` from W, the classifier only when its class count matches.

    Returns whether the classifier was kept. Every layer is checked before anything is assigned.
    """
    from regnet_keras.weights import h5 as weights_h5
    head = model.get_layer(layer_names.LOGITS)
    keep_head = pretrained.classes == head.units
    tensors = dict(pretrained.tensors)
    if not keep_head:
        # The new classifier keeps its fresh initialisation.
        tensors[layer_names.LOGITS] = {weights_h5.weight_short_name(w): w.numpy()
                                       for w in head.weights}
    weights_h5.assign_tensors(model, tensors, f"weights={pretrained.name!r}")
    return keep_head
