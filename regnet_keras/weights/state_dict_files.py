"""Reads and writes PyTorch state dicts as NumPy arrays: safetensors, torch.save files, mappings.

Reading never runs code from a file: safetensors holds only tensors; a torch.save file is read
with `torch.load(weights_only=True)` where torch is importable, else with regnet_keras' own reader
of the zip format (torch_zip), which accepts only tensors and plain containers. torch is imported
only when a torch.save file is read or written, never by importing regnet_keras.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import tempfile
import zipfile
from typing import Mapping

import numpy as np

from regnet_keras.weights import torch_zip

SAFETENSORS_EXTENSIONS = (".safetensors",)
# torch.save files: PyTorch's own, pycls' (.pyth) and classy-vision/VISSL's (.torch).
TORCH_EXTENSIONS = (".pth", ".pt", ".pyth", ".bin", ".torch")


class StateDictFileError(ValueError):
    """A state dict file that cannot be read or written safely."""


@dataclasses.dataclass(frozen=True)
class ReadStateDict:
    """What a source holds (nested containers of NumPy arrays) and where it came from."""

    content: object
    path: str | None  # None for an in-memory mapping
    sha256: str | None
    file_format: str  # "safetensors", "torch", or "mapping"


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _torch_importable() -> bool:
    import importlib.util
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def _to_numpy(value):
    """Tensors (torch or NumPy) to NumPy arrays, containers kept, anything else as it is."""
    if isinstance(value, Mapping):
        return {str(key): _to_numpy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_numpy(item) for item in value)
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch.Tensor
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy().copy()
    return value


def read(source) -> ReadStateDict:
    """Reads `source`: a path to a safetensors or torch.save file, or a mapping of names to
    arrays (NumPy arrays or torch tensors, e.g. `model.state_dict()`)."""
    if isinstance(source, Mapping):
        return ReadStateDict(_to_numpy(source), None, None, "mapping")
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise StateDictFileError(f"{path!r} is not a file: pass the path of a .safetensors or "
                                 f".pth file, or a state dict mapping.")
    if path.endswith(SAFETENSORS_EXTENSIONS):
        return ReadStateDict(_read_safetensors(path), path, sha256_of(path), "safetensors")
    if path.endswith(TORCH_EXTENSIONS):
        return ReadStateDict(_read_torch(path), path, sha256_of(path), "torch")
    raise StateDictFileError(
        f"{path}: unknown extension; regnet_keras reads PyTorch state dicts from "
        f"{', '.join(SAFETENSORS_EXTENSIONS + TORCH_EXTENSIONS)} files.")


def _read_safetensors(path):
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise StateDictFileError(f"{path} could not be read as safetensors ({error}); the file "
                                 "is truncated or corrupt: download or write it again.") from error


def _read_torch(path):
    if not zipfile.is_zipfile(path):
        if _torch_importable():
            return _read_with_torch(path)  # PyTorch's pre-1.6 format, which only torch reads
        raise StateDictFileError(
            f"{path} is not a zip archive: it is truncated, corrupt, or in PyTorch's pre-1.6 "
            "format, which needs torch installed to read (pip install torch).")
    if _torch_importable():
        return _read_with_torch(path)
    try:
        return torch_zip.load(path)
    except torch_zip.UnsafeCheckpointError as error:
        raise StateDictFileError(f"{path}: {error}") from error
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as error:
        raise StateDictFileError(
            f"{path} could not be read as a PyTorch checkpoint ({error}); it is truncated or "
            "corrupt: download or write it again.") from error


def _read_with_torch(path):
    import torch
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise StateDictFileError(
            f"{path}: torch.load(weights_only=True) refused it ({str(error).splitlines()[0]}); "
            "the file holds more than tensors and plain containers, and regnet_keras does not "
            "run code from files. Ask for a safetensors file.") from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise StateDictFileError(f"{path} could not be read as a PyTorch checkpoint "
                                 f"({str(error).splitlines()[0]}); it is truncated or corrupt: "
                                 "download or write it again.") from error
    return _to_numpy(content)


def write(path: str, tensors: Mapping[str, np.ndarray], wrap_in: str | None = None) -> str:
    """Writes a flat state dict to `path`, atomically: safetensors by the .safetensors extension
    (NumPy only), a torch.save file for the torch extensions (needs torch). `wrap_in` nests the
    state dict under that key in a torch.save file (pycls' "model_state")."""
    path = os.fspath(path)
    if path.endswith(SAFETENSORS_EXTENSIONS):
        writer = _write_safetensors
    elif path.endswith(TORCH_EXTENSIONS):
        if not _torch_importable():
            raise StateDictFileError(f"{path}: writing a torch.save file needs torch; install it, "
                                     "or write a .safetensors file, which needs only NumPy.")
        writer = _write_torch
    else:
        raise StateDictFileError(f"{path}: unknown extension; write a .safetensors file, or a "
                                 f"{', '.join(TORCH_EXTENSIONS)} file with torch installed.")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".tmp", dir=directory)
    os.close(handle)
    try:
        writer(temporary, {key: np.ascontiguousarray(value) for key, value in tensors.items()},
               wrap_in)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def _write_safetensors(path, tensors, wrap_in):
    from safetensors.numpy import save_file
    # "format": "pt" is what the Hugging Face loaders expect of a PyTorch state dict.
    save_file(tensors, path, metadata={"format": "pt"})


def _write_torch(path, tensors, wrap_in):
    import torch
    state = {key: torch.from_numpy(value.copy()) for key, value in tensors.items()}
    torch.save({wrap_in: state} if wrap_in else state, path)
