"""Fine-tuning from pretrained weights: W's backbone, a new classifier, the frozen phase, resume
after SIGKILL in each phase, and one writer per run directory."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import regnet_keras
from regnet_keras import layer_names
from regnet_keras.design_space import RegNetConfig
from regnet_keras.training import loop as training
from regnet_keras.training import pretrained as pretrained_lib
from regnet_keras.training import run_lock
from regnet_keras.weights import h5 as weights_h5
from regnet_keras.weights.state_dict_files import sha256_of
from tests.conftest import REPO
from tests.test_weights import weights_server  # noqa: F401 - a fixture used below
from tests.training_helpers import environment, run, write_image_folder

TINY = RegNetConfig(w0=8, wa=8, wm=2, depth=4, group_width=8)
SOURCE_CLASSES = 10


@pytest.fixture(scope="module")
def source_weights(tmp_path_factory):
    """A regnet_keras weights file of TINY with a 10-class classifier and BN statistics that
    differ from their initial values (so that "unchanged" is a real check)."""
    model = regnet_keras.RegNet(TINY, input_shape=(32, 32, 3), classes=SOURCE_CLASSES)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) if
                               "variance" not in v.path else w + 0.5
                               for v, w in zip(layer.weights, layer.get_weights())])
    path = str(tmp_path_factory.mktemp("source") / "source.h5")
    regnet_keras.save_weights(model, path)
    return path


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("folder") / "images", per_class=12)


def _config(model_dir, data_dir, **overrides):
    values = dict(model=None, dataset="folder", data_dir=data_dir, image_size=32, batch_size=8,
                  epochs=1, warmup_epochs=0.0, model_dir=str(model_dir), eval_batch_size=16)
    values.update(overrides)
    return training.TrainConfig(**values)


def test_a_weights_file_of_another_class_count_gives_its_backbone_and_a_new_classifier(
        source_weights):
    pretrained = pretrained_lib.resolve(source_weights)
    assert pretrained.kind == "regnet_keras" and pretrained.classes == SOURCE_CLASSES
    assert pretrained.model == regnet_keras.open_weights_file(source_weights).config
    config = training.with_pretrained(_config("unused", None), pretrained)
    model = training.build_model(config, 3)
    assert pretrained_lib.load_backbone(model, pretrained) is False
    stored = weights_h5.open_weights_file(source_weights).tensors
    np.testing.assert_array_equal(model.get_layer(layer_names.STEM_CONV).kernel.numpy(),
                                  stored[layer_names.STEM_CONV]["kernel"])
    last_bn = model.get_layer(layer_names.block_layer(3, 1, "c_bn"))
    np.testing.assert_array_equal(last_bn.moving_variance.numpy(),
                                  stored[layer_names.block_layer(3, 1, "c_bn")]["moving_variance"])
    assert model.get_layer(layer_names.LOGITS).kernel.shape[-1] == 3
    # The same class count keeps W's classifier.
    same = training.build_model(config, SOURCE_CLASSES)
    assert pretrained_lib.load_backbone(same, pretrained) is True
    np.testing.assert_array_equal(same.get_layer(layer_names.LOGITS).kernel.numpy(),
                                  stored[layer_names.LOGITS]["kernel"])


def test_flags_that_contradict_the_weights_and_unsupported_weights_are_refused(
        source_weights, tmp_path):
    pretrained = pretrained_lib.resolve(source_weights)
    with pytest.raises(ValueError, match="preprocessing='unit' contradicts"):
        training.with_pretrained(_config("x", None, preprocessing="unit"), pretrained)
    with pytest.raises(ValueError, match="padding='same' contradicts"):
        training.with_pretrained(_config("x", None, padding="same"), pretrained)
    with pytest.raises(pretrained_lib.PretrainedWeightsError, match="its own design"):
        pretrained_lib.resolve(source_weights, model="RegNetX002")
    with pytest.raises(pretrained_lib.PretrainedWeightsError, match="--model"):
        pretrained_lib.resolve("torchvision_v2")
    with pytest.raises(pretrained_lib.PretrainedWeightsError,
                       match="neither a file nor a named weight of RegNetX002.*pycls"):
        pretrained_lib.resolve("torchvision_v9", model="RegNetX002")
    with pytest.raises(pretrained_lib.PretrainedWeightsError, match="does not exist"):
        pretrained_lib.resolve(str(tmp_path / "missing.h5"))
    with pytest.raises(pretrained_lib.PretrainedWeightsError, match="not a finished"):
        pretrained_lib.resolve(str(tmp_path))


def test_the_frozen_phase_leaves_the_backbone_and_its_bn_statistics_unchanged(
        source_weights, three_classes, tmp_path, monkeypatch):
    resolved = []
    resolve = pretrained_lib.resolve
    monkeypatch.setattr(pretrained_lib, "resolve",
                        lambda *args: resolved.append(resolve(*args)) or resolved[-1])
    model_dir = tmp_path / "frozen"
    result = training.train(_config(model_dir, three_classes, weights=source_weights,
                                    freeze_epochs=1.0, head_lr=0.5))
    assert result["status"] == "finished" and result["optimizer_steps"] > 0
    # W's tensors are not kept beside the model once it holds them.
    assert len(resolved) == 1 and resolved[0].tensors == {}
    info = json.loads((model_dir / "run.json").read_text())
    assert info["weights"]["sha256"] == sha256_of(source_weights)
    assert info["weights"]["name"] == source_weights and info["freeze_epochs"] == 1.0
    trained = weights_h5.model_tensors(regnet_keras.load_model(str(model_dir / "final.keras")))
    stored = weights_h5.open_weights_file(source_weights).tensors
    for layer, weights in trained.items():
        if layer == layer_names.LOGITS:
            continue
        for name, value in weights.items():
            np.testing.assert_array_equal(value, stored[layer][name], err_msg=f"{layer}/{name}")
    initial = training.build_model(training.with_pretrained(
        _config("x", None), pretrained_lib.resolve(source_weights)), 3)
    assert trained[layer_names.LOGITS]["kernel"].shape == (32, 3)
    assert not np.allclose(trained[layer_names.LOGITS]["kernel"],
                           initial.get_layer(layer_names.LOGITS).kernel.numpy())


@pytest.mark.slow
def test_freeze_bn_keeps_bn_statistics_while_the_convolutions_train(
        source_weights, three_classes, tmp_path):
    model_dir = tmp_path / "freeze_bn"
    training.train(_config(model_dir, three_classes, weights=source_weights, freeze_bn=True,
                           lr=0.05))
    trained = weights_h5.model_tensors(regnet_keras.load_model(str(model_dir / "final.keras")))
    stored = weights_h5.open_weights_file(source_weights).tensors
    for name in ("gamma", "beta", "moving_mean", "moving_variance"):
        np.testing.assert_array_equal(trained[layer_names.STEM_BN][name],
                                      stored[layer_names.STEM_BN][name])
    assert not np.array_equal(trained[layer_names.STEM_CONV]["kernel"],
                              stored[layer_names.STEM_CONV]["kernel"])


HOLDER = ("import sys, time; from regnet_keras.training import run_lock; "
          "run_lock.acquire(sys.argv[1]); print('held', flush=True); time.sleep(600)")


def test_a_live_run_directory_is_refused_naming_its_holder_and_a_dead_one_is_not(
        three_classes, tmp_path):
    model_dir = tmp_path / "shared"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(model_dir)], cwd=REPO,
                              env=environment(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.time()
        with pytest.raises(run_lock.RunDirectoryInUseError,
                           match=f"in use by pid {holder.pid} on .+, started .+: -c "):
            training.train(_config(model_dir, three_classes, model=TINY))
        assert time.time() - started < 5  # refused before reading any data
        assert sorted(os.listdir(model_dir)) == [".lock"]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The killed holder's lock file is still there, and does not block.
    assert (model_dir / ".lock").exists()
    run_lock.check_free(str(model_dir))
    result = training.train(_config(model_dir, three_classes, model=TINY, max_steps=1))
    assert result["optimizer_steps"] == 1
    assert json.loads((model_dir / ".lock").read_text())["pid"] == os.getpid()


def test_qat_on_a_live_run_directory_is_refused(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=REPO,
                              env=environment(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        (tmp_path / "run.json").write_text("{}")
        (tmp_path / "best.keras").write_text("")
        result = run([sys.executable, "-m", "tools.qat", "--model_dir", str(tmp_path)],
                     timeout=300)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert result.returncode != 0 and f"in use by pid {holder.pid}" in result.stderr
    assert not (tmp_path / "qat").exists()


# 3 classes x 12 images, 10% held out: 11 training images per class, 33 in all; batch 8 gives
# 4 steps per epoch, and 3 epochs (1 frozen) 12 steps.
STEPS_PER_EPOCH, EPOCHS = 4, 3


def _fine_tune_command(model_dir, data_dir, weights):
    return [sys.executable, "-m", "tools.train", "--preset", "finetune", "--weights", weights,
            "--dataset", "folder", "--data_dir", str(data_dir), "--model_dir", str(model_dir),
            "--image_size", "32", "--batch_size", "8", "--epochs", str(EPOCHS),
            "--freeze_epochs", "1", "--checkpoint_every_steps", "2", "--eval_batch_size", "16",
            "--noevaluate"]


@pytest.mark.parametrize("phase,kill_after_step", [
    pytest.param("frozen", 2, marks=pytest.mark.slow),
    pytest.param("whole", 6, marks=pytest.mark.slow)])
def test_sigkill_in_each_phase_resumes_to_the_same_final_step_count(
        phase, kill_after_step, source_weights, three_classes, tmp_path):
    model_dir = tmp_path / phase
    command = _fine_tune_command(model_dir, three_classes, source_weights)
    process = subprocess.Popen(command, cwd=REPO, env=environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    state = model_dir / "checkpoints" / "checkpoint"

    def saved():  # the state file names a checkpoint once it is complete
        return state.exists() and f'ckpt-{kill_after_step}"' in state.read_text()

    deadline = time.time() + 400
    while not saved() and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    output = process.communicate()[0]
    assert saved(), output[-3000:]
    assert "a new 3-class classifier" in output
    assert not (model_dir / "final.keras").exists()

    resumed = run(command)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    text = resumed.stdout + resumed.stderr
    assert "resumed from" in text and "starting from" not in text  # W not reloaded
    assert f"optimizer steps: {STEPS_PER_EPOCH * EPOCHS}" in resumed.stdout
    info = json.loads((model_dir / "run.json").read_text())
    assert info["status"] == "finished" and info["optimizer_steps"] == STEPS_PER_EPOCH * EPOCHS


def test_finetune_job_needs_a_data_directory_and_main_job_is_unchanged(tmp_path):
    job = os.path.join(REPO, "scripts", "finetune_job.sh")
    for arguments in ([], [str(tmp_path / "missing")]):
        result = subprocess.run(["bash", job, *arguments], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 2 and "usage: scripts/finetune_job.sh DATA_DIR" in \
            result.stderr
    main_job = open(os.path.join(REPO, "scripts", "main_job.sh")).read()
    assert "tools.train --model_dir" in main_job and "finetune" not in main_job


@pytest.mark.slow
def test_imagenet_and_keras_applications_files_give_their_backbone_padding_and_scaling(
        weights_server, keras_applications_references, tmp_path, monkeypatch):
    url, requests = weights_server
    full = os.path.join(keras_applications_references, "regnetx002.h5")
    monkeypatch.setenv(weights_h5.WEIGHTS_URL_ENVIRONMENT, url)
    monkeypatch.setenv(weights_h5.CACHE_DIR_ENVIRONMENT, str(tmp_path))
    monkeypatch.setitem(weights_h5.KERAS_APPLICATIONS_SHA256, "RegNetX002", (
        sha256_of(full), "unused"))
    with pytest.raises(pretrained_lib.PretrainedWeightsError, match="--model RegNetX002"):
        pretrained_lib.resolve(full)
    stored = weights_h5.open_weights_file(full).tensors
    for name, kind in (("imagenet", "imagenet"), (full, "keras.applications")):
        pretrained = pretrained_lib.resolve(name, model="RegNetX002")
        assert (pretrained.kind, pretrained.model, pretrained.classes) == (
            kind, "RegNetX002", 1000)
        config = training.with_pretrained(_config("x", None, model="RegNetX002"), pretrained)
        assert (config.padding, config.preprocessing) == ("same", "unit")
        model = training.build_model(config, 5)
        assert pretrained_lib.load_backbone(model, pretrained) is False
        np.testing.assert_array_equal(model.get_layer(layer_names.STEM_CONV).kernel.numpy(),
                                      stored[layer_names.STEM_CONV]["kernel"])
    assert requests == ["/regnetx002.h5"]


def test_a_pytorch_state_dict_starts_a_fine_tune_with_its_own_architecture(tmp_path):
    """timm's RegNetX-200MF as safetensors: W's design, PyTorch geometry, and its stem kernel in
    the new model (timm's tensor, transposed to Keras' layout)."""
    pytest.importorskip("timm")
    from safetensors.torch import save_file
    from tests import pytorch_helpers
    timm_model = pytorch_helpers.reference_model("timm", "regnetx_002")
    path = str(tmp_path / "regnetx_002.safetensors")
    save_file({k: v.contiguous() for k, v in timm_model.state_dict().items()}, path)

    pretrained = pretrained_lib.resolve(path)
    assert (pretrained.kind, pretrained.padding, pretrained.preprocessing, pretrained.classes) \
        == ("pytorch", "symmetric", "imagenet", 1000)
    assert pretrained.model == regnet_keras.get_config("RegNetX002").to_anynet()
    assert pretrained.origin["library"] == "timm"
    assert pretrained_lib.resolve(path, model="RegNetX002").model == pretrained.model
    with pytest.raises(pretrained_lib.PretrainedWeightsError, match="its own design"):
        pretrained_lib.resolve(path, model="RegNetY002")

    config = training.with_pretrained(_config("unused", None), pretrained)
    model = training.build_model(config, 3)
    assert pretrained_lib.load_backbone(model, pretrained) is False
    stem = timm_model.state_dict()["stem.conv.weight"].numpy().transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(model.get_layer(layer_names.STEM_CONV).kernel.numpy(), stem)
