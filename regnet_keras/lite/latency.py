"""Measured LiteRT latency: what a network costs on a device, as opposed to its flops."""

from __future__ import annotations

import dataclasses
import time

import numpy as np


@dataclasses.dataclass(frozen=True)
class Latency:
    median_ms: float
    p90_ms: float
    runs: int
    threads: int
    # Median of each block of an interleaved measurement, in order: ratios between files timed
    # together are taken block by block, and their spread is the measurement's own noise.
    block_medians_ms: tuple = ()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def time_interpreter(runtime, runs: int, warmup: int) -> np.ndarray:
    """Milliseconds of `runs` invocations of an allocated interpreter, after `warmup` more, on a
    fixed input (uniform 0-255 for float inputs, zeros for integer ones)."""
    inputs = runtime.get_input_details()[0]
    if inputs["dtype"] == np.float32:
        value = np.random.default_rng(0).uniform(0, 255, inputs["shape"]).astype(np.float32)
    else:
        value = np.zeros(inputs["shape"], inputs["dtype"])
    runtime.set_tensor(inputs["index"], value)
    for _ in range(warmup):
        runtime.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runtime.invoke()
        times.append(time.perf_counter() - start)
    return np.array(times) * 1000.0


def measure(model_content: bytes, threads: int = 2, runs: int = 50, warmup: int = 10) -> Latency:
    """Median and 90th percentile latency of a .tflite model on LiteRT with XNNPACK."""
    from regnet_keras.lite import export
    times = time_interpreter(export.interpreter(model_content, num_threads=threads), runs, warmup)
    return Latency(float(np.median(times)), float(np.percentile(times, 90)), runs, threads)


def measure_interleaved(model_contents: dict, threads: int = 2, runs: int = 50,
                        warmup: int = 10, blocks: int = 10) -> dict:
    """{name: Latency} of several .tflite models timed in turn in one process: each model's
    `runs` invocations are split into `blocks` blocks, and the blocks alternate between models
    (in reverse order every other block), so that a change of the machine's speed during the
    measurement hits every model alike (the ratios between them are what such a measurement is
    for)."""
    from regnet_keras.lite import export
    runtimes = {name: export.interpreter(content, num_threads=threads)
                for name, content in model_contents.items()}
    times = {name: [time_interpreter(runtime, 0, warmup)] for name, runtime in runtimes.items()}
    blocks = max(1, min(blocks, runs))
    order = list(runtimes.items())
    for block in range(blocks):
        block_runs = runs // blocks + (block < runs % blocks)
        # Every other block in reverse order: no file always runs first after another's blocks.
        for name, runtime in (order[::-1] if block % 2 else order):
            times[name].append(time_interpreter(runtime, block_runs, 0))
    return {name: Latency(float(np.median(np.concatenate(parts))),
                          float(np.percentile(np.concatenate(parts), 90)), runs, threads,
                          tuple(float(np.median(part)) for part in parts[1:]))
            for name, parts in times.items()}
