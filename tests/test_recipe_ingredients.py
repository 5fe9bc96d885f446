"""The recipe's ingredients on one batch: MixUp/CutMix labels against the pixels they mixed, the
automatic augmentation policies, the distillation loss against PyTorch's, and the pipeline that
chains them (same key, same pixels)."""

import numpy as np
import pytest
import tensorflow as tf

from regnet_keras.training import data as data_lib
from regnet_keras.training.auto_augment import AutoAugment
from regnet_keras.training.distillation import Distillation, soft_loss
from regnet_keras.training.mixing import BatchMixer, Mixing

BATCH, SIZE, CLASSES = 64, 32, 10


def _batch(seed=0):
    """Images whose every pixel is unique to its image (an image's pixels all lie in its own
    band of values), so mixed pixels can be traced to the images they came from."""
    rng = np.random.default_rng(seed)
    bands = np.arange(BATCH, dtype=np.float32)[:, None, None, None] * 3.9
    images = bands + rng.uniform(0, 3.5, (BATCH, SIZE, SIZE, 3)).astype(np.float32)
    labels = np.arange(BATCH) % CLASSES
    return images, labels


def _mix(mixing, key):
    images, labels = _batch()
    mixed, probabilities = BatchMixer(mixing)(
        tf.constant(images), tf.one_hot(labels, CLASSES), tf.constant(key, tf.int64))
    return images, labels, mixed.numpy(), probabilities.numpy()


def _source_image(images, pixel_values):
    """The index of the image each pixel value came from (bands are 3.9 apart, 3.5 wide)."""
    return np.floor(pixel_values / 3.9).astype(int)


def test_cutmix_labels_sum_to_one_and_weigh_each_image_by_its_pixels():
    images, labels, mixed, probabilities = _mix(Mixing(cutmix_alpha=1.0), [3, 1])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    pasted_somewhere = False
    for index in range(BATCH):
        origin = _source_image(images, mixed[index, :, :, 0])
        own = np.mean(origin == index)
        others = np.unique(origin[origin != index])
        assert len(others) <= 1, "a CutMix image holds pixels of one other image at most"
        expected = np.zeros(CLASSES)
        expected[labels[index]] += own
        if len(others):
            pasted_somewhere = True
            expected[labels[others[0]]] += 1 - own
        # Keras weighs the label by the drawn box's area, the pixels pasted are those whose
        # coordinates fall inside it: they can differ by a row and a column of the box.
        np.testing.assert_allclose(probabilities[index], expected, atol=(2 * SIZE + 1) / SIZE**2)
    assert pasted_somewhere


def test_mixup_labels_sum_to_one_in_the_proportion_of_the_blend():
    images, labels, mixed, probabilities = _mix(Mixing(mixup_alpha=0.4), [5, 2])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    blended = 0
    for index in range(BATCH):
        # mixed = w * own + (1 - w) * other: solve for the partner and w from two pixels.
        own = images[index].ravel()
        target = mixed[index].ravel()
        candidates = []
        for other in range(BATCH):
            difference = own - images[other].ravel()
            if other == index or np.abs(difference).max() < 1e-6:
                continue
            weight = np.dot(target - images[other].ravel(), difference) / np.dot(
                difference, difference)
            residual = np.abs(weight * own + (1 - weight) * images[other].ravel() - target)
            if residual.max() < 1e-2:
                candidates.append((other, weight))
        if not candidates:
            np.testing.assert_allclose(target, own, atol=1e-3)  # its own partner: unchanged
            continue
        other, weight = candidates[0]
        blended += 1
        expected = np.zeros(CLASSES)
        expected[labels[index]] += weight
        expected[labels[other]] += 1 - weight
        np.testing.assert_allclose(probabilities[index], expected, atol=1e-3)
    assert blended > BATCH // 2


def test_with_both_on_each_batch_is_mixed_by_one_of_them_at_the_switch_probability():
    kinds = []
    for step in range(40):
        images, _, mixed, probabilities = _mix(
            Mixing(mixup_alpha=0.2, cutmix_alpha=1.0, cutmix_probability=0.5), [7, step])
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        # CutMix only moves pixels; MixUp makes values that lie between two bands.
        fractional = (mixed[..., 0] / 3.9) % 1 > 3.5 / 3.9 + 1e-3
        kinds.append("mixup" if fractional.any() else "cutmix")
    assert 8 <= kinds.count("cutmix") <= 32, kinds
    never = Mixing(mixup_alpha=0.2, cutmix_alpha=1.0, cutmix_probability=0.0)
    images, _, mixed, _ = _mix(never, [7, 0])
    assert ((mixed[..., 0] / 3.9) % 1 > 3.5 / 3.9 + 1e-3).any()


def test_mixing_refuses_negative_alphas_and_probabilities_outside_0_1():
    with pytest.raises(ValueError, match="mixup_alpha=-1"):
        Mixing(mixup_alpha=-1)
    with pytest.raises(ValueError, match="cutmix_probability=2"):
        Mixing(cutmix_probability=2)


@pytest.mark.parametrize("policy", ["randaugment", "trivialaugment_wide"])
def test_policy_changes_images_per_image_within_their_range_and_repeats_for_a_key(policy):
    rng = np.random.default_rng(1)
    images = tf.constant(rng.uniform(0, 255, (BATCH, SIZE, SIZE, 3)).astype(np.float32))
    augment = tf.function(AutoAugment(policy))
    first = augment(images, tf.constant([1, 2], tf.int64)).numpy()
    again = augment(images, tf.constant([1, 2], tf.int64)).numpy()
    other = augment(images, tf.constant([1, 3], tf.int64)).numpy()
    assert first.min() >= 0 and first.max() <= 255 and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1
    changed = np.abs(first - images.numpy()).reshape(BATCH, -1).max(axis=1) > 1e-3
    assert changed.mean() > 0.6
    if policy == "trivialaugment_wide":
        # Operations are drawn per image: the identity leaves about 1 image in 12 as it was
        # and changes the others (one draw per batch, as keras.layers.RandAugment draws,
        # would change all of them or none).
        assert 0 < (~changed).sum() < BATCH // 3


def test_policy_none_is_the_identity_and_unknown_policies_are_refused():
    images = tf.zeros((2, SIZE, SIZE, 3))
    assert AutoAugment("none")(images, tf.constant([0, 0], tf.int64)) is images
    with pytest.raises(ValueError, match="auto_augment='autoaugment'"):
        AutoAugment("autoaugment")


def test_soft_loss_is_pytorchs_kl_divergence_times_t_squared():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    student = rng.normal(size=(8, CLASSES)).astype(np.float32) * 3
    teacher = rng.normal(size=(8, CLASSES)).astype(np.float32) * 3
    for temperature in (1.0, 4.0):
        expected = torch.nn.functional.kl_div(
            torch.log_softmax(torch.from_numpy(student) / temperature, -1),
            torch.softmax(torch.from_numpy(teacher) / temperature, -1),
            reduction="none").sum(-1) * temperature ** 2
        ours = soft_loss(tf.constant(student), tf.constant(teacher), temperature).numpy()
        np.testing.assert_allclose(ours, expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(soft_loss(tf.constant(teacher), tf.constant(teacher), 2.0), 0,
                               atol=1e-6)


def test_distillation_settings_outside_their_range_are_refused():
    with pytest.raises(ValueError, match="distill_alpha=1.5"):
        Distillation(teacher="t", alpha=1.5)
    with pytest.raises(ValueError, match="distill_temperature=0"):
        Distillation(teacher="t", temperature=0)


def _tiny_source(count=128):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 255, (count, 28, 28, 1), dtype=np.uint8)
    labels = (np.arange(count) % CLASSES).astype(np.int64)
    split = data_lib.Split(images=images, labels=labels, num_examples=count)
    return data_lib.Source(name="tiny", data_dir=None,
                           class_names=tuple(map(str, range(CLASSES))), train=split,
                           held_out=split, held_out_name="test", description="tiny")


def test_pipeline_chains_crop_policy_and_mixing_at_the_training_crop_size_resumably():
    source = _tiny_source()
    pipeline = data_lib.TrainPipeline(
        source, 36, data_lib.Augmentation(min_crop_area=0.5, erasing_probability=0.5), seed=4,
        auto_augment="trivialaugment_wide", mixing=Mixing(mixup_alpha=0.2, cutmix_alpha=1.0))
    batches = [(x.numpy(), y.numpy()) for x, y in pipeline.dataset(epoch=1, skip_batches=0,
                                                                   batch_size=32)]
    assert len(batches) == 4
    for images, probabilities in batches:
        assert images.shape == (32, 36, 36, 3) and 0 <= images.min() and images.max() <= 255
        assert probabilities.shape == (32, CLASSES)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    resumed = [(x.numpy(), y.numpy()) for x, y in pipeline.dataset(epoch=1, skip_batches=2,
                                                                   batch_size=32)]
    for (images, labels), (again, again_labels) in zip(batches[2:], resumed):
        np.testing.assert_array_equal(images, again)
        np.testing.assert_array_equal(labels, again_labels)
