"""The recipe in training runs: the EMA against its definition, saved and exported; distillation
from a teacher of another design and size, resumed after SIGKILL to the same steps and the same
averaged weights; teachers that cannot teach the data refused in one line."""

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest

from regnet_keras.design_space import RegNetConfig
from regnet_keras.training import distillation as distillation_lib
from regnet_keras.training import loop as training
from tests.conftest import REPO
from tests.training_helpers import environment, run, train_command, write_tiny_fashion_mnist

TINY = RegNetConfig(w0=8, wa=8, wm=2, depth=4, group_width=8)
DECAY = 0.6
# The student: another design (an AnyNet of two stages), trained on 32-pixel crops and saved at
# 36, distilled from a teacher with SE blocks that looks at 40 pixels, with every ingredient on.
STUDENT_FLAGS = ["--stage_widths", "8,16", "--stage_depths", "1,1", "--train_image_size", "32",
                 "--image_size", "36", "--auto_augment", "trivialaugment_wide",
                 "--mixup_alpha", "0.2", "--cutmix_alpha", "1.0", "--ema_decay", "0.9",
                 "--distill_alpha", "0.7", "--distill_temperature", "2",
                 "--teacher_image_size", "40", "--noevaluate"]
STEPS = 16  # 256 images / 32 per batch x 2 epochs


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory, tiny_data):
    model_dir = tmp_path_factory.mktemp("teacher") / "run"
    result = run(train_command(model_dir, tiny_data, "--se_ratio", "0.25", "--noevaluate"))
    assert result.returncode == 0, result.stderr[-4000:]
    return model_dir


def _restored_weights(config, checkpoint_path):
    """The raw network of a checkpoint, read with TensorFlow's own checkpoint reader."""
    import tensorflow as tf
    model = training.build_model(config, 10)
    tf.train.Checkpoint(model=model).read(checkpoint_path).expect_partial()
    return [np.array(w.numpy()) for w in model.weights], model


def test_ema_is_its_definition_over_sessions_and_is_what_is_saved_and_exported(tmp_path):
    import tensorflow as tf
    import regnet_keras
    from regnet_keras.lite import export
    data = write_tiny_fashion_mnist(tmp_path / "data", train=96, test=32)
    config = training.TrainConfig(model=TINY, data_dir=data, image_size=32, batch_size=32,
                                   epochs=1, warmup_epochs=0.0, model_dir=str(tmp_path / "run"),
                                   eval_batch_size=32, checkpoint_every_steps=1,
                                   ema_decay=DECAY, lr=0.5)
    raw = []
    for steps in (1, 2, 3):  # a session per step: the average must survive each restart
        result = training.train(dataclasses.replace(config, max_steps=steps), log=lambda _: 0)
        assert result["optimizer_steps"] == steps
        latest = tf.train.latest_checkpoint(tmp_path / "run" / "checkpoints")
        assert latest.endswith(f"ckpt-{steps}")
        raw.append(_restored_weights(config, latest)[0])
    assert result["status"] == "finished"
    # The reference: TensorFlow's own moving average with its warm-up (num_updates), which
    # starts from the weights after the first step (Keras' first update copies them).
    steps_done = tf.Variable(0, dtype=tf.int64)
    reference = tf.train.ExponentialMovingAverage(DECAY, num_updates=steps_done)
    tracked = [tf.Variable(w) for w in raw[0]]
    reference.apply(tracked)
    for step, weights in enumerate(raw[1:], start=1):
        for variable, value in zip(tracked, weights):
            variable.assign(value)
        steps_done.assign(step)  # updates before this one: the decay is min(DECAY, 2/11), ...
        reference.apply(tracked)
    expected = [reference.average(v).numpy() for v in tracked]
    final = regnet_keras.load_model(str(tmp_path / "run" / "final.keras"))
    saved = [np.array(w.numpy()) for w in final.weights]
    assert len(saved) == len(expected)
    for have, want in zip(saved, expected):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)
    assert max(np.abs(h - r).max() for h, r in zip(saved, raw[-1])) > 1e-3, \
        "the saved weights are the raw ones"
    # Exported: the TFLite file computes what the averaged weights compute.
    _, averaged_model = _restored_weights(config, latest)
    for variable, value in zip(averaged_model.weights, expected):
        variable.assign(value)
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    tflite = export.run(export.convert(final, "float32"), images)
    np.testing.assert_allclose(tflite, averaged_model.predict(images, verbose=0), atol=1e-5)


def _digest(output):
    return next(line for line in output.splitlines() if line.startswith("weights sha256"))


def test_distilled_student_with_every_ingredient_resumes_after_sigkill_to_the_same_weights(
        tmp_path, tiny_data, teacher_run):
    unbroken = run(train_command(tmp_path / "unbroken", tiny_data, "--teacher", str(teacher_run),
                                 *STUDENT_FLAGS))
    assert unbroken.returncode == 0, unbroken.stderr[-4000:]
    assert f"optimizer steps: {STEPS}" in unbroken.stdout
    assert f"distilling from {teacher_run}" in unbroken.stdout

    model_dir = tmp_path / "killed"
    command = train_command(model_dir, tiny_data, "--teacher", str(teacher_run),
                            "--checkpoint_every_steps", "3", *STUDENT_FLAGS)
    process = subprocess.Popen(command, cwd=REPO, env=environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    state_file = model_dir / "checkpoints" / "checkpoint"
    deadline = time.time() + 300
    while not state_file.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert state_file.exists(), "no checkpoint was written before the kill"
    saved_step = int(state_file.read_text().split('"')[1].rsplit("-", 1)[1])
    assert 0 < saved_step < STEPS
    resumed = run(command)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "resumed from" in resumed.stdout and f"optimizer steps: {STEPS}" in resumed.stdout
    # The published weights are the EMA's: equal digests mean the same averaged state.
    assert _digest(resumed.stdout) == _digest(unbroken.stdout)

    info = json.loads((model_dir / "run.json").read_text())
    teacher_info = json.loads((teacher_run / "run.json").read_text())
    assert info["teacher"]["name"] == str(teacher_run)
    assert info["teacher"]["classes"] == 10 and info["teacher"]["image_size"] == 40
    assert info["teacher"]["sha256"] == hashlib.sha256(
        (teacher_run / "final.keras").read_bytes()).hexdigest()
    assert teacher_info["model"]["se_ratio"] == 0.25 and info["model"]["kind"] == "anynet"
    for flag, value in (("train_image_size", 32), ("image_size", 36),
                        ("auto_augment", "trivialaugment_wide"), ("mixup_alpha", 0.2),
                        ("cutmix_alpha", 1.0), ("cutmix_probability", 0.5), ("ema_decay", 0.9),
                        ("distill_alpha", 0.7), ("distill_temperature", 2.0)):
        assert info[flag] == value, flag
    import regnet_keras
    final = regnet_keras.load_model(str(model_dir / "final.keras"))
    assert tuple(final.input_shape) == (None, 36, 36, 3)

    # Another teacher (or the same one changed) is another run: refused, the run kept.
    changed = tmp_path / "other_teacher"
    shutil.copytree(teacher_run, changed)
    again = run(train_command(model_dir, tiny_data, "--teacher", str(changed), *STUDENT_FLAGS))
    assert again.returncode != 0 and "holds another run (teacher:" in again.stderr


def test_a_teacher_of_another_class_count_is_refused_in_one_line(tmp_path, tiny_data):
    import regnet_keras
    teacher = regnet_keras.RegNet(TINY, include_top=True, weights=None,
                                  input_shape=(32, 32, 3), classes=3)
    path = tmp_path / "three_classes.weights.h5"
    regnet_keras.save_weights(teacher, str(path))
    result = run(train_command(tmp_path / "run", tiny_data, "--teacher", str(path)))
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert "predicts 3 classes and the data has 10" in message, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_teacher_run_of_other_class_names_is_refused(tmp_path, teacher_run):
    info = json.loads((teacher_run / "run.json").read_text())
    copy = tmp_path / "teacher"
    shutil.copytree(teacher_run, copy)
    info["class_names"] = list(reversed(info["class_names"]))
    (copy / "run.json").write_text(json.dumps(info))
    original = json.loads((teacher_run / "run.json").read_text())["class_names"]
    with pytest.raises(distillation_lib.TeacherError, match="would teach the wrong classes"):
        distillation_lib.resolve_teacher(distillation_lib.Distillation(teacher=str(copy)),
                                         original, 32)
    resolved = distillation_lib.resolve_teacher(
        distillation_lib.Distillation(teacher=str(teacher_run)), original, 36)
    assert resolved.image_size == 32  # the teacher run's own size
    assert os.path.samefile(resolved.pretrained.file, teacher_run / "final.keras")


def test_the_built_teacher_computes_the_teacher_runs_logits_and_drops_its_file_tensors(
        teacher_run):
    import regnet_keras
    class_names = json.loads((teacher_run / "run.json").read_text())["class_names"]
    teacher = distillation_lib.resolve_teacher(
        distillation_lib.Distillation(teacher=str(teacher_run)), class_names, 32)
    logits_model = distillation_lib.build_teacher(teacher, training.build_network)
    assert teacher.pretrained.tensors == {}  # the network holds them; a copy is not kept
    saved = regnet_keras.load_model(str(teacher_run / "final.keras"))
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    probabilities = saved.predict(images, verbose=0)
    logits = logits_model.predict(images, verbose=0)
    exponentials = np.exp(logits - logits.max(-1, keepdims=True))  # a softmax that cannot overflow
    np.testing.assert_allclose(exponentials / exponentials.sum(-1, keepdims=True),
                               probabilities, rtol=1e-4, atol=1e-6)
