"""tools.qat and tools.convert end to end on a tiny trained run."""

import json
import os
import sys

import pytest

from tests.training_helpers import run, train_command, write_tiny_fashion_mnist

VARIANTS = ("float32", "float16", "dynamic", "int8", "qat")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("convert")
    data_dir = write_tiny_fashion_mnist(str(root / "data"))
    run_dir = str(root / "run")
    result = run(train_command(run_dir, data_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_qat_then_convert_writes_verified_variants_with_metadata(trained_run, tmp_path):
    # 256 training images are 8 steps per epoch: 12 steps at least take a second epoch.
    qat = run([sys.executable, "-m", "tools.qat", "--model_dir", trained_run, "--epochs", "1",
               "--min_steps", "12", "--batch_size", "32"])
    assert qat.returncode == 0, qat.stderr[-3000:]
    summary = json.load(open(os.path.join(trained_run, "qat", "qat.json")))
    assert summary["float_layers"] == [] and summary["quantized_layers"] > 20
    assert summary["epochs"] == 2 and summary["optimizer_steps"] == 16

    assets, web_assets = str(tmp_path / "assets"), str(tmp_path / "web_models")
    converted = run([sys.executable, "-m", "tools.convert", "--model", trained_run,
                     "--representative_images", "64", "--android_assets", assets,
                     "--web_assets", web_assets])
    assert converted.returncode == 0, converted.stderr[-3000:]
    report = json.load(open(os.path.join(trained_run, "tflite", "report.json")))
    rows = {row["variant"]: row for row in report["variants"]}
    assert set(rows) == set(VARIANTS)
    assert rows["float32"]["max_relative_difference"] <= 1e-4
    assert rows["float32"]["agreement"] == 1.0
    assert rows["int8"]["bytes"] < 0.7 * rows["float32"]["bytes"]
    for row in rows.values():
        assert 0.0 <= row["top1"] <= row["top5"] <= 1.0
    class_names = json.load(open(os.path.join(trained_run, "run.json")))["class_names"]
    int8 = json.load(open(os.path.join(trained_run, "tflite", "run_int8.json")))
    assert int8["labels"] == class_names and int8["input"]["dtype"] == "uint8"
    assert int8["input"]["shape"] == [1, 32, 32, 3]
    # Every file leaves the ImageNet mean/std to the app (on the 0-255 scale); the integer
    # ones take the normalised values quantized (about 4.8 / 255 per step).
    for variant in ("float32", "int8"):
        record = json.load(open(os.path.join(trained_run, "tflite", f"run_{variant}.json")))
        assert record["input"]["in_model_normalization"] == "none"
        assert record["input"]["mean"] == pytest.approx([123.675, 116.28, 103.53], abs=1e-4)
        assert record["input"]["std"] == pytest.approx([58.395, 57.12, 57.375], abs=1e-4)
    assert 0.015 < int8["input"]["quantization"]["scale"] < 0.022
    qat = json.load(open(os.path.join(trained_run, "tflite", "run_qat.json")))
    assert qat["input"]["in_model_normalization"] == "none"
    assert sorted(os.listdir(assets)) == sorted(
        f"run_{v}{suffix}" for v in ("float32", "int8", "qat") for suffix in (".json", ".tflite"))
    assert "top-1" in converted.stdout and "qat" in converted.stdout
    index = json.load(open(os.path.join(web_assets, "models.json")))["models"]
    assert [(m["name"], m["variant"]) for m in index] == [(f"run_{v}", v) for v in
                                                         ("float32", "int8", "qat")]
    assert index[1]["bytes"] == os.path.getsize(os.path.join(web_assets, "run_int8.tflite"))
    # Every variant, the QAT one (converted by tf-keras) included, takes and gives one image.
    from regnet_keras.lite import export
    for variant in VARIANTS:
        with open(os.path.join(trained_run, "tflite", f"run_{variant}.tflite"), "rb") as f:
            runtime = export.interpreter(f.read())
        assert list(runtime.get_input_details()[0]["shape_signature"]) == [1, 32, 32, 3], variant
        assert list(runtime.get_output_details()[0]["shape_signature"]) == [1, 10], variant

    # tools.evaluate scores a .tflite on LiteRT like the conversion report did, normalising
    # the float file's input as its metadata says.
    for variant in ("int8", "float32"):
        tflite_file = os.path.join(trained_run, "tflite", f"run_{variant}.tflite")
        evaluated = run([sys.executable, "-m", "tools.evaluate", "--model", tflite_file,
                         "--output_dir", str(tmp_path)])
        assert evaluated.returncode == 0, evaluated.stderr[-3000:]
        evaluation = json.load(open(tmp_path / f"run_{variant}_report.json"))
        assert evaluation["top1"] == pytest.approx(rows[variant]["top1"])
        assert os.path.isfile(evaluation["confusion_matrix_png"])


def test_bad_requests_name_the_problem(trained_run, tmp_path):
    python = sys.executable
    empty = str(tmp_path / "empty")
    os.makedirs(empty)
    qat = run([python, "-m", "tools.qat", "--model_dir", empty])
    assert qat.returncode != 0 and "holds no trained model" in qat.stderr
    convert = run([python, "-m", "tools.convert", "--model", empty])
    assert convert.returncode != 0 and "is not a trained run" in convert.stderr
    unknown = run([python, "-m", "tools.convert", "--model", trained_run, "--variants", "int4"])
    assert unknown.returncode != 0 and "variant 'int4' is unknown" in unknown.stderr
