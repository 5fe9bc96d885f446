"""Reference PyTorch RegNets (torchvision, timm) with random weights, and checkpoints in the layouts
no installable library writes: pycls (pycls itself does not install on current PyTorch) and
classy-vision/VISSL's SEER, both renamed from timm's tensors by the tables below, which follow
the publishers' module names (and timm's own SEER converter, which a test checks them against).
"""

import re

import numpy as np

IMAGENET_MEAN_255 = np.array([0.485, 0.456, 0.406]) * 255
IMAGENET_STD_255 = np.array([0.229, 0.224, 0.225]) * 255

# timm module -> pycls module inside a block (pycls/models/blocks.py and anynet.py names).
TIMM_TO_PYCLS = (("conv1.conv", "f.a"), ("conv1.bn", "f.a_bn"), ("conv2.conv", "f.b"),
                 ("conv2.bn", "f.b_bn"), ("se.fc1", "f.se.f_ex.0"), ("se.fc2", "f.se.f_ex.2"),
                 ("conv3.conv", "f.c"), ("conv3.bn", "f.c_bn"), ("downsample.conv", "proj"),
                 ("downsample.bn", "bn"))
# timm module -> classy-vision module inside a block.
TIMM_TO_SEER = (("conv1.conv", "f.a.0"), ("conv1.bn", "f.a.1"), ("conv2.conv", "f.b.0"),
                ("conv2.bn", "f.b.1"), ("se.fc1", "f.se.excitation.0"),
                ("se.fc2", "f.se.excitation.2"), ("conv3.conv", "f.c"),
                ("conv3.bn", "f.final_bn"), ("downsample.conv", "proj"), ("downsample.bn", "bn"))


def randomize_batch_norm(model, seed=0):
    """Random BN affine parameters and running statistics (fresh models have 1, 0, 0, 1), so
    that a mix-up of any two of them shows in the logits; returns the model in eval mode."""
    import torch
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                shape = module.weight.shape
                module.weight.copy_(torch.rand(shape, generator=generator) * 0.5 + 0.75)
                module.bias.copy_(torch.randn(shape, generator=generator) * 0.2)
                module.running_mean.copy_(torch.randn(shape, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(shape, generator=generator) * 0.5 + 0.75)
    return model.eval()


def reference_model(library, name, seed=0):
    import torch
    torch.manual_seed(seed)
    if library == "torchvision":
        import torchvision
        model = torchvision.models.get_model(name)
    else:
        import timm
        model = timm.create_model(name)
    return randomize_batch_norm(model, seed)


def images(size, count=2, seed=0):
    """0-255 RGB images, smooth enough to resemble photos rather than noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (count, size // 8 + 1, size // 8 + 1, 3))
    smooth = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)[:, :size, :size]
    return np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255).astype(np.float32)


def torch_logits(model, pixels, bgr=False):
    """Logits of a PyTorch model on 0-255 RGB images normalised with ImageNet mean/std; with
    bgr=True the normalised images are fed with their channels reversed, as pycls was fed."""
    import torch
    normalised = (pixels - IMAGENET_MEAN_255) / IMAGENET_STD_255
    if bgr:
        normalised = normalised[..., ::-1]
    batch = torch.from_numpy(np.ascontiguousarray(normalised, np.float32).transpose(0, 3, 1, 2))
    with torch.no_grad():
        return model(batch).numpy()


def relative_difference(outputs, reference):
    return float(np.abs(outputs - reference).max() / np.abs(reference).max())


def _rename_blocks(key, table):
    match = re.match(r"^(s\d+\.b\d+\.)(.+)$", key)
    if not match:
        return key
    prefix, rest = match.groups()
    for timm_name, other in table:
        if rest.startswith(timm_name + "."):
            return prefix + other + rest[len(timm_name):]
    raise KeyError(key)


def pycls_state_dict(timm_state_dict):
    """A timm RegNet's tensors under pycls' names (stem.conv, s1.b1.f.a, head.fc, ...)."""
    return {_rename_blocks(key, TIMM_TO_PYCLS): value for key, value in timm_state_dict.items()}


def seer_checkpoint(timm_state_dict):
    """A timm RegNet's tensors as a classy-vision/VISSL checkpoint (SEER's layout)."""
    trunk, heads = {}, {}
    for key, value in timm_state_dict.items():
        if key.startswith("head.fc."):
            heads[key.replace("head.fc.", "0.clf.0.")] = value
            continue
        key = key.replace("stem.conv.", "_feature_blocks.conv1.stem.0.")
        key = key.replace("stem.bn.", "_feature_blocks.conv1.stem.1.")
        key = _rename_blocks(key, TIMM_TO_SEER)
        key = re.sub(r"^s(\d+)\.b(\d+)\.", lambda m: f"_feature_blocks.res{int(m.group(1)) + 1}"
                     f".block{m.group(1)}-{int(m.group(2)) - 1}.", key)
        trunk[key] = value
    return {"classy_state_dict": {"base_model": {"model": {"trunk": trunk, "heads": heads}}},
            "phase_idx": 0}
