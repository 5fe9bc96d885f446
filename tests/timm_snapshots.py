"""timm RegNets with random weights (randomised BN statistics) written in the layout of their
Hugging Face Hub repositories: config.json with timm's own pretrained_cfg, and model.safetensors."""

import json
import os

from tests.pytorch_helpers import reference_model


def hub_config(name, model):
    """config.json as timm's push_to_hf_hub writes it (timm.models._hub.save_config)."""
    cfg = dict(model.pretrained_cfg)
    cfg.pop("url", None)
    cfg.pop("hf_hub_id", None)
    cfg.pop("architecture", None)
    return {"architecture": name.split(".")[0], "num_classes": model.num_classes,
            "num_features": model.num_features, "global_pool": "avg",
            "pretrained_cfg": json.loads(json.dumps(cfg))}


def write_snapshot(directory, name="regnetx_002.pycls_in1k", seed=0, image_size=None):
    """Writes the snapshot of timm model `name` (arch.tag) and returns the timm model."""
    import timm
    from safetensors.torch import save_file
    model = reference_model("timm", name, seed)
    config = hub_config(name, model)
    if image_size is not None:
        config["pretrained_cfg"]["input_size"] = [3, image_size, image_size]
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as file:
        json.dump(config, file, indent=2)
    save_file({key: value.contiguous() for key, value in model.state_dict().items()
               if not key.endswith("num_batches_tracked")},
              os.path.join(directory, "model.safetensors"))
    assert timm.is_model(name.split(".")[0])
    return model


def snapshot_files(directory):
    """{file name: bytes} of a snapshot, to serve it from a loopback Hub."""
    return {name: open(os.path.join(directory, name), "rb").read()
            for name in sorted(os.listdir(directory))}
