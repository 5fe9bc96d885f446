"""Hostile .tflite files and metadata JSON against the Python readers (regnet_keras.lite.export,
image_preprocessing, training.evaluation): every one ends in the library's one-line error, read
with a size bound, in memory in proportion to the file. The fuzz harnesses' seeds replay here;
the Android core and the web page run the same mutations in their own test runners."""

import json
import os
import pathlib
import random

import numpy as np
import pytest

from fuzz import fuzz_tflite_file, fuzz_tflite_metadata
from regnet_keras.errors import InputError
from regnet_keras.lite import export
from regnet_keras.lite import image_preprocessing as ip
from regnet_keras.training import evaluation

GOLDEN_METADATA = os.path.join(os.path.dirname(__file__), "..", "android_demo", "core", "src",
                               "test", "resources", "goldens", "metadata")
HOSTILE_FILES = pathlib.Path(__file__).parent / "hostile_files"
GOLDEN_NAMES = ("float32_crop0875", "float32_imagenet_crop1", "float32_nonsquare",
                "uint8_pixels", "uint8_affine", "int8")


def _golden(name="uint8_affine") -> dict:
    with open(os.path.join(GOLDEN_METADATA, name + ".json"), encoding="utf-8") as f:
        return json.load(f)


def _refused(data: bytes, field: str) -> str:
    with pytest.raises(ip.MetadataError) as error:
        ip.parse_metadata(data)
    assert error.value.field == field, str(error.value)
    message = str(error.value)
    assert "\n" not in message and len(message) <= 400, message
    return message


def _with(record: dict, path, value) -> bytes:
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(record).encode()


# --- Defects found here (each was a traceback, not the library's error, or was accepted) ------

@pytest.mark.parametrize("text, field", [
    ('"format_version": 1e999', "format_version"),           # OverflowError: int(inf)
    ('"format_version": -1e999', "format_version"),
    ('"format_version": 1' + "0" * 400, "format_version"),   # OverflowError: isfinite(10**400)
    ('"format_version": 1' + "0" * 5000, "(file)"),          # ValueError: int digit limit
])
def test_non_finite_and_giant_integers_are_the_library_error(text, field):
    record = json.dumps(_golden()).replace('"format_version": 1', text)
    _refused(record.encode(), field)


def test_quantization_zero_point_beyond_float_is_refused():
    text = _with(_golden(), ["input", "quantization", "zero_point"], 10**400)
    _refused(text, "input.quantization.zero_point")


def test_nan_infinity_and_duplicate_keys_are_refused_as_the_android_core_does():
    text = json.dumps(_golden())
    _refused(text.replace('"crop_fraction": 1.0', '"crop_fraction": NaN').encode(), "(file)")
    _refused(text.replace('"crop_fraction": 1.0', '"crop_fraction": Infinity').encode(), "(file)")
    _refused(text.replace('"variant": ', '"variant": "a", "variant": ').encode(), "(file)")


def test_label_lists_and_labels_are_bounded():
    _refused(_with(_golden(), ["labels"], ["a"] * (ip.MAX_LABELS + 1)), "labels")
    message = _refused(_with(_golden(), ["labels"], ["a", "b" * (ip.MAX_LABEL_CHARACTERS + 1)]),
                       "labels")
    assert "entry 1 has 257 characters" in message


@pytest.mark.parametrize("side", [0, -1, ip.MAX_INPUT_SIDE + 1, 2**31, 10**12, 24.5, True])
def test_input_sides_are_bounded(side):
    _refused(_with(_golden(), ["input", "shape", 1], side), "input.shape")


def test_messages_quote_at_most_a_short_line_of_the_file():
    message = _refused(_with(_golden(), ["format"], "x\n" * 1_000_000), "format")
    assert len(message) < 200
    message = _refused(_with(_golden(), ["input", "layout"], ["NHWC"] * 100_000), "input.layout")
    assert len(message) < 200


def test_bad_utf8_deep_nesting_and_oversize_bytes_are_refused():
    _refused(b'{"format": "\xc3\x28"}', "(file)")
    _refused(b"[" * 100_000 + b"]" * 100_000, "(file)")
    _refused(b"[" * 66 + b"]" * 66, "(file)")
    _refused(b" " * (ip.MAX_METADATA_BYTES + 1), "(file)")


def test_read_metadata_bounds_the_file_and_names_it(tmp_path):
    model = tmp_path / "m.tflite"
    sidecar = tmp_path / "m.json"
    with open(sidecar, "wb") as f:
        f.truncate(ip.MAX_METADATA_BYTES + 1)  # sparse: refused from its size, never read
    with pytest.raises(ip.MetadataError, match=r"more than metadata ever needs|bytes, more than"):
        export.read_metadata(str(model))
    sidecar.unlink()
    os.mkfifo(sidecar)  # would block a plain open() forever
    with pytest.raises(ip.MetadataError, match="not a regular file"):
        export.read_metadata(str(model))
    sidecar.unlink()
    sidecar.write_bytes(b'{"format": ')
    with pytest.raises(ip.MetadataError, match=f"is not valid JSON .*in {sidecar}"):
        export.read_metadata(str(model))


# --- Mutations of valid metadata, as the Kotlin and JavaScript tests apply them -------------

_REPLACEMENTS = [None, True, "x", "", 0, -1, 0.5, 1.5, 255, 256, -129, 4097, 2147483648, 1e308,
                 -1e308, 5e-324, [], {}, ["a", "b"], [1, 24, 24, 3],
                 {"scale": 0.5, "zero_point": 0}, float("nan"), float("inf"), -float("inf"),
                 10**400, "x" * 257, "line\nbreak\x00"]


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


def _edited(value, path, replacement, delete=False):
    if not path:
        return replacement
    key, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if delete and not rest:
            del copy[key]
        else:
            copy[key] = _edited(value[key], rest, replacement, delete)
        return copy
    return [_edited(item, rest, replacement, delete) if i == key else item
            for i, item in enumerate(value)]


def _usable_or_refused(what: str, record) -> bool:
    """True when accepted (and then usable by every app-side function); False when refused."""
    try:
        ip.check_metadata(record)
    except ip.MetadataError as error:
        assert "\n" not in str(error) and len(str(error)) <= 400, f"{what}: {error}"
        return False
    _, height, width, _ = record["input"]["shape"]
    assert 1 <= min(height, width) and max(height, width) <= ip.MAX_INPUT_SIDE, what
    top = ip.classify_output(np.arange(len(record["labels"])), record)
    assert len(top) == min(5, len(record["labels"])), what
    if max(height, width) <= 64:
        picture = np.full((5, 7, 3), 255, np.uint8)
        picture[0, 0] = 0
        tensor = ip.prepare_image(picture, record)
        assert tensor.shape == (1, height, width, 3) and np.isfinite(tensor).all(), what
    return True


# An accepted record's numbers must stay finite through every app-side function.
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_every_field_mutation_is_usable_or_refused_in_one_line():
    mutants = accepted = 0
    for name in GOLDEN_NAMES:
        base = _golden(name)
        for path in list(_paths(base)):
            edits = [(repr(value)[:20], value, False) for value in _REPLACEMENTS]
            if path and isinstance(path[-1], str):
                edits.append(("delete", None, True))
            for label, value, delete in edits:
                accepted += _usable_or_refused(f"{name} {path} = {label}",
                                               _edited(base, path, value, delete))
                mutants += 1
    assert mutants > 5000 and 0 < accepted < mutants / 2


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_every_truncation_and_seeded_byte_flip_is_usable_or_refused():
    for name in ("uint8_affine", "float32_nonsquare"):
        data = json.dumps(_golden(name), indent=2).encode()
        random_source = random.Random(27)
        mutants = [data[:length] for length in range(len(data))]
        for _ in range(3000):
            mutant = bytearray(data)
            for _ in range(random_source.randint(1, 8)):
                mutant[random_source.randrange(len(mutant))] = random_source.randrange(256)
            mutants.append(bytes(mutant))
        for index, mutant in enumerate(mutants):
            try:
                record = ip.parse_metadata(mutant)
            except ip.MetadataError as error:
                assert "\n" not in str(error), f"{name} mutant {index}: {error}"
                continue
            assert _usable_or_refused(f"{name} mutant {index}", record)


def test_metadata_harness_seeds_replay_with_only_the_library_error(tmp_path):
    fuzz_tflite_metadata.write_seeds(str(tmp_path))
    outcomes = []
    for name in sorted(os.listdir(tmp_path)):
        try:
            fuzz_tflite_metadata.test_one_input((tmp_path / name).read_bytes())
            outcomes.append(True)
        except InputError:
            outcomes.append(False)
    assert len(outcomes) >= 40 and any(outcomes) and not all(outcomes)


# --- .tflite files -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tflite_seeds")
    fuzz_tflite_file.write_seeds(str(directory))
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


def _flatbuffer(content: bytes):
    from tensorflow.lite.tools import flatbuffer_utils
    return flatbuffer_utils.read_model_from_bytearray(bytearray(content))


def _content(model) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def test_file_harness_seeds_replay_with_only_the_library_error(seeds):
    for name, content in seeds.items():
        if "truncated" in name:
            with pytest.raises(export.TFLiteFileError, match="not a valid TFLite model"):
                fuzz_tflite_file.test_one_input(content)
        else:
            fuzz_tflite_file.test_one_input(content)


def test_a_kernel_refusing_its_parameters_is_the_library_error(seeds):
    # Found by byte flips: allocate_tensors' RuntimeError escaped export.interpreter.
    from tensorflow.lite.python import schema_py_generated as schema
    model = _flatbuffer(seeds["tiny_float32.tflite"])
    codes = [code.builtinCode or code.deprecatedBuiltinCode for code in model.operatorCodes]
    convolution = next(op for op in model.subgraphs[0].operators
                       if codes[op.opcodeIndex] == schema.BuiltinOperator.CONV_2D)
    convolution.builtinOptions.strideW = 0
    with pytest.raises(export.TFLiteFileError, match="not a valid TFLite model .*stride"):
        export.interpreter(_content(model))


def test_a_tensor_name_that_is_not_utf8_is_the_library_error(seeds):
    # Found by byte flips: UnicodeDecodeError at the first get_input_details().
    model = _flatbuffer(seeds["tiny_float32.tflite"])
    subgraph = model.subgraphs[0]
    subgraph.tensors[subgraph.inputs[0]].name = b"\xff\xfe"
    with pytest.raises(export.TFLiteFileError, match="not a valid TFLite model"):
        export.interpreter(_content(model))


def test_tensors_declaring_more_than_the_file_allows_are_refused(seeds):
    # An 8 KB file whose activations are 3000 x 3000 made LiteRT allocate 1.1 GB.
    model = _flatbuffer(seeds["tiny_float32.tflite"])
    for tensor in model.subgraphs[0].tensors:
        if model.buffers[tensor.buffer].data is None and len(tensor.shape) == 4:
            tensor.shape[1] = tensor.shape[2] = 30_000
    with pytest.raises(export.TFLiteFileError, match="tensors declare .* more than a file of"):
        export.interpreter(_content(model))


def test_a_pad_xnnpack_would_size_at_2gb_is_refused_without_allocating_it():
    # Found by fuzz_tflite_file (its file kept): XNNPACK sized this 10 KB file's PAD without the
    # built-in kernel's overflow check and allocated 2 GB.
    import resource
    content = (HOSTILE_FILES / "tflite_pad_xnnpack_2gb.tflite").read_bytes()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(export.TFLiteFileError, match="not a valid TFLite model .*PAD"):
        export.interpreter(content)
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert growth_mb < 256, growth_mb


def test_a_zero_point_outside_its_type_is_refused_before_xnnpack_crashes_on_it():
    # Found by fuzz_tflite_file (its file kept): one byte of the int8 seed made the uint8 input's
    # zero point 3145728, and XNNPACK's allocate_tensors died of a segmentation fault.
    content = (HOSTILE_FILES / "tflite_zero_point_xnnpack_segfault.tflite").read_bytes()
    with pytest.raises(export.TFLiteFileError, match="zero point outside the uint8 range"):
        export.interpreter(content)


def test_a_file_litert_aborts_on_is_refused_and_this_process_goes_on(tmp_path):
    # Found by fuzz_tflite_file (its file kept): one flipped bit, and LiteRT's allocate_tensors
    # aborts the process, with or without XNNPACK. Opened by the tools, it is the library's
    # error naming the file.
    path = tmp_path / "abort.tflite"
    path.write_bytes((HOSTILE_FILES / "tflite_allocation_abort.tflite").read_bytes())
    with pytest.raises(export.TFLiteFileError,
                       match=f"^{path}: not a valid TFLite model: LiteRT ended .*SIGABRT"):
        evaluation._load_predictor(str(path))


def test_the_child_process_passes_a_good_file_and_relays_a_refusal(seeds):
    export.check_in_child_process(seeds["tiny_int8.tflite"])
    with pytest.raises(export.TFLiteFileError, match="zero point outside the uint8 range"):
        export.check_in_child_process(
            (HOSTILE_FILES / "tflite_zero_point_xnnpack_segfault.tflite").read_bytes())


def test_read_tflite_bounds_and_identifies_the_file(tmp_path, seeds):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"")
    with pytest.raises(export.TFLiteFileError, match="no TFL3 identifier"):
        export.read_tflite(str(path))
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(export.TFLiteFileError, match="no TFL3 identifier"):
        export.read_tflite(str(path))
    path.unlink()
    with open(path, "wb") as f:
        f.truncate(export.MAX_TFLITE_BYTES + 1)  # sparse
    with pytest.raises(export.TFLiteFileError, match="more than a .tflite file can be"):
        export.read_tflite(str(path))
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(export.TFLiteFileError, match="not a regular file"):
        export.read_tflite(str(path))
    path.unlink()
    path.write_bytes(seeds["tiny_int8.tflite"])
    assert export.read_tflite(str(path)) == seeds["tiny_int8.tflite"]


def test_evaluation_checks_the_metadata_against_the_model(tmp_path, seeds):
    path = tmp_path / "tiny.tflite"
    record = export.metadata(seeds["tiny_int8.tflite"], model_name="tiny", variant="int8",
                             labels=["a", "b", "c"], preprocessing="imagenet",
                             crop_fraction=1.0, output_activation="softmax")
    export.write(seeds["tiny_int8.tflite"], record, str(path))
    predict, size, classes = evaluation._load_predictor(str(path))
    assert (size, classes) == (32, 3)
    assert predict(np.zeros((1, 32, 32, 3), np.float32)).shape == (1, 3)
    changes = {"labels": (["labels"], ["a", "b"]),
               "input.shape": (["input", "shape"], [1, 24, 24, 3]),
               "input.dtype": (["input", "dtype"], "int8"),
               "input.quantization": (["input", "quantization", "zero_point"],
                                      record["input"]["quantization"]["zero_point"] ^ 1)}
    for field, (where, value) in changes.items():
        (tmp_path / "tiny.json").write_bytes(_with(json.loads(json.dumps(record)), where, value))
        with pytest.raises(ip.MetadataError) as error:
            evaluation._load_predictor(str(path))
        assert error.value.field == field, str(error.value)


def test_a_model_that_is_not_a_classifier_is_the_library_error(tmp_path, seeds):
    model = _flatbuffer(seeds["tiny_float32.tflite"])
    subgraph = model.subgraphs[0]
    subgraph.outputs = list(subgraph.outputs) + [subgraph.inputs[0]]
    path = tmp_path / "two_outputs.tflite"
    path.write_bytes(_content(model))
    with pytest.raises(export.TFLiteFileError, match=f"^{path}: the model has 1 inputs and 2"):
        evaluation._load_predictor(str(path))
