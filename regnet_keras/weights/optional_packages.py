"""Packages regnet_keras uses only for some features (KerasHub presets, Hugging Face downloads):
imported when that feature is used, with a one-line error naming the package otherwise."""

from __future__ import annotations

import importlib

from regnet_keras.errors import InputError

# module name: (pip requirement, what needs it)
OPTIONAL_PACKAGES = {
    "keras_hub": ("keras-hub", "KerasHub presets and RegNet ImageClassifier tasks"),
    "huggingface_hub": ("huggingface_hub", "hf:// handles (downloads from the Hugging Face Hub)"),
    "kagglehub": ("kagglehub", "kaggle:// handles (downloads from Kaggle Models)"),
}


class MissingPackageError(InputError, ImportError):
    """An optional package a feature needs is not installed."""


def require(module_name: str):
    """The imported module `module_name`, or a MissingPackageError saying how to install it."""
    requirement, feature = OPTIONAL_PACKAGES[module_name]
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise MissingPackageError(
            f"{feature} need the {requirement!r} package, which is not installed ({error}); "
            f"install it with `pip install {requirement}`.") from error
