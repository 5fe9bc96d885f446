"""Fuzzes the reading of a run directory: run.json (regnet_keras.training.run_file.read_run) and the
run lock's holder record (regnet_keras.training.run_lock.check_free's refusal)."""

import json
import os
import tempfile

from regnet_keras.training import run_file, run_lock

INSTRUMENTED_MODULES = ("regnet_keras.training.run_file", "regnet_keras.training.run_lock", "json")

_RUN_DIR = tempfile.mkdtemp(prefix="fuzz_run_json_")


def test_one_input(data: bytes) -> None:
    with open(os.path.join(_RUN_DIR, run_file.RUN_FILE), "wb") as file:
        file.write(data)
    with open(os.path.join(_RUN_DIR, run_lock.LOCK_FILE), "wb") as file:
        file.write(data)
    run_file.read_run(_RUN_DIR)
    run_lock._holder_description(os.path.join(_RUN_DIR, run_lock.LOCK_FILE))
    run_lock.check_free(_RUN_DIR)


def write_seeds(directory: str) -> None:
    run = {"model": "RegNetX002", "dataset": "image_folder", "data_dir": "/data/flowers",
           "image_size": 64, "num_classes": 3, "class_names": ["a", "b", "c"],
           "preprocessing": "imagenet", "batch_size": 32, "epochs": 6, "seed": 0,
           "weights": None, "freeze_epochs": 0.5, "freeze_bn": False,
           "finished": True, "history": {"accuracy": [0.5, 0.75]}}
    seeds = {"run.json": json.dumps(run), "minimal.json": "{}",
             "holder.json": json.dumps({"pid": 12, "host": "h", "command": "train",
                                        "started": "2026-01-01 00:00:00"}),
             "wrong_types.json": json.dumps(dict(run, image_size="64", freeze_bn=1)),
             "nested.json": "[" * 64 + "]" * 64}
    for name, text in seeds.items():
        with open(os.path.join(directory, name), "w") as file:
            file.write(text)
