"""A run directory's run.json, read as a file from anyone: a run directory can come from another
machine or person, so the file is bounded, must be a regular file holding a JSON object, and the
fields that decide whether a run resumes must have their types. Every refusal is one
RunDirectoryError line naming the file and the way out.
"""

from __future__ import annotations

import json
import os

from regnet_keras.errors import InputError

RUN_FILE = "run.json"


class RunDirectoryError(InputError, ValueError):
    """The model directory holds another run, or a damaged one; nothing was written."""


# A run.json holds a run's identity and results: kilobytes, or a few megabytes with the class
# names of a large dataset. The JSON types of the fields that decide whether a run resumes.
MAX_RUN_FILE_BYTES = 16 << 20
_RUN_FIELD_TYPES = {"model": (str, dict, type(None)), "dataset": (str,),
                    "data_dir": (str, type(None)), "image_size": (int,), "num_classes": (int,),
                    "class_names": (list,), "preprocessing": (str, type(None)),
                    "batch_size": (int,), "epochs": (int,), "seed": (int,),
                    "weights": (dict, str, type(None)), "freeze_epochs": (int, float),
                    "freeze_bn": (bool,), "train_image_size": (int, type(None)),
                    "auto_augment": (str,), "mixup_alpha": (int, float),
                    "cutmix_alpha": (int, float), "cutmix_probability": (int, float),
                    "ema_decay": (int, float), "teacher": (dict, type(None)),
                    "distill_alpha": (int, float), "distill_temperature": (int, float)}


def read_run(model_dir) -> dict | None:
    """The run.json of `model_dir` (None if there is none), refused with RunDirectoryError when
    it is not a regular file of at most MAX_RUN_FILE_BYTES holding a JSON object whose identity
    fields have their types."""
    path = os.path.join(model_dir, RUN_FILE)
    if not os.path.lexists(path):
        return None

    def refuse(problem):
        raise RunDirectoryError(f"{path} {problem}; it was damaged or edited. Restore it, or "
                                "pass another --model_dir.")

    if not os.path.isfile(path):
        refuse("is not a regular file")
    with open(path, "rb") as file:
        text = file.read(MAX_RUN_FILE_BYTES + 1)
    if len(text) > MAX_RUN_FILE_BYTES:
        refuse(f"is larger than {MAX_RUN_FILE_BYTES} bytes")
    try:
        run = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        refuse(f"is not valid JSON ({str(error)[:100]})")
    if not isinstance(run, dict):
        refuse(f"holds a JSON {type(run).__name__}, not an object")
    for key, types in _RUN_FIELD_TYPES.items():
        value = run.get(key)
        if key in run and not (isinstance(value, types) and
                               (bool not in types) == (type(value) is not bool)):
            refuse(f"has {key} of type {type(value).__name__}, not "
                   f"{' or '.join(t.__name__ for t in types)}")
    if "class_names" in run and not all(isinstance(name, str) for name in run["class_names"]):
        refuse("has class_names that are not all strings")
    return run
