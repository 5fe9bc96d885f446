"""Reads the architecture of a RegNet from its tensors: an AnyNetConfig and the classifier width.

Stage widths, depths, group widths, bottlenecks and the SE ratio all follow from kernel shapes, so
any RegNetX/Y loads without a name, including torchvision's regnet_x_400mf, regnet_y_800mf and
regnet_y_8gf, whose group widths differ from pycls' models of those names. Strides cannot be read
from tensors: a stage whose first block projects its shortcut has stride 2 (every RegNet), one
whose first block keeps the identity shortcut has stride 1. Whatever an AnyNetConfig cannot
express (blocks of one stage that differ, SE widths off the rule round(ratio x block input
width), kernels of other sizes) is refused with the key that shows it.
"""

from __future__ import annotations

import re

from regnet_keras import layer_names as names
from regnet_keras.complexity import se_ratio_of, squeeze_excite_width
from regnet_keras.design_space import AnyNetConfig
from regnet_keras.weights.pytorch_layouts import CanonicalStateDict, StateDictLayoutError

_BLOCK_LAYER = re.compile(r"^stage(\d+)_block(\d+)_(\w+)$")


def _blocks(tensors: dict) -> dict[int, list[int]]:
    """{stage: sorted block numbers} present in the tensors."""
    found = {}
    for layer in tensors:
        match = _BLOCK_LAYER.match(layer)
        if match:
            found.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    return {stage: sorted(blocks) for stage, blocks in sorted(found.items())}


def _kernel(canonical: CanonicalStateDict, layer: str, kernel_size: int | None = None):
    weights = canonical.tensors.get(layer)
    if weights is None or "kernel" not in weights:
        raise StateDictLayoutError(f"{canonical.key(layer, 'kernel')} is missing; nothing was "
                                   "loaded.")
    kernel = weights["kernel"]
    if kernel.ndim != 4 or (kernel_size and kernel.shape[:2] != (kernel_size, kernel_size)):
        raise StateDictLayoutError(
            f"{canonical.key(layer, 'kernel')} has shape {_torch_shape(kernel)}; a RegNetX/Y "
            f"needs a {kernel_size}x{kernel_size} convolution there.")
    return kernel


def _torch_shape(kernel) -> tuple:
    return (kernel.shape[3], kernel.shape[2], kernel.shape[0], kernel.shape[1]) \
        if kernel.ndim == 4 else tuple(kernel.shape)


def _mismatch(canonical, layer, kernel, expected: str):
    raise StateDictLayoutError(
        f"{canonical.key(layer, 'kernel')} has shape {_torch_shape(kernel)}, which does not "
        f"fit {expected}; the file is damaged or not a RegNetX/Y. Nothing was loaded.")


def infer_architecture(canonical: CanonicalStateDict) -> tuple[AnyNetConfig, int | None]:
    """(AnyNetConfig, classes or None when the state dict has no classifier)."""
    stem = _kernel(canonical, names.STEM_CONV, 3)
    if stem.shape[2] != 3:
        _mismatch(canonical, names.STEM_CONV, stem, "an RGB stem (3 input channels)")
    stem_width = int(stem.shape[3])
    blocks = _blocks(canonical.tensors)
    if not blocks or list(blocks) != list(range(1, len(blocks) + 1)):
        raise StateDictLayoutError(f"the state dict's stages are {list(blocks)}; a RegNet "
                                   "needs stages 1, 2, ... without gaps.")
    widths, depths, group_widths, strides, bottlenecks = [], [], [], [], []
    se_pairs = []  # (block input width, SE width, layer) for every block with SE
    blocks_without_se = []
    in_width = stem_width
    for stage, numbers in blocks.items():
        if numbers != list(range(1, len(numbers) + 1)):
            missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
            raise StateDictLayoutError(f"stage {stage} lacks block(s) {missing}; the file is "
                                       "damaged. Nothing was loaded.")
        stage_shape = None
        for block in numbers:
            def layer(part):
                return names.block_layer(stage, block, part)
            a = _kernel(canonical, layer("a_conv"), 1)
            b = _kernel(canonical, layer("b_conv"), 3)
            c = _kernel(canonical, layer("c_conv"), 1)
            inner, width, group_width = int(a.shape[3]), int(c.shape[3]), int(b.shape[2])
            if a.shape[2] != in_width:
                _mismatch(canonical, layer("a_conv"), a, f"a block input of {in_width} channels")
            if b.shape[3] != inner or inner % group_width:
                _mismatch(canonical, layer("b_conv"), b,
                          f"a grouped 3x3 convolution of {inner} channels")
            if c.shape[2] != inner:
                _mismatch(canonical, layer("c_conv"), c, f"an inner width of {inner}")
            shape = (width, inner, group_width)
            if stage_shape is None:
                stage_shape = shape
            elif shape != stage_shape:
                raise StateDictLayoutError(
                    f"{canonical.key(layer('c_conv'), 'kernel')}: block {block} of stage {stage} "
                    f"has (width, inner width, group width) {shape}, block 1 {stage_shape}; an "
                    "AnyNet stage repeats one block, so this network cannot be built.")
            has_projection = layer("proj_conv") in canonical.tensors
            if block == 1:
                if has_projection:
                    projection = _kernel(canonical, layer("proj_conv"), 1)
                    if projection.shape[2:] != (in_width, width):
                        _mismatch(canonical, layer("proj_conv"), projection,
                                  f"a shortcut from {in_width} to {width} channels")
                elif in_width != width:
                    raise StateDictLayoutError(
                        f"{canonical.key(layer('proj_conv'), 'kernel')} is missing: block 1 of "
                        f"stage {stage} changes the width from {in_width} to {width}, so its "
                        "shortcut needs that projection. Nothing was loaded.")
                strides.append(2 if has_projection else 1)
            elif has_projection:
                raise StateDictLayoutError(
                    f"{canonical.key(layer('proj_conv'), 'kernel')}: block {block} of stage "
                    f"{stage} keeps its shape, so a RegNet gives it an identity shortcut.")
            if layer("se_reduce") in canonical.tensors:
                reduce = _kernel(canonical, layer("se_reduce"), 1)
                expand = _kernel(canonical, layer("se_expand"), 1)
                if reduce.shape[2] != inner or expand.shape[2:] != (reduce.shape[3], inner):
                    _mismatch(canonical, layer("se_expand"), expand,
                              f"squeeze-and-excitation of {inner} channels")
                se_pairs.append((in_width, int(reduce.shape[3]), layer("se_reduce")))
            else:
                blocks_without_se.append(layer("se_reduce"))
            in_width = width
        widths.append(stage_shape[0])
        depths.append(len(numbers))
        group_widths.append(stage_shape[2])
        bottlenecks.append(stage_shape[1] / stage_shape[0])
    se_ratio = _se_ratio(canonical, se_pairs, blocks_without_se)
    config = AnyNetConfig(tuple(widths), tuple(depths), tuple(group_widths), tuple(strides),
                          tuple(bottlenecks), se_ratio, stem_width)
    return config, _classes(canonical, in_width)


def _se_ratio(canonical, se_pairs, blocks_without_se) -> float:
    if not se_pairs:
        return 0.0
    if blocks_without_se:
        raise StateDictLayoutError(
            f"{canonical.key(blocks_without_se[0], 'kernel')} is missing while other blocks have "
            "squeeze-and-excitation; a RegNetY has it in every block.")
    ratio = se_ratio_of([(i, s) for i, s, _ in se_pairs])
    if ratio is not None:
        return ratio
    measured = max(se_pairs)[1] / max(se_pairs)[0]
    in_width, se_width, layer = next(
        ((i, s, l) for i, s, l in se_pairs if squeeze_excite_width(i, round(measured, 2)) != s),
        se_pairs[0])
    raise StateDictLayoutError(
        f"{canonical.key(layer, 'kernel')}: squeeze-and-excitation width {se_width} for a block "
        f"input of {in_width} follows no single ratio of the block input width, which is how "
        "RegNetY (pycls, torchvision, timm) sizes it.")


def _classes(canonical, final_width) -> int | None:
    logits = canonical.tensors.get(names.LOGITS)
    if logits is None:
        return None
    kernel = logits.get("kernel")
    if kernel is None or kernel.ndim != 2 or kernel.shape[0] != final_width:
        shape = None if kernel is None else tuple(kernel.shape[::-1])
        raise StateDictLayoutError(
            f"{canonical.key(names.LOGITS, 'kernel')} has shape {shape}; the classifier needs "
            f"(classes, {final_width}). Nothing was loaded.")
    return int(kernel.shape[1])
