"""Training end to end on tiny data: resume after SIGKILL, multi-worker, bad input, evaluation."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from regnet_keras.design_space import RegNetConfig
from regnet_keras.training import loop as training
from tests.conftest import REPO
from tests.training_helpers import (environment, free_port, run, train_command,
                                    write_image_folder)

TINY = RegNetConfig(w0=8, wa=8, wm=2, depth=4, group_width=8)
# 256 training images / batch 32 = 8 steps per epoch; 2 epochs.
STEPS_PER_EPOCH, EPOCHS = 8, 2


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_data):
    model_dir = tmp_path_factory.mktemp("run") / "tiny"
    result = run(train_command(model_dir, tiny_data))
    assert result.returncode == 0, result.stderr[-4000:]
    return model_dir, result.stdout


def test_finished_run_directory_has_the_contract_files(finished_run, tiny_data):
    model_dir, output = finished_run
    for name in ("best.keras", "final.keras", "run.json", "history.csv",
                 "final_confusion_matrix.png", "final_report.json"):
        assert (model_dir / name).is_file(), name
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(model_dir / "logs"))
    info = json.loads((model_dir / "run.json").read_text())
    assert info["model"] == {"kind": "regnet", **{k: v for k, v in TINY.to_dict().items()
                                                   if k != "kind"}}
    assert info["dataset"] == "fashion_mnist" and info["data_dir"] == tiny_data
    assert info["image_size"] == 32 and info["num_classes"] == 10 and info["channels"] == 3
    assert len(info["class_names"]) == 10 and info["preprocessing"] == "imagenet"
    assert info["epochs"] == EPOCHS and isinstance(info["test_top1"], float)
    assert info["optimizer_steps"] == STEPS_PER_EPOCH * EPOCHS
    history = (model_dir / "history.csv").read_text().splitlines()
    assert len(history) == 1 + EPOCHS and history[0].startswith("epoch,step")
    assert f"test top-1 {info['test_top1']:.4f}" in output
    assert "evaluation report:" in output and str(model_dir) in output


def test_resume_after_sigkill_mid_epoch_ends_with_the_unbroken_step_count(tmp_path, tiny_data):
    model_dir = tmp_path / "killed"
    command = train_command(model_dir, tiny_data, "--checkpoint_every_steps", "3",
                            "--noevaluate")
    process = subprocess.Popen(command, cwd=REPO, env=environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    state_file = model_dir / "checkpoints" / "checkpoint"
    deadline = time.time() + 300
    # Step 3 of 8 is saved inside the first epoch; kill the run right after it.
    while not state_file.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert state_file.exists(), "no checkpoint was written before the kill"
    assert not (model_dir / "final.keras").exists()
    saved_step = int(state_file.read_text().split('"')[1].rsplit("-", 1)[1])
    assert 0 < saved_step < STEPS_PER_EPOCH * EPOCHS

    resumed = run(command)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "resumed from" in resumed.stdout + resumed.stderr
    assert f"optimizer steps: {STEPS_PER_EPOCH * EPOCHS}" in resumed.stdout
    info = json.loads((model_dir / "run.json").read_text())
    assert info["optimizer_steps"] == STEPS_PER_EPOCH * EPOCHS and info["status"] == "finished"
    epochs_logged = [line.split(",")[0] for line in
                     (model_dir / "history.csv").read_text().splitlines()[1:]]
    assert epochs_logged == [str(e) for e in range(1, EPOCHS + 1)]


def test_max_steps_stops_and_the_same_command_finishes(tmp_path, tiny_data):
    model_dir = tmp_path / "stepwise"
    # An AnyNet design: its stage tuples come back from run.json as lists and must still match.
    anynet = ["--stage_widths", "8,16", "--stage_depths", "1,1", "--stage_group_widths", "8,8",
              "--stage_strides", "1,2", "--noevaluate"]
    first = run(train_command(model_dir, tiny_data, "--max_steps", "5", *anynet))
    assert first.returncode == 0, first.stderr[-4000:]
    assert "optimizer steps: 5" in first.stdout and "resume" in first.stdout
    second = run(train_command(model_dir, tiny_data, *anynet))
    assert second.returncode == 0, second.stderr[-4000:]
    assert f"optimizer steps: {STEPS_PER_EPOCH * EPOCHS}" in second.stdout


def _config(model_dir, data_dir, model=TINY, **overrides):
    values = dict(model=model, data_dir=data_dir, image_size=32, batch_size=32, epochs=1,
                  model_dir=str(model_dir), eval_batch_size=64)
    values.update(overrides)
    return training.TrainConfig(**values)


def test_model_dir_of_another_run_is_refused_and_left_untouched(finished_run, tiny_data):
    model_dir, _ = finished_run
    before = {name: (model_dir / name).read_bytes() for name in ("run.json", "final.keras")}
    checkpoints = sorted(os.listdir(model_dir / "checkpoints"))
    other = RegNetConfig(w0=16, wa=8, wm=2, depth=4, group_width=8)
    with pytest.raises(training.RunDirectoryError, match="holds another run.*model"):
        training.train(_config(model_dir, tiny_data, model=other, epochs=EPOCHS))
    folder = write_image_folder(model_dir.parent / "three_classes")
    with pytest.raises(training.RunDirectoryError, match="num_classes"):
        training.train(_config(model_dir, folder, dataset="folder", epochs=EPOCHS))
    after = {name: (model_dir / name).read_bytes() for name in before}
    assert after == before and sorted(os.listdir(model_dir / "checkpoints")) == checkpoints


def test_checkpoints_without_run_json_are_refused(tmp_path, tiny_data):
    os.makedirs(tmp_path / "orphan" / "checkpoints")
    with pytest.raises(training.RunDirectoryError, match="no run.json"):
        training.train(_config(tmp_path / "orphan", tiny_data))


def test_cli_errors_name_the_problem_before_training(tmp_path, tiny_data):
    cases = [
        (["--model", "RegNetZ001"], "unknown model name", "RegNetY320"),
        (["--dataset", "no_such_dataset"], "unknown dataset name", "cifar10"),
        (["--dataset", "folder", "--data_dir", str(tmp_path)], "holds no class folders", ""),
        (["--image_size", "16"], "image_size=16 is invalid", ""),
    ]
    for flags, message, listed in cases:
        model_dir = tmp_path / "never"
        result = run([sys.executable, "-m", "tools.train", "--model_dir", str(model_dir),
                      *flags], timeout=300)
        assert result.returncode != 0
        assert message in result.stderr and listed in result.stderr, result.stderr[-2000:]
        assert not model_dir.exists()


def test_helpfull_lists_the_training_flags():
    result = run([sys.executable, "-m", "tools.train", "--helpfull"], timeout=300)
    for flag in ("--model", "--dataset", "--data_dir", "--image_size", "--batch_size",
                 "--epochs", "--lr", "--warmup_epochs", "--weight_decay", "--label_smoothing",
                 "--mixed_precision", "--jit_compile", "--model_dir", "--seed", "--strategy",
                 "--preset", "--corrupt_images", "--auto_augment", "--mixup_alpha",
                 "--cutmix_alpha", "--cutmix_probability", "--train_image_size", "--ema_decay",
                 "--teacher", "--distill_alpha", "--distill_temperature"):
        # absl prints boolean flags as --[no]name.
        assert re.search(r"--(\[no\])?" + flag[2:] + ":", result.stdout), flag


def _config_from_command_line(*arguments):
    """tools.train's TrainConfig for a command line, built in a fresh process (absl flags are
    process-global)."""
    code = ("import json, sys; from absl import flags; from tools import train; "
            "flags.FLAGS(['train', *sys.argv[1:]]); config = train.train_config_from_flags(); "
            "print(json.dumps({'epochs': config.epochs, 'weight_decay': config.weight_decay, "
            "'min_crop_area': config.augmentation.min_crop_area, "
            "'erasing_probability': config.augmentation.erasing_probability, "
            "'label_smoothing': config.label_smoothing, "
            "'lighting_std': config.augmentation.lighting_std, "
            "'auto_augment': config.auto_augment, 'mixup_alpha': config.mixing.mixup_alpha, "
            "'cutmix_alpha': config.mixing.cutmix_alpha, 'ema_decay': config.ema_decay}))")
    result = run([sys.executable, "-c", code, *arguments], timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_presets_fill_unset_flags_and_the_command_line_wins():
    baseline = {"lighting_std": 0.1, "auto_augment": "none", "mixup_alpha": 0.0,
                "cutmix_alpha": 0.0, "ema_decay": 0.0}
    assert _config_from_command_line() == {"epochs": 5, "weight_decay": 5e-5,
                                           "min_crop_area": 1.0, "erasing_probability": 0.0,
                                           "label_smoothing": 0.1, **baseline}
    assert _config_from_command_line("--preset", "long") == {
        "epochs": 40, "weight_decay": 5e-4, "min_crop_area": 0.8, "erasing_probability": 0.5,
        "label_smoothing": 0.1, **baseline}
    assert _config_from_command_line("--preset", "long", "--weight_decay", "1e-4",
                                     "--epochs", "3", "--erasing_probability", "0") == {
        "epochs": 3, "weight_decay": 1e-4, "min_crop_area": 0.8, "erasing_probability": 0.0,
        "label_smoothing": 0.1, **baseline}
    assert _config_from_command_line("--preset", "recipe_v2", "--ema_decay", "0") == {
        "epochs": 40, "weight_decay": 5e-4, "min_crop_area": 0.8, "erasing_probability": 0.1,
        "label_smoothing": 0.1, "lighting_std": 0.0, "auto_augment": "trivialaugment_wide",
        "mixup_alpha": 0.2, "cutmix_alpha": 1.0, "ema_decay": 0.0}


def test_evaluate_tool_reports_top1_top5_and_saves_the_confusion_matrix(finished_run,
                                                                       tmp_path):
    model_dir, _ = finished_run
    result = run([sys.executable, "-m", "tools.evaluate", "--model",
                  str(model_dir / "best.keras"), "--output_dir", str(tmp_path)])
    assert result.returncode == 0, result.stderr[-4000:]
    assert "top-1" in result.stdout and "top-5" in result.stdout
    png = tmp_path / "best_confusion_matrix.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((tmp_path / "best_report.json").read_text())
    matrix = report["confusion_matrix"]
    assert len(matrix) == 10 and sum(map(sum, matrix)) == 64 == report["examples"]
    assert report["top1"] == pytest.approx(sum(matrix[i][i] for i in range(10)) / 64)
    assert f"top-1 {report['top1']:.4f}" in result.stdout
    missing = run([sys.executable, "-m", "tools.evaluate", "--model", str(tmp_path / "x.keras")])
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_two_workers_on_localhost_end_with_identical_weights(tmp_path, tiny_data):
    import regnet_keras
    # With the recipe's every ingredient: a teacher of another design and size on each worker,
    # mixed batches, the EMA (the published weights compared), training crops apart.
    teacher = tmp_path / "teacher.weights.h5"
    regnet_keras.save_weights(regnet_keras.RegNet(
        RegNetConfig(w0=8, wa=8, wm=2, depth=3, group_width=8, se_ratio=0.25), include_top=True,
        weights=None,
        input_shape=(40, 40, 3), classes=10), str(teacher))
    recipe = ["--teacher", str(teacher), "--teacher_image_size", "40", "--ema_decay", "0.9",
              "--mixup_alpha", "0.2", "--cutmix_alpha", "1", "--auto_augment", "randaugment",
              "--image_size", "36"]
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        command = train_command(tmp_path / f"worker{index}", tiny_data, "--max_steps", "6",
                                "--checkpoint_every_steps", "3", "--noevaluate", *recipe,
                                "--train_image_size", "32")
        processes.append(subprocess.Popen(
            command, cwd=REPO, env=environment({"TF_CONFIG": tf_config}),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-4000:]
        outputs.append(stdout)
    digests = [next(line for line in out.splitlines() if line.startswith("weights sha256"))
               for out in outputs]
    assert digests[0] == digests[1]
    assert all("optimizer steps: 6" in out for out in outputs)
    chief, worker = tmp_path / "worker0", tmp_path / "worker1"
    assert sorted(os.listdir(chief / "checkpoints")) == [
        "checkpoint", "ckpt-3.data-00000-of-00001", "ckpt-3.index",
        "ckpt-6.data-00000-of-00001", "ckpt-6.index"]
    assert (chief / "run.json").is_file()
    assert not worker.exists() or not os.listdir(worker)
