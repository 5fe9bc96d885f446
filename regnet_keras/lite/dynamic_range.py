"""Dynamic-range files with the PAD of symmetric padding fused, as in float and int8 files.

A RegNet's stride-2 3x3 convolutions pad one pixel on every side (the reference code's
padding), which TFLite writes as a PAD op before the CONV_2D. XNNPACK fuses that PAD into a
float or int8 convolution, but not into a dynamically quantized one: there, it puts a
conversion of the padded tensor to int8 (QD8) between the two, and the PAD stays a separate
copy of the activation. LiteRT's op profiler (`op_profile`) on RegNetX002 at 224x224, two
threads, against keras.applications' dynamic-range file (which pads asymmetrically, inside the
convolution):

    node type                          keras.applications   regnet_keras   floated here
    Convolution QD8 (int8 weights)      16  1.105 ms         16  1.115 ms   12  0.655 ms
    Convolution F32                      2  0.383 ms          2  0.369 ms    6  0.998 ms
    Constant Pad                         -                    4  0.562 ms    -
    Convert F32 -> QD8                  16  0.334 ms         16  0.287 ms   12  0.107 ms
    whole file                              4.851 ms             5.430 ms       4.848 ms

So the convolutions that read a PAD keep float32 kernels when that is faster: XNNPACK then fuses
the PAD, and no input conversion is needed, but the convolution multiplies in float32. The
float convolution does 9 x (group width) / 4 multiply-adds per input value at stride 2, against
the two extra passes over its input (PAD, conversion) of the quantized one, so narrow groups
gain and wide ones lose. Measured the same way (whole file, ms per invocation, keras.applications
/ regnet_keras with PADs / floated):

    RegNetY006, group width 16:   13.423 / 13.870 / 13.259 ms (floated)
    RegNetX006, group width 24:   12.596 / 13.298 / 13.533 ms (kept quantized)

so kernels of up to 16 input channels per group are floated (`MAX_FLOATED_GROUP_WIDTH`). Their
values are the int8 values times their per-channel scales, exactly the numbers the dynamically
quantized kernel multiplied by, so the file computes what it did, minus the rounding of those
convolutions' inputs to int8. In RegNetX002 these are the four stages' first grouped
convolutions: 4% of the file's bytes.
"""

from __future__ import annotations

import numpy as np

# Widest group (input channels per group of a kernel) whose padded convolution is floated.
MAX_FLOATED_GROUP_WIDTH = 16


def float_padded_convolutions(model_content: bytes) -> bytes:
    """The dynamic-range file with float32 kernels for every CONV_2D whose input is a PAD and
    whose groups are at most MAX_FLOATED_GROUP_WIDTH channels wide."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_content))
    codes = [code.builtinCode or code.deprecatedBuiltinCode for code in model.operatorCodes]
    operator = schema.BuiltinOperator
    for subgraph in model.subgraphs:
        padded = {output for op in subgraph.operators
                  if codes[op.opcodeIndex] == operator.PAD for output in op.outputs}
        for op in subgraph.operators:
            if codes[op.opcodeIndex] != operator.CONV_2D or op.inputs[0] not in padded:
                continue
            kernel = subgraph.tensors[op.inputs[1]]  # [out, height, width, in per group]
            if (kernel.type != schema.TensorType.INT8  # too small to quantize: already float
                    or kernel.shape[3] > MAX_FLOATED_GROUP_WIDTH):
                continue
            buffer = model.buffers[kernel.buffer]
            values = np.frombuffer(bytes(buffer.data), np.int8).reshape(kernel.shape)
            # Per output channel (the kernel's first axis), or one for the tensor.
            per_channel = (-1,) + (1,) * (values.ndim - 1)
            scales = np.asarray(kernel.quantization.scale, np.float32).reshape(per_channel)
            zero_points = np.asarray(kernel.quantization.zeroPoint, np.float32).reshape(per_channel)
            kernel_values = (values.astype(np.float32) - zero_points) * scales
            buffer.data = np.frombuffer(kernel_values.astype(np.float32).tobytes(), np.uint8)
            kernel.type = schema.TensorType.FLOAT32
            kernel.quantization = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
