"""Latency of the web demo's models: LiteRT.js in headless Chromium (WASM, one thread and
threaded) against Python's LiteRT (XNNPACK) on the same machine, interleaved.

    python3 -m web_demo.benchmark --zoo_model RegNetX002 --size 224 [--runs 40 --blocks 8]
    python3 -m web_demo.benchmark [--models_dir web_demo/models] [--screenshot docs/web_demo.png]

With --zoo_model it converts that zoo model (random weights: latency does not depend on them)
to float32 and int8 (uint8 input) files in a temporary folder; otherwise it times the files
listed in --models_dir/models.json. Each runtime's runs are split into blocks, and the blocks of
the four runtimes alternate, so that other work on a shared machine hits them alike; the table
gives the median of all runs, the range of the block medians (the spread) and the ratio to
Python's LiteRT with the same number of threads.
"""

import json
import os
import tempfile

from absl import app, flags
import numpy as np
from PIL import Image

from web_demo import serve  # noqa: F401  (defines --models_dir)

FLAGS = flags.FLAGS
flags.DEFINE_string("zoo_model", None, "Convert this zoo model and time it instead of the files "
                    "of --models_dir (web_demo.serve's flag: web_demo/models by default).")
flags.DEFINE_integer("size", 224, "Input size of --zoo_model.")
flags.DEFINE_integer("runs", 40, "Timed runs per runtime and model.")
flags.DEFINE_integer("blocks", 8, "Blocks the runs are split into, alternating runtimes.")
flags.DEFINE_integer("threads", 2, "Threads of the threaded runtimes.")
flags.DEFINE_string("image", None, "Picture classified before timing (default: a gradient).")
flags.DEFINE_string("screenshot", None, "Also save the one-thread page with its result here.")
flags.DEFINE_string("json", None, "Also write the figures here as JSON.")


def _convert_zoo_model(directory):
    import regnet_keras
    from regnet_keras.lite import export
    model = regnet_keras.build_model(FLAGS.zoo_model, input_shape=(FLAGS.size, FLAGS.size, 3))
    calibration = np.random.default_rng(0).uniform(0, 255, (8, FLAGS.size, FLAGS.size, 3))
    labels = [f"class {i}" for i in range(int(model.output.shape[-1]))]
    for variant, input_type in (("float32", "float32"), ("int8", "uint8")):
        content = export.convert(model, variant, representative_images=calibration,
                                 input_type=input_type, normalization="app")
        record = export.metadata(
            content, model_name=FLAGS.zoo_model, variant=variant, labels=labels,
            preprocessing="imagenet", crop_fraction=0.875, output_activation="softmax",
            app_normalization=export.app_normalization(model, variant, "app"))
        export.write(content, record, os.path.join(directory, f"{FLAGS.zoo_model}_{variant}"))
    export.write_model_index(directory)


def _picture(directory):
    if FLAGS.image:
        return FLAGS.image
    y, x = np.mgrid[0:300, 0:400]
    rgb = np.stack([x * 255 // 399, y * 255 // 299, (x + y) % 256], -1).astype(np.uint8)
    path = os.path.join(directory, "gradient.png")
    Image.fromarray(rgb).save(path)
    return path


def measure(models_dir, picture):
    from regnet_keras.lite import export, latency
    from web_demo.browser import BrowserSession
    with open(os.path.join(models_dir, "models.json")) as f:
        entries = json.load(f)["models"]
    pages = {"LiteRT.js WASM": ("single", 1), "LiteRT.js WASM threaded": ("threaded", FLAGS.threads)}
    rows = []
    with BrowserSession(models_dir) as browser:
        for page, threads in pages.values():
            opened = browser.open(page, threads)
            if opened["threads"] != threads:
                raise app.UsageError(f"the page runs {opened['threads']} thread(s), not {threads}: "
                                     f"is it cross-origin isolated ({opened['isolated']})?")
        for index, entry in enumerate(entries):
            with open(os.path.join(models_dir, entry["tflite"]), "rb") as f:
                content = f.read()
            pythons = {"Python LiteRT": (export.interpreter(content, num_threads=1), 1),
                       "Python LiteRT threaded": (export.interpreter(content,
                                                                     num_threads=FLAGS.threads),
                                                  FLAGS.threads)}
            for page, _ in pages.values():
                browser.classify(page, model=index, image=picture)
                browser.time(page, 5)  # warm-up
            for runtime, _ in pythons.values():
                latency.time_interpreter(runtime, 0, 5)
            blocks = {name: [] for name in [*pages, *pythons]}
            per_block = max(1, FLAGS.runs // FLAGS.blocks)
            for _ in range(FLAGS.blocks):
                for name, (page, _) in pages.items():
                    blocks[name].append(np.asarray(browser.time(page, per_block)))
                for name, (runtime, _) in pythons.items():
                    blocks[name].append(latency.time_interpreter(runtime, per_block, 0))
            threads = {**{n: t for n, (_, t) in pages.items()},
                       **{n: t for n, (_, t) in pythons.items()}}
            medians = {name: float(np.median(np.concatenate(parts)))
                       for name, parts in blocks.items()}
            for name, parts in blocks.items():
                block_medians = [float(np.median(part)) for part in parts]
                python = "Python LiteRT threaded" if threads[name] > 1 else "Python LiteRT"
                rows.append({"model": entry["name"], "bytes": entry["bytes"], "runtime": name,
                             "threads": threads[name], "median_ms": medians[name],
                             "block_min_ms": min(block_medians),
                             "block_max_ms": max(block_medians),
                             "runs": per_block * FLAGS.blocks,
                             "ratio_to_python": medians[name] / medians[python]})
        if FLAGS.screenshot:
            browser.classify("single", model=0, image=picture)
            browser.screenshot("single", FLAGS.screenshot)
    return rows


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from web_demo.browser import missing_pieces
    if missing_pieces():
        raise app.UsageError(f"{', '.join(missing_pieces())} missing: run bash scripts/setup.sh")
    with tempfile.TemporaryDirectory() as scratch:
        models_dir = FLAGS.models_dir
        if FLAGS.zoo_model:
            models_dir = os.path.join(scratch, "models")
            os.makedirs(models_dir)
            _convert_zoo_model(models_dir)
        rows = measure(models_dir, _picture(scratch))
    print(f"{'model':24s} {'runtime':24s} {'threads':>7s} {'median ms':>9s} "
          f"{'block medians':>15s} {'x Python':>8s}")
    for row in rows:
        spread = f"{row['block_min_ms']:.2f}-{row['block_max_ms']:.2f}"
        print(f"{row['model']:24s} {row['runtime']:24s} {row['threads']:7d} "
              f"{row['median_ms']:9.2f} {spread:>15s} {row['ratio_to_python']:8.2f}")
    if FLAGS.json:
        with open(FLAGS.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    app.run(main)
