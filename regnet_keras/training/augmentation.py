"""Training augmentation of the reference recipe: random-resized crop with horizontal flip, PCA
lighting and random erasing, drawn with stateless random ops so that a key gives the same
pixels every time (what makes interrupted runs resume on the same batches).

Two stages, so that images of different sizes are cropped one by one and the per-pixel work
after the crop runs on whole batches: `random_resized_crop` (geometry: area, aspect ratio,
position and the flip, which is the same crop read right to left; `random_resized_crop_one` for
one image of its own size) and `photometric` (lighting, clipping to 0-255, erasing). `augment`
is both on a batch of same-size images.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Random erasing's rectangle, as its paper draws it: area fraction and aspect ratio (height over
# width, log-uniform).
ERASING_AREA = (0.02, 0.4)
ERASING_ASPECT_RATIO = (0.3, 1 / 0.3)
# AlexNet/pycls PCA lighting: ImageNet RGB eigenvalues and eigenvectors (pixels scaled to 0-1).
LIGHTING_EIGENVALUES = (0.2175, 0.0188, 0.0045)
LIGHTING_EIGENVECTORS = ((-0.5675, 0.7192, 0.4009),
                         (-0.5808, -0.0045, -0.8140),
                         (-0.5836, -0.6948, 0.4203))


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Training augmentation of the reference recipe, with its knobs.

    min_crop_area, crop_aspect_ratio: the random-resized crop keeps a fraction of the image area
    drawn from [min_crop_area, 1] and an aspect ratio from [1/r, r] (log-uniform).
    flip: horizontal flips with probability 1/2. lighting_std: PCA lighting strength (0: none).
    erasing_probability: random erasing (Zhong et al., AAAI 2020) replaces, in this fraction of
    the images, a rectangle of 2-40% of the area and aspect ratio 0.3-3.3 with uniform noise
    over 0-255 (0: none; the reference recipe has none).
    """

    min_crop_area: float = 0.08
    crop_aspect_ratio: float = 4.0 / 3.0
    flip: bool = True
    lighting_std: float = 0.1
    erasing_probability: float = 0.0


def _uniform(seed, batch, stream, low=0.0, high=1.0):
    import tensorflow as tf
    return tf.random.stateless_uniform(tf.reshape(batch, [1]), seed + stream, low, high)


def to_rgb(images):
    import tensorflow as tf
    if images.shape[-1] == 1:
        return tf.image.grayscale_to_rgb(images)
    return images


def _crop_draws(seed, batch, height, width, augmentation: Augmentation):
    """The random-resized crops of `batch` images of height x width: (top, left, height,
    width) relative to the image, and whether each is flipped (None without flips)."""
    import tensorflow as tf
    area = _uniform(seed, batch, 1, augmentation.min_crop_area, 1.0)
    log_ratio = float(np.log(augmentation.crop_aspect_ratio))
    ratio = tf.exp(_uniform(seed, batch, 2, -log_ratio, log_ratio))
    crop_h = tf.minimum(1.0, tf.sqrt(area / ratio * width / height))  # relative to the height
    crop_w = tf.minimum(1.0, tf.sqrt(area * ratio * height / width))
    top = _uniform(seed, batch, 3) * (1.0 - crop_h)
    left = _uniform(seed, batch, 4) * (1.0 - crop_w)
    flip = _uniform(seed, batch, 5) < 0.5 if augmentation.flip else None
    return top, left, crop_h, crop_w, flip


def random_resized_crop(images, seed, image_size: int, augmentation: Augmentation):
    """Float32 RGB crops (B, image_size, image_size, 3) of a batch of same-size images (uint8 or
    float), flipped where drawn; `seed`: a stateless random key (two int64)."""
    import tensorflow as tf
    batch = tf.shape(images)[0]
    height = tf.cast(tf.shape(images)[1], tf.float32)
    width = tf.cast(tf.shape(images)[2], tf.float32)
    top, left, crop_h, crop_w, flip = _crop_draws(seed, batch, height, width, augmentation)
    right = left + crop_w
    if flip is not None:
        # A box whose left edge lies right of its right edge samples the crop mirrored: the
        # flip costs nothing beyond the crop itself.
        left, right = tf.where(flip, right, left), tf.where(flip, left, right)
    boxes = tf.stack([top, left, top + crop_h, right], axis=1)
    # Sampled from the images as they come (uint8 from files): no float copy of whole images.
    images = tf.image.crop_and_resize(images, boxes, tf.range(batch), (image_size, image_size),
                                      method="bilinear")
    return to_rgb(images)


def random_resized_crop_one(image, seed, image_size: int, augmentation: Augmentation):
    """The crop of `random_resized_crop` for one image (H, W, C) of any size, drawn alike but cut
    at whole pixels and resized with tf.image.resize, several times cheaper than
    crop_and_resize for one image: float32 (image_size, image_size, 3)."""
    import tensorflow as tf
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    top, left, crop_h, crop_w, flip = _crop_draws(seed, 1, height, width, augmentation)
    rows = tf.maximum(1, tf.cast(tf.round(crop_h[0] * height), tf.int32))
    cols = tf.maximum(1, tf.cast(tf.round(crop_w[0] * width), tf.int32))
    first_row = tf.minimum(tf.cast(tf.round(top[0] * height), tf.int32), shape[0] - rows)
    first_col = tf.minimum(tf.cast(tf.round(left[0] * width), tf.int32), shape[1] - cols)
    crop = image[first_row:first_row + rows, first_col:first_col + cols]
    crop = tf.image.resize(crop, (image_size, image_size), method="bilinear")
    if flip is not None:
        crop = tf.cond(flip[0], lambda: tf.reverse(crop, axis=[1]), lambda: crop)
    return to_rgb(crop)


def photometric(images, seed, augmentation: Augmentation):
    """PCA lighting, clipping to 0-255 and random erasing of float32 RGB crops (B, S, S, 3)."""
    import tensorflow as tf
    batch = tf.shape(images)[0]
    image_size = images.shape[1] or tf.shape(images)[1]
    if augmentation.lighting_std > 0:
        alpha = tf.random.stateless_normal(tf.stack([batch, 3]), seed + 6,
                                           stddev=augmentation.lighting_std)
        eigenvectors = tf.constant(LIGHTING_EIGENVECTORS, tf.float32)
        eigenvalues = tf.constant(LIGHTING_EIGENVALUES, tf.float32)
        rgb = tf.linalg.matvec(eigenvectors, alpha * eigenvalues) * 255.0  # (B, 3)
        images = images + rgb[:, None, None, :]
    images = tf.clip_by_value(images, 0.0, 255.0)
    if augmentation.erasing_probability > 0:
        erase = _uniform(seed, batch, 7) < augmentation.erasing_probability
        area = _uniform(seed, batch, 8, *ERASING_AREA)
        aspect = tf.exp(_uniform(seed, batch, 9, *np.log(ERASING_ASPECT_RATIO)))
        # A rectangle wider or taller than the image is clipped to it, so the erased area can
        # fall short of the drawn one at extreme aspect ratios (the paper redraws instead).
        erase_h = tf.minimum(1.0, tf.sqrt(area * aspect))
        erase_w = tf.minimum(1.0, tf.sqrt(area / aspect))
        top = _uniform(seed, batch, 10) * (1.0 - erase_h)
        left = _uniform(seed, batch, 11) * (1.0 - erase_w)
        centres = (tf.range(image_size, dtype=tf.float32) + 0.5) / tf.cast(image_size,
                                                                             tf.float32)
        rows = (centres[None] >= top[:, None]) & (centres[None] < (top + erase_h)[:, None])
        cols = (centres[None] >= left[:, None]) & (centres[None] < (left + erase_w)[:, None])
        inside = rows[:, :, None] & cols[:, None, :] & erase[:, None, None]
        noise = tf.random.stateless_uniform(tf.shape(images), seed + 12, 0.0, 255.0)
        images = tf.where(inside[..., None], noise, images)
    return images


def augment(images, seed, image_size: int, augmentation: Augmentation):
    """Random-resized crop, flip, lighting and random erasing of a batch of same-size images.

    `seed`: a stateless random key (two int64), so the same key gives the same pixels.
    """
    crops = random_resized_crop(images, seed, image_size, augmentation)
    return photometric(crops, seed, augmentation)
