"""Image folders of phone photos at the model's speed? Our input pipeline beside torchvision's.

    python -m benchmarks.input_pipeline [--models RegNetX002,RegNetY016] [--steps 12]

Writes (once, kept in --photo_dir) a folder of --classes x --per_class 12-megapixel JPEGs
(4032x3024, every fifth with an EXIF orientation), then for each model at 224x224, batch 32:
  first run   `tools.benchmark_input` with an empty image cache (--image_cache in a fresh
              temporary directory): the start-up decodes every photo once at reduced scale and
              builds the cache ("opened" is that time, and photos / opened the first run's rate)
  second run  the same command again: the cache is found, nothing is decoded at start-up
Each run prints the pipeline alone (ms per batch, img/s), the training step on a batch held in
memory and the step fed by the pipeline (medians of alternating rounds, see
tools/benchmark_input.py), each in a process of its own. Beside them, torchvision's ImageFolder
+ DataLoader(num_workers=2) over the same folder with the same transforms (EXIF orientation,
random-resized crop 0.08-1 with aspect 3/4-4/3 to 224, horizontal flip, PCA lighting 0.1,
float 0-255 batches of 32): its images per second alone, after its first batch.
The load average of the machine is printed before and after: timings are only comparable
within one run on a quiet machine.
"""

import os
import sys
import tempfile
import time

from absl import app, flags

from benchmarks import measurement
from benchmarks.photo_folder import write_photo_folder

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["RegNetX002", "RegNetY016"], "Zoo models to run.")
flags.DEFINE_string("photo_dir", os.path.join(tempfile.gettempdir(), "regnet_keras_photos"),
                    "Where the photo folder is written (kept for the next run).")
flags.DEFINE_integer("classes", 2, "Class folders of photos.")
flags.DEFINE_integer("per_class", 48, "Photos per class.")
flags.DEFINE_integer("image_size", 224, "Training resolution.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("steps", 12, "Timed steps of each tools.benchmark_input measurement.")
flags.DEFINE_integer("torchvision_batches", 6, "Timed batches of torchvision's DataLoader.")
flags.DEFINE_bool("torchvision_worker", False, "Internal: time torchvision's loader.")


def _torchvision_images_per_second():
    """torchvision's ImageFolder + DataLoader(num_workers=2), our transforms, after batch 1."""
    import torch
    from PIL import Image, ImageOps
    from torchvision import datasets, transforms
    from regnet_keras.training.augmentation import LIGHTING_EIGENVALUES, LIGHTING_EIGENVECTORS
    eigenvectors = torch.tensor(LIGHTING_EIGENVECTORS)
    eigenvalues = torch.tensor(LIGHTING_EIGENVALUES)

    def load(path):
        with Image.open(path) as image:
            return ImageOps.exif_transpose(image).convert("RGB")

    def lighting(image):
        alpha = torch.randn(3) * 0.1
        return (image + (eigenvectors @ (alpha * eigenvalues) * 255.0)[:, None, None]).clamp(
            0, 255)

    transform = transforms.Compose([
        transforms.RandomResizedCrop(FLAGS.image_size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)),
        transforms.RandomHorizontalFlip(),
        transforms.PILToTensor(),
        transforms.Lambda(lambda image: lighting(image.float()))])
    folder = datasets.ImageFolder(FLAGS.photo_dir, transform=transform, loader=load)
    loader = torch.utils.data.DataLoader(folder, batch_size=FLAGS.batch_size, shuffle=True,
                                         num_workers=2, drop_last=True,
                                         persistent_workers=True)
    batches = iter(_forever(loader))
    next(batches)
    started = time.perf_counter()
    for _ in range(FLAGS.torchvision_batches):
        next(batches)
    return FLAGS.torchvision_batches * FLAGS.batch_size / (time.perf_counter() - started)


def _forever(loader):
    while True:
        yield from loader


def _row(model, run, result):
    """One line of the table: a run of tools.benchmark_input."""
    if not result:
        return f"| {model} | {run} | failed | | | | | |"
    batch = FLAGS.batch_size
    rate = (f"{result['cache_built'] / result['open_seconds']:.1f}"
            if run == "first" and result["cache_built"] else "-")
    return (f"| {model} | {run} | {result['open_seconds']:.1f} | {rate} | "
            f"{result['pipeline_ms']:.0f} ({batch * 1000 / result['pipeline_ms']:.0f}) | "
            f"{result['held_ms']:.0f} ({batch * 1000 / result['held_ms']:.0f}) | "
            f"{result['fed_ms']:.0f} ({batch * 1000 / result['fed_ms']:.0f}) | "
            f"{result['fed_ms'] / result['held_ms']:.2f} |")


def _load():
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def main(argv):
    del argv
    if FLAGS.torchvision_worker:
        measurement.print_result({"images_per_second": _torchvision_images_per_second()})
        return
    print(f"load average {_load()} (1, 5, 15 min) on {os.cpu_count()} cores", flush=True)
    started = time.perf_counter()
    write_photo_folder(FLAGS.photo_dir, FLAGS.classes, FLAGS.per_class)
    photos = FLAGS.classes * FLAGS.per_class
    print(f"{photos} photos of 4032x3024 in {FLAGS.photo_dir} "
          f"({time.perf_counter() - started:.0f} s to write or find)", flush=True)
    torchvision = measurement.run_worker(
        [sys.executable, "-m", "benchmarks.input_pipeline", "--torchvision_worker",
         f"--photo_dir={FLAGS.photo_dir}", f"--image_size={FLAGS.image_size}",
         f"--batch_size={FLAGS.batch_size}",
         f"--torchvision_batches={FLAGS.torchvision_batches}"], "torchvision")
    tv = f"{torchvision['images_per_second']:.1f}" if torchvision else "-"
    print(f"\ntorchvision ImageFolder + DataLoader(num_workers=2), same transforms: {tv} img/s"
          " (loader alone)")
    print("\n| model | run | opened (s) | first-run rate (photos/s) | pipeline alone ms/batch "
          "(img/s) | held step ms (img/s) | fed step ms (img/s) | fed / held |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for model in FLAGS.models:
        with tempfile.TemporaryDirectory(prefix="image_cache_") as cache:
            for run in ("first", "second"):
                result = measurement.run_worker(
                    [sys.executable, "-m", "tools.benchmark_input", "--dataset", "folder",
                     f"--data_dir={FLAGS.photo_dir}", f"--model={model}",
                     f"--image_size={FLAGS.image_size}", f"--batch_size={FLAGS.batch_size}",
                     f"--steps={FLAGS.steps}", f"--image_cache={cache}", "--result_line"],
                    f"{model} {run} run")
                print(_row(model, run, result), flush=True)
    print(f"\nload average {_load()} (1, 5, 15 min)")


if __name__ == "__main__":
    app.run(main)
