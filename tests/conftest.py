"""Shared fixtures: reference files from tf-keras' keras.applications, and subprocess helpers."""

import os
import re
import subprocess
import sys
import tempfile

import pytest

import regnet_keras  # noqa: F401  (first, so that TensorFlow loads with its oneDNN kernels)

try:
    # PyTorch's compiler stack (torch._dynamo, which torchvision and timm import) crashes the
    # process with a segmentation fault when it loads after TensorFlow has; the PyTorch reference
    # tests share the process with TensorFlow's, so it loads first, before any test loads
    # TensorFlow.
    import timm  # noqa: F401
    import torchvision  # noqa: F401
except ImportError:  # the reference tests skip themselves without them
    pass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Image folders' resized copies go to a cache of this test session, not the user's: tools run
# in subprocesses inherit it.
os.environ.setdefault("REGNET_KERAS_IMAGE_CACHE", tempfile.mkdtemp(prefix="regnet_keras_images_"))
REFERENCE_SCRIPT = os.path.join(REPO, "tests", "references", "keras_applications.py")
# Models compared with keras.applications in the default run (all 24 in the slow run).
PARITY_MODELS = ("RegNetX002", "RegNetY002", "RegNetX016", "RegNetY016")
PARITY_SIZE = 64


def run_python(args, extra_env=None, timeout=900):
    """Runs `python args...` from the repository root; fails the test with its output."""
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    env.update(extra_env or {})
    result = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return result


def write_keras_applications_references(out_dir, models, size=PARITY_SIZE):
    run_python([REFERENCE_SCRIPT, str(out_dir), "--size", str(size), *models])
    return str(out_dir)


@pytest.fixture(scope="session")
def keras_applications_references(tmp_path_factory):
    """Directory with regnetx002.h5, regnetx002_notop.h5, regnetx002_outputs.npz, ..."""
    return write_keras_applications_references(
        tmp_path_factory.mktemp("keras_applications"), PARITY_MODELS)


def table_figure(text: str) -> int:
    return int(re.sub(r"[,_]", "", text))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A small Fashion-MNIST-shaped dataset (tests/training_helpers.py) for training runs."""
    from tests.training_helpers import write_tiny_fashion_mnist
    return write_tiny_fashion_mnist(tmp_path_factory.mktemp("fashion"))
