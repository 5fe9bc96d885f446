"""timm RegNet repositories (config.json + model.safetensors, the Hub layout) through
regnet_keras.from_preset: the task's logits against timm's own forward pass, and the refusals."""

import json
import os
import shutil

import numpy as np
import pytest

pytest.importorskip("timm")
pytest.importorskip("keras_hub")

import regnet_keras  # noqa: E402
from regnet_keras.errors import InputError  # noqa: E402
from regnet_keras.weights import timm_snapshot  # noqa: E402
from tests import pytorch_helpers  # noqa: E402
from tests.timm_snapshots import write_snapshot  # noqa: E402

SIZE = 64  # the snapshots' input_size, so that the image converter's resize is the identity
TOLERANCE = 1e-5  # relative to the largest logit, float32


@pytest.mark.parametrize("name", ["regnetx_002.pycls_in1k", "regnety_002.pycls_in1k"])
def test_timm_snapshot_gives_timms_logits_from_raw_images(tmp_path, name):
    timm_model = write_snapshot(tmp_path, name, seed=3, image_size=SIZE)
    pixels = pytorch_helpers.images(SIZE, count=3, seed=1)
    reference = pytorch_helpers.torch_logits(timm_model, pixels)

    classifier = regnet_keras.from_preset(str(tmp_path))
    logits = classifier.predict(pixels, verbose=0)
    difference = pytorch_helpers.relative_difference(logits, reference)
    print(f"{name}: max |logits - timm| / max |timm| = {difference:.2e}")
    assert difference < TOLERANCE
    assert np.array_equal(np.argmax(logits, -1), np.argmax(reference, -1))

    backbone = classifier.backbone
    assert sorted(backbone.pyramid_outputs) == ["P1", "P2", "P3", "P4", "P5"]
    origin = backbone.weights_origin
    assert (origin["library"], origin["tag"], origin["license"]) == ("timm", "pycls_in1k", "mit")
    # pycls' published top-1 (regnet_keras.list_weights), which timm's config does not carry.
    published = {row["hub_handle"]: row["top1"] for row in regnet_keras.list_weights()}
    assert origin["top1"] == published[f"hf://timm/{name}"]


def test_a_new_class_count_keeps_the_backbone_and_gives_a_fresh_head(snapshot_x):
    classifier = regnet_keras.from_preset(str(snapshot_x), num_classes=5)
    assert classifier.output_dense.units == 5
    full = regnet_keras.from_preset(str(snapshot_x))
    for mine, theirs in zip(classifier.backbone.weights, full.backbone.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_a_trunk_without_classifier_needs_num_classes(tmp_path, snapshot_x):
    """timm's feature-only repositories (e.g. regnety_320.seer) have num_classes 0, no head."""
    from safetensors.numpy import load_file, save_file
    shutil.copytree(snapshot_x, tmp_path / "trunk")
    weights = str(tmp_path / "trunk" / "model.safetensors")
    save_file({key: value for key, value in load_file(weights).items()
               if not key.startswith("head.fc")}, weights)
    _edit_config(tmp_path / "trunk", lambda c: c.update(num_classes=0))
    with pytest.raises(InputError, match="num_classes=N"):
        regnet_keras.from_preset(str(tmp_path / "trunk"))
    assert regnet_keras.from_preset(str(tmp_path / "trunk"), num_classes=4).num_classes == 4


def _edit_config(directory, edit):
    path = os.path.join(directory, "config.json")
    with open(path) as file:
        config = json.load(file)
    edit(config)
    with open(path, "w") as file:
        json.dump(config, file)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(architecture="regnetz_040"), "not a RegNetX/Y"),
    (lambda c: c.update(architecture="regnety_002"), "has X blocks"),
    (lambda c: c.update(num_classes=10), "num_classes=10"),
    (lambda c: c["pretrained_cfg"].update(std=[0.2, 0.0, 0.2]), "std > 0"),
    (lambda c: c["pretrained_cfg"].update(input_size=[3, 10 ** 9, 224]), "input_size"),
    (lambda c: c["pretrained_cfg"].update(interpolation="lanczos5"), "interpolation"),
])
def test_inconsistent_or_foreign_snapshots_are_refused_in_one_line(tmp_path, snapshot_x,
                                                                  edit, message):
    directory = tmp_path / "snapshot"
    shutil.copytree(snapshot_x, directory)
    _edit_config(directory, edit)
    with pytest.raises(InputError, match=message) as raised:
        regnet_keras.from_preset(str(directory))
    assert "\n" not in str(raised.value)


def test_oversized_or_non_object_configs_are_refused_before_parsing(tmp_path, snapshot_x):
    directory = tmp_path / "snapshot"
    shutil.copytree(snapshot_x, directory)
    config = directory / "config.json"
    config.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError):
        regnet_keras.from_preset(str(directory))
    config.write_text(" " * (timm_snapshot.MAX_CONFIG_BYTES + 1))
    with pytest.raises(InputError, match="not one"):
        regnet_keras.from_preset(str(directory))


def test_unknown_handles_name_what_is_accepted():
    with pytest.raises(InputError, match="timm RegNet with published weights"):
        regnet_keras.from_preset("regnety_999.nothing")


def test_registry_hub_handles_are_timms_own_repositories():
    """Every hub_handle of list_weights is the hf_hub_id timm itself gives those weights."""
    import timm
    from timm.models import get_pretrained_cfg
    rows = [row for row in regnet_keras.list_weights() if row["hub_handle"]]
    timm_names = set(timm.list_pretrained())
    assert len(rows) >= 50
    for row in rows:
        name = row["hub_handle"].removeprefix("hf://timm/")
        assert name in timm_names, row
        assert get_pretrained_cfg(name).hf_hub_id == f"timm/{name}"
    tags = {row["tag"] for row in rows}
    assert {"pycls", "torchvision_v2", "ra3_in1k"} <= tags
    assert all(row["hub_handle"] is None for row in regnet_keras.list_weights()
               if row["tag"] == "torchvision_v1")


@pytest.fixture(scope="module")
def snapshot_x(tmp_path_factory):
    directory = tmp_path_factory.mktemp("regnetx_002")
    write_snapshot(directory, "regnetx_002.pycls_in1k", image_size=SIZE)
    return directory
