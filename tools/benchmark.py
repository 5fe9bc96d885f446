"""LiteRT latency, size and memory of converted RegNets, side by side with keras.applications'.

    python -m tools.benchmark --models RegNetX002,RegNetY002 [--image_size 224]
        [--variants float32,float16,dynamic,int8] [--threads 1,2,4] [--runs 50]

For every model and variant, ours (regnet_keras) and tf-keras' keras.applications RegNet of the
same name are converted the same way (each conversion in a process of its own; integer variants
with uint8 input), then timed on
the LiteRT interpreter with XNNPACK: median and p90 over --runs invocations after warm-up, per
thread count, the sources' files loaded in one process and timed in turn in --rounds blocks, so
that a slow spell of a shared machine slows them alike ("rounds vs app": the lowest and highest
ratio of one block's median to keras.applications' in the same round); memory is the peak
resident memory one interpreter adds to a process of its own (the file, its arena and XNNPACK's
packed weights). The table gives size against
params x bytes per weight, latency, the ratio ours / keras.applications, and achieved GFLOP/s
(2 x multiply-adds from regnet_keras.complexity / median) against a float32
matrix-multiplication peak measured on the spot with the same runtime; a second table splits
each file's bytes into weights, biases, quantization parameters and the rest. With
--profile_threads, LiteRT's op profiler (regnet_keras.lite.op_profile) then says where each
file's time goes, by XNNPACK node type, the sources' files profiled interleaved.

Weights are random, with batch-normalization parameters and statistics randomised too, so that
the folded biases differ as a trained model's do (zero biases would share one buffer and make
the files look smaller than trained ones).
"""

import json
import os
import resource
import subprocess
import sys
import tempfile

from absl import app, flags
import numpy as np

from tools import cli

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["RegNetX002", "RegNetY002"], "Zoo models.")
flags.DEFINE_list("variants", ["float32", "float16", "dynamic", "int8"],
                  "TFLite variants (see regnet_keras.lite.export).")
flags.DEFINE_list("threads", ["1", "2", "4"], "Interpreter thread counts.")
flags.DEFINE_integer("image_size", 224, "Input height and width.")
flags.DEFINE_integer("runs", 50, "Timed invocations per measurement, after warm-up.")
flags.DEFINE_integer("warmup", 5, "Untimed invocations first.")
flags.DEFINE_integer("rounds", 10, "Blocks each file's --runs invocations are split into; the "
                     "blocks of ours and keras.applications' files alternate in one process, "
                     "so that a slow spell of a shared machine cannot favour either.")
SOURCES = ("ours", "ours_same", "keras_app")
flags.DEFINE_list("sources", list(SOURCES),
                  "Models to convert: ours (regnet_keras' defaults: the reference code's "
                  "symmetric padding and ImageNet mean/std, converted as tools.convert writes "
                  "them: see --normalization), ours_same "
                  "(regnet_keras with keras.applications' geometry and preprocessing: TF "
                  "'same' padding, x/255, as its weights files load), keras_app (tf-keras' "
                  "keras.applications).")
flags.DEFINE_enum("normalization", "app", ["app", "model"], "Where the files of 'ours' "
                  "normalise their input (see tools.convert): in the app, or in the file.")
flags.DEFINE_integer("profile_threads", 0, "If set, every model and variant's files are also "
                     "profiled with LiteRT's op profiler at this many threads (interleaved, "
                     "--runs invocations) and their time per XNNPACK node type is printed side "
                     "by side.")
flags.DEFINE_string("worker", None, "Internal: one conversion or timing; prints JSON.")

BYTES_PER_WEIGHT = {"float32": 4, "float16": 2, "dynamic": 1, "int8": 1, "int8_per_tensor": 1}
REPRESENTATIVE_IMAGES = 16  # latency does not depend on calibration quality


def _randomize_batch_norms(model):
    """Trained-looking BN layers: distinct gamma, beta, means and (positive) variances."""
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape),
                               rng.uniform(0.5, 1.5, variance.shape)])


def _convert_worker(source, model_name, variant, size, path):
    from regnet_keras.lite import export
    images = np.random.default_rng(0).uniform(0, 255, (REPRESENTATIVE_IMAGES, size, size, 3))
    integer = variant in export.INTEGER_VARIANTS  # uint8 input, as tools.convert writes them
    if source in ("ours", "ours_same"):
        import regnet_keras
        geometry = (dict(padding="same", preprocessing="unit") if source == "ours_same"
                    else {})
        model = regnet_keras.build_model(model_name, input_shape=(size, size, 3), **geometry)
        _randomize_batch_norms(model)
        content = export.convert(model, variant, representative_images=images,
                                 input_type="uint8" if integer else "float32",
                                 normalization=FLAGS.normalization)
    else:
        # keras.applications' graph holds raw TF ops, so it cannot pass our RegNet checks; it is
        # converted with the same converter settings, unchecked.
        import tf_keras
        model = getattr(tf_keras.applications, model_name)(weights=None,
                                                            input_shape=(size, size, 3))
        _randomize_batch_norms(model)
        converter = export.tflite_converter(model, variant, images)
        if integer:
            import tensorflow as tf
            converter.inference_input_type = tf.uint8
        content = converter.convert()
    with open(path, "wb") as f:
        f.write(content)
    return {"bytes": len(content), "breakdown": export.size_breakdown(content)}


def _read_files(paths):
    contents = {}
    for path in paths:
        with open(path, "rb") as f:
            contents[path] = f.read()
    return contents


def _latency_worker(paths, threads, runs, warmup, blocks):
    """Interleaved timings of the files (see regnet_keras.lite.latency.measure_interleaved)."""
    from regnet_keras.lite import latency
    measured = latency.measure_interleaved(_read_files(paths), threads, runs, warmup, blocks)
    return [{"median_ms": measured[path].median_ms, "p90_ms": measured[path].p90_ms,
             "blocks_ms": list(measured[path].block_medians_ms)} for path in paths]


def _profile_worker(paths, threads, runs, warmup, blocks):
    """{path: [[node type, nodes, ms per invocation], ...]} from an interleaved op profile."""
    from regnet_keras.lite import op_profile
    profiles = op_profile.profile_interleaved(_read_files(paths), threads, runs, warmup, blocks)
    return {path: [[kind, count, ms] for kind, (count, ms)
                   in op_profile.by_node_type(nodes).items()]
            for path, nodes in profiles.items()}


def _memory_worker(path, threads, warmup):
    """Peak resident memory one interpreter adds to its process: loading the file, allocating
    and running it (the process's own imports, TensorFlow's included, are not counted)."""
    from ai_edge_litert.interpreter import Interpreter
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    runtime = Interpreter(model_path=path, num_threads=threads)
    runtime.allocate_tensors()
    inputs = runtime.get_input_details()[0]
    runtime.set_tensor(inputs["index"], np.zeros(inputs["shape"], inputs["dtype"]))
    for _ in range(warmup):
        runtime.invoke()
    return {"rss_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024}


def _matmul_peak_worker(threads, runs, warmup, blocks):
    """GFLOP/s of one large float32 FULLY_CONNECTED on LiteRT/XNNPACK: the runtime's peak, from
    the fastest of `blocks` blocks of runs (a peak is what the machine reaches at its best)."""
    import keras
    import tensorflow as tf
    from regnet_keras.lite import export, latency
    rows, depth, columns = 256, 1024, 1024
    model = keras.Sequential([keras.Input((depth,), batch_size=rows),
                              keras.layers.Dense(columns, use_bias=False)])
    content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    runtime = export.interpreter(content, num_threads=threads)
    latency.time_interpreter(runtime, 0, warmup)
    blocks = max(1, min(blocks, runs))
    median_ms = min(float(np.median(latency.time_interpreter(runtime, runs // blocks, 0)))
                    for _ in range(blocks))
    return {"gflops": 2 * rows * depth * columns / median_ms / 1e6}


def _run_worker(spec):
    kind, *arguments = spec.split("|")
    if kind == "convert":
        source, model_name, variant, size, path = arguments
        result = _convert_worker(source, model_name, variant, int(size), path)
    elif kind == "latency":
        threads, paths = arguments
        result = _latency_worker(paths.split(","), int(threads), FLAGS.runs, FLAGS.warmup,
                                 FLAGS.rounds)
    elif kind == "profile":
        threads, paths = arguments
        result = _profile_worker(paths.split(","), int(threads), FLAGS.runs, FLAGS.warmup,
                                 FLAGS.rounds)
    elif kind == "memory":
        path, threads = arguments
        result = _memory_worker(path, int(threads), FLAGS.warmup)
    else:
        result = _matmul_peak_worker(int(arguments[0]), FLAGS.runs, FLAGS.warmup,
                                     FLAGS.rounds)
    print("RESULT " + json.dumps(result))


def _call_worker(spec):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-m", "tools.benchmark", f"--worker={spec}",
                           f"--runs={FLAGS.runs}", f"--warmup={FLAGS.warmup}",
                           f"--rounds={FLAGS.rounds}",
                           f"--normalization={FLAGS.normalization}"],
                          capture_output=True, text=True, env=environment)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise RuntimeError(f"{spec.split('|')[0]} worker failed: {reason}")


def main(argv):
    del argv
    if FLAGS.worker:
        _run_worker(FLAGS.worker)
        return
    unknown = sorted(set(FLAGS.sources) - set(SOURCES))
    if unknown:
        raise app.UsageError(f"unknown --sources {unknown}: choose from {', '.join(SOURCES)}.")
    import regnet_keras
    size = FLAGS.image_size
    threads = [int(t) for t in FLAGS.threads]
    peaks = {t: _call_worker(f"peak|{t}")["gflops"] for t in threads}
    print(f"LiteRT + XNNPACK, {size}x{size}, median/p90 over {FLAGS.runs} runs; float32 matmul "
          "peak " + ", ".join(f"{peaks[t]:.0f} GFLOP/s at {t} thread(s)" for t in threads))
    sources = FLAGS.sources
    header = (f"{'model':11s} {'variant':15s} {'source':9s} {'size MB':>8s} {'vs params':>9s} "
              f"{'thr':>3s} {'median ms':>9s} {'p90 ms':>7s} {'vs app':>6s} "
              f"{'rounds vs app':>13s} {'GFLOP/s':>8s} {'of peak':>7s} {'interp. MB':>10s}")
    print(header)
    print("-" * len(header))
    breakdowns, medians, profiles = [], {}, []
    with tempfile.TemporaryDirectory() as directory:
        for model_name in FLAGS.models:
            cost = regnet_keras.complexity(model_name, size)
            for variant in FLAGS.variants:
                expected = cost.params * BYTES_PER_WEIGHT[variant]
                converted, paths = {}, {}
                for source in sources:
                    paths[source] = os.path.join(directory,
                                                 f"{source}_{model_name}_{variant}.tflite")
                    converted[source] = _call_worker(f"convert|{source}|{model_name}|{variant}|"
                                                     f"{size}|{paths[source]}")
                timings = _latencies(paths, threads)
                for source in sources:
                    breakdowns.append((model_name, variant, source,
                                       converted[source]["breakdown"], expected))
                    file_bytes = converted[source]["bytes"]
                    for t in threads:
                        latency = timings[source][t]
                        medians[model_name, variant, source, t] = latency["median_ms"]
                        app_median = (timings["keras_app"][t]["median_ms"]
                                      if "keras_app" in timings else None)
                        ratio = f"{latency['median_ms'] / app_median:6.2f}" if app_median else "     -"
                        spread = (_round_ratio_spread(latency, timings["keras_app"][t])
                                  if app_median else "-")
                        gflops = 2 * cost.flops / latency["median_ms"] / 1e6
                        print(f"{model_name:11s} {variant:15s} {source:9s} "
                              f"{file_bytes / 1e6:8.2f} {file_bytes / expected:8.3f}x {t:3d} "
                              f"{latency['median_ms']:9.2f} {latency['p90_ms']:7.2f} {ratio} "
                              f"{spread:>13s} {gflops:8.1f} {gflops / peaks[t]:6.0%} "
                              f"{latency['rss_mb']:10.0f}", flush=True)
                if FLAGS.profile_threads:
                    profiles.append((model_name, variant, _call_worker(
                        f"profile|{FLAGS.profile_threads}|{','.join(paths.values())}"), paths))
    _print_size_breakdowns(breakdowns)
    _print_against_float32(medians, threads)
    for model_name, variant, profile, paths in profiles:
        _print_profile(model_name, variant, profile, paths)


def _round_ratio_spread(timing, app_timing):
    """"low-high" of this file's block medians over keras.applications' of the same rounds."""
    ratios = np.array(timing["blocks_ms"]) / np.array(app_timing["blocks_ms"])
    return f"{ratios.min():.2f}-{ratios.max():.2f}"


def _print_against_float32(medians, threads):
    """Each quantized file's latency over the float32 file's of the same model and source."""
    rows = [(model, variant, source) for model, variant, source, t in medians
            if t == threads[0] and variant != "float32"
            and (model, "float32", source, t) in medians]
    if not rows:
        return
    print("\nlatency against the same source's float32 file (median over median)")
    print(f"{'model':11s} {'variant':15s} {'source':9s} " +
          " ".join(f"{f'{t} thr':>6s}" for t in threads))
    for model, variant, source in rows:
        print(f"{model:11s} {variant:15s} {source:9s} " + " ".join(
            f"{medians[model, variant, source, t] / medians[model, 'float32', source, t]:5.2f}x"
            for t in threads))


def _print_profile(model_name, variant, profile, paths):
    """Milliseconds per invocation by XNNPACK node type, the sources side by side."""
    by_source = {source: {kind: (count, ms) for kind, count, ms in profile[path]}
                 for source, path in paths.items()}
    kinds = sorted({kind for rows in by_source.values() for kind in rows},
                   key=lambda kind: -max(rows.get(kind, (0, 0.0))[1]
                                         for rows in by_source.values()))
    print(f"\nLiteRT op profile, {model_name} {variant}, {FLAGS.profile_threads} thread(s): "
          "nodes and ms per invocation by XNNPACK node type")
    print(f"{'node type':48s}" + "".join(f"{source:>17s}" for source in paths))
    for kind in kinds:
        cells = [by_source[source].get(kind) for source in paths]
        print(f"{kind[:48]:48s}" + "".join(f"{c[0]:5d} {c[1]:8.3f} ms" if c else " " * 17
                                            for c in cells))
    print(f"{'all nodes':48s}" + "".join(
        f"{sum(ms for _, ms in by_source[source].values()):14.3f} ms" for source in paths))


def _latencies(paths, threads):
    """{source: {threads: timing}}: the sources' files timed together (interleaved), each
    file's peak memory on its own."""
    timings = {source: {} for source in paths}
    for t in threads:
        measured = _call_worker(f"latency|{t}|{','.join(paths.values())}")
        for source, timing in zip(paths, measured):
            memory = _call_worker(f"memory|{paths[source]}|{t}")
            timings[source][t] = {**timing, **memory}
    return timings


def _print_size_breakdowns(breakdowns):
    """Where each file's bytes go, against the params x bytes-per-weight yardstick."""
    print("\nsize breakdown, MB (quantization: per-tensor and per-channel scales and int64 zero "
          "points; other: graph, names, metadata)")
    header = (f"{'model':11s} {'variant':15s} {'source':9s} {'file':>6s} {'params x B':>10s} "
              f"{'weights':>7s} {'biases':>6s} {'consts':>6s} {'quantization':>12s} "
              f"{'other':>6s}")
    print(header)
    print("-" * len(header))
    for model_name, variant, source, parts, expected in breakdowns:
        print(f"{model_name:11s} {variant:15s} {source:9s} {parts['total'] / 1e6:6.3f} "
              f"{expected / 1e6:10.3f} {parts['weights'] / 1e6:7.3f} {parts['biases'] / 1e6:6.3f} "
              f"{parts['other_constants'] / 1e6:6.3f} {parts['quantization'] / 1e6:12.3f} "
              f"{parts['other'] / 1e6:6.3f}")


if __name__ == "__main__":
    cli.run(main)
