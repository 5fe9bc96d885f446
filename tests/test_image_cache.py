"""Image folders at the training resolution: reduced-scale JPEG decoding against a full decode
and resize, the image cache (every promised colour case through it, a changed file, two runs
writing one cache at once, the size bound), and hostile files (decompression bombs, formats
that are not images of the folder's kinds, enormous photos)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from regnet_keras.training import data
from regnet_keras.training import image_cache
from regnet_keras.training import image_decoding
from tests.conftest import REPO
from tests.test_image_folders import _cases


def _photo(path, size=(1600, 1200), seed=0, **options):
    """A smooth photo-like JPEG (DCT scaling is exact on flat areas, so smooth content keeps the
    comparison about the scaling, not about noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[1] // 100, size[0] // 100, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, format="JPEG", quality=92, **options)
    return str(path)


def _folder(root, per_class=6, size=(640, 480)):
    for label in ("cat", "dog"):
        for index in range(per_class):
            _photo(root / label / f"{index}.jpg", size, seed=hash((label, index)) % 1000)
    return str(root)


def test_reduced_scale_decode_is_close_to_full_decode_then_resize(tmp_path):
    path = _photo(tmp_path / "photo.jpg")
    reduced = image_decoding.read_image(path, min_side=150)
    # libjpeg's 1/8 scale is the smallest whose shorter side is still >= 150.
    assert reduced.shape == (150, 200, 3)
    full = image_decoding.read_image(path)
    assert full.shape == (1200, 1600, 3)
    reference = np.asarray(Image.fromarray(full).resize((200, 150), Image.Resampling.BOX),
                           np.float64)
    difference = np.abs(reduced.astype(np.float64) - reference)
    assert difference.mean() < 2.0 and np.percentile(difference, 99) < 8.0, difference.mean()
    assert difference.max() > 0  # a different computation, not a copy of the full decode
    assert image_decoding.read_image(path, min_side=151).shape == (300, 400, 3)  # 1/4 scale
    assert image_decoding.read_image(path, min_side=2000).shape == (1200, 1600, 3)


def test_reduced_scale_decode_keeps_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated by 90 degrees
    path = _photo(tmp_path / "rotated.jpg", exif=exif)
    assert image_decoding.read_image(path, min_side=150).shape == (200, 150, 3)
    assert image_decoding.read_image(path).shape == (1600, 1200, 3)


def test_every_promised_case_reads_through_the_cache_as_without_it(tmp_path):
    cases = _cases(tmp_path / "images")
    cache = image_cache.ImageCache(str(tmp_path / "cache"), shorter_side=32)
    source = data.open_source("folder", str(tmp_path / "images"), holdout_fraction=0.2,
                              image_cache=cache)
    for split in (source.train, source.held_out):
        assert split.cache_side == 32 and all(split.cache_paths)
        images = [image.numpy() for image, _ in data._raw_examples(source, split)]
        for path, image in zip(split.paths, images):
            expected = image_decoding.resize_shorter_side(image_decoding.read_image(path), 32)
            assert image.shape == expected.shape, path
            # Entries are JPEGs of quality 95: close to the decoded file, not equal to it.
            difference = np.abs(image.astype(np.int16) - expected.astype(np.int16))
            assert difference.mean() < 4.0, (path, difference.mean())
    report = source.cache_report
    assert (report.built, report.reused, report.not_cached) == (len(cases), 0, 0)
    assert report.total_bytes == sum(os.path.getsize(p) for p in
                                     source.train.cache_paths + source.held_out.cache_paths)
    again = data.open_source("folder", str(tmp_path / "images"), holdout_fraction=0.2,
                             image_cache=cache)
    assert (again.cache_report.built, again.cache_report.reused) == (0, len(cases))
    assert again.train.cache_paths == source.train.cache_paths


def test_a_changed_file_misses_its_old_entry_even_with_its_old_size_and_time(tmp_path):
    path = _photo(tmp_path / "a.jpg", (320, 240), seed=1)
    cache = image_cache.ImageCache(str(tmp_path / "cache"), shorter_side=64)
    (old_entry,), unusable, _ = cache.resolve([path])
    assert not unusable and cache.lookup(path) == old_entry
    status = os.stat(path)
    other = tmp_path / "other.jpg"
    _photo(other, (320, 240), seed=2)
    content = other.read_bytes()
    original = open(path, "rb").read()
    content = content[:len(original)].ljust(len(original), b"\0")  # the same size
    with open(path, "wb") as file:
        file.write(content)
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))  # the same modification time
    assert os.path.getsize(path) == status.st_size
    assert cache.lookup(path) is None
    (new_entry,), unusable, _ = cache.resolve([path])
    assert new_entry != old_entry and not unusable
    expected = image_decoding.resize_shorter_side(image_decoding.read_image(path), 64)
    entry_pixels = np.asarray(Image.open(new_entry))
    assert np.abs(entry_pixels.astype(np.int16) - expected.astype(np.int16)).mean() < 4.0


_WRITER = """
import json, sys
from regnet_keras.training import image_cache
cache = image_cache.ImageCache(sys.argv[1], shorter_side=48, workers=2)
entries, unusable, report = cache.resolve(sys.argv[2:])
print(json.dumps({"entries": entries, "unusable": unusable, "built": report.built}))
"""


def test_two_runs_writing_one_cache_at_once_agree_and_leave_only_whole_entries(tmp_path):
    import json
    paths = [_photo(tmp_path / "photos" / f"{i}.jpg", (400, 300), seed=i) for i in range(24)]
    cache_dir = str(tmp_path / "cache")
    environment = dict(os.environ, PYTHONPATH=REPO)
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, cache_dir, *paths],
                                stdout=subprocess.PIPE, text=True, env=environment)
               for _ in range(2)]
    results = [json.loads(writer.communicate(timeout=300)[0]) for writer in writers]
    assert all(writer.returncode == 0 for writer in writers)
    assert results[0]["entries"] == results[1]["entries"]
    assert all(results[0]["entries"]) and not results[0]["unusable"]
    # Between them they built every entry, each at least once.
    assert results[0]["built"] + results[1]["built"] >= len(paths)
    leftovers = [name for _, _, names in os.walk(cache_dir) for name in names
                 if name.startswith(".partial-")]
    assert leftovers == []
    cache = image_cache.ImageCache(cache_dir, shorter_side=48)
    for path, entry in zip(paths, results[0]["entries"]):
        assert cache.lookup(path) == entry
        with Image.open(entry) as image:
            image.load()  # a whole JPEG
            assert min(image.size) == 48


def test_the_size_bound_evicts_old_entries_of_other_folders_then_stops_caching(tmp_path):
    old = [_photo(tmp_path / "old" / f"{i}.jpg", (400, 300), seed=i) for i in range(4)]
    new = [_photo(tmp_path / "new" / f"{i}.jpg", (400, 300), seed=10 + i) for i in range(4)]
    cache_dir = str(tmp_path / "cache")
    entries, _, report = image_cache.ImageCache(cache_dir, 64).resolve(old)
    entry_bytes = report.total_bytes
    long_ago = 1_000_000_000
    for entry in entries:
        os.utime(entry, (long_ago, long_ago))
    # Room for about 5 entries: the new folder's 4 fit once 3 or more old ones are gone.
    bounded = image_cache.ImageCache(cache_dir, 64, max_bytes=int(entry_bytes * 5 / 4))
    new_entries, _, report = bounded.resolve(new)
    assert all(new_entries) and report.built == 4 and report.evicted >= 3
    assert report.total_bytes <= bounded.max_bytes
    assert sum(os.path.exists(e) for e in entries) == 4 - report.evicted
    # Too small for even this folder: the rest stays uncached and is read from its files.
    tiny = image_cache.ImageCache(str(tmp_path / "tiny"), 64, max_bytes=entry_bytes // 3)
    tiny_entries, _, report = tiny.resolve(new)
    assert report.not_cached >= 2 and report.not_cached == tiny_entries.count(None)
    assert report.total_bytes <= tiny.max_bytes
    assert "did not fit" in report.summary()


def test_a_partly_cached_folder_feeds_training_and_resumes_on_the_same_batches(tmp_path):
    root = _folder(tmp_path / "images", per_class=8)
    probe = image_cache.ImageCache(str(tmp_path / "probe"), 64)
    _, _, report = probe.resolve([os.path.join(root, "cat", "0.jpg")])
    cache = image_cache.ImageCache(str(tmp_path / "cache"), 64,
                                   max_bytes=report.total_bytes * 6)
    source = data.open_source("folder", root, holdout_fraction=0.25, image_cache=cache)
    entries = source.train.cache_paths + source.held_out.cache_paths
    assert 0 < sum(map(bool, entries)) < len(entries)  # both kinds of file in one pipeline
    pipeline = data.TrainPipeline(source, 32, data.Augmentation(), seed=1)
    whole = [x.numpy() for x, _ in pipeline.dataset(0, 0, 4)]
    resumed = [x.numpy() for x, _ in pipeline.dataset(0, 1, 4)]
    assert len(whole) == 3 and whole[0].shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(whole[1], resumed[0])
    np.testing.assert_array_equal(whole[2], resumed[1])
    held_out = next(iter(data.held_out_dataset(source, 32, 0.875, batch_size=4)))[0]
    assert held_out.shape == (4, 32, 32, 3)


def test_decompression_bombs_and_foreign_formats_are_reported_like_corrupt_files(tmp_path):
    root = _folder(tmp_path / "images", per_class=6, size=(64, 48))
    # 10000 x 10000 one-bit pixels: a 12 KB file that would decode to 300 MB of RGB.
    bomb = tmp_path / "images" / "cat" / "bomb.png"
    Image.new("1", (10000, 10000)).save(bomb)
    assert bomb.stat().st_size < 100_000
    # A TIFF named .jpg: Pillow picks decoders by content, but folders only get the promised.
    foreign = tmp_path / "images" / "dog" / "tiff.jpg"
    Image.new("RGB", (16, 16)).save(foreign, format="TIFF")
    for cache in (None, image_cache.ImageCache(str(tmp_path / "cache"), 64)):
        with pytest.raises(data.DataError, match="bomb.png") as error:
            data.open_source("folder", root, image_cache=cache)
        assert "tiff.jpg" in str(error.value) and "decompression bombs" in str(error.value)
        source = data.open_source("folder", root, corrupt_images="skip", image_cache=cache)
        assert sorted(source.skipped_files) == sorted([str(bomb), str(foreign)])
    with pytest.raises(image_decoding.ImageTooLargeError, match="decompression bomb"):
        image_decoding.read_image(str(bomb))


def test_an_enormous_photo_under_the_limit_is_decoded_at_reduced_size(tmp_path):
    path = _photo(tmp_path / "panorama.jpg", (12000, 6000))  # 72 megapixels
    pixels = image_decoding.read_image(path, min_side=256)
    assert pixels.shape == (750, 1500, 3)  # 1/8 scale: 2% of the full decode's memory
    cache = image_cache.ImageCache(str(tmp_path / "cache"), 256)
    (entry,), unusable, _ = cache.resolve([path])
    assert not unusable
    with Image.open(entry) as image:
        assert image.size == (512, 256)


def test_the_cache_of_a_run_follows_the_environment(tmp_path, monkeypatch):
    root = _folder(tmp_path / "images", per_class=5, size=(64, 48))
    run_info = {"dataset": "folder", "data_dir": root, "image_size": 32,
                "eval_crop_fraction": 0.875}
    monkeypatch.setenv(image_cache.CACHE_DIR_ENVIRONMENT, str(tmp_path / "shared"))
    source = data.source_of_run(run_info)
    assert source.cache_report.directory == str(tmp_path / "shared")
    assert source.train.cache_side == 37  # ceil(32 / 0.875)
    assert data.source_of_run(run_info, cache_directory="off").cache_report is None
    monkeypatch.setenv(image_cache.CACHE_DIR_ENVIRONMENT, "off")
    assert data.source_of_run(run_info).train.cache_paths is None
