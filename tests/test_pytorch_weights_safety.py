"""Reading PyTorch files never runs code from them, damaged or foreign files fail before any weight
is assigned with the key named, and safetensors files load without torch or timm installed."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
from safetensors.torch import save_file  # noqa: E402

import regnet_keras  # noqa: E402
from regnet_keras.weights import pytorch as pytorch_weights  # noqa: E402
from regnet_keras.weights import torch_zip  # noqa: E402
from tests import pytorch_helpers as helpers  # noqa: E402
from tests.conftest import REPO  # noqa: E402


class Planted:
    """Unpickling this runs a shell command: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def regnetx_002():
    return helpers.reference_model("timm", "regnetx_002")


def planted_file(directory):
    marker = directory / "command_ran"
    path = directory / "planted.pth"
    torch.save({"stem.conv.weight": torch.zeros(32, 3, 3, 3), "payload": Planted(marker)}, path)
    return str(path), marker


def test_a_planted_pickle_is_refused_and_its_command_never_runs(tmp_path):
    path, marker = planted_file(tmp_path)
    with pytest.raises(regnet_keras.PyTorchWeightsError, match="planted.pth.*(refused|system)"):
        regnet_keras.from_pytorch(path)
    # regnet_keras' own reader of the zip format (used where torch is not installed).
    with pytest.raises(torch_zip.UnsafeCheckpointError, match=r"posix\.system|os\.system"):
        torch_zip.load(path)
    assert not marker.exists()


def test_the_zip_reader_reads_what_torch_load_reads(regnetx_002, tmp_path):
    content = {"state": regnetx_002.state_dict(), "epoch": 3, "names": ["a", "b"],
               "half": torch.arange(6, dtype=torch.float16).reshape(2, 3),
               "bfloat16": torch.tensor([1.5, -2.0, 3.25], dtype=torch.bfloat16),
               "strided": torch.arange(12.0).reshape(3, 4).t(),
               "offset": torch.arange(10.0)[3:7]}
    path = tmp_path / "mixed.pth"
    torch.save(content, path)
    read = torch_zip.load(str(path))
    assert read["epoch"] == 3 and read["names"] == ["a", "b"]
    for key, value in regnetx_002.state_dict().items():
        np.testing.assert_array_equal(read["state"][key], value.numpy())
    np.testing.assert_array_equal(read["half"], content["half"].numpy())
    np.testing.assert_array_equal(read["bfloat16"], content["bfloat16"].float().numpy())
    np.testing.assert_array_equal(read["strided"], content["strided"].numpy())
    np.testing.assert_array_equal(read["offset"], [3.0, 4.0, 5.0, 6.0])


@pytest.mark.parametrize("extension", [".safetensors", ".pth"])
def test_truncated_files_are_refused(regnetx_002, tmp_path, extension):
    path = tmp_path / f"model{extension}"
    if extension == ".pth":
        torch.save(regnetx_002.state_dict(), path)
    else:
        save_file(regnetx_002.state_dict(), str(path))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(regnet_keras.PyTorchWeightsError, match="truncated"):
        regnet_keras.from_pytorch(str(path))
    if extension == ".pth":
        with pytest.raises(Exception, match="(?i)zip|truncated"):
            torch_zip.load(str(path))


def test_wrong_shapes_and_unknown_keys_name_the_key_and_assign_nothing(regnetx_002):
    state = {key: value.clone() for key, value in regnetx_002.state_dict().items()}
    model = regnet_keras.from_pytorch(state, input_shape=(64, 64, 3))
    before = [w.copy() for w in model.get_weights()]

    wrong_shape = dict(state)
    wrong_shape["s3.b2.conv1.bn.weight"] = torch.ones(7)
    with pytest.raises(regnet_keras.PyTorchWeightsError, match=r"s3\.b2\.conv1\.bn\.weight"):
        pytorch_weights.load_into(model, pytorch_weights.read_pytorch_weights(wrong_shape))

    unknown = dict(state)
    unknown["s2.b1.attention.qkv.weight"] = torch.ones(3)
    with pytest.raises(regnet_keras.PyTorchWeightsError, match=r"s2\.b1\.attention\.qkv\.weight"):
        pytorch_weights.read_pytorch_weights(unknown)

    missing = {k: v for k, v in state.items() if not k.startswith("s4.b1.conv2.conv")}
    with pytest.raises(regnet_keras.PyTorchWeightsError, match=r"s4\.b1\.conv2\.conv\.weight"):
        pytorch_weights.read_pytorch_weights(missing)

    bad_kernel = dict(state)
    bad_kernel["s2.b1.conv3.conv.weight"] = torch.ones(56, 40, 1, 1)
    with pytest.raises(regnet_keras.PyTorchWeightsError, match=r"s2\.b1\.conv3\.conv\.weight"):
        pytorch_weights.read_pytorch_weights(bad_kernel)

    for after, expected in zip(model.get_weights(), before):
        np.testing.assert_array_equal(after, expected)


@pytest.mark.parametrize("name,difference", [
    ("regnetz_b16", "RegNetZ"), ("regnetv_040", "pre-activation"),
    ("regnety_040_sgn", "GroupNorm")])
def test_networks_that_are_not_regnet_x_or_y_are_refused_with_the_difference(name, difference):
    state = timm.create_model(name).state_dict()
    with pytest.raises(regnet_keras.PyTorchWeightsError, match=difference):
        regnet_keras.from_pytorch(state)


def test_a_trunk_without_classifier_needs_include_top_false(regnetx_002):
    trunk = {k: v for k, v in regnetx_002.state_dict().items() if not k.startswith("head.")}
    with pytest.raises(regnet_keras.PyTorchWeightsError, match="include_top=False"):
        regnet_keras.from_pytorch(trunk)
    features = regnet_keras.from_pytorch(trunk, include_top=False, pooling="avg",
                                         input_shape=(64, 64, 3))
    assert features.output_shape == (None, 368)


# Blocks torch, torchvision and timm as if they were not installed, then imports from files.
NO_TORCH_SCRIPT = r"""
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "timm"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
import numpy as np
import regnet_keras
from regnet_keras.weights import state_dict_files
arguments = json.loads(sys.argv[1])
pixels = np.load(arguments["pixels"])
results = {}
for path in arguments["files"]:
    model = regnet_keras.from_pytorch(path, input_shape=(64, 64, 3), classifier_activation=None)
    results[path] = model.predict(pixels, verbose=0).tolist()
try:
    regnet_keras.from_pytorch(arguments["planted"])
    results["planted"] = "loaded"
except regnet_keras.PyTorchWeightsError as error:
    results["planted"] = str(error)
results["torch_imported"] = any(m.split(".")[0] in ("torch", "timm", "torchvision")
                                for m in sys.modules)
print(json.dumps(results))
"""


def test_files_load_without_torch_or_timm(regnetx_002, tmp_path):
    pixels = helpers.images(64)
    np.save(tmp_path / "pixels.npy", pixels)
    expected = helpers.torch_logits(regnetx_002, pixels)
    safetensors_path = str(tmp_path / "regnetx_002.safetensors")
    save_file(regnetx_002.state_dict(), safetensors_path)
    pth_path = str(tmp_path / "regnetx_002.pth")
    torch.save(regnetx_002.state_dict(), pth_path)
    planted, marker = planted_file(tmp_path)
    arguments = {"files": [safetensors_path, pth_path], "pixels": str(tmp_path / "pixels.npy"),
                 "planted": planted}
    done = subprocess.run([sys.executable, "-c", NO_TORCH_SCRIPT, json.dumps(arguments)],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"))
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["torch_imported"] is False
    for path in (safetensors_path, pth_path):
        difference = helpers.relative_difference(np.asarray(results[path]), expected)
        assert difference <= 2e-4, path
    assert "refused" in results["planted"] and not marker.exists()
