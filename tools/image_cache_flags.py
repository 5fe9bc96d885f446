"""The image cache's flags, shared by the tools that read image folders (train, qat, evaluate,
benchmark_input), so that every tool finds the copies the others made."""

from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("image_cache", None, "Image folders: the directory of decoded copies "
                    "resized once to a little above the training size, reused by every epoch, "
                    "run and tool (docs/TRAINING.md). Default: $REGNET_KERAS_IMAGE_CACHE, else "
                    "~/.cache/regnet_keras/images. 'off': decode every file each time.")
flags.DEFINE_float("image_cache_max_gb", 20.0, "Image folders: the most the image cache may "
                   "hold; beyond it the least recently used entries of other folders go, then "
                   "new images stay uncached.")


def image_cache(image_size: int, eval_crop_fraction: float | None):
    """The ImageCache the flags ask for at this training size, or None ('off')."""
    from regnet_keras.training import image_cache as image_cache_lib
    if FLAGS.image_cache_max_gb < 0:
        raise ValueError(f"image_cache_max_gb={FLAGS.image_cache_max_gb} is invalid: it must "
                         "not be negative.")
    return image_cache_lib.cache_for(image_size, eval_crop_fraction or 0.875, FLAGS.image_cache,
                                     int(FLAGS.image_cache_max_gb * 1e9))
