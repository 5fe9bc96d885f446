"""The RegNet presets with published weights: timm's Hugging Face Hub repositories of the named
weights in regnet_keras.weights.registry (timm's own, and its copies of pycls' and torchvision's),
by timm name, with the license and top-1 their publishers give."""

from __future__ import annotations

from regnet_keras.weights import registry


def _presets() -> dict:
    presets = {}
    for entry in registry.NAMED_WEIGHTS.values():
        if entry.hub_handle:
            name = entry.hub_handle.rsplit("/", 1)[-1]
            presets[name] = {"hf_handle": entry.hub_handle, "model": entry.model,
                             "tag": entry.tag, "license": entry.license, "top1": entry.top1}
    return dict(sorted(presets.items()))


# {timm name ("regnety_040.ra3_in1k"): {"hf_handle", "model", "tag", "license", "top1"}}
PRESETS = _presets()


def names() -> list[str]:
    return list(PRESETS)


def hf_handle(name: str) -> str | None:
    preset = PRESETS.get(name)
    return preset["hf_handle"] if preset else None


def published(name: str) -> dict:
    """{"license", "top1"} the publisher gives for timm weights `name`, or {} when unknown."""
    preset = PRESETS.get(name)
    return {"license": preset["license"], "top1": preset["top1"]} if preset else {}
