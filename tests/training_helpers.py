"""Tiny datasets and runs for the training tests: IDX files, image folders, a small RegNet."""

import gzip
import os
import socket
import struct
import subprocess
import sys

import numpy as np

from tests.conftest import REPO

# A RegNet small enough to train a few steps in seconds: stages of width 8, 16, 32 (depth 4).
TINY_DESIGN_FLAGS = ["--w0", "8", "--wa", "8", "--wm", "2", "--depth", "4", "--group_width", "8"]


def write_idx(path, array):
    array = np.ascontiguousarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as file:
        file.write(header + array.tobytes())


def write_tiny_fashion_mnist(directory, train=256, test=64, seed=0):
    """Fashion-MNIST-shaped IDX files whose classes differ in brightness (so they are learnable)."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    for split, count in (("train", train), ("t10k", test)):
        labels = np.arange(count) % 10
        rng.shuffle(labels)
        images = rng.integers(0, 40, (count, 28, 28)) + labels[:, None, None] * 20
        write_idx(os.path.join(directory, f"{split}-images-idx3-ubyte.gz"), images)
        write_idx(os.path.join(directory, f"{split}-labels-idx1-ubyte.gz"), labels)
    return str(directory)


def write_image_folder(root, classes=("cat", "dog", "fox"), per_class=6, size=(40, 36)):
    """PNG and JPEG files (RGB and grayscale) in one sub-folder per class."""
    from PIL import Image
    rng = np.random.default_rng(1)
    for index, name in enumerate(classes):
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            image = Image.fromarray(pixels)
            if i % 3 == 0:
                image.convert("L").save(os.path.join(folder, f"{i}.png"))
            elif i % 3 == 1:
                image.save(os.path.join(folder, f"{i}.png"))
            else:
                image.save(os.path.join(folder, f"{i}.jpg"), quality=90)
    return str(root)


def free_port():
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def train_command(model_dir, data_dir, *extra):
    return [sys.executable, "-m", "tools.train", *TINY_DESIGN_FLAGS, "--data_dir", str(data_dir),
            "--model_dir", str(model_dir), "--image_size", "32", "--batch_size", "32",
            "--epochs", "2", "--warmup_epochs", "1", "--eval_batch_size", "64", *extra]


def environment(extra=None):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    env.update(extra or {})
    return env


def run(command, extra_env=None, timeout=600):
    return subprocess.run(command, cwd=REPO, env=environment(extra_env), capture_output=True,
                          text=True, timeout=timeout)
