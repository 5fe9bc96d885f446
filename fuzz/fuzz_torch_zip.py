"""Fuzzes the torch-free reader of PyTorch zip checkpoints (regnet_keras.weights.torch_zip)."""

import os
import zipfile

import numpy as np

from regnet_keras.weights import torch_zip
from tests import checkpoint_crafting as crafting
from fuzz.input_file import InputFile

INSTRUMENTED_MODULES = ("regnet_keras.weights.torch_zip", "zipfile")

_INPUT = InputFile("input.pth")


def test_one_input(data: bytes) -> None:
    torch_zip.load(_INPUT.holding(data))


def write_seeds(directory: str) -> None:
    rng = np.random.default_rng(0)
    arrays = {"stem.conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
              "stem.bn.running_var": np.ones(4, np.float32),
              "stem.bn.num_batches_tracked": np.array(7, np.int64),
              "head.fc.bias": np.arange(3, dtype=np.float16), "mask": np.array([True, False])}
    crafting.state_dict_checkpoint(os.path.join(directory, "state_dict.pth"), arrays)
    crafting.state_dict_checkpoint(os.path.join(directory, "deflated.pth"), arrays,
                                   compression=zipfile.ZIP_DEFLATED)
    crafting.state_dict_checkpoint(os.path.join(directory, "big_endian.pth"),
                                   {"w": np.arange(6, dtype=np.float32)}, byteorder="big")
    storage = np.arange(12, dtype=np.float32).tobytes()
    views = {"transposed": crafting.Tensor("0", 12, 0, (4, 3), (1, 4)),
             "offset": crafting.Tensor("0", 12, 5, (3,), (2,)),
             "empty": crafting.Tensor("0", 12, 0, (0, 5), (5, 1)),
             "scalar": crafting.Tensor("0", 12, 11, (), ())}
    crafting.write_checkpoint(os.path.join(directory, "views.pth"), views, {"0": storage})
    checkpoint = {"model_state": crafting.Call(crafting.Global("collections", "OrderedDict"), ()),
                  "epoch": 3, "names": ["a", "b"], "lr": 0.1, "flags": (True, None)}
    crafting.write_checkpoint(os.path.join(directory, "pycls_like.pth"), checkpoint, {})
    # Near-valid: a view past its storage, a zero stride, a refused import.
    crafting.write_checkpoint(os.path.join(directory, "outside.pth"),
                              {"w": crafting.Tensor("0", 12, 10, (3,), (-5,))}, {"0": storage})
    crafting.write_checkpoint(os.path.join(directory, "zero_stride.pth"),
                              {"w": crafting.Tensor("0", 1, 0, (1000,), (0,))}, {"0": storage})
    crafting.write_checkpoint(os.path.join(directory, "import.pth"),
                              {"w": crafting.Call(crafting.Global("os", "system"), ("true",))}, {})
    try:
        import torch
    except ImportError:
        return
    state = {"weight": torch.arange(6.0).reshape(2, 3), "half": torch.ones(2, dtype=torch.bfloat16),
             "parameter": torch.nn.Parameter(torch.zeros(2)), "view": torch.arange(8.0)[2:6]}
    torch.save(state, os.path.join(directory, "torch_save.pth"))
