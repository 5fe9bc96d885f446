"""Fuzzes the loading of .keras model files (regnet_keras.saving.load_model)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402  (imported under the instrumentation hook: its saving code is covered)

from regnet_keras import saving  # noqa: E402
from fuzz.input_file import InputFile  # noqa: E402

INSTRUMENTED_MODULES = ("regnet_keras.saving", "regnet_keras.hdf5_files", "keras.src.saving",
                        "zipfile")

_INPUT = InputFile("input.keras")


def test_one_input(data: bytes) -> None:
    try:
        saving.load_model(_INPUT.holding(data))
    finally:
        keras.backend.clear_session()


def write_seeds(directory: str) -> None:
    import regnet_keras
    from regnet_keras.design_space import AnyNetConfig
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="logits")])
    dense.save(os.path.join(directory, "dense.keras"))
    # The smallest RegNet: one block of one stage, so that mutations stay small.
    design = AnyNetConfig(stage_widths=(8,), stage_depths=(1,), stage_group_widths=(8,),
                          stage_strides=(2,), stage_bottlenecks=(1.0,), stem_width=8)
    tiny = regnet_keras.RegNet(design, input_shape=(32, 32, 3), classes=2, name="tiny_regnet")
    tiny.save(os.path.join(directory, "tiny_regnet.keras"))
    # Compiled outside this instrumented module: Keras marshals a Lambda's code, and
    # instrumented code objects do not marshal.
    doubling = eval("lambda x: x * 2")  # noqa: S307 - a constant expression
    lambda_model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(doubling)])
    lambda_model.save(os.path.join(directory, "lambda.keras"))
