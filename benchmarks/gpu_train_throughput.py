"""Training throughput on one GPU: regnet_keras RegNetY016 on Keras/JAX against torchvision's regnet_y_1_6gf.

    python benchmarks/gpu_train_throughput.py                      # 224x224, batch 128, bfloat16
    python benchmarks/gpu_train_throughput.py --model RegNetY004 --batch 2 --steps 2 --size 32
                                                                   # a CPU smoke run

Each variant trains in a process of its own, one after the other (JAX reserves most of the GPU's
memory, so the two frameworks never share it), on one random batch held on the device, so the
input pipeline costs nothing:
  keras_jax      regnet_keras.RegNetY016 under KERAS_BACKEND=jax, mixed_bfloat16, a jitted
                 training step built from Keras' stateless API (model.stateless_call and
                 optimizer.stateless_apply), SGD with Nesterov momentum
  torch          torchvision.models.regnet_y_1_6gf, channels_last, torch.autocast(bfloat16),
                 the same optimizer
  torch_compile  the same model through torch.compile
The table gives training img/s over --steps timed steps after --warmup steps (the first of which
compiles), and each variant's ratio to `torch`. It needs only JAX, PyTorch, torchvision, Keras and
this repository: no TensorFlow, no absl. Every process is bounded by --variant_timeout_s, so the
whole run stays under 3 x that (8 minutes by default).
"""

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = ("keras_jax", "torch", "torch_compile")
CLASSES = 1000
# regnet_keras zoo model -> the torchvision model of the same design (pycls' RegNetY-1.6GF and
# -400MF; torchvision's 800MF and 8GF differ from pycls', see REFERENCE).
TORCHVISION_MODELS = {"RegNetY016": "regnet_y_1_6gf", "RegNetY004": "regnet_y_400mf"}


def _arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="RegNetY016", choices=sorted(TORCHVISION_MODELS),
                        help="Model pair to train (RegNetY004 for quick CPU checks).")
    parser.add_argument("--batch", type=int, default=128, help="Images per step.")
    parser.add_argument("--size", type=int, default=224, help="Input height and width.")
    parser.add_argument("--steps", type=int, default=30, help="Timed training steps.")
    parser.add_argument("--warmup", type=int, default=5,
                        help="Untimed steps first (the first one compiles).")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"Comma-separated subset of {','.join(VARIANTS)}.")
    parser.add_argument("--variant_timeout_s", type=int, default=150,
                        help="Wall-clock limit of each variant's process.")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _time_steps(step, warmup: int, steps: int, synchronize) -> dict:
    started = time.perf_counter()
    for _ in range(warmup):
        step()
    synchronize()
    warm = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize()
    finished = time.perf_counter()
    return {"warmup_s": warm - started, "step_s": (finished - warm) / steps}


def _keras_jax(args) -> dict:
    os.environ["KERAS_BACKEND"] = "jax"
    sys.path.insert(0, REPO)
    import jax
    import keras
    import numpy as np
    import regnet_keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = regnet_keras.build_model(args.model, input_shape=(args.size, args.size, 3),
                                     classes=CLASSES, classifier_activation=None)
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True)
    optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    rng = np.random.default_rng(0)
    images = jax.device_put(rng.uniform(0, 255, (args.batch, args.size, args.size, 3))
                            .astype("float32"))
    labels = jax.device_put(rng.integers(0, CLASSES, args.batch))

    def loss_and_updates(trainable, non_trainable, x, y):
        logits, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        return loss_fn(y, logits), non_trainable

    gradient_fn = jax.value_and_grad(loss_and_updates, has_aux=True)

    @jax.jit
    def train_step(state, x, y):
        trainable, non_trainable, optimizer_variables = state
        (loss, non_trainable), grads = gradient_fn(trainable, non_trainable, x, y)
        trainable, optimizer_variables = optimizer.stateless_apply(optimizer_variables, grads,
                                                                   trainable)
        return loss, (trainable, non_trainable, optimizer_variables)

    state = [[v.value for v in model.trainable_variables],
             [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables]]
    holder = {"state": state, "loss": None}

    def step():
        holder["loss"], holder["state"] = train_step(holder["state"], images, labels)

    result = _time_steps(step, args.warmup, args.steps,
                         lambda: jax.block_until_ready(holder["loss"]))
    result["device"] = str(jax.devices()[0])
    result["final_loss"] = float(holder["loss"])
    return result


def _torch(args, compiled: bool) -> dict:
    import torch
    import torchvision

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cudnn.benchmark = True
    model = getattr(torchvision.models, TORCHVISION_MODELS[args.model])(num_classes=CLASSES)
    model = model.to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    forward = torch.compile(model) if compiled else model
    generator = torch.Generator().manual_seed(0)
    # torchvision's model takes normalised input; the scale is immaterial to the timing.
    images = torch.rand((args.batch, 3, args.size, args.size), generator=generator).to(
        device, memory_format=torch.channels_last)
    labels = torch.randint(0, CLASSES, (args.batch,), generator=generator).to(device)
    holder = {"loss": None}

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(forward(images), labels)
        loss.backward()
        optimizer.step()
        holder["loss"] = loss

    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    result = _time_steps(step, args.warmup, args.steps, synchronize)
    result["device"] = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    result["final_loss"] = float(holder["loss"])
    return result


def _run_worker(args) -> None:
    if args.worker == "keras_jax":
        result = _keras_jax(args)
    else:
        result = _torch(args, compiled=args.worker == "torch_compile")
    result["images_per_s"] = args.batch / result["step_s"]
    print("RESULT " + json.dumps(result), flush=True)


def _run_variant(variant: str, args) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--worker", variant,
               "--model", args.model, "--batch", str(args.batch), "--size", str(args.size), "--steps", str(args.steps),
               "--warmup", str(args.warmup)]
    try:
        completed = subprocess.run(command, capture_output=True, text=True,
                                   timeout=args.variant_timeout_s, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"over {args.variant_timeout_s} s"}
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {completed.returncode}: {last[:160]}"}
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None) -> None:
    args = _arguments(argv)
    if args.worker:
        _run_worker(args)
        return
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"error: --variants {','.join(unknown)} unknown: choose from "
                         f"{','.join(VARIANTS)}.")
    results = {}
    for variant in variants:
        results[variant] = _run_variant(variant, args)
        print(f"{variant}: {results[variant]}", file=sys.stderr, flush=True)
    reference = results.get("torch", {}).get("images_per_s")
    print(f"{args.model} training, {args.size}x{args.size}, batch {args.batch}, bfloat16, "
          f"{args.steps} timed steps after {args.warmup}")
    print("| variant | device | img/s | ms/step | warm-up s | x torch |")
    print("|---|---|---|---|---|---|")
    for variant, result in results.items():
        if "error" in result:
            print(f"| {variant} | - | failed: {result['error']} | | | |")
            continue
        ratio = f"{result['images_per_s'] / reference:.2f}" if reference else "-"
        print(f"| {variant} | {result['device']} | {result['images_per_s']:,.1f} | "
              f"{1000 * result['step_s']:,.1f} | {result['warmup_s']:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
