"""The layer names of every model regnet_keras builds: the one place they are defined.

Names are stable across versions, Keras 3 and tf-keras, and independent of the model's name, so
weight files, feature extraction (`model.get_layer("stage3_block1_add")`) and quantization configs
can rely on them. Stages and blocks count from 1, as in the paper.

    preprocessing                 Rescaling: 0-255 pixels -> the network's input scale
    stem_pad, stem_conv,          3x3/2 convolution to `stem_width` channels ("stem_pad" only with
    stem_bn, stem_relu              symmetric padding)
    stage{s}_block{b}_a_conv      1x1 convolution to the inner width, then _a_bn, _a_relu
    stage{s}_block{b}_b_pad       ZeroPadding2D(1) before a strided 3x3 (symmetric padding only)
    stage{s}_block{b}_b_conv      3x3 grouped convolution (stride 2 in block 1), then _b_bn, _b_relu
    stage{s}_block{b}_se_pool     Y blocks: global average pool (keepdims),
    stage{s}_block{b}_se_reduce     1x1 conv + ReLU to round(se_ratio * block input width),
    stage{s}_block{b}_se_expand     1x1 conv + sigmoid back to the inner width,
    stage{s}_block{b}_se_scale      Multiply with the 3x3 branch
    stage{s}_block{b}_c_conv      1x1 convolution to the block width, then _c_bn
    stage{s}_block{b}_proj_conv   shortcut 1x1 strided conv + _proj_bn (when the shape changes)
    stage{s}_block{b}_add         residual Add
    stage{s}_block{b}_out_relu    ReLU after the add: the block's output
    head_pool                     global average pool before the classifier
    logits                        Dense classifier (with bias), no activation
    predictions                   the classifier activation (softmax by default; absent for None)
    avg_pool / max_pool           feature pooling when include_top=False
"""

PREPROCESSING = "preprocessing"
STEM_PAD = "stem_pad"
STEM_CONV = "stem_conv"
STEM_BN = "stem_bn"
STEM_RELU = "stem_relu"
HEAD_POOL = "head_pool"
LOGITS = "logits"
PREDICTIONS = "predictions"
FEATURE_POOL = {"avg": "avg_pool", "max": "max_pool"}

# Parts of a block, in graph order; each becomes "stage{s}_block{b}_{part}".
BLOCK_PARTS = ("a_conv", "a_bn", "a_relu", "b_pad", "b_conv", "b_bn", "b_relu", "se_pool",
               "se_reduce", "se_expand", "se_scale", "c_conv", "c_bn", "proj_conv", "proj_bn",
               "add", "out_relu")


def block_prefix(stage: int, block: int) -> str:
    """Prefix of the layers of block `block` of stage `stage` (both 1-based)."""
    return f"stage{stage}_block{block}_"


def block_layer(stage: int, block: int, part: str) -> str:
    if part not in BLOCK_PARTS:
        raise ValueError(f"part={part!r} is not a block part; known parts: {BLOCK_PARTS}")
    return block_prefix(stage, block) + part
