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

from regnet_keras.errors import InputError
from regnet_keras.weights import torch_zip

SAFETENSORS_EXTENSIONS = (".safetensors",)
# torch.save files: PyTorch's own, pycls' (.pyth) and classy-vision/VISSL's (.torch).
TORCH_EXTENSIONS = (".pth", ".pt", ".pyth", ".bin", ".torch")


class StateDictFileError(InputError, ValueError):
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


def _to_numpy(value, key: str = ""):
    """Tensors (torch or NumPy) to NumPy arrays, containers kept, anything else as it is.

    A torch tensor may be a view with zero strides (`expand`), which torch.load builds without
    memory and a copy would make real: one with more elements than its storage is refused.
    """
    # Key paths quote at most 200 characters, so that long names nested deep cannot multiply.
    if isinstance(value, Mapping):
        return {str(name): _to_numpy(item, f"{key}.{str(name)[:200]}"[-200:] if key
                                     else str(name)[:200])
                for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_numpy(item, f"{key}[{index}]"[-200:])
                           for index, item in enumerate(value))
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch.Tensor
        value = value.detach().cpu()
        if hasattr(value, "untyped_storage") and \
                value.numel() * value.element_size() > value.untyped_storage().nbytes():
            raise StateDictFileError(
                f"tensor {key} of shape {tuple(value.shape)} has more elements than its storage "
                "holds (a broadcast view); state dicts hold plain tensors: save "
                "tensor.contiguous() instead.")
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
    """safetensors validates the header against the file (its length, every tensor's offsets
    inside the data and contiguous, dtypes, shapes) before it maps a byte, so a file yields at
    most its own size in tensors; what it refuses becomes our error."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, TypeError, KeyError, OverflowError) as error:
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise StateDictFileError(f"{path} could not be read as safetensors ({problem[:200]}); "
                                 "the file is truncated or corrupt: download or write it "
                                 "again.") from error


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
    except torch_zip.CheckpointError as error:  # its message names the file
        raise StateDictFileError(str(error)) from error


def _read_with_torch(path):
    import torch
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise StateDictFileError(
            f"{path}: torch.load(weights_only=True) refused it ({str(error).splitlines()[0]}); "
            "the file holds more than tensors and plain containers, and regnet_keras does not "
            "run code from files. Ask for a safetensors file.") from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, TypeError, KeyError,
            IndexError, AttributeError, OverflowError) as error:
        raise StateDictFileError(f"{path} could not be read as a PyTorch checkpoint "
                                 f"({str(error).splitlines()[0]}); it is truncated or corrupt: "
                                 "download or write it again.") from error
    try:
        return _to_numpy(content)
    except StateDictFileError as error:
        raise StateDictFileError(f"{path}: {error}") from None
    except RecursionError:
        raise StateDictFileError(f"{path} nests its objects deeper than any state dict; the file "
                                 "is damaged or was crafted. Ask for a safetensors file.") from None


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
