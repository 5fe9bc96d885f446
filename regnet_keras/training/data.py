"""Image classification data for training and evaluating RegNets: sources, augmentation, tf.data.

Three kinds of source, all yielding uint8 images and integer labels:

- "fashion_mnist" (the embedded default): the IDX files of Debian's dataset-fashion-mnist package
  (/usr/share/datasets/fashion-mnist, or `data_dir` if it holds IDX files), else
  tensorflow-datasets' fashion_mnist.
- "folder": `data_dir` holds one sub-folder per class, its images anywhere below it (nested
  folders are part of their class); `train/` plus `test/`, `val/` or `validation/` sub-trees give
  the splits, else every k-th file of each class is held out. JPEG (CMYK too), PNG (palette,
  grayscale, 16-bit), GIF and WebP (first frame) and BMP are decoded by Pillow at the scale
  training needs, turned upright by their EXIF orientation, and composited on ALPHA_BACKGROUND
  where they are transparent (image_decoding); with an image cache they are decoded once and
  read back as small JPEGs that TensorFlow decodes (image_cache). Hidden files and folders and
  files of other types are skipped and counted; a class with fewer than `min_images_per_class`
  images is refused by name before anything else happens; files that do not decode (decompression
  bombs included) are refused or skipped, by `corrupt_images`.
- any other tensorflow-datasets name, read from `data_dir` (tfds' default directory if None).

Pipelines feed the model 0-255 RGB floats (the model normalises them itself); grayscale is
repeated to three channels. Training: random-resized crop, horizontal flip and PCA lighting, the
reference recipe's augmentation (augmentation), drawn with stateless random ops keyed by (seed,
epoch, example position), so an epoch's batches are the same however often the run is
interrupted, and a resumed run skips exactly the examples it already consumed. Evaluation:
resize and center crop.

Public for other tools (quantization calibration, evaluation): `evaluation_dataset(run_info)` and
`calibration_dataset(run_info, num_images)`, which take the values of a training run's run.json.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from regnet_keras.errors import InputError
from regnet_keras.training.augmentation import (  # noqa: F401 (public names of this module)
    ERASING_AREA, ERASING_ASPECT_RATIO, LIGHTING_EIGENVALUES, LIGHTING_EIGENVECTORS,
    Augmentation, augment, photometric, random_resized_crop, random_resized_crop_one, to_rgb)
from regnet_keras.training.auto_augment import AutoAugment
from regnet_keras.training.image_cache import DEFAULT_MAX_BYTES as DEFAULT_CACHE_MAX_BYTES
from regnet_keras.training.image_cache import ImageCache, cache_for, shorter_side_for
from regnet_keras.training.image_decoding import (  # noqa: F401 (ALPHA_BACKGROUND: public)
    ALPHA_BACKGROUND, is_decodable, read_image)
from regnet_keras.training.mixing import BatchMixer, Mixing

FASHION_MNIST = "fashion_mnist"
FOLDER = "folder"
DEFAULT_DATASET = FASHION_MNIST
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
# Fewer images than this in a class cannot be split and learned from; refused by name.
MIN_IMAGES_PER_CLASS = 5
TRAIN_SUBDIR = "train"
HELD_OUT_SUBDIRS = ("test", "val", "validation")
CORRUPT_POLICIES = ("error", "skip")
# Datasets of fixed-size images up to this many bytes are held in memory as one uint8 array.
IN_MEMORY_LIMIT_BYTES = 2 << 30


class DataError(InputError, ValueError):
    """The data cannot be used as asked; the message names the problem and the fix."""


@dataclasses.dataclass(frozen=True)
class Split:
    """One split of a source, as raw examples: uint8 images (HxWxC) and int labels."""

    num_examples: int
    # Exactly one of the three holds the examples.
    images: np.ndarray | None = None  # (N, H, W, C) uint8, in memory
    labels: np.ndarray | None = None
    paths: tuple[str, ...] | None = None  # encoded image files, with `labels`
    tfds_split: str | None = None
    # With `paths` read through an ImageCache: each file's entry ("" where it has none), and
    # the shorter side the entries were made for.
    cache_paths: tuple[str, ...] | None = None
    cache_side: int | None = None

    @property
    def fixed_shape(self) -> bool:
        return self.images is not None


@dataclasses.dataclass(frozen=True)
class Source:
    """A dataset: its class names and its training and held-out splits."""

    name: str
    data_dir: str | None
    class_names: tuple[str, ...]
    train: Split
    held_out: Split
    held_out_name: str
    description: str
    skipped_files: tuple[str, ...] = ()
    tfds_builder: object = None
    # Files of image folders left out: {"hidden": n, "not_images": n}.
    ignored_files: dict = dataclasses.field(default_factory=dict)
    # Image folders read through an ImageCache: its image_cache.CacheReport.
    cache_report: object = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# --------------------------------------------------------------------------------------------
# Sources


def open_source(dataset: str = DEFAULT_DATASET, data_dir: str | None = None, *,
                holdout_fraction: float = 0.1, corrupt_images: str = "error",
                min_images_per_class: int = MIN_IMAGES_PER_CLASS,
                image_cache: ImageCache | None = None) -> Source:
    """Finds, checks and indexes a dataset; raises DataError naming the problem and the fix.

    `image_cache`: image folders only; their files are checked and read through it (built where
    missing, which is also the check that every file decodes). None: each file is checked by a
    reduced-scale decode at start-up and decoded from its file whenever it is read.
    """
    if corrupt_images not in CORRUPT_POLICIES:
        raise DataError(f"corrupt_images={corrupt_images!r} is invalid: choose one of "
                        f"{CORRUPT_POLICIES}.")
    if data_dir is not None:
        data_dir = os.path.expanduser(str(data_dir))
    if dataset == FASHION_MNIST:
        idx_dir = data_dir or DEBIAN_FASHION_MNIST_DIR
        if _idx_files(idx_dir) is not None:
            return _fashion_mnist_from_idx(idx_dir)
        if data_dir is not None and not os.path.isdir(data_dir):
            raise DataError(f"data_dir={data_dir!r} does not exist: pass the directory holding "
                            "Fashion-MNIST's IDX files or a tensorflow-datasets data directory.")
    if dataset == FOLDER:
        return _folder_source(data_dir, holdout_fraction, corrupt_images, min_images_per_class,
                              image_cache)
    return _tfds_source(dataset, data_dir, holdout_fraction)


def valid_dataset_names() -> list[str]:
    import tensorflow_datasets as tfds
    return [FASHION_MNIST, FOLDER] + sorted(set(tfds.list_builders()) - {FASHION_MNIST})


_IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def _idx_files(directory):
    """Paths of the four Fashion-MNIST IDX files (gzipped or not) in `directory`, or None."""
    if not directory or not os.path.isdir(directory):
        return None
    found = {}
    for key, stem in _IDX_NAMES.items():
        for candidate in (stem + ".gz", stem):
            if os.path.isfile(os.path.join(directory, candidate)):
                found[key] = os.path.join(directory, candidate)
                break
        else:
            return None
    return found


def read_idx(path: str) -> np.ndarray:
    """Reads an IDX file (the MNIST format; gzipped or not) into a NumPy array."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as file:
            data = file.read()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read this IDX file ({error}); reinstall the "
                        "dataset-fashion-mnist package.") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path} is not an IDX file of unsigned bytes.")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    payload = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if payload.size != int(np.prod(shape)):
        raise DataError(f"{path}: holds {payload.size} bytes of data for shape {shape}; the file "
                        "is truncated. Reinstall the dataset-fashion-mnist package.")
    return payload.reshape(shape)


def _fashion_mnist_from_idx(directory) -> Source:
    files = _idx_files(directory)
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"{directory}: {split} has {images.shape[0]} images but "
                            f"{labels.shape[0]} labels.")
    return Source(
        name=FASHION_MNIST, data_dir=directory, class_names=FASHION_MNIST_CLASSES,
        train=Split(len(arrays["train_labels"]), images=arrays["train_images"][..., None],
                    labels=arrays["train_labels"].astype(np.int32)),
        held_out=Split(len(arrays["test_labels"]), images=arrays["test_images"][..., None],
                       labels=arrays["test_labels"].astype(np.int32)),
        held_out_name="test", description=f"Fashion-MNIST IDX files in {directory}")


def _list_class_folders(root):
    try:
        entries = sorted(os.listdir(root))
    except OSError as error:
        raise DataError(f"data_dir={root!r} cannot be read ({error.strerror}); pass a readable "
                        "directory with one sub-folder of images per class.") from error
    classes = [e for e in entries if os.path.isdir(os.path.join(root, e)) and not
               e.startswith(".")]
    if not classes:
        raise DataError(f"data_dir={root!r} holds no class folders: it needs one sub-folder of "
                        "images per class (e.g. data_dir/cat/1.jpg, data_dir/dog/2.png).")
    return classes


def _list_images(root, classes, min_images, ignored):
    """Image files of each class folder (any depth, sorted), their labels; adds the files left
    out to `ignored`. Every class with fewer than `min_images` is listed in one error."""
    files, labels, too_few = [], [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        images = []
        if not os.access(folder, os.R_OK | os.X_OK):
            raise DataError(f"class folder {folder!r} cannot be read; fix its permissions or "
                            "remove it.")
        for directory, subdirectories, names in os.walk(folder, followlinks=True):
            ignored["hidden"] += sum(d.startswith(".") for d in subdirectories)
            subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
            for file_name in sorted(names):
                path = os.path.join(directory, file_name)
                if file_name.startswith("."):
                    ignored["hidden"] += 1
                elif file_name.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(path):
                    images.append(path)
                else:
                    ignored["not_images"] += 1
        if len(images) < min_images:
            too_few.append((name, folder, len(images)))
        files.extend(images)
        labels.extend([label] * len(images))
    if too_few:
        listed = "; ".join(f"class {name!r} ({folder}) holds "
                           f"{'no images' if count == 0 else f'only {count} images'}"
                           for name, folder, count in too_few)
        raise DataError(f"{listed}. Each class needs at least {min_images} images "
                        f"({', '.join(IMAGE_EXTENSIONS)}, in its folder or below): add images, "
                        "remove the folder, or lower --min_images_per_class.")
    return files, labels


def _check_images(files, policy, root, image_cache=None):
    """Which files decode, each one's cache entry ("" for none), the corrupt ones (refused
    under policy "error") and the cache's report (None without a cache)."""
    report = None
    if image_cache is None:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            decodable = list(pool.map(is_decodable, files))
        entries = [""] * len(files)
    else:
        resolved, unusable, report = image_cache.resolve(files)
        unusable = {path for path, _ in unusable}
        decodable = [f not in unusable for f in files]
        entries = [e or "" for e in resolved]
    corrupt = [f for f, ok in zip(files, decodable) if not ok]
    if corrupt and policy == "error":
        listed = "\n  ".join(corrupt[:20]) + ("\n  ..." if len(corrupt) > 20 else "")
        raise DataError(f"{root}: {len(corrupt)} of {len(files)} image files cannot be decoded "
                        f"or are too large to be images (decompression bombs):\n  {listed}\n"
                        "Delete or fix them, or pass --corrupt_images=skip to train without "
                        "them.")
    return decodable, entries, corrupt, report


def _folder_source(data_dir, holdout_fraction, corrupt_images, min_images,
                   image_cache=None) -> Source:
    if data_dir is None:
        raise DataError("dataset='folder' needs --data_dir: a directory with one sub-folder of "
                        "images per class.")
    if not os.path.isdir(data_dir):
        raise DataError(f"data_dir={data_dir!r} is not a directory: pass a directory with one "
                        "sub-folder of images per class.")
    ignored = {"hidden": 0, "not_images": 0}
    held_out_dir = next((os.path.join(data_dir, d) for d in HELD_OUT_SUBDIRS
                         if os.path.isdir(os.path.join(data_dir, d))), None)
    train_dir = os.path.join(data_dir, TRAIN_SUBDIR)
    if os.path.isdir(train_dir) and held_out_dir is not None:
        classes = _list_class_folders(train_dir)
        held_out_classes = _list_class_folders(held_out_dir)
        if held_out_classes != classes:
            raise DataError(f"{held_out_dir} has classes {held_out_classes} but {train_dir} has "
                            f"{classes}: both splits need the same class folders.")
        train_files, train_labels = _list_images(train_dir, classes, min_images, ignored)
        test_files, test_labels = _list_images(held_out_dir, classes, 1, ignored)
        held_out_name = os.path.basename(held_out_dir)
    else:
        classes = _list_class_folders(data_dir)
        files, labels = _list_images(data_dir, classes, min_images, ignored)
        if not 0 < holdout_fraction < 1:
            raise DataError(f"holdout_fraction={holdout_fraction} is invalid: it must be in "
                            "(0, 1).")
        # round(fraction x n) evenly spaced files of each class (sorted by name; at least one
        # when the class has two or more) are held out: stratified, and the same on every run
        # and every worker.
        by_class = {}
        for f, l in zip(files, labels):
            by_class.setdefault(l, []).append(f)
        train_files, train_labels, test_files, test_labels = [], [], [], []
        for label, class_files in sorted(by_class.items()):
            n = len(class_files)
            k = max(1, int(round(n * holdout_fraction))) if n >= 2 else 0
            held = {int((i + 0.5) * n / k) for i in range(k)}
            for index, f in enumerate(class_files):
                (test_files if index in held else train_files).append(f)
                (test_labels if index in held else train_labels).append(label)
        held_out_name = f"held-out {holdout_fraction:.0%} of each class"
    # Both splits in one pass, so that the cache is sized and reported once.
    decodable, entries, corrupt, report = _check_images(train_files + test_files,
                                                        corrupt_images, data_dir, image_cache)
    train_ok, test_ok = decodable[:len(train_files)], decodable[len(train_files):]
    train_entries, test_entries = entries[:len(train_files)], entries[len(train_files):]
    if not any(train_ok) or not any(test_ok):
        raise DataError(f"{data_dir}: no usable images remain for "
                        f"{'training' if not any(train_ok) else 'evaluation'}.")

    def split(paths, split_labels, split_entries, ok):
        kept = [i for i, good in enumerate(ok) if good]
        cached = image_cache is not None
        return Split(len(kept), paths=tuple(paths[i] for i in kept),
                     labels=np.asarray([split_labels[i] for i in kept], np.int32),
                     cache_paths=tuple(split_entries[i] for i in kept) if cached else None,
                     cache_side=image_cache.shorter_side if cached else None)

    return Source(
        name=FOLDER, data_dir=data_dir, class_names=tuple(classes),
        train=split(train_files, train_labels, train_entries, train_ok),
        held_out=split(test_files, test_labels, test_entries, test_ok),
        held_out_name=held_out_name, description=f"image folders in {data_dir}",
        skipped_files=tuple(corrupt), ignored_files=ignored, cache_report=report)


def _tfds_source(name, data_dir, holdout_fraction) -> Source:
    import tensorflow_datasets as tfds
    if name not in tfds.list_builders():
        raise DataError(f"dataset={name!r} is invalid: unknown dataset name. Valid names: "
                        f"{', '.join(valid_dataset_names())}.")
    if data_dir is not None and not os.path.isdir(data_dir):
        raise DataError(f"data_dir={data_dir!r} does not exist: pass the tensorflow-datasets "
                        f"data directory holding {name}.")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises assorted types for unusable builders
        raise DataError(f"dataset={name!r}: tensorflow-datasets cannot open it ({error}).") \
            from error
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise DataError(f"dataset={name!r} is not an image classification dataset (it needs "
                        "'image' and 'label' features).")
    class_names = tuple(features["label"].names)
    splits = list(builder.info.splits.keys())
    held_out_name = next((s for s in ("test", "validation") if s in splits), None)
    train_split = "train"
    if not splits:
        # Split metadata unknown (a dataset generated without it, or tfds' mock data): assume
        # the usual names; reading fails clearly if they are absent.
        held_out_name = "test"
    elif held_out_name is None:
        percent = int(round(holdout_fraction * 100))
        train_split, held_out_name = f"train[:{100 - percent}%]", f"train[{100 - percent}%:]"
    try:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS))
    except Exception as error:
        raise DataError(f"dataset={name!r} is not prepared in "
                        f"{data_dir or 'the default tensorflow-datasets directory'} and cannot "
                        f"be prepared here ({type(error).__name__}: {error}). Prepare it with "
                        "`tfds build` where its files are, then pass --data_dir.") from error
    shape = features["image"].shape
    train = _tfds_split(builder, train_split, shape)
    held_out = _tfds_split(builder, held_out_name, shape)
    return Source(name=name, data_dir=data_dir, class_names=class_names, train=train,
                  held_out=held_out, held_out_name=held_out_name,
                  description=f"tensorflow-datasets {name}", tfds_builder=builder)


def _tfds_split(builder, split, shape) -> Split:
    import tensorflow_datasets as tfds
    try:
        num = builder.info.splits[split].num_examples
    except KeyError:
        num = None  # unknown until read
    if None not in shape:
        if num is None or num * int(np.prod(shape)) <= IN_MEMORY_LIMIT_BYTES:
            images, labels = [], []
            for image, label in tfds.as_numpy(builder.as_dataset(
                    split=split, as_supervised=True, shuffle_files=False).batch(4096)):
                images.append(image)
                labels.append(label)
            if not images:
                raise DataError(f"dataset {builder.name} split {split!r} is empty.")
            images, labels = np.concatenate(images), np.concatenate(labels).astype(np.int32)
            return Split(len(labels), images=images, labels=labels)
    if not num:
        raise DataError(f"dataset {builder.name} split {split!r}: its size is unknown or zero; "
                        "prepare the dataset with `tfds build` so its metadata is complete.")
    return Split(num, tfds_split=split)


# --------------------------------------------------------------------------------------------
# Pipelines


def _decode_file(path, min_side=None):
    """A file decoded by Pillow (EXIF, alpha, palette, CMYK, 16-bit), at reduced scale when
    `min_side` allows (see image_decoding.read_image)."""
    import tensorflow as tf
    image = tf.numpy_function(lambda p: read_image(p.decode(), min_side), [path], tf.uint8,
                              stateful=False)
    image.set_shape((None, None, 3))
    return image


def _decode_entry(entry):
    """A cache entry: a baseline JPEG that TensorFlow decodes outside the GIL."""
    import tensorflow as tf
    image = tf.io.decode_jpeg(tf.io.read_file(entry), channels=3)
    image.set_shape((None, None, 3))
    return image


def _file_decoder(entries, min_side):
    """decode(entry, path) for files whose cache entries are `entries` ("" where none)."""
    import tensorflow as tf
    cached = np.asarray([bool(e) for e in entries])
    if cached.all():
        return lambda entry, path: _decode_entry(entry)
    if not cached.any():
        return lambda entry, path: _decode_file(path, min_side)
    return lambda entry, path: tf.cond(tf.strings.length(entry) > 0,
                                       lambda: _decode_entry(entry),
                                       lambda: _decode_file(path, min_side))


def _raw_examples(source: Source, split: Split, order=None, shard=(0, 1), min_side=None):
    """(uint8 image, label) of `split`, in `order` (an index array) or natural order.

    Image files come from their cache entries where the split has them; the others are decoded
    with at least `min_side` pixels on their shorter side (None: in full).
    """
    import tensorflow as tf
    if split.tfds_split is not None:
        ds = source.tfds_builder.as_dataset(split=split.tfds_split, as_supervised=True,
                                            shuffle_files=False)
        return ds.shard(shard[1], shard[0]) if shard[1] > 1 else ds
    indices = np.arange(split.num_examples) if order is None else order
    indices = indices[shard[0]::shard[1]]
    if split.images is not None:
        images, labels = split.images, split.labels
        ds = tf.data.Dataset.from_tensor_slices(indices)
        return ds.map(lambda i: (tf.gather(images, i), tf.gather(labels, i)))
    paths = np.asarray(split.paths)[indices]
    labels = split.labels[indices]
    entries = (np.asarray(split.cache_paths)[indices] if split.cache_paths is not None
               else np.full(len(paths), ""))
    decode = _file_decoder(entries, min_side)
    ds = tf.data.Dataset.from_tensor_slices((entries, paths, labels))
    return ds.map(lambda e, p, l: (decode(e, p), l), num_parallel_calls=tf.data.AUTOTUNE)


# Resize filters of the evaluation transform; "bicubic" for weights published with it (timm's).
EVAL_INTERPOLATIONS = ("bilinear", "bicubic")


def eval_resize(images, image_size: int, crop_fraction: float, interpolation: str = "bilinear"):
    """Resize so the shorter side is image_size / crop_fraction, then center crop (batch or one)."""
    import tensorflow as tf
    images = tf.cast(images, tf.float32)
    single = images.shape.rank == 3
    if single:
        images = images[None]
    shape = tf.shape(images)
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    scale = image_size / crop_fraction / tf.minimum(height, width)
    new_h = tf.maximum(image_size, tf.cast(tf.round(height * scale), tf.int32))
    new_w = tf.maximum(image_size, tf.cast(tf.round(width * scale), tf.int32))
    if interpolation not in EVAL_INTERPOLATIONS:
        raise DataError(f"eval_interpolation={interpolation!r} is invalid: choose one of "
                        f"{EVAL_INTERPOLATIONS}.")
    images = tf.image.resize(images, (new_h, new_w), method=interpolation, antialias=True)
    top, left = (new_h - image_size) // 2, (new_w - image_size) // 2
    images = images[:, top:top + image_size, left:left + image_size, :]
    images = tf.clip_by_value(to_rgb(images), 0.0, 255.0)
    images = tf.ensure_shape(images, (None, image_size, image_size, 3))
    return images[0] if single else images


@dataclasses.dataclass(frozen=True)
class TrainPipeline:
    """Augmented training batches: the crop (augmentation.py), then the automatic augmentation
    policy (auto_augment.py), lighting and erasing, then MixUp/CutMix (mixing.py). Labels are
    int32 class indices, or class probabilities (batch, num_classes) when `mixing` is on."""
    source: Source
    image_size: int
    augmentation: Augmentation
    seed: int
    auto_augment: str = "none"
    mixing: Mixing = Mixing()

    @functools.cached_property
    def _policy(self):
        return AutoAugment(self.auto_augment)

    @functools.cached_property
    def _mixer(self):
        return BatchMixer(self.mixing) if self.mixing.enabled else None

    @functools.cached_property
    def _finish_function(self):
        # Traced once and called by every epoch's dataset: Keras' layers make a graph that
        # takes seconds to trace, which tf.data would otherwise do again for each epoch.
        import tensorflow as tf
        return tf.function(self._finish)

    def _finish(self, crops, labels, seed):
        """The per-batch stages after the crop; `seed` keys the batch."""
        import tensorflow as tf
        crops = self._policy(crops, seed)
        images = photometric(crops, seed, self.augmentation)
        if self._mixer is None:
            return images, labels
        probabilities = tf.one_hot(tf.cast(labels, tf.int32), self.source.num_classes)
        return self._mixer(images, probabilities, seed)

    @functools.cached_property
    def _in_memory(self):
        # Tensors made once and captured by reference: a NumPy array would be copied into every
        # epoch's dataset graph as a constant (and graphs stop at 2 GiB).
        import tensorflow as tf
        return (tf.convert_to_tensor(self.source.train.images),
                tf.convert_to_tensor(self.source.train.labels))

    def steps_per_epoch(self, global_batch_size: int) -> int:
        return self.source.train.num_examples // global_batch_size

    def dataset(self, epoch: int, skip_batches: int, batch_size: int,
                worker_index: int = 0, num_workers: int = 1):
        """One epoch of augmented training batches for one worker, from batch `skip_batches` on.

        The epoch's order is a permutation drawn from (seed, epoch), the same on every worker;
        worker i takes every num_workers-th example of it. Augmentation keys are the examples'
        positions in the epoch, so batch k holds the same pixels whether or not the run was
        resumed before it.
        """
        import tensorflow as tf
        # Keras' layers are made here, eagerly: their construction creates variables, which the
        # tf.data functions below may not.
        _ = self._policy, self._mixer, self._finish_function
        split = self.source.train
        order = np.random.default_rng([self.seed, epoch]).permutation(split.num_examples)
        skip = skip_batches * batch_size
        mine = order[worker_index::num_workers][skip:]
        if split.tfds_split is not None:
            ds = _raw_examples(self.source, split, shard=(worker_index, num_workers))
            ds = ds.shuffle(min(split.num_examples, 16384), seed=self.seed * 100003 + epoch,
                            reshuffle_each_iteration=False)
            ds = ds.enumerate().skip(skip)
        elif split.images is None:
            ds = _raw_examples(self.source, split, order=mine,
                               min_side=split.cache_side or shorter_side_for(self.image_size)
                               ).enumerate(start=skip)
        epoch_key = self.seed * 1000003 + epoch

        def augment_batch(positions, example):
            # Keyed by the position of the batch's first example in this worker's epoch.
            images, labels = example
            seed = tf.stack([tf.constant(epoch_key, tf.int64),
                             tf.cast(positions[0], tf.int64) * num_workers + worker_index])
            crops = random_resized_crop(images, seed, self.image_size, self.augmentation)
            return self._finish_function(crops, labels, seed)

        if split.images is not None:
            # In memory: batch the indices, gather and augment whole batches (vectorised).
            images, labels = self._in_memory
            ds = tf.data.Dataset.from_tensor_slices(
                (np.arange(skip, skip + len(mine)), mine)).batch(batch_size, drop_remainder=True)
            ds = ds.map(lambda p, i: augment_batch(p, (tf.gather(images, i),
                                                       tf.gather(labels, i))),
                        num_parallel_calls=tf.data.AUTOTUNE)
        elif split.fixed_shape:
            ds = ds.batch(batch_size, drop_remainder=True)
            ds = ds.map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE)
        else:
            # Images of different sizes: each is cropped alone (keyed by its own position), and
            # the per-pixel rest runs on the batch (keyed by the batch's first position).
            def crop_one(position, example):
                image, label = example
                seed = tf.stack([tf.constant(epoch_key, tf.int64),
                                 tf.cast(position, tf.int64) * num_workers + worker_index])
                crop = random_resized_crop_one(image, seed, self.image_size,
                                               self.augmentation)
                return position, crop, label

            def finish_batch(positions, crops, labels):
                seed = tf.stack([tf.constant(epoch_key, tf.int64),
                                 tf.cast(positions[0], tf.int64) * num_workers + worker_index])
                return self._finish_function(crops, labels, seed)

            ds = ds.map(crop_one, num_parallel_calls=tf.data.AUTOTUNE)
            ds = ds.batch(batch_size, drop_remainder=True)
            ds = ds.map(finish_batch, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)


def held_out_dataset(source: Source, image_size: int, crop_fraction: float,
                     batch_size: int | None = None, shard=(0, 1), interpolation: str = "bilinear"):
    """The held-out split, resized and center-cropped: (float 0-255 RGB image, int32 label)."""
    import tensorflow as tf
    split = source.held_out
    ds = _raw_examples(source, split, shard=shard,
                       min_side=int(np.ceil(image_size / crop_fraction)))
    if split.fixed_shape and batch_size:
        ds = ds.batch(batch_size).map(
            lambda x, y: (eval_resize(x, image_size, crop_fraction, interpolation),
                             tf.cast(y, tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE)
        if split.num_examples * image_size * image_size * 3 * 4 <= IN_MEMORY_LIMIT_BYTES // 4:
            ds = ds.cache()
        return ds.prefetch(tf.data.AUTOTUNE)
    ds = ds.map(lambda x, y: (eval_resize(x, image_size, crop_fraction, interpolation),
                             tf.cast(y, tf.int32)),
                num_parallel_calls=tf.data.AUTOTUNE)
    if batch_size:
        ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------------------------
# The run.json interface


def source_of_run(run_info: dict, cache_directory: str | None = None,
                  cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES) -> Source:
    """The data a run (the values of its run.json) trained and was evaluated on.

    Image folders are read through the image cache for the run's image size, in
    `cache_directory` (None: $REGNET_KERAS_IMAGE_CACHE, else the default place; "off": none).
    """
    image_cache = None
    if run_info.get("dataset") == FOLDER and "image_size" in run_info:
        image_cache = cache_for(int(run_info["image_size"]),
                                float(run_info.get("eval_crop_fraction", 0.875)),
                                cache_directory, cache_max_bytes)
    return open_source(run_info.get("dataset", DEFAULT_DATASET), run_info.get("data_dir"),
                       holdout_fraction=run_info.get("holdout_fraction", 0.1),
                       corrupt_images=run_info.get("corrupt_images", "skip"),
                       min_images_per_class=run_info.get("min_images_per_class",
                                                         MIN_IMAGES_PER_CLASS),
                       image_cache=image_cache)


def evaluation_dataset(run_info: dict, batch_size: int | None = None, source=None):
    """The held-out split a run was evaluated on, as its evaluation saw it.

    `run_info`: the values of a run's run.json (dataset, data_dir, image_size, and
    eval_crop_fraction, 0.875 if absent). Elements: (float32 0-255 RGB image of
    image_size x image_size x 3, int32 label), batched when batch_size is given.
    """
    source = source or source_of_run(run_info)
    return held_out_dataset(source, int(run_info["image_size"]),
                            float(run_info.get("eval_crop_fraction", 0.875)), batch_size,
                            interpolation=run_info.get("eval_interpolation", "bilinear"))


def calibration_dataset(run_info: dict, num_images: int, seed: int = 0, source=None):
    """`num_images` training images chosen at random (by `seed`), preprocessed exactly as
    evaluation preprocesses: float32 0-255 RGB images of image_size x image_size x 3, unbatched.
    For post-training quantization's representative dataset."""
    import tensorflow as tf
    source = source or source_of_run(run_info)
    split = source.train
    count = min(int(num_images), split.num_examples)
    image_size = int(run_info["image_size"])
    crop_fraction = float(run_info.get("eval_crop_fraction", 0.875))
    if split.tfds_split is not None:
        ds = _raw_examples(source, split).shuffle(16384, seed=seed).take(count)
    else:
        order = np.random.default_rng(seed).permutation(split.num_examples)[:count]
        ds = _raw_examples(source, split, order=order,
                           min_side=int(np.ceil(image_size / crop_fraction)))
    interpolation = run_info.get("eval_interpolation", "bilinear")
    return ds.map(lambda x, y: eval_resize(x, image_size, crop_fraction, interpolation),
                  num_parallel_calls=tf.data.AUTOTUNE)
