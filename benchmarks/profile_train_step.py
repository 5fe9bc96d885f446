"""Where a training (or inference) step's time goes, by op category, for regnet_keras and for
PyTorch.

    python -m benchmarks.profile_train_step [--models RegNetX002,RegNetY002] [--sizes 128,224]
        [--mode train|predict]

For each model and input size (batch 32, 100 classes, SGD with Nesterov momentum, in-memory data,
as in benchmarks.train_throughput), profiles a few training steps of:
  TensorFlow  Keras `fit` under the TensorFlow profiler, with regnet_keras' fused batch
              normalization and (--keras_batch_norm) with Keras' own; every op of the step is
              attributed to a category from its name (its Keras layer, forward or gradient_tape).
              Grappler folds a ReLU that follows a fused batch norm into it (FusedBatchNormEx),
              so there the ReLU's time is in the batch-norm rows.
  PyTorch     the same architecture (benchmarks.pytorch_regnet), channels_last, under
              torch.profiler; forward ops are attributed by module, backward ops by autograd node.
With --mode predict the step is one batch of inference instead, each framework as
benchmarks.train_throughput times it: regnet_keras.inference.predict, which folds batch
normalization into the convolutions, against PyTorch's model.eval() under torch.no_grad() with
the Keras model's normalisation and softmax around it; the batch-norm rows then hold what is
left of batch normalization after folding (nothing, in TensorFlow).
The table gives milliseconds per step and share of the op time for each category, side by side,
with each step's wall and CPU time (all threads; the fairer figure on a busy machine).

TensorFlow runs each variant with one inter-op thread here, so that ops run one at a time as
PyTorch's do and their times add up to the step (each op still uses every core). Profiling adds
overhead to both frameworks; compare categories, not the totals with train_throughput's.
"""

import collections
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["RegNetX002", "RegNetY002"], "Zoo models to profile.")
flags.DEFINE_list("sizes", ["128", "224"], "Input sizes.")
flags.DEFINE_enum("mode", "train", ["train", "predict"], "Profile training steps or inference "
                  "batches.")
flags.DEFINE_integer("batch_size", 32, "Images per step.")
flags.DEFINE_integer("steps", 4, "Profiled training steps (the table shows their mean).")
flags.DEFINE_integer("warmup_steps", 2, "Untimed steps before profiling.")
flags.DEFINE_bool("keras_batch_norm", True,
                  "Also profile regnet_keras with Keras' own (unfused) batch normalization.")
flags.DEFINE_integer("inter_op_threads", 1,
                     "TensorFlow inter-op threads (0: TensorFlow's default).")
flags.DEFINE_bool("pytorch", True, "Also profile PyTorch (if torch is installed).")
flags.DEFINE_string("worker", None, "Internal: profile one framework:model:size, print JSON.")

CLASSES = 100
CATEGORIES = (
    ("input", "input normalisation"),
    ("conv_forward", "conv forward (stem, 1x1)"),
    ("conv_grad_input", "conv grad input"),
    ("conv_grad_filter", "conv grad filter"),
    ("conv_backward", "conv backward (input + filter)"),
    ("grouped_forward", "grouped conv forward"),
    ("grouped_backward", "grouped conv backward"),
    ("bn_forward", "batch norm forward"),
    ("bn_backward", "batch norm backward"),
    ("elementwise", "ReLU, add, pad (fwd + bwd)"),
    ("se", "SE: pool, 1x1 convs, sigmoid, multiply"),
    ("head_loss", "head and loss"),
    ("optimizer", "optimizer"),
    ("other", "other"),
)
# Rows that only one framework reports separately; PyTorch computes both conv gradients in one op.
TF_ONLY = ("conv_grad_input", "conv_grad_filter")


# ---------------------------------------------------------------- TensorFlow

def _layer_kinds(model):
    """Keras layer name -> category stem ("conv", "grouped", "bn", "se", "elementwise", "head",
    "input")."""
    kinds = {}
    for layer in model.layers:
        name, kind = layer.name, type(layer).__name__
        if "_se_" in name:
            kinds[name] = "se"
        elif kind == "Conv2D":
            kinds[name] = "grouped" if layer.groups > 1 else "conv"
        elif kind == "BatchNormalization":
            kinds[name] = "bn"
        elif kind in ("Dense", "GlobalAveragePooling2D", "Activation"):
            kinds[name] = "head"
        elif kind == "Rescaling":
            kinds[name] = "input"
        else:  # ReLU, Add, ZeroPadding2D, Input
            kinds[name] = "elementwise"
    return kinds


def _tf_category(op_name, op_type, kinds):
    backward = "gradient_tape/" in op_name
    parts = op_name.split("/")
    for part in parts:
        # Keras 3 name scopes repeat a layer's name with a "_<n>" suffix.
        layer = part if part in kinds else re.sub(r"_\d+$", "", part)
        kind = kinds.get(layer)
        if kind is None:
            continue
        if kind == "elementwise" and "Conv2D" in op_type:
            # Grappler fused a convolution with the ReLU (and Add) after it, and the fused op
            # took that layer's name: "<p>_relu" follows "<p>_conv"; a block's "out_relu"
            # follows its last 1x1 convolution.
            kind = kinds.get(layer.removesuffix("_relu") + "_conv", "conv")
        if kind == "conv":
            if "BackpropInput" in op_type:
                return "conv_grad_input"
            if "BackpropFilter" in op_type:
                return "conv_grad_filter"
            return "conv_backward" if backward else "conv_forward"
        if kind == "grouped":
            return "grouped_backward" if backward else "grouped_forward"
        if kind == "bn":
            return "bn_backward" if backward else "bn_forward"
        return {"se": "se", "head": "head_loss", "elementwise": "elementwise",
                "input": "input"}[kind]
    if any(part.lower() in ("sgd", "optimizer") for part in parts):
        return "optimizer"
    if op_name.startswith(("compile_loss", "StatefulPartitionedCall/compile_loss")) or (
            "compile_loss" in op_name):
        return "head_loss"
    if op_type == "AddN" and parts[-1].startswith("AddN"):
        # Gradients summed where a tensor feeds two layers: the residual branches.
        return "elementwise"
    return "other"


def _read_xspace(log_dir):
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    path = sorted(glob.glob(os.path.join(log_dir, "**", "*.xplane.pb"), recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as file:
        space.ParseFromString(file.read())
    return space


def _tf_op_times(space):
    """(op name, op type, milliseconds) for every TensorFlow op executed on the host."""
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                # Op events are named "<op name>:<op type>"; the executor's own are not ops.
                if ":" not in name or name.startswith(("ExecutorState", "Threadpool")):
                    continue
                op_name, op_type = name.rsplit(":", 1)
                yield op_name, op_type, event.duration_ps / 1e9


def profile_tensorflow(model_name, size, fused):
    # regnet_keras before TensorFlow, as users import it: it turns on TensorFlow's oneDNN kernels.
    import regnet_keras
    import numpy as np
    import tensorflow as tf
    import keras
    from regnet_keras.tf_speedups import fused_batch_norm
    model = regnet_keras.build_model(model_name, classes=CLASSES, input_shape=(size, size, 3))
    if FLAGS.mode == "predict":
        return _profile_tensorflow_predict(model, size)
    fused_batch_norm.enable(model, fused)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                  loss=keras.losses.SparseCategoricalCrossentropy())
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (FLAGS.batch_size, size, size, 3)).astype("float32")
    labels = rng.integers(0, CLASSES, FLAGS.batch_size)
    data = tf.data.Dataset.from_tensors((images, labels)).repeat()
    model.fit(data, steps_per_epoch=FLAGS.warmup_steps, epochs=1, verbose=0)
    totals, wall, cpu = _profile_tensorflow_steps(
        model, lambda: model.fit(data, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0))
    totals["conv_backward"] += totals["conv_grad_input"] + totals["conv_grad_filter"]
    return totals, wall, cpu


def _profile_tensorflow_predict(model, size):
    import numpy as np
    from regnet_keras import inference
    images = np.random.default_rng(0).uniform(0, 255, (FLAGS.batch_size, size, size, 3))
    images = images.astype("float32")
    for _ in range(FLAGS.warmup_steps):
        inference.predict(model, images, batch_size=FLAGS.batch_size)

    def run_steps():
        for _ in range(FLAGS.steps):
            inference.predict(model, images, batch_size=FLAGS.batch_size)

    return _profile_tensorflow_steps(model, run_steps)


def _profile_tensorflow_steps(model, run_steps):
    """(ms per step by category, wall ms per step, CPU ms per step) of run_steps(), which runs
    FLAGS.steps steps, under the TensorFlow profiler."""
    import tensorflow as tf
    kinds = _layer_kinds(model)
    with tempfile.TemporaryDirectory() as log_dir:
        tf.profiler.experimental.start(log_dir)
        start, cpu_start = time.perf_counter(), time.process_time()
        run_steps()
        wall = (time.perf_counter() - start) * 1000 / FLAGS.steps
        cpu = (time.process_time() - cpu_start) * 1000 / FLAGS.steps
        tf.profiler.experimental.stop()
        space = _read_xspace(log_dir)
    totals = collections.Counter()
    for op_name, op_type, ms in _tf_op_times(space):
        totals[_tf_category(op_name, op_type, kinds)] += ms / FLAGS.steps
    return totals, wall, cpu


# ---------------------------------------------------------------- PyTorch

def _annotate_modules(model, torch):
    """Wraps each leaf module's forward in a profiler range named after its category."""
    from benchmarks.pytorch_regnet import SqueezeExcite

    def category(module):
        if isinstance(module, SqueezeExcite):
            return "se"
        if isinstance(module, torch.nn.Conv2d):
            return "grouped_forward" if module.groups > 1 else "conv_forward"
        if isinstance(module, torch.nn.BatchNorm2d):
            return "bn_forward"
        if isinstance(module, torch.nn.Linear):
            return "head_loss"
        if isinstance(module, torch.nn.ReLU):
            return "elementwise"
        return None

    def enter(name):
        def hook(module, inputs):
            module._profile_range = torch.autograd.profiler.record_function(name)
            module._profile_range.__enter__()
        return hook

    def leave(module, inputs, output):
        module._profile_range.__exit__(None, None, None)

    # Modules inside SE are counted by SE's own range.
    inside_se = {id(child) for se in model.modules() if isinstance(se, SqueezeExcite)
                 for child in se.modules() if child is not se}
    for module in model.modules():
        name = category(module)
        if name is not None and id(module) not in inside_se:
            module.register_forward_pre_hook(enter(f"category:{name}"))
            module.register_forward_hook(leave)


def _shapes(event):
    """Input shapes of the first aten op under an autograd node (its backward kernel)."""
    for child in event.cpu_children:
        if child.name.startswith("aten::") and child.input_shapes:
            return child.input_shapes
        shapes = _shapes(child)
        if shapes:
            return shapes
    return []


def _torch_category(event):
    name = event.name
    if name.startswith("category:"):
        return name[len("category:"):]
    if name.startswith("Optimizer."):
        return "optimizer"
    if not name.startswith("autograd::engine::evaluate_function: "):
        if name in ("aten::mean", "aten::linear", "aten::cross_entropy_loss", "aten::softmax"):
            return "head_loss"
        if name in ("aten::sub", "aten::div"):  # --mode predict's normalisation
            return "input"
        if name in ("aten::relu", "aten::relu_", "aten::add", "aten::add_"):
            return "elementwise"
        return "other"
    node = name.split(": ", 1)[1]
    shapes = _shapes(event)
    # SE works on pooled (N, C, 1, 1) tensors; its gradients arrive with that shape.
    pooled = bool(shapes) and len(shapes[0]) == 4 and shapes[0][2:] == [1, 1]
    if node.startswith("Convolution"):
        if pooled:
            return "se"
        # convolution_backward(grad_output, input, weight, ...): grouped when the weight sees
        # fewer input channels than the input has.
        grouped = len(shapes) >= 3 and len(shapes[2]) == 4 and shapes[2][1] != shapes[1][1]
        return "grouped_backward" if grouped else "conv_backward"
    if node.startswith("NativeBatchNorm"):
        return "bn_backward"
    if node.startswith(("Mul", "Sigmoid")) or (pooled and node.startswith(("Relu", "Threshold"))):
        return "se"
    if node.startswith("Mean"):  # the SE pool keeps (N, C, 1, 1); the head's pool is (N, C)
        return "head_loss" if shapes and len(shapes[0]) == 2 else "se"
    if node.startswith(("Addmm", "NllLoss", "LogSoftmax", "TBackward")):
        return "head_loss"
    if node.startswith(("Relu", "Threshold", "Add")):
        return "elementwise"
    return "other"


def profile_pytorch(model_name, size):
    import torch
    import regnet_keras
    from benchmarks.pytorch_regnet import RegNet
    torch.manual_seed(0)
    model = RegNet(regnet_keras.get_config(model_name), CLASSES).to(
        memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, nesterov=True)
    images = torch.rand(FLAGS.batch_size, 3, size, size).to(memory_format=torch.channels_last)
    labels = torch.randint(0, CLASSES, (FLAGS.batch_size,))

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()

    from regnet_keras.preprocessing import IMAGENET_MEAN, IMAGENET_STD
    pixels = images * 255
    mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1) * 255

    def predict_step():
        # The Keras model's work: normalise 0-255 pixels, end in a softmax.
        with torch.no_grad():
            model((pixels - mean) / std).softmax(1)

    if FLAGS.mode == "predict":
        model.eval()
    step = train_step if FLAGS.mode == "train" else predict_step

    for _ in range(FLAGS.warmup_steps):
        step()
    _annotate_modules(model, torch)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                record_shapes=True) as profile:
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(FLAGS.steps):
            step()
        wall = (time.perf_counter() - start) * 1000 / FLAGS.steps
        cpu = (time.process_time() - cpu_start) * 1000 / FLAGS.steps
    totals = collections.Counter()
    for event in profile.events():
        if event.cpu_parent is None:  # top-level: its inclusive time counts once
            totals[_torch_category(event)] += event.cpu_time_total / 1000 / FLAGS.steps
    return totals, wall, cpu


# ---------------------------------------------------------------- table

def _print_table(model_name, size, columns):
    print(f"\n{model_name} {size}x{size}, batch {FLAGS.batch_size}, {FLAGS.mode}: ms per step "
          "(share of op time)")
    header = f"{'category':40s}" + "".join(f"{title:>22s}" for title, *_ in columns)
    print(header)
    print("-" * len(header))
    for key, label in CATEGORIES:
        cells = []
        for title, totals, *_ in columns:
            if key in TF_ONLY and title.startswith("PyTorch"):
                cells.append(f"{'(in conv backward)':>22s}")
                continue
            total = sum(v for k, v in totals.items() if k not in TF_ONLY)
            ms = totals.get(key, 0.0)
            cells.append(f"{ms:12.1f} ({100 * ms / total:4.1f}%)")
        print(f"{label:40s}" + "".join(cells))
    print(f"{'sum of op time':40s}" + "".join(
        f"{sum(v for k, v in t.items() if k not in TF_ONLY):12.1f}{'':10s}"
        for _, t, *_ in columns))
    print(f"{'step wall time while profiled':40s}" + "".join(
        f"{wall:12.1f}{'':10s}" for _, _, wall, _ in columns))
    print(f"{'step CPU time (all threads)':40s}" + "".join(
        f"{cpu:12.1f}{'':10s}" for *_, cpu in columns))


def _have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def _run_worker(spec):
    framework, model_name, size = spec.split(":")
    if framework.startswith("tensorflow"):
        # regnet_keras before TensorFlow, as users import it: it turns on TensorFlow's oneDNN
        # kernels, which TensorFlow enables by itself only on AVX-512 VNNI CPUs.
        import regnet_keras  # noqa: F401
        import tensorflow as tf
        if FLAGS.inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
        totals, wall, cpu = profile_tensorflow(model_name, int(size),
                                               fused=framework == "tensorflow_fused_bn")
    else:
        totals, wall, cpu = profile_pytorch(model_name, int(size))
    print("RESULT " + json.dumps({"totals": totals, "wall": wall, "cpu": cpu}))


def _profile(framework, model_name, size):
    """Profiles in a process of its own: TensorFlow's and PyTorch's thread pools never meet."""
    command = [sys.executable, "-m", "benchmarks.profile_train_step",
               f"--worker={framework}:{model_name}:{size}"] + [
        FLAGS[name].serialize() for name in (
            "mode", "batch_size", "steps", "warmup_steps", "inter_op_threads")]
    # OpenMP threads (PyTorch's) otherwise spin while they wait: on a machine whose cores are
    # busy with other work, the spinning multiplies PyTorch's op times several-fold.
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    environment.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
            return collections.Counter(result["totals"]), result["wall"], result["cpu"]
    reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise RuntimeError(f"profiling {framework} {model_name} {size} failed: {reason}")


def main(_):
    if FLAGS.worker:
        _run_worker(FLAGS.worker)
        return
    use_torch = FLAGS.pytorch and _have_torch()
    if FLAGS.pytorch and not use_torch:
        print("torch is not installed (pip install torch==2.13.0): PyTorch column skipped.")
    print(f"{os.cpu_count()} CPU cores; TensorFlow inter-op threads: "
          f"{FLAGS.inter_op_threads or 'default'}")
    for model_name in FLAGS.models:
        for size in (int(s) for s in FLAGS.sizes):
            title = "Keras 3, fused BN" if FLAGS.mode == "train" else "Keras 3, folded BN"
            columns = [(title,) + _profile("tensorflow_fused_bn", model_name, size)]
            if FLAGS.keras_batch_norm and FLAGS.mode == "train":
                columns.append(("Keras 3, Keras BN",) + _profile("tensorflow_keras_bn",
                                                                  model_name, size))
            if use_torch:
                columns.append(("PyTorch CPU",) + _profile("pytorch", model_name, size))
            _print_table(model_name, size, columns)


if __name__ == "__main__":
    app.run(main)
