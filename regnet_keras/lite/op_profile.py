"""Where a .tflite file's time goes, operator by operator, on LiteRT with XNNPACK.

This is LiteRT's own op profiler, the one `benchmark_model --enable_op_profiling` prints. The
Python interpreter of ai_edge_litert exposes none, so it is reached through the LiteRT C API in
the package's libLiteRt.so: a compiled model with profiling on, run on zero-filled inputs. With
XNNPACK the profiled nodes are XNNPACK's own operators after its graph rewrites (a PAD fused
into the convolution after it no longer appears), which is what a latency difference between
two files has to be explained by.

Profiles of several files are taken in one process with their runs interleaved block by block
(as `latency.measure_interleaved` times them), so that a slow spell of a shared machine cannot
favour one file's operators.
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import os
import re
import tempfile

from regnet_keras.errors import InputError

_CPU_ACCELERATOR = 1  # kLiteRtHwAcceleratorCpu
# Opaque option groups are TOML strings under these identifiers (litert/runtime/*_options.h).
_RUNTIME_OPTIONS = b"runtime_options_string"
_XNNPACK_OPTIONS = b"xnnpack"
_LOCK_FOR_WRITING = 1  # kLiteRtTensorBufferLockModeWrite
# One row of the profile summary's "Run Order" table: node type, start, first, avg ms, %, cdf%,
# mem KB, times called, name.
_ROW = re.compile(r"^\s*(?P<type>\S.*?)\s+[\d.]+\s+[\d.]+\s+(?P<avg_ms>[\d.]+)\s+[\d.]+%\s+"
                  r"[\d.]+%\s+[\d.]+\s+(?P<calls>\d+)\s+(?P<name>\S.*?)\s*$")


class ProfilerUnavailableError(InputError, RuntimeError):
    """The installed ai_edge_litert has no LiteRT C API with a profiler."""


@dataclasses.dataclass(frozen=True)
class NodeTime:
    name: str       # the node's name in the profile ("[Delegate]:12" for XNNPACK's nodes)
    node_type: str  # XNNPACK's operator, e.g. "Convolution (NHWC, QD8, F32, QC8W) IGEMM"
    avg_ms: float   # mean time per invocation
    calls: int


def _library():
    try:
        import ai_edge_litert
        library = ctypes.CDLL(os.path.join(os.path.dirname(ai_edge_litert.__file__),
                                           "libLiteRt.so"))
        library.LiteRtCompiledModelGetProfiler  # noqa: B018 (present since ai_edge_litert 2.x)
        library.LiteRtGetProfileSummary  # noqa: B018
    except (ImportError, OSError, AttributeError) as error:
        raise ProfilerUnavailableError(
            f"LiteRT's op profiler is not reachable ({error}): install ai-edge-litert "
            "2.3.0 or later (pip install -r requirements.txt).") from None
    return library


class ProfiledModel:
    """One .tflite file compiled for the CPU with profiling on."""

    def __init__(self, model_path: str, threads: int = 2):
        self._lib = _library()
        self._pointers = []  # ctypes objects the C side keeps pointers to
        self._env = self._new("LiteRtCreateEnvironment", 0, None)
        self._model = self._new("LiteRtCreateModelFromFile", self._env, model_path.encode())
        options = self._new("LiteRtCreateOptions")
        self._call("LiteRtSetOptionsHardwareAccelerators", options, _CPU_ACCELERATOR)
        self._add_options(options, _RUNTIME_OPTIONS, "enable_profiling = true\n")
        self._add_options(options, _XNNPACK_OPTIONS, f"num_threads = {int(threads)}\n")
        self._compiled = self._new("LiteRtCreateCompiledModel", self._env, self._model, options)
        signature = self._new("LiteRtGetModelSignature", self._model, 0)
        self._inputs = self._buffers(signature, "Input")
        self._outputs = self._buffers(signature, "Output")
        self._profiler = self._new("LiteRtCompiledModelGetProfiler", self._compiled)

    def _call(self, function, *arguments):
        status = getattr(self._lib, function)(*arguments)
        if status != 0:
            raise ProfilerUnavailableError(f"LiteRT's {function} failed with status {status}.")

    def _new(self, function, *arguments):
        handle = ctypes.c_void_p()
        self._call(function, *arguments, ctypes.byref(handle))
        return handle

    def _add_options(self, options, identifier: bytes, toml: str):
        payload = ctypes.create_string_buffer(toml.encode())
        # The payload belongs to Python, so LiteRT's deleter for it must do nothing.
        no_op_deleter = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: None)
        self._pointers += [payload, no_op_deleter]
        opaque = self._new("LiteRtCreateOpaqueOptions", identifier,
                           ctypes.cast(payload, ctypes.c_void_p), no_op_deleter)
        self._call("LiteRtAddOpaqueOptions", options, opaque)

    def _buffers(self, signature, kind: str):
        count = ctypes.c_size_t()
        self._call(f"LiteRtGetNumSignature{kind}s", signature, ctypes.byref(count))
        buffers = []
        for index in range(count.value):
            tensor = self._new(f"LiteRtGetSignature{kind}TensorByIndex", signature, index)
            tensor_type = ctypes.create_string_buffer(1024)  # LiteRtRankedTensorType, opaque here
            self._call("LiteRtGetRankedTensorType", tensor, tensor_type)
            requirements = self._new(f"LiteRtGetCompiledModel{kind}BufferRequirements",
                                     self._compiled, 0, index)
            buffers.append(self._new("LiteRtCreateManagedTensorBufferFromRequirements",
                                     self._env, tensor_type, requirements))
            if kind == "Input":
                self._fill_with_zeros(buffers[-1])
        return (ctypes.c_void_p * len(buffers))(*buffers)

    def _fill_with_zeros(self, buffer):
        """A defined input: a fresh buffer's bytes are whatever the allocator left there."""
        size = ctypes.c_size_t()
        self._call("LiteRtGetTensorBufferPackedSize", buffer, ctypes.byref(size))
        address = ctypes.c_void_p()
        self._call("LiteRtLockTensorBuffer", buffer, ctypes.byref(address), _LOCK_FOR_WRITING)
        ctypes.memset(address, 0, size.value)
        self._call("LiteRtUnlockTensorBuffer", buffer)

    def run(self, times: int = 1) -> None:
        for _ in range(times):
            self._call("LiteRtRunCompiledModel", self._compiled, 0, len(self._inputs),
                       self._inputs, len(self._outputs), self._outputs)

    def start(self) -> None:
        """Forgets what was profiled so far (warm-up) and profiles from now on."""
        self._call("LiteRtResetProfiler", self._profiler)
        self._call("LiteRtStartProfiler", self._profiler)

    def summary(self) -> str:
        """LiteRT's profile summary text (run order, top ops, totals by node type)."""
        self._call("LiteRtStopProfiler", self._profiler)
        text = self._new("LiteRtGetProfileSummary", self._profiler, self._compiled)
        try:
            return ctypes.string_at(text).decode()
        finally:
            ctypes.CDLL(None).free(text)  # the caller owns the C string

    def close(self) -> None:
        for buffer in (*self._inputs, *self._outputs):  # ints: ctypes arrays unwrap pointers
            self._lib.LiteRtDestroyTensorBuffer(ctypes.c_void_p(buffer))
        self._lib.LiteRtDestroyCompiledModel(self._compiled)
        self._lib.LiteRtDestroyModel(self._model)
        self._lib.LiteRtDestroyEnvironment(self._env)


def node_times(summary: str) -> list[NodeTime]:
    """The nodes of a profile summary, in run order."""
    section = summary.split("Run Order", 1)[-1].split("Top by Computation Time", 1)[0]
    nodes = []
    for line in section.splitlines():
        match = _ROW.match(line)
        if match:
            nodes.append(NodeTime(match["name"], match["type"].removeprefix("Delegate/"),
                                  float(match["avg_ms"]), int(match["calls"])))
    return nodes


def by_node_type(nodes: list[NodeTime]) -> dict[str, tuple[int, float]]:
    """{node type: (nodes of that type, their milliseconds per invocation)}, slowest first."""
    totals = collections.defaultdict(lambda: [0, 0.0])
    for node in nodes:
        totals[node.node_type][0] += 1
        totals[node.node_type][1] += node.avg_ms
    return dict(sorted(((kind, (count, ms)) for kind, (count, ms) in totals.items()),
                       key=lambda item: -item[1][1]))


def profile_interleaved(model_contents: dict, threads: int = 2, runs: int = 100,
                        warmup: int = 10, blocks: int = 10) -> dict[str, list[NodeTime]]:
    """{name: node times} of several .tflite files (bytes) profiled in one process, their runs
    alternating in `blocks` blocks (in reverse order every other block)."""
    with tempfile.TemporaryDirectory() as directory:
        models = {}
        try:
            for index, (name, content) in enumerate(model_contents.items()):
                path = os.path.join(directory, f"{index}.tflite")
                with open(path, "wb") as f:
                    f.write(content)
                models[name] = ProfiledModel(path, threads)
            for model in models.values():
                model.run(warmup)
                model.start()
            blocks = max(1, min(blocks, runs))
            order = list(models.values())
            for block in range(blocks):
                for model in (order[::-1] if block % 2 else order):
                    model.run(runs // blocks + (block < runs % blocks))
            return {name: node_times(model.summary()) for name, model in models.items()}
        finally:
            for model in models.values():
                model.close()
