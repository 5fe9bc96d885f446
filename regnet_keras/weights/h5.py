"""Weights I/O: our own weights files, keras.applications RegNet .h5 files, the ImageNet download.

Every file is read completely and checked against the model (every layer, every weight name and
shape) before the first weight is assigned, so a truncated or mismatched file raises a clear error
and never leaves a half-loaded model. Our own files carry the design, padding geometry,
preprocessing and classes with the weights, and are written atomically.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import tempfile

import h5py
import numpy as np

from regnet_keras import layer_names as names
from regnet_keras.design_space import AnyNetConfig, config_from_dict
from regnet_keras.errors import InputError
from regnet_keras.hdf5_files import DatasetReader, check_global_heaps
from regnet_keras.weights import download
from regnet_keras.weights.registry import max_file_bytes

FORMAT_ATTRIBUTE = "regnet_keras_weights_format"
FORMAT_VERSION = 1

# keras.applications hosts ImageNet weights of its RegNets here, `regnetx002.h5` and
# `regnetx002_notop.h5`. A mirror can stand in for it through REGNET_KERAS_WEIGHTS_URL.
KERAS_APPLICATIONS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/regnet/"
WEIGHTS_URL_ENVIRONMENT = "REGNET_KERAS_WEIGHTS_URL"
# Downloads are cached in Keras' cache (~/.keras/models, shared with keras.applications) unless
# this names another directory.
CACHE_DIR_ENVIRONMENT = "REGNET_KERAS_CACHE_DIR"
# SHA-256 of (full file, _notop file), as published in keras.applications' regnet.py.
KERAS_APPLICATIONS_SHA256 = {
    "RegNetX002": ("49fb46e56cde07fdaf57bffd851461a86548f6a3a4baef234dd37290b826c0b8",
                   "5445b66cd50445eb7ecab094c1e78d4d3d29375439d1a7798861c4af15ffff21"),
    "RegNetX004": ("3523c7f5ac0dbbcc2fd6d83b3570e7540f7449d3301cc22c29547302114e4088",
                   "de139bf07a66c9256f2277bf5c1b6dd2d5a3a891a5f8a925a10c8a0a113fd6f3"),
    "RegNetX006": ("340216ef334a7bae30daac9f414e693c136fac9ab868704bbfcc9ce6a5ec74bb",
                   "a43ec97ad62f86b2a96a783bfdc63a5a54de02eef54f26379ea05e1bf90a9505"),
    "RegNetX008": ("8f145d6a5fae6da62677bb8d26eb92d0b9dfe143ec1ebf68b24a57ae50a2763d",
                   "3c7e4b0917359304dc18e644475c5c1f5e88d795542b676439c4a3acd63b7207"),
    "RegNetX016": ("31c386f4c7bfef4c021a583099aa79c1b3928057ba1b7d182f174674c5ef3510",
                   "1b8e3d545d190271204a7b2165936a227d26b79bb7922bac5ee4d303091bf17a"),
    "RegNetX032": ("6c025df1409e5ea846375bc9dfa240956cca87ef57384d93fef7d6fa90ca8c7f",
                   "9cd4522806c0fcca01b37874188b2bd394d7c419956d77472a4e072b01d99041"),
    "RegNetX040": ("ba128046c588a26dbd3b3a011b26cb7fa3cf8f269c184c132372cb20b6eb54c1",
                   "b4ed0ca0b9a98e789e05000e830403a7ade4d8afa01c73491c44610195198afe"),
    "RegNetX064": ("0f4489c3cd3ad979bd6b0324213998bcb36dc861d178f977997ebfe53c3ba564",
                   "3e706fa416a18dfda14c713423eba8041ae2509db3e0a611d5f599b5268a46c4"),
    "RegNetX080": ("76320e43272719df648db37271a247c22eb6e810fe469c37a5db7e2cb696d162",
                   "7b1ce8e29ceefec10a6569640ee329dba7fbc98b5d0f6346aabade058b66cf29"),
    "RegNetX120": ("5cafc461b78897d5e4f24e68cb406d18e75f31105ef620e7682b611bb355eb3a",
                   "36174ddd0299db04a42631d028abcb1cc7afec2b705e42bd28fcd325e5d596bf"),
    "RegNetX160": ("8093f57a5824b181fb734ea21ae34b1f7ee42c5298e63cf6d587c290973195d2",
                   "9d1485050bdf19531ffa1ed7827c75850e0f2972118a996b91aa9264b088fd43"),
    "RegNetX320": ("91fb3e6f4e9e44b3687e80977f7f4412ee9937c0c704232664fc83e4322ea01e",
                   "9db7eacc37b85c98184070e1a172e6104c00846f44bcd4e727da9e50d9692398"),
    "RegNetY002": ("1e8091c674532b1a61c04f6393a9c570113e0197f22bd1b98cc4c4fe800c6465",
                   "f63221f63d625b8e201221499682587bfe29d33f50a4c4f4d53be00f66c0f12c"),
    "RegNetY004": ("752fdbad21c78911bf1dcb8c513e5a0e14697b068e5d9e73525dbaa416d18d8e",
                   "45e6ba8309a17a77e67afc05228454b2e0ee6be0dae65edc0f31f1da10cc066b"),
    "RegNetY006": ("98942e07b273da500ff9699a1f88aca78dfad4375faabb0bab784bb0dace80a9",
                   "b70261cba4e60013c99d130cc098d2fce629ff978a445663b6fa4f8fc099a2be"),
    "RegNetY008": ("1b099377cc9a4fb183159a6f9b24bc998e5659d25a449f40c90cbffcbcfdcae4",
                   "b11f5432a216ee640fe9be6e32939defa8d08b8d136349bf3690715a98752ca1"),
    "RegNetY016": ("b7ce1f5e223f0941c960602de922bcf846288ce7a4c33b2a4f2e4ac4b480045b",
                   "d7404f50205e82d793e219afb9eb2bfeb781b6b2d316a6128c6d7d7dacab7f57"),
    "RegNetY032": ("6a6a545cf3549973554c9b94f0cd40e25f229fffb1e7f7ac779a59dcbee612bd",
                   "eb3ac1c45ec60f4f031c3f5180573422b1cf7bebc26c004637517372f68f8937"),
    "RegNetY040": ("98d00118b335162bbffe8f1329e54e5c8e75ee09b2a5414f97b0ddfc56e796f6",
                   "b5be2a5e5f072ecdd9c0b8a437cd896df0efa1f6a1f77e41caa8719b7dfcb05d"),
    "RegNetY064": ("65c948c7a18aaecaad2d1bd4fd978987425604ba6669ef55a1faa0069a2804b7",
                   "885c4b7ed7ea339daca7dafa1a62cb7d41b1068897ef90a5a3d71b4a2e2db31a"),
    "RegNetY080": ("7a2c62da2982e369a4984d3c7c3b32d6f8d3748a71cb37a31156c436c37f3e95",
                   "3d119577e1e3bf8d153b895e8ea9e4ec150ff2d92abdca711b6e949c3fd7115d"),
    "RegNetY120": ("a96ab0d27d3ae35a422ee7df0d789069b3e3217a99334e0ce861a96595bc5986",
                   "4a6fa387108380b730b71feea2ad80b5224b5ea9dc21dc156c93fe3c6186485c"),
    "RegNetY160": ("45067240ffbc7ca2591313fee2f80dbdda6d66ec1a7451446f9a6d00d8f7ac6e",
                   "ead1e6b568be8f34447ec8941299a9df4368736ba9a8205de5427fa20a1fb316"),
    "RegNetY320": ("b05e173e4ae635cfa22d06392ee3741284d17dadfee68f2aa6fd8cb2b7561112",
                   "cad78f74a586e24c61d38be17f3ae53bb9674380174d2585da1a526b8c20e1fd"),
}

# keras.applications layer-name suffixes -> our block parts (layer_names.BLOCK_PARTS).
_KERAS_APPLICATIONS_BLOCK_PARTS = {
    "conv_1x1_1": "a_conv", "conv_1x1_1_bn": "a_bn",
    "conv_3x3": "b_conv", "conv_3x3_bn": "b_bn",
    "squeeze_and_excite_squeeze": "se_reduce", "squeeze_and_excite_excite": "se_expand",
    "conv_1x1_2": "c_conv", "conv_1x1_2_bn": "c_bn",
    "skip_1x1": "proj_conv", "skip_bn": "proj_bn",
}
_KERAS_APPLICATIONS_BLOCK = re.compile(r"_Stage_(\d+)_[XYZ]Block_(\d+)_(\w+)$")

Tensors = dict  # {our layer name: {weight name: np.ndarray}}


class WeightsFileError(InputError, ValueError):
    """A weights file that cannot be read, or that does not fit the model."""


class WeightsDownloadError(InputError, OSError):
    """Weights that could not be downloaded (offline, moved, or failing their checksum)."""


@dataclasses.dataclass
class WeightsFile:
    """A weights file read into memory, with what it says about the model it fits."""

    path: str
    source: str  # "regnet_keras" or "keras.applications"
    tensors: Tensors
    padding: str
    preprocessing: str | None
    classes: int | None  # None: the file has no classifier
    config: AnyNetConfig | None = None
    classifier_activation: str | None = None
    origin: dict | None = None  # where imported weights came from (weights.origin)

    def load_into(self, model) -> None:
        if self.config is not None:
            # Both sides come from design_of_model, so equal designs compare equal exactly.
            from regnet_keras.introspect import design_of_model
            built = design_of_model(model).config
            if built != self.config:
                raise WeightsFileError(
                    f"{self.path} holds weights of another architecture; nothing was loaded:\n"
                    f"  file:  {self.config}\n  model: {built}\nBuild the model the file "
                    "describes (regnet_keras.open_weights_file(path).config).")
        assign_tensors(model, self.tensors, self.path)
        from regnet_keras.weights.origin import attach
        attach(model, self.origin)


def weight_short_name(variable) -> str:
    """'kernel', 'gamma', ...: the same in Keras 3 ('kernel') and tf-keras ('conv/kernel:0')."""
    return variable.name.split("/")[-1].split(":")[0]


def model_tensors(model) -> Tensors:
    return {layer.name: {weight_short_name(w): np.asarray(w.numpy()) for w in layer.weights}
            for layer in model.layers if layer.weights}


def assign_tensors(model, tensors: Tensors, source: str = "weights file") -> None:
    """Sets every weight of `model` from `tensors`, after checking that all of them fit.

    The classifier's weights may be absent from a model built without its top; anything else
    missing, extra or of another shape is an error, raised before anything is assigned.
    """
    layers = [layer for layer in model.layers if layer.weights]
    model_names = {layer.name for layer in layers}
    problems = []
    unused = sorted(set(tensors) - model_names - {names.LOGITS})
    if unused:
        problems.append(f"layers not in the model: {', '.join(unused[:5])}"
                        + (" ..." if len(unused) > 5 else ""))
    assignments = []
    for layer in layers:
        stored = tensors.get(layer.name)
        if stored is None:
            hint = (" (the file has no classifier: build with include_top=False)"
                    if layer.name == names.LOGITS else "")
            problems.append(f"layer {layer.name!r} is missing{hint}")
            continue
        values = []
        for variable in layer.weights:
            key = weight_short_name(variable)
            value = stored.get(key)
            if value is None:
                problems.append(f"{layer.name}/{key} is missing")
            elif tuple(value.shape) != tuple(variable.shape):
                problems.append(f"{layer.name}/{key} has shape {tuple(value.shape)}, the model "
                                f"needs {tuple(variable.shape)}")
            values.append(value)
        assignments.append((layer, values))
    if problems:
        raise WeightsFileError(
            f"{source} does not fit model {model.name!r}; nothing was loaded:\n  - "
            + "\n  - ".join(problems[:10]) + ("\n  ..." if len(problems) > 10 else ""))
    for layer, values in assignments:
        layer.set_weights(values)


def save_weights(model, path: str) -> None:
    """Writes the model's weights with its design, geometry, preprocessing, classes and, for
    imported weights, their origin.

    The file is written beside its destination and renamed into place, so an interrupted save
    never destroys a previous file.
    """
    from regnet_keras.introspect import design_of_model
    design = design_of_model(model)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".h5.tmp", dir=directory)
    os.close(handle)
    try:
        with h5py.File(temporary, "w") as f:
            f.attrs[FORMAT_ATTRIBUTE] = FORMAT_VERSION
            f.attrs["design"] = json.dumps(design.config.to_dict())
            f.attrs["padding"] = design.padding
            f.attrs["preprocessing"] = design.preprocessing or ""
            f.attrs["classes"] = design.classes or 0
            f.attrs["classifier_activation"] = design.classifier_activation or ""
            f.attrs["weights_origin"] = json.dumps(design.origin) if design.origin else ""
            for layer_name, weights in model_tensors(model).items():
                group = f.create_group(layer_name)
                for weight_name, value in weights.items():
                    group.create_dataset(weight_name, data=value)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def open_weights_file(path: str) -> WeightsFile:
    """Reads a regnet_keras or keras.applications weights file completely into memory.

    The file is treated as crafted: only hard links inside it are followed (an external link, a
    virtual dataset or external raw storage would read other files), every dataset must be
    numeric and stored in full in the file (no compressed or unwritten data that would inflate
    beyond it), and all datasets together hold at most the file's size.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsFileError(
            f"weights={path!r} is neither None, 'imagenet' nor an existing file.")
    try:
        check_global_heaps(path, WeightsFileError)
        with h5py.File(path, "r") as f:
            reader = DatasetReader(path, os.path.getsize(path), WeightsFileError)
            if FORMAT_ATTRIBUTE in f.attrs:
                return _read_own_file(path, f, reader)
            group = reader.group(f, "model_weights") if "model_weights" in f else f
            if "layer_names" in group.attrs:
                return _read_keras_applications_file(path, group, reader)
    except WeightsFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError, AttributeError, RecursionError,
            RuntimeError) as error:
        problem = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise WeightsFileError(
            f"{path} could not be read as HDF5 weights ({problem}); the file is truncated or "
            "corrupt, or not a weights file. Delete it and download or save it again.") from error
    raise WeightsFileError(
        f"{path} is not a weights file regnet_keras knows: expected one written by "
        "regnet_keras.save_weights or a keras.applications RegNet .h5 file.")


def _read_own_file(path, f, reader: DatasetReader) -> WeightsFile:
    version = int(reader.attribute(f, FORMAT_ATTRIBUTE))
    if version > FORMAT_VERSION:
        raise WeightsFileError(f"{path} uses weights format {version}; this regnet_keras reads "
                               f"up to {FORMAT_VERSION}. Upgrade regnet_keras.")
    tensors = {layer: {weight: reader.array(group, weight) for weight in group.keys()}
               for layer, group in reader.groups(f)}
    classes = int(reader.attribute(f, "classes"))
    if classes < 0:
        raise WeightsFileError(f"{path} says it has {classes} classes; the file is corrupt.")
    origin = json.loads(_decode(reader.attribute(f, "weights_origin", "")) or "null")
    if origin is not None:
        from regnet_keras.weights.origin import WeightsOrigin
        WeightsOrigin.from_dict(origin)  # refuses a record of another shape now, not at use
    return WeightsFile(path=path, source="regnet_keras", tensors=tensors,
                       padding=_decode(reader.attribute(f, "padding")),
                       preprocessing=_decode(reader.attribute(f, "preprocessing")) or None,
                       classes=classes or None,
                       config=config_from_dict(json.loads(_decode(reader.attribute(f, "design")))),
                       classifier_activation=_decode(reader.attribute(f, "classifier_activation",
                                                                      ""))
                       or None,
                       origin=origin)


def _decode(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def keras_applications_layer_name(name: str) -> str | None:
    """Our name for a keras.applications RegNet layer ('regnetx002_Stage_0_XBlock_0_conv_3x3' ->
    'stage1_block1_b_conv'), or None for a layer we do not know."""
    if name.endswith("_stem_conv"):
        return names.STEM_CONV
    if name.endswith("_stem_bn"):
        return names.STEM_BN
    if name.endswith("head_dense"):
        return names.LOGITS
    match = _KERAS_APPLICATIONS_BLOCK.search(name)
    if match and match.group(3) in _KERAS_APPLICATIONS_BLOCK_PARTS:
        return names.block_layer(int(match.group(1)) + 1, int(match.group(2)) + 1,
                                 _KERAS_APPLICATIONS_BLOCK_PARTS[match.group(3)])
    return None


def _read_keras_applications_file(path, group, reader: DatasetReader) -> WeightsFile:
    tensors = {}
    for layer_name in (_decode(n) for n in reader.attribute(group, "layer_names")):
        layer_group = reader.group(group, layer_name)
        weight_names = [_decode(n) for n in reader.attribute(layer_group, "weight_names", [])]
        if not weight_names:
            continue
        ours = keras_applications_layer_name(layer_name)
        if ours is None:
            raise WeightsFileError(f"{path}: layer {layer_name!r} is not part of a "
                                   "keras.applications RegNet; is this a RegNet weights file?")
        tensors[ours] = {weight.split("/")[-1].split(":")[0]: reader.array(layer_group, weight)
                         for weight in weight_names}
    if names.STEM_CONV not in tensors:
        raise WeightsFileError(f"{path} has no RegNet stem; is this a RegNet weights file?")
    logits = tensors.get(names.LOGITS)
    classes = int(logits["kernel"].shape[-1]) if logits else None
    # keras.applications RegNets pad with TF "same" and only rescale inputs to [0, 1].
    return WeightsFile(path=path, source="keras.applications", tensors=tensors, padding="same",
                       preprocessing="unit", classes=classes)


def imagenet_weights_url(zoo_name: str, include_top: bool) -> str:
    base = os.environ.get(WEIGHTS_URL_ENVIRONMENT, KERAS_APPLICATIONS_URL)
    suffix = ".h5" if include_top else "_notop.h5"
    return base.rstrip("/") + "/" + zoo_name.lower() + suffix


def fetch_imagenet_weights(zoo_name: str, include_top: bool, cache_dir: str | None = None) -> str:
    """Path of the cached keras.applications ImageNet file, downloading it the first time.

    The download is bounded in size (registry.max_file_bytes) and verified against its
    published SHA-256 before it enters the cache and on every later use.
    """
    if zoo_name not in KERAS_APPLICATIONS_SHA256:
        raise ValueError(f"no ImageNet weights are published for {zoo_name!r}; models with "
                         f"them: {', '.join(KERAS_APPLICATIONS_SHA256)}.")
    url = imagenet_weights_url(zoo_name, include_top)
    sha256 = KERAS_APPLICATIONS_SHA256[zoo_name][0 if include_top else 1]
    file_name = url.rsplit("/", 1)[-1]
    cache_dir = cache_dir or os.environ.get(CACHE_DIR_ENVIRONMENT)

    def check(path, digest):
        return None if digest == sha256 else (
            f"the file's SHA-256 hash {digest[:16]}... is not the published {sha256[:16]}...")

    try:
        return download.fetch(url, download.cache_path(file_name, cache_dir),
                              max_file_bytes(zoo_name), check)
    except download.DownloadRefusedError as error:
        raise WeightsDownloadError(f"ImageNet weights for {zoo_name}: {error}") from error
    except (OSError, http.client.HTTPException) as error:
        raise WeightsDownloadError(
            f"could not fetch ImageNet weights for {zoo_name} from {url}: {error}\n"
            f"If this machine is offline, download that file elsewhere, copy it here and pass "
            f"its path: {zoo_name}(weights='/path/to/{file_name}'), or point "
            f"{WEIGHTS_URL_ENVIRONMENT} at a mirror.") from error
