"""A run directory from elsewhere cannot hang, exhaust or fool the trainer: run.json that is
huge, not JSON, deeply nested, of the wrong types or not a regular file is a RunDirectoryError
(an InputError) naming the file, missing fields keep their defaults, and a lock file that is a
symbolic link, a FIFO or a directory is refused without following or truncating it."""

import json
import os

import pytest

from regnet_keras.errors import InputError
from regnet_keras.training import loop, run_file, run_lock

RUN = {"model": "RegNetX002", "dataset": "image_folder", "data_dir": "/data", "image_size": 64,
       "num_classes": 3, "class_names": ["a", "b", "c"], "preprocessing": "imagenet",
       "batch_size": 32, "epochs": 6, "seed": 0, "weights": None, "freeze_epochs": 0.5,
       "freeze_bn": False}


def write_run(directory, content):
    path = directory / loop.RUN_FILE
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return path


def refused(directory, *patterns):
    with pytest.raises(loop.RunDirectoryError) as raised:
        loop.read_run(str(directory))
    message = str(raised.value)
    assert isinstance(raised.value, InputError) and "\n" not in message
    assert loop.RUN_FILE in message
    for pattern in patterns:
        assert pattern in message, message


def test_a_valid_run_and_one_missing_fields_read_back(tmp_path):
    write_run(tmp_path, RUN)
    assert loop.read_run(str(tmp_path)) == RUN
    write_run(tmp_path, {"model": "RegNetX002"})
    assert loop.read_run(str(tmp_path)) == {"model": "RegNetX002"}
    assert loop.read_run(str(tmp_path / "absent")) is None


@pytest.mark.parametrize("content,expected", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b"[1, 2]", "JSON list, not an object"),
    (dict(RUN, image_size="64"), "image_size of type str"),
    (dict(RUN, num_classes=True), "num_classes of type bool"),
    (dict(RUN, freeze_bn=1), "freeze_bn of type int"),
    (dict(RUN, epochs=1e308), "epochs of type float"),
    (dict(RUN, class_names=["a", 3]), "class_names that are not all strings"),
    (dict(RUN, class_names="abc"), "class_names of type str"),
    (dict(RUN, ema_decay="0.9"), "ema_decay of type str"),
    (dict(RUN, mixup_alpha=True), "mixup_alpha of type bool"),
    (dict(RUN, teacher="runs/big"), "teacher of type str"),
    (dict(RUN, auto_augment=["randaugment"]), "auto_augment of type list"),
])
def test_run_files_of_the_wrong_kind_are_refused(tmp_path, content, expected):
    write_run(tmp_path, content)
    refused(tmp_path, expected)


def test_a_huge_run_file_is_refused_without_reading_it(tmp_path, monkeypatch):
    monkeypatch.setattr(run_file, "MAX_RUN_FILE_BYTES", 1024)
    write_run(tmp_path, dict(RUN, class_names=["x" * 100] * 100))
    refused(tmp_path, "larger than 1024 bytes")


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_a_run_file_that_is_not_a_regular_file_is_refused_at_once(tmp_path, kind):
    path = tmp_path / loop.RUN_FILE
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block for ever
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")  # an endless file
    refused(tmp_path, "not a regular file")


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "precious.txt"
    path.write_text("keep me")
    return path


@pytest.mark.parametrize("plant", ["symlink", "fifo", "directory"])
def test_a_lock_file_that_is_not_a_regular_file_is_refused_untouched(tmp_path, victim, plant):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    lock = run_dir / run_lock.LOCK_FILE
    if plant == "symlink":
        lock.symlink_to(victim)  # acquiring used to truncate the link's target
    elif plant == "fifo":
        os.mkfifo(lock)
    else:
        lock.mkdir()
    for operation in (run_lock.check_free, run_lock.acquire):
        with pytest.raises(run_lock.RunDirectoryInUseError) as raised:
            operation(str(run_dir))
        assert isinstance(raised.value, InputError) and "\n" not in str(raised.value)
    assert victim.read_text() == "keep me"


@pytest.mark.parametrize("record", [
    b"x" * 100_000, b"[" * 5000, b'["pid", "host"]', b'{"pid": 1}', b"\xff\xfe",
    json.dumps({"pid": 1, "host": "h" * 10_000, "command": "c"}).encode()])
def test_a_lock_holder_record_of_any_shape_is_described_in_one_short_line(tmp_path, record):
    lock = tmp_path / run_lock.LOCK_FILE
    lock.write_bytes(record)
    description = run_lock._holder_description(str(lock))
    assert "\n" not in description and len(description) <= 300


def test_the_lock_still_excludes_a_second_holder_and_names_it(tmp_path):
    import subprocess
    import sys
    from tests.conftest import REPO
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from regnet_keras.training import run_lock; "
         "run_lock.acquire(sys.argv[1]); print('held', flush=True); time.sleep(60)",
         str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(run_lock.RunDirectoryInUseError, match=f"pid {holder.pid}"):
            run_lock.acquire(str(tmp_path))
    finally:
        holder.kill()
        holder.wait()
    run_lock.acquire(str(tmp_path))
    run_lock.release(str(tmp_path))
