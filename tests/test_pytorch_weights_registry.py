"""Named PyTorch weights: the table agrees with what torchvision and timm publish, files come from a
(loopback) server through Keras' cache with their checksum verified, and offline the error names
the URL and the way to pass the file."""

import dataclasses
import hashlib

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

import regnet_keras  # noqa: E402
from regnet_keras.weights import registry  # noqa: E402
from regnet_keras.weights.h5 import WeightsDownloadError  # noqa: E402
from tests import pytorch_helpers as helpers  # noqa: E402
from tests.loopback_server import serve_directory  # noqa: E402


def test_torchvision_entries_are_torchvision_weights():
    """URL (with its SHA-256 prefix), top-1 and evaluation transform, from torchvision's own
    Weights enums; matches_zoo says whether torchvision's parameter count is our zoo model's."""
    entries = [e for e in registry.NAMED_WEIGHTS.values() if e.layout == "torchvision"]
    assert len(entries) == 14 * 2 + 2 * 2
    for entry in entries:
        name, enum_name = entry.source_name.split(" ")
        weights = torchvision.models.get_model_weights(name)[enum_name]
        transform = weights.transforms()
        assert entry.url == weights.url
        assert weights.url.rsplit("-", 1)[-1] == f"{entry.hash}.pth"
        assert entry.top1 == pytest.approx(weights.meta["_metrics"]["ImageNet-1K"]["acc@1"])
        assert (entry.transform.resize, entry.transform.crop) == (
            transform.resize_size[0], transform.crop_size[0])
        assert entry.transform.interpolation == transform.interpolation.value
        ours = regnet_keras.complexity(entry.model).params
        assert entry.matches_zoo == (ours == weights.meta["num_params"]), entry


def test_timm_entries_are_timm_pretrained_configs():
    from timm.models import get_pretrained_cfg
    entries = [e for e in registry.NAMED_WEIGHTS.values() if e.layout == "timm"]
    assert entries
    for entry in entries:
        config = get_pretrained_cfg(entry.source_name).to_dict()
        hub = f"https://huggingface.co/{config['hf_hub_id']}"
        assert entry.url == f"{hub}/resolve/main/model.safetensors"
        size = (config.get("test_input_size") or config["input_size"])[-1]
        crop_pct = config.get("test_crop_pct") or config["crop_pct"]
        assert entry.transform.crop == size
        assert entry.transform.resize == round(size / crop_pct)
        assert entry.transform.interpolation == config["interpolation"]
        assert entry.license.lower().startswith(config["license"].split("-license")[0].lower())
        assert config["num_classes"] == 1000 and entry.hash_kind == "none"


def test_list_weights_is_the_table():
    rows = regnet_keras.list_weights("regnety016")
    assert {row["tag"] for row in rows} == {"torchvision_v1", "torchvision_v2", "pycls"}
    v2 = next(row for row in rows if row["tag"] == "torchvision_v2")
    assert (v2["top1"], v2["resize"], v2["crop"], v2["interpolation"]) == (
        80.876, 232, 224, "bilinear")
    assert len(regnet_keras.list_weights()) == len(registry.NAMED_WEIGHTS)


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A loopback server standing in for the publishers, and an empty cache."""
    directory = tmp_path / "served"
    directory.mkdir()
    with serve_directory(directory) as (url, requests):
        monkeypatch.setenv(registry.MIRROR_ENVIRONMENT, url)
        monkeypatch.setenv(registry.CACHE_DIR_ENVIRONMENT, str(tmp_path / "cache"))
        yield directory, requests


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_named_torchvision_weights_download_once_checked_and_cached(served, monkeypatch):
    directory, requests = served
    key = ("RegNetY004", "torchvision_v2")
    entry = registry.NAMED_WEIGHTS[key]
    reference = helpers.reference_model("torchvision", "regnet_y_400mf")
    file = directory / entry.file_name
    torch.save(reference.state_dict(), file)
    # Our stand-in file has its own hash: the table entry gets its prefix, as torchvision's has.
    monkeypatch.setitem(registry.NAMED_WEIGHTS, key,
                        dataclasses.replace(entry, hash=_sha256(file)[:8]))
    pixels = helpers.images(64)
    expected = helpers.torch_logits(reference, pixels)
    for _ in range(2):
        model = regnet_keras.RegNetY004(weights="torchvision_v2", input_shape=(64, 64, 3),
                                        classifier_activation=None)
        assert helpers.relative_difference(model.predict(pixels, verbose=0), expected) <= 2e-4
    assert requests == [f"/{entry.file_name}"]
    origin = regnet_keras.design_of_model(model).origin
    assert origin["tag"] == "torchvision_v2" and origin["top1"] == 75.804
    assert origin["transform"] == {"resize": 232, "crop": 224, "interpolation": "bilinear"}
    assert origin["sha256"] == _sha256(file)


def test_named_weights_without_published_hash_are_checked_by_structure(served):
    directory, _ = served
    entry = registry.NAMED_WEIGHTS[("RegNetY002", "pycls")]
    reference = helpers.reference_model("timm", "regnety_002")
    torch.save({"model_state": helpers.pycls_state_dict(reference.state_dict())},
               directory / entry.file_name)
    model = regnet_keras.RegNetY002(weights="pycls", input_shape=(64, 64, 3),
                                    classifier_activation=None)
    pixels = helpers.images(64)
    assert helpers.relative_difference(model.predict(pixels, verbose=0),
                                       helpers.torch_logits(reference, pixels, bgr=True)) <= 2e-4
    # A file of another model under that name fails on its structure, naming it.
    torch.save({"model_state": helpers.pycls_state_dict(
        timm.create_model("regnetx_002").state_dict())}, directory / "x.pyth")
    with pytest.raises(regnet_keras.PyTorchWeightsError, match="another architecture"):
        regnet_keras.RegNetY002(weights=str(directory / "x.pyth"))


def test_a_download_with_the_wrong_hash_is_refused_and_deleted(served, tmp_path):
    directory, _ = served
    entry = registry.NAMED_WEIGHTS[("RegNetY004", "torchvision_v2")]
    (directory / entry.file_name).write_bytes(b"not the published file")
    with pytest.raises(WeightsDownloadError, match=f"hash prefix {entry.hash}"):
        regnet_keras.RegNetY004(weights="torchvision_v2")
    assert not (tmp_path / "cache" / "models" / entry.file_name).exists()


def test_offline_errors_name_the_url_and_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.MIRROR_ENVIRONMENT, "http://127.0.0.1:9/weights")
    monkeypatch.setenv(registry.CACHE_DIR_ENVIRONMENT, str(tmp_path))
    with pytest.raises(WeightsDownloadError) as error:
        regnet_keras.RegNetY016(weights="torchvision_v1")
    message = str(error.value)
    assert "http://127.0.0.1:9/weights/regnet_y_1_6gf-b11a554e.pth" in message
    assert "RegNetY016(weights='/path/to/regnet_y_1_6gf-b11a554e.pth')" in message
    monkeypatch.delenv(registry.MIRROR_ENVIRONMENT)
    assert registry.weights_url(registry.NAMED_WEIGHTS[("RegNetY040", "ra3_in1k")]) == (
        "https://huggingface.co/timm/regnety_040.ra3_in1k/resolve/main/model.safetensors")


def test_unknown_tags_and_variant_architectures_say_what_to_do():
    with pytest.raises(ValueError, match="torchvision_v1, torchvision_v2"):
        regnet_keras.RegNetX008(weights="torchvision_v3")
    with pytest.raises(ValueError, match="from_pytorch"):
        regnet_keras.RegNetX004(weights="torchvision_v2")
