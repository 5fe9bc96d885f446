"""The web demo: its JavaScript preprocessing and postprocessing against the Android core's
goldens (Node's test runner), and the page in headless Chromium classifying as Python's LiteRT
does with files made by the converter.

Skipped where Node, Chromium or web_demo/node_modules is missing, unless CI is set: there
bash scripts/setup.sh has installed them, so their absence is a failure.
"""

import os
import re
import subprocess

import keras
import numpy as np
import pytest
from PIL import Image

from regnet_keras import AnyNetConfig, RegNet
from regnet_keras.lite import export, image_preprocessing
from tests.conftest import REPO
from web_demo import browser

MISSING = browser.missing_pieces()
needs_browser = pytest.mark.skipif(
    bool(MISSING) and not os.environ.get("CI"),
    reason=f"{', '.join(MISSING)} missing: bash scripts/setup.sh installs them")

TINY = AnyNetConfig(stage_widths=(16, 32), stage_depths=(1, 2), stage_group_widths=(8, 8),
                    stage_strides=(2, 2), stage_bottlenecks=(1.0, 1.0), se_ratio=0.25,
                    stem_width=16)
SHAPE = (32, 32, 3)
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
          "Bag", "Ankle boot"]
# Odd sizes: landscape and portrait downscales, and an upscale of a small picture.
PICTURE_SIZES = ((45, 37), (29, 61), (20, 18))


def _require_pieces():
    assert not MISSING, f"{', '.join(MISSING)} missing: run bash scripts/setup.sh"


@needs_browser
def test_javascript_matches_the_shared_goldens():
    _require_pieces()
    result = subprocess.run(["node", "--test", "test/"], cwd=os.path.join(REPO, "web_demo"),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert re.search(r"^# pass 8$", result.stdout, re.M), result.stdout[-2000:]
    assert re.search(r"^# fail 0$", result.stdout, re.M)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """float32 (the ImageNet normalisation left to the page) and int8 (uint8 pixels) files of a
    seeded tiny RegNet, with metadata and the page's models.json."""
    directory = tmp_path_factory.mktemp("web_models")
    keras.utils.set_random_seed(0)
    model = RegNet(TINY, input_shape=SHAPE, classes=len(LABELS), classifier_activation=None)
    calibration = np.random.default_rng(0).uniform(0, 255, (24, *SHAPE)).astype("float32")
    for variant, input_type in (("float32", "float32"), ("int8", "uint8")):
        content = export.convert(model, variant, representative_images=calibration,
                                 input_type=input_type, normalization="app")
        record = export.metadata(content, model_name="tiny", variant=variant, labels=LABELS,
                                 preprocessing="imagenet", crop_fraction=0.875,
                                 output_activation="none",
                                 app_normalization=export.app_normalization(model, variant, "app"))
        export.write(content, record, str(directory / f"tiny_{variant}"))
    export.write_model_index(str(directory))
    return directory


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pictures")
    paths = []
    for width, height in PICTURE_SIZES:
        y, x = np.mgrid[0:height, 0:width]
        rgb = np.stack([x * 255 // max(width - 1, 1), (x * 7 + y * 13) % 256,
                        (x * y * 5 + 60) % 256], axis=-1).astype(np.uint8)
        path = str(directory / f"picture_{width}x{height}.png")
        Image.fromarray(rgb).save(path)
        paths.append(path)
    return paths


def _python_litert(tflite_path, picture):
    """What Python's LiteRT gives for a picture: raw output, dequantized values, top-5."""
    record = export.read_metadata(tflite_path)
    rgb = np.asarray(Image.open(picture).convert("RGB"))
    runtime = export.interpreter(open(tflite_path, "rb").read())
    inputs, outputs = runtime.get_input_details()[0], runtime.get_output_details()[0]
    runtime.set_tensor(inputs["index"], image_preprocessing.prepare_image(rgb, record))
    runtime.invoke()
    raw = runtime.get_tensor(outputs["index"]).reshape(-1)
    top5 = [index for index, _, _ in image_preprocessing.classify_output(raw, record)]
    return raw, image_preprocessing.dequantize(raw, record["output"]), top5


def test_converted_files_have_batch_one_signatures(models_dir):
    for variant in ("float32", "int8"):
        runtime = export.interpreter(open(models_dir / f"tiny_{variant}.tflite", "rb").read())
        assert list(runtime.get_input_details()[0]["shape_signature"]) == [1, *SHAPE]
        assert list(runtime.get_output_details()[0]["shape_signature"]) == [1, len(LABELS)]


@needs_browser
def test_page_classifies_as_python_litert(models_dir, pictures, tmp_path):
    _require_pieces()
    with browser.BrowserSession(str(models_dir)) as session:
        for page, threads in (("single", 1), ("threaded", 2)):
            opened = session.open(page, threads=threads)
            assert opened["errors"] == [] and opened["isolated"] is True, opened
            assert opened["threads"] == threads
            assert opened["models"] == ["tiny_float32", "tiny_int8"]
            for index, name in enumerate(opened["models"]):
                for picture in pictures:
                    where = f"{name} on {os.path.basename(picture)}, {threads} thread(s)"
                    raw, values, top5 = _python_litert(str(models_dir / f"{name}.tflite"),
                                                       picture)
                    result = session.classify(page, model=index, image=picture)
                    assert result["model"] == name, where
                    if name.endswith("int8"):
                        # uint8 input, float32 output: the same integers in, the same floats out.
                        assert result["raw"] == raw.tolist(), where
                    else:
                        difference = np.abs(np.asarray(result["values"]) - values).max()
                        assert difference <= 1e-5, f"{where}: {difference}"
                    assert [entry["index"] for entry in result["top5"]] == top5, where
                    assert result["milliseconds"] > 0
        session.screenshot("single", str(tmp_path / "page.png"))
    assert os.path.getsize(tmp_path / "page.png") > 10_000
