"""Loads a saved model file with regnet_keras' Keras classes registered and its speed-ups switched on.

`keras.models.load_model` (or tf-keras') restores the layers; a backbone file needs
regnet_keras.backbone registered first, and on TensorFlow a restored model trains through Keras'
slow paths until the tf_speedups are enabled again. This does all three on any backend.

A model file may come from anyone, so Keras' safe mode stays on (a Lambda layer's code in a file
is refused, and classes are resolved only from Keras and the registered regnet_keras classes,
never imported from a module the file names), a legacy .h5 model is refused when it links or maps
data from other files, and whatever Keras raises for a damaged file becomes a ModelFileError.
"""

from __future__ import annotations

import os
import zipfile

from regnet_keras import feature_pyramid, hdf5_files, keras_backend
from regnet_keras.errors import InputError
from regnet_keras.tf_speedups import fused_batch_norm, grouped_conv


class ModelFileError(InputError, ValueError):
    """A model file that is damaged, crafted, or not a Keras model."""


# What Keras raises when a file's archive, JSON config or HDF5 weights do not hold a model.
_DAMAGED_FILE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OSError,
                        EOFError, RecursionError, UnicodeDecodeError, zipfile.BadZipFile)


# A model's JSON config and metadata are kilobytes (megabytes for the largest graphs); Keras reads
# them whole into memory, so a member declaring more is refused before it is inflated.
MAX_CONFIG_BYTES = 64 << 20
# Deflate's largest expansion; a member declaring more than this many times its compressed
# bytes cannot hold what it declares.
DEFLATE_MAX_RATIO = 1032


def _check_keras_archive(path: str) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ModelFileError(f"{path} is not a readable .keras archive ({error}); save or "
                             "download it again.") from error
    for info in members:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            problem = f"uses zip compression method {info.compress_type}"
        elif info.file_size > DEFLATE_MAX_RATIO * max(info.compress_size, 1):
            problem = (f"declares {info.file_size} bytes from {info.compress_size} compressed, "
                       "more than deflate can produce")
        elif info.filename.endswith(".json") and info.file_size > MAX_CONFIG_BYTES:
            problem = f"declares {info.file_size} bytes, more than a model's config takes"
        else:
            continue
        raise ModelFileError(f"{path}: member {info.filename!r} {problem}; the file is damaged "
                             "or was crafted. Save or download it again.")


def load_model(path, implementation: str = "auto", **kwargs):
    """`keras.models.load_model(path, **kwargs)` plus regnet_keras' classes and, on TensorFlow,
    native grouped convolutions (`implementation`, see grouped_conv) and fused batch norm.

    `safe_mode=False` is refused: a file that needs it runs code; load one you trust with
    keras.models.load_model yourself.
    """
    if kwargs.get("safe_mode", True) is not True:
        raise ValueError("regnet_keras.load_model keeps Keras' safe mode on, so that no code from "
                         "the file runs; for a file you trust that holds Lambda layers, call "
                         "keras.models.load_model(path, safe_mode=False) yourself.")
    described = os.fspath(path) if isinstance(path, (str, os.PathLike)) else "the model file"
    if isinstance(path, (str, os.PathLike)) and os.fspath(path).endswith((".h5", ".hdf5")) \
            and os.path.isfile(path):
        hdf5_files.check_hdf5_file(os.fspath(path), ModelFileError)
    if isinstance(path, (str, os.PathLike)) and zipfile.is_zipfile(path):
        _check_keras_archive(os.fspath(path))
    feature_pyramid.register_serializables()
    try:
        model = keras_backend.get_keras().models.load_model(path, safe_mode=True, **{
            key: value for key, value in kwargs.items() if key != "safe_mode"})
    except InputError:
        raise
    except FileNotFoundError:
        raise
    except _DAMAGED_FILE_ERRORS as error:
        problem = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        raise ModelFileError(f"{described} could not be loaded as a Keras model ({problem}); "
                             "the file is damaged, was crafted, or is not a model file: save or "
                             "download it again.") from error
    grouped_conv.enable(model, implementation)
    fused_batch_norm.enable(model)
    return model
