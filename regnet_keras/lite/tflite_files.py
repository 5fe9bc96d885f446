"""Opening .tflite files and their metadata from users: bounded reads, LiteRT's parser kept
from taking the process down or the machine's memory, and the checks that a file is a classifier
its metadata describes.

Every file is treated as crafted. LiteRT's C++ is not hardened against such files (fuzzing made it
abort, segfault and allocate 2 GB for a 10 KB file), so `check_in_child_process` loads and runs a
file once in a child process first, and `interpreter` sizes every tensor with the built-in kernels,
bounds the memory they take and checks quantization parameters before XNNPACK sees the file.
Every refusal is a TFLiteFileError (or the metadata's MetadataError) of one line naming the
problem and the way out; docs/SECURITY.md says what is guaranteed and how it is tested.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys

import numpy as np

from regnet_keras.errors import InputError
from regnet_keras.lite import image_preprocessing

# The tensor types a classifier file takes and gives (what apps feed and read).
IO_TYPES = ("float32", "uint8", "int8")


class TFLiteFileError(InputError, ValueError):
    """Bytes that the LiteRT runtime cannot load as a model."""


# FlatBuffers address with 32-bit offsets: no .tflite file is larger.
MAX_TFLITE_BYTES = 2**31 - 1
TFLITE_IDENTIFIER = b"TFL3"
# What a file may make the runtime allocate for its tensors, summed as declared: its constants
# (at most 4 bytes per byte of the file, int8 weights dequantized to float32) and activations
# up to this bound. RegNetY320's float32 activations add up to 313 MiB at 224 pixels; a few
# bytes of a crafted file could otherwise claim every byte of the machine.
MAX_ACTIVATION_BYTES = 2 * 1024**3
# Runtime messages quoted in errors are cut here (LiteRT's run over several lines).
QUOTED_CHARACTERS = 200


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line if len(line) <= QUOTED_CHARACTERS else line[:QUOTED_CHARACTERS] + "..."


def _read_bounded(path: str, limit: int, error_type, what: str) -> bytes:
    """A regular file's bytes, refused above `limit` before any is read."""
    try:
        # Non-blocking, so that opening a FIFO returns at once (and is then refused).
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
            status = os.fstat(file.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise error_type(f"{path} is not a regular file; pass the {what} itself.")
            if status.st_size > limit:
                raise error_type(f"{path} is {status.st_size} bytes, more than a {what} can be "
                                 f"({limit}); pass the {what} itself.")
            # Its size and one byte more: a buffered read allocates all it is asked for.
            data = file.read(status.st_size + 1)
    except OSError as error:
        raise error_type(f"{path} cannot be read ({error.strerror or error}); check the path "
                         "and its permissions.") from None
    if len(data) > status.st_size:  # grew while being read: read it once it is complete
        raise error_type(f"{path} changed while it was read; read it again once it is written.")
    return data


def read_tflite(path: str) -> bytes:
    """A .tflite file's bytes, size bounded and its FlatBuffer identifier checked."""
    content = _read_bounded(path, MAX_TFLITE_BYTES, TFLiteFileError, ".tflite file")
    if content[4:8] != TFLITE_IDENTIFIER:
        raise TFLiteFileError(f"{path} is not a TFLite model (no {TFLITE_IDENTIFIER.decode()} "
                              "identifier): convert it again with python -m tools.convert.")
    return content


def _tensor_bytes(runtime) -> int:
    """Bytes of every tensor at its current shape (declared before allocation, sized after)."""
    total = 0
    for tensor in runtime.get_tensor_details():
        count = 1
        for dimension in tensor["shape"]:
            count *= max(int(dimension), 0)
        total += count * np.dtype(tensor["dtype"]).itemsize
    return total


def _check_tensor_bytes(runtime, model_content: bytes, when: str,
                        max_activation_bytes: int) -> None:
    tensor_bytes, allowed = _tensor_bytes(runtime), 4 * len(model_content) + max_activation_bytes
    if tensor_bytes > allowed:
        raise TFLiteFileError(f"the model's tensors {when} {tensor_bytes} bytes, more than a "
                              f"file of {len(model_content)} bytes may ({allowed}); convert it "
                              "again with python -m tools.convert.")


def _check_quantization(runtime) -> None:
    """Every quantized tensor's parameters are ones its kernels can take: finite non-negative
    scales, zero points inside the tensor type's range, one pair per channel along a dimension
    the tensor has. XNNPACK takes them on trust (a zero point of 3145728 on a uint8 input
    crashed it)."""
    for tensor in runtime.get_tensor_details():
        parameters = tensor["quantization_parameters"]
        scales, zero_points = parameters["scales"], parameters["zero_points"]
        if len(scales) == 0 and len(zero_points) == 0:
            continue
        shape, dimension = tensor["shape"], int(parameters["quantized_dimension"])
        problem = None
        if not np.all(np.isfinite(scales)) or np.any(scales < 0):
            problem = "a scale that is not a finite non-negative number"
        elif len(zero_points) != len(scales):
            problem = f"{len(scales)} scales but {len(zero_points)} zero points"
        elif len(scales) > 1 and not (0 <= dimension < len(shape)
                                      and len(scales) == shape[dimension]):
            problem = f"{len(scales)} scales along dimension {dimension} of shape {list(shape)}"
        elif np.issubdtype(tensor["dtype"], np.integer):
            info = np.iinfo(tensor["dtype"])
            if np.any(zero_points < info.min) or np.any(zero_points > info.max):
                problem = f"a zero point outside the {np.dtype(tensor['dtype']).name} range"
        if problem is not None:
            raise TFLiteFileError(f"the model's tensor {tensor['name'][:60]!r} has {problem}; "
                                  "convert it again with python -m tools.convert.")


def interpreter(model_content: bytes, num_threads: int = 2, xnnpack: bool = True,
                max_activation_bytes: int = MAX_ACTIVATION_BYTES):
    """A LiteRT interpreter, tensors allocated; with XNNPACK (what phones' CPUs run) unless told
    otherwise. LiteRT verifies the FlatBuffer as it loads it and each op's parameters as its
    built-in kernels size the op's output; whatever it refuses, and tensors beyond what the
    file's size allows (its constants, and `max_activation_bytes` more), raise TFLiteFileError.

    The built-in kernels size every tensor first, without XNNPACK: the delegate sizes some ops
    without their checks (a PAD whose paddings overflow made it allocate 2 GB for a 10 KB
    file) and trusts quantization parameters, so it only gets a file whose tensors have been
    sized and bounded and whose quantization has been checked.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    try:
        runtime = Interpreter(
            model_content=model_content, num_threads=num_threads,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        _check_tensor_bytes(runtime, model_content, "declare", max_activation_bytes)
        runtime.allocate_tensors()
        _check_tensor_bytes(runtime, model_content, "take", max_activation_bytes)
        _check_quantization(runtime)
        if xnnpack:
            del runtime
            runtime = Interpreter(model_content=model_content, num_threads=num_threads,
                                  experimental_op_resolver_type=OpResolverType.AUTO)
            runtime.allocate_tensors()
        # Tensor names decode here: a name that is not UTF-8 fails now, not at first use.
        runtime.get_input_details(), runtime.get_output_details()
    except (ValueError, RuntimeError) as error:  # LiteRT's words for a bad buffer or graph
        if isinstance(error, TFLiteFileError):
            raise
        raise TFLiteFileError(f"not a valid TFLite model ({_first_line(error)}): the file is "
                              "truncated or not a .tflite; convert it again with python -m "
                              "tools.convert.") from None
    return runtime


# A child process that checks a file reports the file's refusal with this exit status.
_REFUSED_STATUS = 3
# Seconds a child process may take to load and run a file once.
CHILD_CHECK_TIMEOUT_S = 600


def _check_standard_input(max_activation_bytes: int) -> None:
    """The child's side of check_in_child_process: the file's bytes come on standard input."""
    content = sys.stdin.buffer.read()
    try:
        runtime = interpreter(content, num_threads=1, max_activation_bytes=max_activation_bytes)
        for details in runtime.get_input_details():
            runtime.set_tensor(details["index"], np.zeros(details["shape"], details["dtype"]))
        runtime.invoke()
    except (ValueError, RuntimeError) as error:  # TFLiteFileError, or LiteRT's own at invoke
        message = str(error) if isinstance(error, TFLiteFileError) else (
            f"not a valid TFLite model: it fails to run ({_first_line(error)}); convert it "
            "again with python -m tools.convert.")
        sys.stdout.write(message)
        sys.exit(_REFUSED_STATUS)


def check_in_child_process(model_content: bytes,
                           max_activation_bytes: int = MAX_ACTIVATION_BYTES) -> None:
    """Loads, allocates and runs the file once in a child process first, as `interpreter`
    would here: LiteRT's C++ is not hardened against crafted files (a flipped bit made its
    allocator abort the process), so a file it cannot take ends that process, not this one.
    TFLiteFileError if the child refuses the file or dies of it."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [package_root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    try:
        child = subprocess.run(
            [sys.executable, "-c", "from regnet_keras.lite import tflite_files; "
             f"tflite_files._check_standard_input({int(max_activation_bytes)})"],
            input=model_content, capture_output=True, env=environment,
            timeout=CHILD_CHECK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise TFLiteFileError(f"the model did not load and run once in {CHILD_CHECK_TIMEOUT_S} "
                              "s; convert it again with python -m tools.convert.") from None
    if child.returncode == 0:
        return
    if child.returncode == _REFUSED_STATUS:
        raise TFLiteFileError(child.stdout.decode("utf-8", "replace"))
    if child.returncode < 0:
        name = signal.Signals(-child.returncode).name
        raise TFLiteFileError(f"not a valid TFLite model: LiteRT ended the process that loaded "
                              f"it ({name}); the file is corrupt or crafted, convert it again "
                              "with python -m tools.convert.")
    # Not the file's doing (the child could not start or import): a traceback, not a refusal.
    lines = child.stderr.decode("utf-8", "replace").strip().splitlines()
    raise RuntimeError(f"checking the model in a child process failed (exit status "
                       f"{child.returncode}): {lines[-1] if lines else 'no message'}")


def check_classifier(runtime) -> None:
    """The interpreter's model takes one [1, height, width, 3] image of a type apps feed and
    gives one [1, classes] vector; TFLiteFileError otherwise."""
    inputs, outputs = runtime.get_input_details(), runtime.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise TFLiteFileError(f"the model has {len(inputs)} inputs and {len(outputs)} outputs; "
                              "a classifier has one of each: convert it with python -m "
                              "tools.convert.")
    shape, dtype = [int(d) for d in inputs[0]["shape"]], np.dtype(inputs[0]["dtype"]).name
    if (len(shape) != 4 or shape[0] != 1 or shape[3] != 3
            or not all(1 <= side <= image_preprocessing.MAX_INPUT_SIDE for side in shape[1:3])
            or dtype not in IO_TYPES):
        raise TFLiteFileError(f"the model's input is {dtype} {shape}; a classifier takes "
                              "[1, height, width, 3] float32, uint8 or int8 images (sides up to "
                              f"{image_preprocessing.MAX_INPUT_SIDE}).")
    shape, dtype = [int(d) for d in outputs[0]["shape"]], np.dtype(outputs[0]["dtype"]).name
    if len(shape) != 2 or shape[0] != 1 or shape[1] < 1 or dtype not in IO_TYPES:
        raise TFLiteFileError(f"the model's output is {dtype} {shape}; a classifier gives "
                              "[1, classes] float32, uint8 or int8 scores.")
    for details in (inputs[0], outputs[0]):
        scale, zero_point = details["quantization"]
        if details["dtype"] != np.float32 and not (np.isfinite(scale) and scale > 0):
            raise TFLiteFileError(f"the model's {details['dtype'].__name__} tensor "
                                  f"{details['name'][:60]!r} has quantization scale {scale}; it "
                                  "must be a positive number.")


def check_metadata_matches(record: dict, runtime) -> None:
    """The metadata describes the interpreter's model: input shape, types, quantization and
    one label per output (what the Android app and the web page check); MetadataError
    otherwise."""
    inputs, outputs = runtime.get_input_details()[0], runtime.get_output_details()[0]
    model_shape = [int(d) for d in inputs["shape"]]
    if record["input"]["shape"] != model_shape:
        raise image_preprocessing.MetadataError(
            "input.shape", f"is {record['input']['shape']} in the metadata but {model_shape} in "
            "the model; write the metadata again with python -m tools.convert")
    classes = int(outputs["shape"][-1])
    if len(record["labels"]) != classes:
        raise image_preprocessing.MetadataError(
            "labels", f"has {len(record['labels'])} entries but the model has {classes} "
            "outputs; write the metadata again with python -m tools.convert")
    for prefix, details in (("input", inputs), ("output", outputs)):
        spec, dtype = record[prefix], np.dtype(details["dtype"]).name
        if spec["dtype"] != dtype:
            raise image_preprocessing.MetadataError(
                f"{prefix}.dtype", f"is {spec['dtype']} in the metadata but {dtype} in the model")
        expected, actual = spec["quantization"], quantization_of(details)
        if expected is not None and (
                actual is None or expected["zero_point"] != actual["zero_point"]
                or abs(expected["scale"] - actual["scale"]) > 1e-6 * expected["scale"]):
            raise image_preprocessing.MetadataError(
                f"{prefix}.quantization", f"is {expected} in the metadata but {actual} in the "
                "model; write the metadata again with python -m tools.convert")


def quantization_of(details) -> dict | None:
    """A tensor's scale and zero point as the metadata writes them; None for a float tensor."""
    scale, zero_point = details["quantization"]
    if details["dtype"] == np.float32 or scale == 0:
        return None
    return {"scale": float(scale), "zero_point": int(zero_point)}
