"""An imported PyTorch RegNet goes through the whole pipeline: tools.qat and tools.convert write
int8 files that agree with the float model, and the metadata carries the weights' origin and
evaluation crop."""

import json
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from safetensors.torch import save_file  # noqa: E402

import regnet_keras  # noqa: E402
from regnet_keras.weights.origin import run_info_fields  # noqa: E402
from tests import pytorch_helpers as helpers  # noqa: E402
from tests.training_helpers import run, write_tiny_fashion_mnist  # noqa: E402

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]


@pytest.mark.slow  # about 4 CPU minutes (QAT and three conversions in their own processes)
def test_imported_model_through_qat_and_convert(tmp_path):
    from torchvision.models.regnet import BlockParams, RegNet
    torch.manual_seed(0)
    # A RegNetY small enough for a few CPU seconds: one block per stage, widths 8 to 32.
    reference = helpers.randomize_batch_norm(RegNet(
        BlockParams([1, 1, 2, 1], [8, 16, 24, 32], [8, 8, 8, 8], [1.0] * 4, [2] * 4, 0.25),
        num_classes=10, stem_width=16))
    with torch.no_grad():  # confident predictions, so that agreement measures something
        reference.fc.weight.mul_(50.0)
    weights_file = tmp_path / "tiny_regnety.safetensors"
    save_file(reference.state_dict(), str(weights_file))
    origin = regnet_keras.WeightsOrigin(
        library="torchvision", layout="torchvision", file=weights_file.name,
        transform=regnet_keras.EvaluationTransform(36, 32, "bicubic"))
    model = regnet_keras.from_pytorch(str(weights_file), input_shape=(32, 32, 3), origin=origin)
    pixels = helpers.images(32)
    logits = helpers.torch_logits(reference, pixels)
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict(pixels, verbose=0), probabilities, atol=1e-5)

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model.save(run_dir / "best.keras")
    info = {"dataset": "fashion_mnist",
            "data_dir": write_tiny_fashion_mnist(str(tmp_path / "data")), "image_size": 32,
            "num_classes": 10, "class_names": CLASS_NAMES, "preprocessing": "imagenet",
            "channels": 3, "seed": 0, **run_info_fields(origin)}
    (run_dir / "run.json").write_text(json.dumps(info))

    qat = run([sys.executable, "-m", "tools.qat", "--model_dir", str(run_dir), "--epochs", "1",
               "--min_steps", "0", "--batch_size", "32"], timeout=1800)
    assert qat.returncode == 0, qat.stderr[-3000:]
    converted = run([sys.executable, "-m", "tools.convert", "--model", str(run_dir),
                     "--variants", "float32,int8,qat", "--representative_images", "64"],
                    timeout=1800)
    assert converted.returncode == 0, converted.stderr[-3000:]
    report = json.loads((run_dir / "tflite" / "report.json").read_text())
    rows = {row["variant"]: row for row in report["variants"]}
    assert rows["float32"]["max_relative_difference"] <= 1e-4
    assert rows["int8"]["agreement"] >= 0.9, rows["int8"]
    # The QAT model was fine-tuned on the data, so it may rightly disagree with the float one.
    assert 0.0 <= rows["qat"]["top1"] <= 1.0

    metadata = json.loads((run_dir / "tflite" / "run_int8.json").read_text())
    assert metadata["input"]["resize"]["crop_fraction"] == pytest.approx(32 / 36)
    assert metadata["weights"]["file"] == "tiny_regnety.safetensors"
    assert metadata["weights"]["transform"]["interpolation"] == "bicubic"
    assert os.path.isfile(run_dir / "tflite" / "run_qat.tflite")
