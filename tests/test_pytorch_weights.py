"""PyTorch RegNets imported with from_pytorch compute what torchvision, timm and pycls compute, and
to_pytorch writes files the libraries load with load_state_dict(strict=True).

References are the libraries' own models with random weights and randomised batch-norm
statistics; pycls checkpoints are timm's tensors under pycls' names (pycls does not install on
current PyTorch), fed BGR as pycls was trained. The default run checks the smallest models at
64x64; `-m slow` checks three RegNetX and three RegNetY of each source at 224x224.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
torchvision = pytest.importorskip("torchvision")
from safetensors.torch import save_file  # noqa: E402

import regnet_keras  # noqa: E402
from regnet_keras.weights import pytorch as pytorch_weights  # noqa: E402
from tests import pytorch_helpers as helpers  # noqa: E402

TOLERANCE = 2e-4  # of the logit scale, float32


def save_both(state_dict, directory, stem):
    """The state dict as torch.save and safetensors files, both written by the library."""
    pth, safetensors = directory / f"{stem}.pth", directory / f"{stem}.safetensors"
    torch.save(state_dict, pth)
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(safetensors))
    return str(pth), str(safetensors)


def assert_same_tensors(first, second):
    """Both files read to the same tensors under the same names."""
    a, b = (pytorch_weights.read_pytorch_weights(path) for path in (first, second))
    assert a.config == b.config and a.classes == b.classes
    assert a.canonical.tensors.keys() == b.canonical.tensors.keys()
    for layer, weights in a.canonical.tensors.items():
        for weight, value in weights.items():
            np.testing.assert_array_equal(value, b.canonical.tensors[layer][weight])


def check_import(library, name, size, tmp_path, layout_files=True):
    reference = helpers.reference_model(library, name)
    pixels = helpers.images(size)
    expected = helpers.torch_logits(reference, pixels)
    pth, safetensors = save_both(reference.state_dict(), tmp_path, name)
    assert_same_tensors(pth, safetensors)
    model = regnet_keras.from_pytorch(safetensors, input_shape=(size, size, 3),
                                      classifier_activation=None)
    difference = helpers.relative_difference(model.predict(pixels, verbose=0), expected)
    assert difference <= TOLERANCE, f"{library} {name}: {difference:.2e}"
    origin = regnet_keras.design_of_model(model).origin
    assert origin["library"] == library and origin["file"] == f"{name}.safetensors"
    return model


def check_pycls_import(timm_name, size, tmp_path):
    """A pycls checkpoint ({"model_state": ...} with optimizer state, BGR stem) imports to a
    model that takes RGB: its logits on RGB images equal the network's on BGR images."""
    reference = helpers.reference_model("timm", timm_name)
    pixels = helpers.images(size)
    expected = helpers.torch_logits(reference, pixels, bgr=True)
    checkpoint = {"epoch": 100, "model_state": helpers.pycls_state_dict(reference.state_dict()),
                  "optimizer_state": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]},
                  "cfg": "MODEL:\n  TYPE: regnet\n"}
    path = tmp_path / f"{timm_name}_dds_8gpu.pyth"
    torch.save(checkpoint, path)
    model = regnet_keras.from_pytorch(str(path), input_shape=(size, size, 3),
                                      classifier_activation=None)
    outputs = model.predict(pixels, verbose=0)
    assert helpers.relative_difference(outputs, expected) <= TOLERANCE
    # Without the flip the model would compute the network on RGB input: not the same, by well
    # over the tolerance (RegNetX-400MF's random network: 63x at 224x224).
    rgb = helpers.torch_logits(reference, pixels)
    assert helpers.relative_difference(outputs, rgb) > 10 * TOLERANCE
    assert regnet_keras.design_of_model(model).origin["layout"] == "pycls"


# torchvision's layout is checked in the default run by the round trip below and by the named
# weights download (tests/test_pytorch_weights_registry.py), on regnet_y_400mf.
@pytest.mark.parametrize("library,name", [("timm", "regnetx_002"), ("timm", "regnety_002")])
def test_small_models_import_with_the_same_logits(library, name, tmp_path):
    check_import(library, name, 64, tmp_path)


def test_pycls_checkpoint_imports_as_an_rgb_model(tmp_path):
    check_pycls_import("regnety_002", 64, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("library,name", [
    ("torchvision", "regnet_x_400mf"),  # group widths differ from pycls' X-400MF
    ("torchvision", "regnet_x_800mf"),
    ("torchvision", "regnet_x_1_6gf"),
    ("torchvision", "regnet_y_400mf"),
    ("torchvision", "regnet_y_800mf"),  # group widths differ from pycls' Y-800MF
    ("torchvision", "regnet_y_8gf"),  # group widths differ from pycls' Y-8.0GF
    ("timm", "regnetx_002"), ("timm", "regnetx_004"), ("timm", "regnetx_006"),
    ("timm", "regnety_002"), ("timm", "regnety_004"), ("timm", "regnety_006"),
])
def test_models_import_with_the_same_logits_at_224(library, name, tmp_path):
    check_import(library, name, 224, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("timm_name", ["regnetx_002", "regnetx_004", "regnetx_008",
                                       "regnety_002", "regnety_004", "regnety_008"])
def test_pycls_checkpoints_import_at_224(timm_name, tmp_path):
    check_pycls_import(timm_name, 224, tmp_path)


def test_torchvision_group_width_variants_are_read_from_the_tensors():
    """regnet_x_400mf is not pycls' X-400MF: its widths and group widths come from its tensors,
    and the parameter count of the design read back is torchvision's."""
    for name, zoo_name in (("regnet_x_400mf", "RegNetX004"), ("regnet_y_800mf", "RegNetY008"),
                           ("regnet_y_8gf", "RegNetY080")):
        reference = torchvision.models.get_model(name)
        weights = pytorch_weights.read_pytorch_weights(reference.state_dict())
        assert weights.config != regnet_keras.get_config(zoo_name).to_anynet()
        params = sum(p.numel() for p in reference.parameters())
        assert regnet_keras.complexity(weights.config).params == params, name


def test_seer_checkpoint_imports(tmp_path):
    reference = helpers.reference_model("timm", "regnety_002")
    checkpoint = helpers.seer_checkpoint(reference.state_dict())
    # The layout is the one timm's own SEER converter reads back.
    from timm.models.regnet import _filter_fn
    converted = _filter_fn(checkpoint)
    assert converted.keys() == reference.state_dict().keys()
    path = tmp_path / "seer_regnety_002.torch"
    torch.save(checkpoint, path)
    pixels = helpers.images(64)
    model = regnet_keras.from_pytorch(str(path), input_shape=(64, 64, 3),
                                      classifier_activation=None)
    assert helpers.relative_difference(model.predict(pixels, verbose=0),
                                       helpers.torch_logits(reference, pixels)) <= TOLERANCE
    assert regnet_keras.design_of_model(model).origin["library"].startswith("classy-vision")


@pytest.fixture(scope="module")
def imported_y002():
    reference = helpers.reference_model("timm", "regnety_002")
    model = regnet_keras.from_pytorch(reference.state_dict(), input_shape=(64, 64, 3),
                                      classifier_activation=None)
    return reference, model


@pytest.mark.parametrize("extension", [".safetensors", ".pth"])
def test_to_pytorch_round_trips_through_timm_and_torchvision(imported_y002, tmp_path, extension):
    reference, model = imported_y002
    pixels = helpers.images(64)
    expected = helpers.torch_logits(reference, pixels)

    timm_file = regnet_keras.to_pytorch(model, str(tmp_path / f"timm{extension}"), "timm")
    fresh = timm.create_model("regnety_002").eval()
    fresh.load_state_dict(_load(timm_file), strict=True)
    assert helpers.relative_difference(helpers.torch_logits(fresh, pixels), expected) <= 1e-5

    # torchvision's RegNet class built from the design the Keras model reports.
    from torchvision.models.regnet import BlockParams, RegNet
    config = regnet_keras.design_of_model(model).config
    params = BlockParams(list(config.stage_depths), list(config.stage_widths),
                         list(config.stage_group_widths), list(config.stage_bottlenecks),
                         list(config.stage_strides), config.se_ratio)
    torchvision_model = RegNet(params, num_classes=1000).eval()
    torchvision_file = regnet_keras.to_pytorch(model, str(tmp_path / f"tv{extension}"))
    torchvision_model.load_state_dict(_load(torchvision_file), strict=True)
    assert helpers.relative_difference(helpers.torch_logits(torchvision_model, pixels),
                                       expected) <= 1e-5


def test_to_pytorch_writes_pycls_checkpoints_in_bgr(imported_y002, tmp_path):
    reference, model = imported_y002
    path = regnet_keras.to_pytorch(model, str(tmp_path / "model.pyth"), "pycls")
    checkpoint = torch.load(path, weights_only=True)
    expected_keys = set(helpers.pycls_state_dict(reference.state_dict()))
    assert set(checkpoint["model_state"]) == expected_keys
    # pycls feeds BGR: its stem kernel is ours with the input channels reversed.
    np.testing.assert_array_equal(checkpoint["model_state"]["stem.conv.weight"].numpy(),
                                  reference.state_dict()["stem.conv.weight"].numpy()[:, ::-1])
    again = regnet_keras.from_pytorch(path, input_shape=(64, 64, 3), classifier_activation=None)
    pixels = helpers.images(64)
    np.testing.assert_allclose(again.predict(pixels, verbose=0), model.predict(pixels, verbose=0),
                               rtol=0, atol=1e-6)


def test_imported_weights_fill_the_zoo_model_of_their_architecture(tmp_path):
    reference = helpers.reference_model("timm", "regnetx_002")
    path = tmp_path / "regnetx_002.safetensors"
    save_file(reference.state_dict(), str(path))
    model = regnet_keras.RegNetX002(weights=str(path), input_shape=(64, 64, 3),
                                    classifier_activation=None)
    pixels = helpers.images(64)
    assert helpers.relative_difference(model.predict(pixels, verbose=0),
                                       helpers.torch_logits(reference, pixels)) <= TOLERANCE
    # The origin travels through regnet_keras' own weights file.
    saved = str(tmp_path / "saved.h5")
    regnet_keras.save_weights(model, saved)
    restored = regnet_keras.RegNetX002(weights=saved, input_shape=(64, 64, 3))
    assert regnet_keras.design_of_model(restored).origin["file"] == "regnetx_002.safetensors"
    with pytest.raises(regnet_keras.PyTorchWeightsError, match="another architecture"):
        regnet_keras.RegNetY002(weights=str(path))


def _load(path):
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        return load_file(path)
    return torch.load(path, weights_only=True)
