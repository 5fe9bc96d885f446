"""hf:// handles against a loopback server speaking the Hugging Face Hub's file protocol:
timm repositories and KerasHub presets through regnet_keras.from_preset, KerasHub's own
from_preset, tools.train --weights hf://..., and tampered or truncated files refused."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("timm")
pytest.importorskip("keras_hub")
pytest.importorskip("huggingface_hub")

import regnet_keras  # noqa: E402
from regnet_keras.errors import InputError  # noqa: E402
from tests import pytorch_helpers  # noqa: E402
from tests.conftest import REPO  # noqa: E402
from tests.hf_hub_server import HubRepositories, etag_of, serve_hub  # noqa: E402
from tests.timm_snapshots import snapshot_files, write_snapshot  # noqa: E402
from tests.training_helpers import environment, write_image_folder  # noqa: E402

SIZE = 64
TIMM_REPO = "timm/regnetx_002.pycls_in1k"
PRESET_REPO = "someone/regnetx_002_preset"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A loopback Hub with timm's RegNetX-200MF repository and a preset saved from it."""
    root = tmp_path_factory.mktemp("hub")
    timm_model = write_snapshot(root / "snapshot", TIMM_REPO.split("/")[1], seed=7,
                                image_size=SIZE)
    classifier = regnet_keras.from_preset(str(root / "snapshot"))
    classifier.save_to_preset(str(root / "preset"))
    pixels = pytorch_helpers.images(SIZE, count=2, seed=4)
    repositories = HubRepositories()
    repositories.add(TIMM_REPO, snapshot_files(root / "snapshot"))
    repositories.add(PRESET_REPO, snapshot_files(root / "preset"))
    with serve_hub(repositories) as endpoint:
        yield {"endpoint": endpoint, "repositories": repositories, "pixels": pixels,
               "timm": pytorch_helpers.torch_logits(timm_model, pixels), "root": root}


@pytest.fixture
def hub_env(hub, tmp_path, monkeypatch):
    """HF_ENDPOINT at the loopback Hub and an empty cache, for this test only."""
    monkeypatch.setenv("HF_ENDPOINT", hub["endpoint"])
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    hub["repositories"].lies.clear()
    hub["repositories"].requests.clear()
    return hub


def test_hf_timm_handle_downloads_and_gives_timms_logits(hub_env):
    classifier = regnet_keras.from_preset(f"hf://{TIMM_REPO}")
    difference = pytorch_helpers.relative_difference(
        classifier.predict(hub_env["pixels"], verbose=0), hub_env["timm"])
    print(f"hf://{TIMM_REPO}: max |logits - timm| / max |timm| = {difference:.2e}")
    assert difference < 1e-5
    fetched = {path for method, path in hub_env["repositories"].requests if method == "GET"}
    assert fetched >= {f"/{TIMM_REPO}/resolve/main/config.json",
                       f"/{TIMM_REPO}/resolve/main/model.safetensors"}
    # A timm name with published weights resolves to the same repository.
    assert regnet_keras.from_preset(TIMM_REPO.split("/")[1]).backbone.weights_origin[
        "source_name"] == "regnetx_002.pycls_in1k"


def test_hf_keras_hub_preset_gives_the_saved_predictions(hub_env):
    saved = regnet_keras.from_preset(str(hub_env["root"] / "preset"))
    downloaded = regnet_keras.from_preset(f"hf://{PRESET_REPO}")
    np.testing.assert_allclose(downloaded.predict(hub_env["pixels"], verbose=0),
                               saved.predict(hub_env["pixels"], verbose=0), rtol=0, atol=1e-5)
    assert downloaded.backbone.weights_origin == saved.backbone.weights_origin


@pytest.mark.parametrize("repo, file_name, lie", [
    (TIMM_REPO, "model.safetensors", "tampered"),
    (TIMM_REPO, "model.safetensors", "truncated"),
    (PRESET_REPO, "task.weights.h5", "tampered"),
    pytest.param(TIMM_REPO, "config.json", "tampered", marks=pytest.mark.slow),
    pytest.param(TIMM_REPO, "config.json", "truncated", marks=pytest.mark.slow),
    pytest.param(PRESET_REPO, "task.weights.h5", "truncated", marks=pytest.mark.slow),
])
def test_tampered_or_truncated_downloads_are_refused_and_not_kept(hub_env, tmp_path, repo,
                                                                  file_name, lie):
    hub_env["repositories"].lies[(repo, file_name)] = lie
    with pytest.raises(InputError, match=file_name) as raised:
        regnet_keras.from_preset(f"hf://{repo}")
    assert "\n" not in str(raised.value)
    # huggingface_hub names a finished download by its digest: none may stay under that name.
    blobs = tmp_path / "hf_cache" / f"models--{repo.replace('/', '--')}" / "blobs"
    served = hub_env["repositories"].files[repo][file_name]
    assert not (blobs / etag_of(file_name, served)).exists()
    hub_env["repositories"].lies.clear()  # the honest Hub: the same call now works
    assert regnet_keras.from_preset(f"hf://{repo}").num_classes == 1000


KERAS_HUB_PROCESS = """
import sys
import numpy as np
import regnet_keras
import keras_hub
classifier = keras_hub.models.ImageClassifier.from_preset(sys.argv[1])
np.save(sys.argv[2], classifier.predict(np.load(sys.argv[3]), verbose=0))
try:
    keras_hub.models.ImageClassifier.from_preset(sys.argv[4])
    print("TRUNCATED ACCEPTED")
except Exception as error:
    print("TRUNCATED REFUSED", type(error).__name__)
"""


@pytest.mark.slow  # a fresh process loading TensorFlow and KerasHub: about a minute
def test_keras_hubs_own_from_preset_reads_hf_handles_and_refuses_a_truncated_file(hub, tmp_path):
    """KerasHub downloads through huggingface_hub, which checks sizes (not digests: only
    regnet_keras.from_preset refuses a tampered file of the right size)."""
    repositories = hub["repositories"]
    truncated_repo = "someone/regnetx_002_truncated"
    repositories.add(truncated_repo, repositories.files[PRESET_REPO])
    repositories.lies[(truncated_repo, "task.weights.h5")] = "truncated"
    np.save(tmp_path / "pixels.npy", hub["pixels"])
    result = subprocess.run(
        [sys.executable, "-c", KERAS_HUB_PROCESS, f"hf://{PRESET_REPO}",
         str(tmp_path / "fresh.npy"), str(tmp_path / "pixels.npy"), f"hf://{truncated_repo}"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=environment({"HF_ENDPOINT": hub["endpoint"],
                         "HF_HUB_CACHE": str(tmp_path / "hf_cache")}))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TRUNCATED REFUSED" in result.stdout, result.stdout
    assert pytorch_helpers.relative_difference(np.load(tmp_path / "fresh.npy"), hub["timm"]) \
        < 1e-5


@pytest.mark.slow  # a whole tools.train run
def test_tools_train_fine_tunes_from_an_hf_timm_handle(hub, tmp_path):
    data_dir = write_image_folder(tmp_path / "images", per_class=6)
    model_dir = tmp_path / "run"
    command = [sys.executable, "-m", "tools.train", "--preset", "finetune",
               "--weights", f"hf://{TIMM_REPO}", "--dataset", "folder", "--data_dir", data_dir,
               "--model_dir", str(model_dir), "--image_size", "32", "--batch_size", "6",
               "--epochs", "1", "--freeze_epochs", "0", "--eval_batch_size", "12",
               "--noevaluate"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900,
                            env=environment({"HF_ENDPOINT": hub["endpoint"],
                                             "HF_HUB_CACHE": str(tmp_path / "hf_cache")}))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    with open(model_dir / "run.json") as file:
        run = json.load(file)
    assert run["weights"]["kind"] == "timm"
    assert run["weights_origin"]["source_name"] == "regnetx_002.pycls_in1k"
    assert os.path.isfile(model_dir / "final.keras")
