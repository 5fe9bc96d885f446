"""Image folders as users have them: nested class folders, every format and colour mode the
reader promises, hidden and non-image files, too-small classes; class weights and per-class
accuracy against scikit-learn."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from regnet_keras.training import data
from regnet_keras.training import evaluation
from regnet_keras.training import loop as training
from regnet_keras.design_space import RegNetConfig

RED = (200, 30, 40)


def _save(path, image, **options):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, **options)
    return str(path)


def _cases(root):
    """One file per promised case, with the RGB array it must read as (None: only its shape
    and dtype are checked, for lossy formats)."""
    solid = Image.new("RGB", (24, 16), RED)
    cases = {}
    # Fully transparent RGBA: the documented background, whatever colour hides under alpha 0.
    transparent = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    cases[_save(root / "cat" / "transparent.png", transparent)] = np.full(
        (20, 20, 3), data.ALPHA_BACKGROUND, np.uint8)
    half = Image.new("RGBA", (8, 8), (0, 0, 0, 128))  # 50% black over white
    cases[_save(root / "cat" / "nested" / "deeper" / "half.png", half)] = np.full(
        (8, 8, 3), round(255 * 127 / 255), np.uint8)
    palette = solid.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    cases[_save(root / "cat" / "palette.png", palette)] = np.asarray(palette.convert("RGB"))
    palette_alpha = Image.new("P", (6, 6), 0)
    palette_alpha.putpalette([10, 20, 30] * 256)
    cases[_save(root / "cat" / "palette_alpha.png", palette_alpha, transparency=0)] = np.full(
        (6, 6, 3), data.ALPHA_BACKGROUND, np.uint8)
    gray = Image.new("L", (9, 7), 77)
    cases[_save(root / "cat" / "gray.png", gray)] = np.full((7, 9, 3), 77, np.uint8)
    gray16 = Image.fromarray(np.full((5, 5), 65535, np.uint16))
    cases[_save(root / "dog" / "gray16.png", gray16)] = np.full((5, 5, 3), 255, np.uint8)
    cases[_save(root / "dog" / "cmyk.jpg", Image.new("CMYK", (16, 16), (0, 255, 255, 0)),
                quality=95)] = None
    # EXIF orientation 6: stored 24 wide and 16 high, shown rotated to 16 wide, 24 high.
    exif = Image.Exif()
    exif[0x0112] = 6
    cases[_save(root / "dog" / "rotated.jpg", solid, exif=exif, quality=95)] = np.zeros(
        (24, 16, 3), np.uint8)
    cases[_save(root / "dog" / "frames.gif", solid, save_all=True,
                append_images=[Image.new("RGB", (24, 16), (0, 0, 255))])] = np.asarray(
        solid.convert("P", palette=Image.Palette.ADAPTIVE).convert("RGB"))
    cases[_save(root / "dog" / "bitmap.bmp", solid)] = np.asarray(solid)
    cases[_save(root / "dog" / "lossless.webp", solid, lossless=True)] = np.asarray(solid)
    cases[_save(root / "dog" / "big.JPEG", Image.new("RGB", (300, 120), RED))] = None
    return cases


def _junk(root):
    (root / "cat" / ".DS_Store").write_bytes(b"\0\1")
    _save(root / "cat" / ".thumbnails" / "t.png", Image.new("RGB", (4, 4)))
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / "sound.ogg").write_bytes(b"OggS")
    (root / "._hidden_class").mkdir()


def test_every_promised_format_reads_upright_as_rgb(tmp_path):
    cases = _cases(tmp_path)
    for path, expected in cases.items():
        pixels = data.read_image(path)
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[-1] == 3, path
        if path.endswith("rotated.jpg"):
            assert pixels.shape == expected.shape, "EXIF orientation was not applied"
        elif path.endswith("cmyk.jpg"):
            # CMYK (0, 255, 255, 0) is red; Pillow inverts Adobe CMYK JPEGs as libjpeg stores them.
            assert pixels[8, 8, 0] > 200 and pixels[8, 8, 1:].max() < 60, pixels[8, 8]
        elif expected is not None:
            np.testing.assert_array_equal(pixels, expected, err_msg=path)


def test_a_folder_of_every_case_loads_through_tensorflow_and_counts_what_it_skipped(tmp_path):
    cases = _cases(tmp_path)
    _junk(tmp_path)
    source = data.open_source("folder", str(tmp_path), holdout_fraction=0.2)
    assert source.class_names == ("cat", "dog")
    assert source.train.num_examples + source.held_out.num_examples == len(cases)
    assert source.ignored_files == {"hidden": 2, "not_images": 2}
    assert any("deeper" in p for p in source.train.paths + source.held_out.paths)
    images = [image.numpy() for image, _ in data._raw_examples(source, source.train)]
    for path, image in zip(source.train.paths, images):
        np.testing.assert_array_equal(image, data.read_image(path))
    batch, _ = next(iter(data.TrainPipeline(source, 32, data.Augmentation(), 0).dataset(0, 0, 4)))
    assert batch.shape == (4, 32, 32, 3)
    held_out = next(iter(data.held_out_dataset(source, 32, 0.875, batch_size=8)))[0]
    assert held_out.shape[1:] == (32, 32, 3)


def test_empty_and_too_small_classes_are_refused_by_name_before_anything_is_written(tmp_path):
    root = tmp_path / "photos"
    for i in range(6):
        _save(root / "big" / f"{i}.png", Image.new("RGB", (8, 8), (i, 0, 0)))
    for i in range(2):
        _save(root / "small" / "sub" / f"{i}.png", Image.new("RGB", (8, 8)))
    (root / "empty").mkdir()
    (root / "empty" / "readme.txt").write_text("nothing")
    model_dir = tmp_path / "run"
    config = training.TrainConfig(model=RegNetConfig(w0=8, wa=8, wm=2, depth=4, group_width=8),
                                  dataset="folder", data_dir=str(root), model_dir=str(model_dir))
    with pytest.raises(data.DataError) as error:
        training.train(config)
    message = str(error.value)
    assert "class 'empty'" in message and "holds no images" in message
    assert "class 'small'" in message and "only 2 images" in message
    assert "'big'" not in message and "--min_images_per_class" in message
    assert not model_dir.exists()
    with pytest.raises(data.DataError, match="class 'empty'") as error:
        data.open_source("folder", str(root), min_images_per_class=2)
    assert "class 'small'" not in str(error.value)


def test_balanced_class_weights_match_scikit_learn():
    from sklearn.utils.class_weight import compute_class_weight
    labels = np.array([0] * 50 + [1] * 10 + [2] * 5, np.int32)
    source = data.Source("folder", None, ("a", "b", "c"), data.Split(65, labels=labels),
                         data.Split(0), "test", "")
    config = training.TrainConfig(model=None, class_weights="balanced")
    np.testing.assert_allclose(training.class_loss_weights(config, source),
                               compute_class_weight("balanced", classes=np.arange(3), y=labels),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="class_weights='inverse' is invalid"):
        training.class_loss_weights(training.TrainConfig(model=None, class_weights="inverse"),
                                    source)


def test_per_class_and_balanced_accuracy_match_scikit_learn_and_the_plot_stays_readable(
        tmp_path):
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, recall_score
    rng = np.random.default_rng(0)
    classes = 60
    truth = rng.integers(0, classes, 3000)
    predicted = np.where(rng.random(3000) < 0.7, truth, rng.integers(0, classes, 3000))
    confusion = confusion_matrix(truth, predicted, labels=np.arange(classes))
    assert evaluation.balanced_accuracy(confusion) == pytest.approx(
        balanced_accuracy_score(truth, predicted))
    np.testing.assert_allclose(evaluation.per_class_accuracy(confusion),
                               recall_score(truth, predicted, average=None))
    worst = evaluation.most_confused(confusion, [f"class{i}" for i in range(classes)], 3)
    off = confusion - np.diag(np.diag(confusion))
    assert worst[0]["examples"] == off.max() and len(worst) == 3
    png = tmp_path / "confusion.png"
    evaluation.plot_confusion(confusion, [f"a long class name {i}" for i in range(classes)],
                              str(png), "60 classes")
    with Image.open(io.BytesIO(png.read_bytes())) as image:
        assert max(image.size) <= evaluation.MAX_FIGURE_PIXELS and min(image.size) >= 1500
