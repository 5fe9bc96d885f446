"""Fuzz harness: a .tflite file as the Python tools open it (regnet_keras.training.evaluation:
bounded read, a first load and run in a child process, the LiteRT interpreter, classifier
checks, one inference).

LiteRT's C++ FlatBuffer verifier and kernels are the parser; libFuzzer sees only the Python
side's coverage, so this harness checks that whatever LiteRT refuses or dies of, at load,
allocation or run time, reaches the user as the library's one-line error, and that no file
crashes this process or claims memory beyond the tensor bound.
Each execution starts a child process: expect a few executions per second.
"""

import os
import tempfile

import numpy as np

from regnet_keras.lite import export

INSTRUMENTED_MODULES = ("regnet_keras.lite.export", "ai_edge_litert.interpreter")

_DIRECTORY = tempfile.mkdtemp(prefix="fuzz_tflite_file_")
_MODEL_PATH = os.path.join(_DIRECTORY, "model.tflite")
# The library lets a file's activations claim up to 2 GiB (export.MAX_ACTIVATION_BYTES), which a
# legal large model may need; here the same check runs with a lower bound, so that the
# campaign's memory limit measures the reader rather than legal models, and each execution
# stays fast.
_ACTIVATION_BYTES = 64 * 1024 * 1024


def test_one_input(data: bytes) -> None:
    with open(_MODEL_PATH, "wb") as file:
        file.write(data)
    content = export.read_tflite(_MODEL_PATH)
    export.check_in_child_process(content, max_activation_bytes=_ACTIVATION_BYTES)
    runtime = export.interpreter(content, num_threads=1, max_activation_bytes=_ACTIVATION_BYTES)
    export.check_classifier(runtime)
    _, height, width, _ = runtime.get_input_details()[0]["shape"]
    scores = export.run(runtime, np.full((1, height, width, 3), 128.0, np.float32))
    assert scores.shape == (1, int(runtime.get_output_details()[0]["shape"][-1])), scores.shape


def write_seeds(directory: str) -> None:
    """A tiny RegNet converted by the library's converter, float32 and int8, whole and cut."""
    import keras

    from regnet_keras import AnyNetConfig, RegNet
    os.makedirs(directory, exist_ok=True)
    config = AnyNetConfig(stage_widths=(8,), stage_depths=(1,), stage_group_widths=(8,),
                          stage_strides=(2,), stage_bottlenecks=(1.0,), se_ratio=0.25,
                          stem_width=8)
    keras.utils.set_random_seed(0)
    model = RegNet(config, input_shape=(32, 32, 3), classes=3)
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    for variant, input_type in (("float32", "float32"), ("int8", "uint8")):
        content = export.convert(model, variant, representative_images=images,
                                 input_type=input_type)
        with open(os.path.join(directory, f"tiny_{variant}.tflite"), "wb") as file:
            file.write(content)
        with open(os.path.join(directory, f"tiny_{variant}_truncated.tflite"), "wb") as file:
            file.write(content[:len(content) // 2])
