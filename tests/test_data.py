"""Data sources and pipelines: IDX files, image folders, tensorflow-datasets, augmentation."""

import os

import numpy as np
import pytest

from regnet_keras.training import data
from tests.training_helpers import write_idx, write_image_folder, write_tiny_fashion_mnist


def test_idx_round_trip_gzipped_and_plain(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.gz", "b"):
        write_idx(str(tmp_path / name), array)
        np.testing.assert_array_equal(data.read_idx(str(tmp_path / name)), array)


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(str(path), np.zeros((4, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(data.DataError, match="truncated"):
        data.read_idx(str(path))


@pytest.mark.skipif(not os.path.isdir(data.DEBIAN_FASHION_MNIST_DIR),
                    reason="Debian package dataset-fashion-mnist not installed "
                           "(scripts/setup.sh installs it)")
def test_debian_fashion_mnist_is_the_default_source():
    source = data.open_source()
    assert source.data_dir == data.DEBIAN_FASHION_MNIST_DIR
    assert source.train.images.shape == (60000, 28, 28, 1)
    assert source.held_out.images.shape == (10000, 28, 28, 1)
    # Fashion-MNIST's published first labels (train: ankle boot, T-shirt, T-shirt, dress...).
    assert source.train.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert source.held_out.labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert np.bincount(source.train.labels).tolist() == [6000] * 10
    assert source.class_names[9] == "Ankle boot"


def test_grayscale_is_repeated_to_rgb_at_the_requested_size(tmp_path):
    source = data.open_source("fashion_mnist", write_tiny_fashion_mnist(tmp_path))
    images, labels = next(iter(data.held_out_dataset(source, 32, 1.0, batch_size=8)))
    assert images.shape == (8, 32, 32, 3) and images.dtype.name == "float32"
    images = images.numpy()
    np.testing.assert_array_equal(images[..., 0], images[..., 1])
    np.testing.assert_array_equal(images[..., 0], images[..., 2])
    assert 0 <= images.min() and images.max() <= 255
    np.testing.assert_array_equal(labels.numpy(), source.held_out.labels[:8])


def test_training_batches_are_deterministic_and_resume_exactly(tmp_path):
    source = data.open_source("fashion_mnist", write_tiny_fashion_mnist(tmp_path))
    pipeline = data.TrainPipeline(source, 32, data.Augmentation(), seed=3)
    full = [x.numpy() for x, _ in pipeline.dataset(epoch=1, skip_batches=0, batch_size=16)]
    resumed = [x.numpy() for x, _ in pipeline.dataset(epoch=1, skip_batches=5, batch_size=16)]
    assert len(full) == 256 // 16 and len(resumed) == len(full) - 5
    for a, b in zip(full[5:], resumed):
        np.testing.assert_array_equal(a, b)
    other_epoch = next(iter(pipeline.dataset(epoch=2, skip_batches=0, batch_size=16)))[0]
    assert not np.array_equal(full[0], other_epoch.numpy())
    assert full[0].shape == (16, 32, 32, 3)


def test_random_erasing_replaces_one_rectangle_in_the_asked_fraction_of_images():
    import tensorflow as tf
    flat = tf.fill((400, 32, 32, 1), 100.0)  # no crop, flip or lighting: only erasing changes it
    augmentation = data.Augmentation(min_crop_area=1.0, flip=False, lighting_std=0.0,
                                     erasing_probability=0.5)
    seed = tf.constant([7, 11], tf.int64)
    erased = data.augment(flat, seed, 32, augmentation).numpy()[..., 0]
    again = data.augment(flat, seed, 32, augmentation).numpy()[..., 0]
    np.testing.assert_array_equal(erased, again)  # stateless: resumed runs see the same pixels
    changed = erased != 100.0
    hit = changed.any(axis=(1, 2))
    assert 0.4 < hit.mean() < 0.6  # 200 expected of 400; 0.4-0.6 is about 4 standard deviations
    areas = []
    for mask, image in zip(changed[hit], erased[hit]):
        rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        box = np.zeros_like(mask)
        box[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = True
        # One axis-aligned rectangle of noise over 0-255 (a noise pixel equal to 100.0 exactly
        # has probability ~0).
        np.testing.assert_array_equal(mask, box)
        assert image[mask].min() >= 0 and image[mask].max() <= 255 and image[mask].std() > 30
        areas.append(mask.mean())
    lowest, highest = data.ERASING_AREA
    assert min(areas) >= lowest * 0.5 and max(areas) <= highest * 1.25  # pixel rounding
    assert 0.15 < np.mean(areas) < 0.25  # about the mean of 2-40%, less the clipped rectangles
    untouched = data.augment(flat, seed, 32, data.Augmentation(min_crop_area=1.0, flip=False,
                                                               lighting_std=0.0))
    assert (untouched.numpy() == 100.0).all()


def test_workers_take_disjoint_shards(tmp_path):
    source = data.open_source("fashion_mnist", write_tiny_fashion_mnist(tmp_path))
    pipeline = data.TrainPipeline(source, 32, data.Augmentation(), seed=0)
    order = np.random.default_rng([0, 0]).permutation(256)
    labels = [np.concatenate([y.numpy() for _, y in pipeline.dataset(0, 0, 8, i, 2)])
              for i in range(2)]
    np.testing.assert_array_equal(labels[0], source.train.labels[order[0::2]][:len(labels[0])])
    np.testing.assert_array_equal(labels[1], source.train.labels[order[1::2]][:len(labels[1])])


def test_image_folder_with_held_out_files_and_mixed_formats(tmp_path):
    root = write_image_folder(tmp_path / "images", per_class=6)
    source = data.open_source("folder", root, holdout_fraction=1 / 3)
    assert source.class_names == ("cat", "dog", "fox")
    assert source.train.num_examples == 12 and source.held_out.num_examples == 6
    images, labels = next(iter(data.held_out_dataset(source, 32, 0.875, batch_size=6)))
    assert images.shape == (6, 32, 32, 3)
    assert sorted(labels.numpy().tolist()) == [0, 0, 1, 1, 2, 2]
    batch, _ = next(iter(data.TrainPipeline(source, 32, data.Augmentation(), 0).dataset(0, 0, 4)))
    assert batch.shape == (4, 32, 32, 3)


def test_image_folder_with_train_and_test_trees(tmp_path):
    write_image_folder(tmp_path / "train", per_class=5)
    write_image_folder(tmp_path / "test", per_class=2)
    source = data.open_source("folder", str(tmp_path))
    assert source.held_out_name == "test"
    assert (source.train.num_examples, source.held_out.num_examples) == (15, 6)


def test_corrupt_images_are_an_error_or_skipped_and_counted(tmp_path):
    root = write_image_folder(tmp_path / "images")
    broken = tmp_path / "images" / "dog" / "broken.jpg"
    good = (tmp_path / "images" / "dog" / "2.jpg").read_bytes()
    broken.write_bytes(good[: len(good) // 2])  # a truncated JPEG: valid header, no data
    with pytest.raises(data.DataError, match="broken.jpg") as error:
        data.open_source("folder", root)
    assert "--corrupt_images=skip" in str(error.value)
    source = data.open_source("folder", root, corrupt_images="skip")
    assert source.skipped_files == (str(broken),)
    assert source.train.num_examples + source.held_out.num_examples == 18


def test_empty_class_folder_and_empty_or_missing_data_dir(tmp_path):
    root = write_image_folder(tmp_path / "images")
    os.makedirs(tmp_path / "images" / "emu")
    (tmp_path / "images" / "emu" / "notes.txt").write_text("no images here")
    with pytest.raises(data.DataError, match="emu.*holds no images"):
        data.open_source("folder", root)
    os.makedirs(tmp_path / "empty")
    with pytest.raises(data.DataError, match="holds no class folders"):
        data.open_source("folder", str(tmp_path / "empty"))
    with pytest.raises(data.DataError, match="not a directory"):
        data.open_source("folder", str(tmp_path / "missing"))
    with pytest.raises(data.DataError, match="needs --data_dir"):
        data.open_source("folder", None)


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(data.DataError) as error:
        data.open_source("fashion_mnistt")
    message = str(error.value)
    assert "unknown dataset name" in message
    for name in ("fashion_mnist", "folder", "cifar10", "imagenet2012", "imagenette"):
        assert name in message


def test_tensorflow_datasets_source_through_mock_data():
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=24):
        source = data.open_source("cifar10")
    # Without metadata files the mock knows the label count but not the names.
    assert source.num_classes == 10 and len(set(source.class_names)) == 10
    assert source.train.images.shape[1:] == (32, 32, 3)
    assert source.train.num_examples == 24
    pipeline = data.TrainPipeline(source, 48, data.Augmentation(), seed=0)
    images, labels = next(iter(pipeline.dataset(0, 0, 8)))
    assert images.shape == (8, 48, 48, 3) and labels.shape == (8,)


def test_run_json_interface_for_evaluation_and_calibration(tmp_path):
    directory = write_tiny_fashion_mnist(tmp_path)
    run_info = {"dataset": "fashion_mnist", "data_dir": directory, "image_size": 40,
                "eval_crop_fraction": 1.0}
    images, labels = next(iter(data.evaluation_dataset(run_info, batch_size=64)))
    assert images.shape == (64, 40, 40, 3) and labels.shape == (64,)
    single = next(iter(data.evaluation_dataset(run_info)))[0]
    np.testing.assert_allclose(single.numpy(), images[0].numpy(), atol=1e-3)
    calibration = list(data.calibration_dataset(run_info, 10))
    assert len(calibration) == 10 and calibration[0].shape == (40, 40, 3)
    # Preprocessed exactly as evaluation: the resized training image, nothing random.
    source = data.open_source("fashion_mnist", directory)
    order = np.random.default_rng(0).permutation(256)
    expected = data.eval_resize(source.train.images[order[0]], 40, 1.0)
    np.testing.assert_allclose(calibration[0].numpy(), expected.numpy(), atol=1e-4)
