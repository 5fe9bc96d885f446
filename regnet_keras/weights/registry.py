"""Named pretrained PyTorch weights of the zoo models: where they are, how to check and use them.

`RegNetY016(weights="torchvision_v2")` finds its file here. Each entry gives the URL, the checksum
the publisher uses (torchvision: the first 8 hex digits of the SHA-256 in the file name; pycls
and timm publish none, so their files are checked by structure: every tensor the architecture
needs, with its shape), the license, the published ImageNet top-1 and the evaluation transform
that top-1 was measured with. Sources: torchvision/models/regnet.py (torchvision 0.29),
pycls' MODEL_ZOO.md and pycls/models/model_zoo.py, timm's regnet.py `default_cfgs` and
results/results-imagenet.csv (timm 1.0).

Files are fetched once into Keras' cache (REGNET_KERAS_CACHE_DIR overrides it), bounded in size
and checked before use (weights.download); REGNET_KERAS_PYTORCH_WEIGHTS_URL replaces every URL's
directory with a mirror.
"""

from __future__ import annotations

import dataclasses
import os

from regnet_keras.weights.origin import EvaluationTransform, WeightsOrigin
from regnet_keras.weights.pytorch_layouts import LIBRARIES

MIRROR_ENVIRONMENT = "REGNET_KERAS_PYTORCH_WEIGHTS_URL"
CACHE_DIR_ENVIRONMENT = "REGNET_KERAS_CACHE_DIR"
HASH_KINDS = ("sha256", "sha256_prefix", "none")


@dataclasses.dataclass(frozen=True)
class NamedWeights:
    model: str  # our zoo name
    tag: str  # what weights= takes
    layout: str  # pytorch_layouts.LAYOUTS
    source_name: str  # the publisher's name
    url: str
    hash_kind: str  # HASH_KINDS
    hash: str  # hex digits ("" when the publisher gives none)
    license: str
    top1: float  # published ImageNet-1k top-1 (%), with `transform`
    transform: EvaluationTransform
    # False where the publisher's architecture is not our zoo model of that name (torchvision's
    # group-width variants); regnet_keras.from_pytorch builds those.
    matches_zoo: bool = True
    # The same weights in timm's copy on the Hugging Face Hub (config.json + model.safetensors),
    # which regnet_keras.from_preset and tools.train --weights take; None where timm has none.
    hub_handle: str | None = None

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1] if self.layout != "timm" else \
            f"{self.source_name}.safetensors"

    def origin(self, path: str | None = None, sha256: str | None = None) -> WeightsOrigin:
        return WeightsOrigin(library=LIBRARIES[self.layout], layout=self.layout,
                             file=os.path.basename(path) if path else self.file_name,
                             sha256=sha256, tag=self.tag, source_name=self.source_name,
                             license=self.license, top1=self.top1, transform=self.transform)

    def row(self) -> dict:
        values = dataclasses.asdict(self)
        values.update(values.pop("transform"))
        return values


TORCHVISION_LICENSE = "BSD-3-Clause (torchvision)"
SWAG_LICENSE = "CC-BY-NC-4.0 (SWAG, non-commercial)"
TORCHVISION_V1 = EvaluationTransform(256, 224, "bilinear")
TORCHVISION_V2 = EvaluationTransform(232, 224, "bilinear")
PYCLS_TRANSFORM = EvaluationTransform(256, 224, "bilinear")  # MODEL_ZOO.md: (256/224) x 224
_DOWNLOAD_PYTORCH = "https://download.pytorch.org/models/"
_PYCLS = "https://dl.fbaipublicfiles.com/pycls/dds_baselines/"

# zoo name: (torchvision name, V1 file, V1 top-1, V2 file, V2 top-1, same architecture as ours)
_TORCHVISION = {
    "RegNetX004": ("regnet_x_400mf", "adf1edd5", 72.834, "62229a5f", 74.864, False),
    "RegNetX008": ("regnet_x_800mf", "ad17e45c", 75.212, "94a99ebd", 77.522, True),
    "RegNetX016": ("regnet_x_1_6gf", "e3633e7f", 77.040, "a12f2b72", 79.668, True),
    "RegNetX032": ("regnet_x_3_2gf", "f342aeae", 78.364, "7071aa85", 81.196, True),
    "RegNetX080": ("regnet_x_8gf", "03ceed89", 79.344, "2b70d774", 81.682, True),
    "RegNetX160": ("regnet_x_16gf", "2007eb11", 80.058, "ba3796d7", 82.716, True),
    "RegNetX320": ("regnet_x_32gf", "9d47f8d0", 80.622, "6eb8fdc6", 83.014, True),
    "RegNetY004": ("regnet_y_400mf", "c65dace8", 74.046, "e6988f5f", 75.804, True),
    "RegNetY008": ("regnet_y_800mf", "1b27b58c", 76.420, "58fc7688", 78.828, False),
    "RegNetY016": ("regnet_y_1_6gf", "b11a554e", 77.950, "0d7bc02a", 80.876, True),
    "RegNetY032": ("regnet_y_3_2gf", "b5a9779c", 78.948, "9180c971", 81.982, True),
    "RegNetY080": ("regnet_y_8gf", "d0d0e4a8", 80.032, "dc2b1b54", 82.828, False),
    "RegNetY160": ("regnet_y_16gf", "9e6ed7dd", 80.424, "3e4a00f9", 82.886, True),
    "RegNetY320": ("regnet_y_32gf", "4dee3f7a", 80.878, "8db6d4b5", 83.368, True),
}
# zoo name: (file, top-1 (%)), SWAG end-to-end fine-tuned at 384 and linear classifier at 224.
_TORCHVISION_SWAG = {
    "RegNetY160": (("regnet_y_16gf_swag-43afe44d", 86.012),
                   ("regnet_y_16gf_lc_swag-f3ec0043", 83.976)),
    "RegNetY320": (("regnet_y_32gf_swag-04fdfa75", 86.838),
                   ("regnet_y_32gf_lc_swag-e1583746", 84.622)),
}
# zoo name: (pycls name, model id, MODEL_ZOO.md top-1 error (%)).
_PYCLS_ZOO = {
    "RegNetX002": ("RegNetX-200MF", "160905981", 31.1),
    "RegNetX004": ("RegNetX-400MF", "160905967", 27.3),
    "RegNetX006": ("RegNetX-600MF", "160906442", 25.9),
    "RegNetX008": ("RegNetX-800MF", "160906036", 24.8),
    "RegNetX016": ("RegNetX-1.6GF", "160990626", 23.0),
    "RegNetX032": ("RegNetX-3.2GF", "160906139", 21.7),
    "RegNetX040": ("RegNetX-4.0GF", "160906383", 21.4),
    "RegNetX064": ("RegNetX-6.4GF", "161116590", 20.8),
    "RegNetX080": ("RegNetX-8.0GF", "161107726", 20.7),
    "RegNetX120": ("RegNetX-12GF", "160906020", 20.3),
    "RegNetX160": ("RegNetX-16GF", "158460855", 20.0),
    "RegNetX320": ("RegNetX-32GF", "158188473", 19.5),
    "RegNetY002": ("RegNetY-200MF", "176245422", 29.6),
    "RegNetY004": ("RegNetY-400MF", "160906449", 25.9),
    "RegNetY006": ("RegNetY-600MF", "160981443", 24.5),
    "RegNetY008": ("RegNetY-800MF", "160906567", 23.7),
    "RegNetY016": ("RegNetY-1.6GF", "160906681", 22.0),
    "RegNetY032": ("RegNetY-3.2GF", "160906834", 21.0),
    "RegNetY040": ("RegNetY-4.0GF", "160906838", 20.6),
    "RegNetY064": ("RegNetY-6.4GF", "160907112", 20.1),
    "RegNetY080": ("RegNetY-8.0GF", "161160905", 20.1),
    "RegNetY120": ("RegNetY-12GF", "160907100", 19.7),
    "RegNetY160": ("RegNetY-16GF", "161303400", 19.6),
    "RegNetY320": ("RegNetY-32GF", "161277763", 19.0),
}
# timm weights on the Hugging Face hub (model.safetensors) that are not copies of torchvision's
# or pycls' files: zoo name, timm name, top-1 (%) at test size, test size, crop_pct, license.
_TIMM = (
    ("RegNetY032", "regnety_032.ra_in1k", 82.728, 288, 1.0, "apache-2.0"),
    ("RegNetY040", "regnety_040.ra3_in1k", 83.044, 288, 1.0, "apache-2.0"),
    ("RegNetY064", "regnety_064.ra3_in1k", 83.720, 288, 1.0, "apache-2.0"),
    ("RegNetY080", "regnety_080.ra3_in1k", 83.926, 288, 1.0, "apache-2.0"),
    ("RegNetY120", "regnety_120.sw_in12k_ft_in1k", 85.400, 288, 1.0, "apache-2.0"),
    ("RegNetY160", "regnety_160.sw_in12k_ft_in1k", 85.986, 288, 1.0, "apache-2.0"),
    ("RegNetY160", "regnety_160.lion_in12k_ft_in1k", 85.986, 288, 1.0, "apache-2.0"),
    ("RegNetY160", "regnety_160.deit_in1k", 83.690, 288, 1.0, "apache-2.0"),
    ("RegNetY160", "regnety_160.swag_ft_in1k", 86.010, 384, 1.0, "cc-by-nc-4.0"),
    ("RegNetY160", "regnety_160.swag_lc_in1k", 83.782, 224, 0.965, "cc-by-nc-4.0"),
    ("RegNetY320", "regnety_320.swag_ft_in1k", 86.836, 384, 1.0, "cc-by-nc-4.0"),
    ("RegNetY320", "regnety_320.swag_lc_in1k", 84.546, 224, 0.965, "cc-by-nc-4.0"),
    ("RegNetY320", "regnety_320.seer_ft_in1k", 83.334, 384, 1.0, "SEER license (non-commercial)"),
)


def _build() -> dict:
    entries = []
    for model, (name, v1, top1_v1, v2, top1_v2, same) in _TORCHVISION.items():
        for tag, suffix, top1, transform in (("torchvision_v1", v1, top1_v1, TORCHVISION_V1),
                                             ("torchvision_v2", v2, top1_v2, TORCHVISION_V2)):
            entries.append(NamedWeights(
                model, tag, "torchvision", f"{name} IMAGENET1K_{tag[-2:].upper()}",
                f"{_DOWNLOAD_PYTORCH}{name}-{suffix}.pth", "sha256_prefix", suffix,
                TORCHVISION_LICENSE, top1, transform, same))
    for model, swag in _TORCHVISION_SWAG.items():
        name = _TORCHVISION[model][0]
        for tag, (file, top1), transform in (
                ("torchvision_swag_e2e_v1", swag[0], EvaluationTransform(384, 384, "bicubic")),
                ("torchvision_swag_linear_v1", swag[1], EvaluationTransform(224, 224, "bicubic"))):
            entries.append(NamedWeights(
                model, tag, "torchvision", f"{name} IMAGENET1K_{tag[12:].upper()}",
                f"{_DOWNLOAD_PYTORCH}{file}.pth", "sha256_prefix", file.rsplit("-", 1)[-1],
                SWAG_LICENSE, top1, transform))
    for model, (name, model_id, error) in _PYCLS_ZOO.items():
        entries.append(NamedWeights(
            model, "pycls", "pycls", name, f"{_PYCLS}{model_id}/{name}_dds_8gpu.pyth", "none", "",
            "MIT (pycls)", round(100.0 - error, 1), PYCLS_TRANSFORM))
    for model, name, top1, size, crop_pct, license_name in _TIMM:
        entries.append(NamedWeights(
            model, name.split(".", 1)[1], "timm", name,
            f"https://huggingface.co/timm/{name}/resolve/main/model.safetensors", "none", "",
            license_name, top1, EvaluationTransform(round(size / crop_pct), size, "bicubic")))
    return {(entry.model, entry.tag): entry for entry in entries}


def _timm_hub_name(entry: NamedWeights) -> str | None:
    """timm's name (arch.tag) of its Hub copy of `entry`: timm's own weights, every pycls file
    (stem flipped to RGB) and torchvision's V2 files (its group-width variants are `_tv`)."""
    arch = entry.model[:7].lower() + "_" + entry.model[7:]  # RegNetX002 -> regnetx_002
    if entry.layout == "timm":
        return entry.source_name
    if entry.tag == "pycls":
        return f"{arch}.pycls_in1k"
    if entry.tag == "torchvision_v2":
        return f"{arch}{'' if entry.matches_zoo else '_tv'}.tv2_in1k"
    return None


def _with_hub_handles(entries: dict) -> dict:
    return {key: dataclasses.replace(entry, hub_handle=(
        f"hf://timm/{_timm_hub_name(entry)}" if _timm_hub_name(entry) else None))
        for key, entry in entries.items()}


# {(zoo name, tag): NamedWeights}
NAMED_WEIGHTS = _with_hub_handles(_build())


def list_weights(name: str | None = None) -> list[dict]:
    """The named weights of zoo model `name` (case-insensitive), or of every model: one dict per
    entry with model, tag, layout, source_name, url, hash_kind, hash, license, top1, resize,
    crop, interpolation, matches_zoo and hub_handle."""
    if name is not None:
        from regnet_keras.zoo import get_entry
        name = get_entry(name).name
    return [entry.row() for (model, _), entry in sorted(NAMED_WEIGHTS.items())
            if name is None or model == name]


def find(model: str, tag: str) -> NamedWeights | None:
    return NAMED_WEIGHTS.get((model, tag))


def tags_of(model: str) -> list[str]:
    return sorted(tag for zoo_name, tag in NAMED_WEIGHTS if zoo_name == model)


def weights_url(entry: NamedWeights) -> str:
    mirror = os.environ.get(MIRROR_ENVIRONMENT)
    return f"{mirror.rstrip('/')}/{entry.file_name}" if mirror else entry.url


def max_file_bytes(model: str) -> int:
    """The largest file any publisher's weights of zoo model `model` can be: a state dict holds
    each parameter and batch-norm statistic as float32 and a pycls checkpoint adds the
    optimizer's momentum of each, so three times the parameters' float32 size, plus 16 MiB of
    container overhead, bounds them all. A download beyond it is abandoned."""
    from regnet_keras.complexity import complexity
    return 3 * 4 * complexity(model).params + (16 << 20)


def fetch_weights(model: str, tag: str, cache_dir: str | None = None) -> str:
    """Path of the cached file of named weights `tag` of zoo model `model`, downloaded the first
    time; its size is bounded (max_file_bytes) while it streams and its checksum, where the
    publisher gives one, is verified before it enters the cache and on every later use."""
    import http.client

    from regnet_keras.weights import download
    from regnet_keras.weights.h5 import WeightsDownloadError  # h5 imports this module
    from regnet_keras.zoo import get_entry
    model = get_entry(model).name
    entry = find(model, tag)
    if entry is None:
        raise ValueError(f"weights={tag!r} is not a named weight of {model}; its named weights "
                         f"are {tags_of(model) or 'none'} (regnet_keras.list_weights"
                         f"({model!r})).")
    url = weights_url(entry)
    cache_dir = cache_dir or os.environ.get(CACHE_DIR_ENVIRONMENT)

    def check(path, sha256):
        if entry.hash_kind == "sha256" and sha256 != entry.hash:
            return f"the file's SHA-256 {sha256[:16]}... is not the published {entry.hash[:16]}..."
        if entry.hash_kind == "sha256_prefix" and not sha256.startswith(entry.hash):
            return (f"the file's SHA-256 {sha256[:16]}... does not start with the published "
                    f"hash prefix {entry.hash}")
        return None

    try:
        return download.fetch(url, download.cache_path(entry.file_name, cache_dir),
                              max_file_bytes(model), check)
    except download.DownloadRefusedError as error:
        raise WeightsDownloadError(f"{str(error)[:-1]} ({MIRROR_ENVIRONMENT} names the "
                                   "mirror).") from error
    except (OSError, http.client.HTTPException) as error:
        raise WeightsDownloadError(
            f"could not fetch {model} weights {tag!r} from {url}: {error}\nIf this machine is "
            f"offline, download that file elsewhere, copy it here and pass its path: "
            f"{model}(weights='/path/to/{entry.file_name}') or regnet_keras.from_pytorch("
            f"'/path/to/{entry.file_name}'), or point {MIRROR_ENVIRONMENT} at a mirror.") \
            from error
