"""Times the ways to train a grouped 3x3 convolution in TensorFlow, for one layer shape.

    python -m benchmarks.grouped_conv_formulations --batch 32 --size 16 --channels 368 \
        --group_width 8 --stride 1

Prints forward and forward+backward milliseconds per formulation and each one's ratio to the
fastest, so the choice rule in regnet_keras/tf_speedups/grouped_conv.py can be re-checked on any machine.
"""

import time

from absl import app, flags
import tensorflow as tf

from regnet_keras.tf_speedups.grouped_conv import grouped_conv2d

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch", 32, "Batch size.")
flags.DEFINE_integer("size", 16, "Input height and width.")
flags.DEFINE_integer("channels", 368, "Input and output channels.")
flags.DEFINE_integer("group_width", 8, "Channels per group.")
flags.DEFINE_integer("stride", 1, "Stride (1 or 2).")
flags.DEFINE_integer("repeats", 5, "Timed repetitions after one warm-up.")
flags.DEFINE_bool("include_xla", True, "Also time Keras' XLA-compiled path (slow on CPU).")


def depthwise_reduce(x, kernel, stride, groups):
    """Depthwise convolution with multiplier = outputs per group, summed within each group."""
    kh, kw, cin_g, out = kernel.shape
    m = out // groups
    depthwise = tf.reshape(tf.transpose(tf.reshape(kernel, (kh, kw, cin_g, groups, m)),
                                        (0, 1, 3, 2, 4)), (kh, kw, groups * cin_g, m))
    y = tf.nn.depthwise_conv2d(x, depthwise, (1, stride, stride, 1), "SAME")
    shape = tf.shape(y)
    y = tf.reshape(y, (shape[0], shape[1], shape[2], groups, cin_g, m))
    return tf.reshape(tf.reduce_sum(y, 4), (shape[0], shape[1], shape[2], out))


def block_diagonal(x, kernel, stride, groups):
    """A dense convolution whose kernel is zero outside the groups' diagonal blocks."""
    kh, kw, cin_g, out = kernel.shape
    m = out // groups
    per_group = tf.reshape(kernel, (kh, kw, 1, cin_g, groups, m))
    mask = tf.reshape(tf.eye(groups, dtype=kernel.dtype), (1, 1, groups, 1, groups, 1))
    dense = tf.reshape(per_group * mask, (kh, kw, groups * cin_g, out))
    return tf.nn.conv2d(x, dense, stride, "SAME")


def im2col_einsum(x, kernel, stride, groups):
    """Patches (im2col) and one batched matrix product per group."""
    kh, kw, cin_g, out = kernel.shape
    patches = tf.image.extract_patches(x, (1, kh, kw, 1), (1, stride, stride, 1), (1, 1, 1, 1),
                                       "SAME")
    shape = tf.shape(patches)
    # extract_patches orders each patch as (kh, kw, channels).
    patches = tf.reshape(patches, (shape[0], shape[1], shape[2], kh * kw, groups, cin_g))
    weights = tf.reshape(kernel, (kh * kw, cin_g, groups, out // groups))
    y = tf.einsum("nhwkgc,kcgm->nhwgm", patches, weights)
    return tf.reshape(y, (shape[0], shape[1], shape[2], out))


def split_concat(x, kernel, stride, groups):
    """One ordinary convolution per group."""
    inputs = tf.split(x, groups, axis=-1)
    kernels = tf.split(kernel, groups, axis=-1)
    return tf.concat([tf.nn.conv2d(i, k, stride, "SAME") for i, k in zip(inputs, kernels)], -1)


def formulations():
    native = lambda x, k, s, g: grouped_conv2d(x, k, s, "same", "native")  # noqa: E731
    split_gradient = lambda x, k, s, g: grouped_conv2d(  # noqa: E731
        x, k, s, "same", "split_gradient")
    rows = [("TF grouped op, native gradient", native, False),
            ("TF grouped op, split gradient", split_gradient, False),
            ("depthwise + reduce", depthwise_reduce, False),
            ("block-diagonal dense kernel", block_diagonal, False),
            ("im2col + einsum", im2col_einsum, False),
            ("im2col + einsum, XLA", im2col_einsum, True),
            ("split + conv + concat", split_concat, False)]
    if FLAGS.include_xla:
        rows.append(("XLA grouped op (Keras' path)",
                     lambda x, k, s, g: tf.nn.conv2d(x, k, s, "SAME"), True))
    return rows


def time_formulation(function, jit, x, kernel, stride, groups):
    @tf.function(jit_compile=jit)
    def forward(x):
        return function(x, kernel, stride, groups)

    @tf.function(jit_compile=jit)
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x, kernel, stride, groups)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, kernel])

    timings = []
    for step in (forward, forward_backward):
        step(x)  # trace and warm up
        start = time.perf_counter()
        for _ in range(FLAGS.repeats):
            tf.nest.map_structure(lambda t: t.numpy(), step(x))
        timings.append((time.perf_counter() - start) / FLAGS.repeats * 1000)
    return timings


def main(_):
    groups = FLAGS.channels // FLAGS.group_width
    x = tf.random.normal((FLAGS.batch, FLAGS.size, FLAGS.size, FLAGS.channels))
    kernel = tf.Variable(tf.random.normal((3, 3, FLAGS.group_width, FLAGS.channels)) * 0.1)
    print(f"B{FLAGS.batch} {FLAGS.size}x{FLAGS.size} {FLAGS.channels} channels, group width "
          f"{FLAGS.group_width} ({groups} groups), stride {FLAGS.stride}, float32")
    results = []
    for name, function, jit in formulations():
        try:
            results.append((name, *time_formulation(function, jit, x, kernel, FLAGS.stride,
                                                    groups)))
        except tf.errors.OpError as error:
            results.append((name, float("nan"), float("nan")))
            print(f"{name}: failed ({type(error).__name__})")
    best = min(r[2] for r in results if r[2] == r[2])
    print(f"{'formulation':36s} {'forward ms':>11s} {'fwd+bwd ms':>11s} {'vs best':>8s}")
    for name, forward_ms, total_ms in results:
        print(f"{name:36s} {forward_ms:11.1f} {total_ms:11.1f} {total_ms / best:7.1f}x")


if __name__ == "__main__":
    app.run(main)
