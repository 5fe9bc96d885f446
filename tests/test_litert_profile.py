"""Dynamic-range files with their PADs fused, seen through LiteRT's op profiler."""

import keras
import numpy as np
import pytest

from regnet_keras import AnyNetConfig, RegNet
from regnet_keras.lite import dynamic_range, export, op_profile
# Stride-2 stages whose grouped kernels (3x3x8x16, 3x3x8x32) are large enough for the converter
# to quantize (1,024 weights or more).
from tests.test_export import SHAPE, TINY


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return RegNet(TINY, input_shape=SHAPE, classes=4)


@pytest.fixture(scope="module")
def files(model):
    # The converter's own dynamic-range file, before regnet_keras edits it.
    return {"converter": export.tflite_converter(model, "dynamic").convert(),
            "dynamic": export.convert(model, "dynamic"),
            "float32": export.convert(model, "float32")}


def _convolutions(content):
    """[(reads a PAD, kernel tensor)] for every CONV_2D of a file."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    codes = [code.builtinCode or code.deprecatedBuiltinCode for code in model.operatorCodes]
    graph = model.subgraphs[0]
    padded = {o for op in graph.operators if codes[op.opcodeIndex] == schema.BuiltinOperator.PAD
              for o in op.outputs}
    found = []
    for op in graph.operators:
        if codes[op.opcodeIndex] == schema.BuiltinOperator.CONV_2D:
            kernel = graph.tensors[op.inputs[1]]
            data = bytes(model.buffers[kernel.buffer].data)
            found.append((op.inputs[0] in padded, kernel, data))
    return found


def test_kernels_after_a_pad_are_the_converters_int8_values_times_their_scales(files):
    from tensorflow.lite.python import schema_py_generated as schema
    before, after = _convolutions(files["converter"]), _convolutions(files["dynamic"])
    assert len(before) == len(after)
    floated = 0
    for (padded, old, old_data), (_, new, new_data) in zip(before, after):
        if not padded or old.type != schema.TensorType.INT8:
            assert (new.type, new_data) == (old.type, old_data)  # untouched
            continue
        values = np.frombuffer(old_data, np.int8).reshape(old.shape).astype(np.float32)
        scales = np.asarray(old.quantization.scale).reshape(-1, 1, 1, 1)
        assert new.type == schema.TensorType.FLOAT32 and new.quantization is None
        np.testing.assert_array_equal(np.frombuffer(new_data, np.float32).reshape(new.shape),
                                      (values * scales).astype(np.float32))
        floated += 1
    assert floated == 2  # the two stages' first grouped convolutions


def test_wide_groups_keep_their_int8_kernels():
    # 24 channels per group: the float convolution would cost more than the PAD it saves.
    wide = AnyNetConfig(stage_widths=(24, 48), stage_depths=(1, 1), stage_group_widths=(8, 24),
                        stage_strides=(2, 2), stage_bottlenecks=(1.0, 1.0), stem_width=16)
    keras.utils.set_random_seed(0)
    content = export.convert(RegNet(wide, input_shape=SHAPE, classes=4), "dynamic")
    from tensorflow.lite.python import schema_py_generated as schema
    padded = {kernel.shape[3]: kernel.type for reads_pad, kernel, _ in _convolutions(content)
              if reads_pad and kernel.shape[3] > 3}  # the stem's kernel is never quantized
    assert dynamic_range.MAX_FLOATED_GROUP_WIDTH == 16
    assert padded == {8: schema.TensorType.FLOAT32, 24: schema.TensorType.INT8}


def test_dynamic_file_still_computes_the_model(model, files):
    images = np.random.default_rng(1).uniform(0, 255, (8, *SHAPE)).astype("float32")
    expected = model.predict(images, verbose=0)
    for name in ("converter", "dynamic"):
        outputs = export.run(files[name], images)
        assert np.abs(outputs - expected).max() < 0.05, name
        assert (outputs.argmax(1) == expected.argmax(1)).mean() >= 0.75, name


def test_profiler_sees_the_pad_fused_only_after_the_edit(files):
    runs = 6
    profiles = op_profile.profile_interleaved(files, threads=1, runs=runs, warmup=1, blocks=2)
    types = {name: op_profile.by_node_type(nodes) for name, nodes in profiles.items()}
    pads = export.op_counts(files["converter"])["PAD"]
    assert pads == 3  # the stem's and the two stages' stride-2 convolutions
    # XNNPACK fuses the stem's PAD into its float convolution (a kernel too small to
    # quantize) in both files; the converter's file keeps the stages' two as copies.
    assert types["converter"]["Constant Pad (ND, X32)"][0] == 2
    for name in ("dynamic", "float32"):
        assert not any("Pad" in kind for kind in types[name]), name
    for name, nodes in profiles.items():
        assert all(node.calls == runs for node in nodes), name
        assert sum(node.avg_ms for node in nodes) > 0


def test_profiled_float_file_has_a_node_per_convolution(files):
    nodes = op_profile.profile_interleaved({"float32": files["float32"]}, threads=1, runs=2,
                                           warmup=1, blocks=1)["float32"]
    counts = op_profile.by_node_type(nodes)
    # 1x1 stride-1 convolutions (the SE blocks' too) run as XNNPACK fully connected nodes, the
    # others and the input normalisation's depthwise convolution as convolution nodes.
    gemms = sum(count for kind, (count, _) in counts.items()
                if kind.startswith(("Convolution", "Fully Connected")))
    ops = export.op_counts(files["float32"])
    assert gemms == ops["CONV_2D"] + ops["DEPTHWISE_CONV_2D"] + ops["FULLY_CONNECTED"]
    assert counts["Convolution (NHWC, F32) DWConv"][0] == ops["DEPTHWISE_CONV_2D"] == 1


def test_missing_profiler_is_named(monkeypatch):
    import ctypes
    monkeypatch.setattr(ctypes, "CDLL", lambda *_: (_ for _ in ()).throw(OSError("no library")))
    with pytest.raises(op_profile.ProfilerUnavailableError, match="install ai-edge-litert"):
        op_profile.ProfiledModel("model.tflite")
