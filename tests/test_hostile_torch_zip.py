"""Crafted PyTorch zip checkpoints end in the library's one-line error, naming the file and the
tensor's key, without reading outside a storage, without memory out of proportion to the file,
and without any other exception: the torch-free reader (torch_zip) directly, and through
state_dict_files.read and from_pytorch on both of its paths (torch_zip, torch.load)."""

import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

import regnet_keras
from regnet_keras.errors import InputError
from regnet_keras.weights import state_dict_files, torch_zip
from tests import checkpoint_crafting as crafting

STORAGE = np.arange(12, dtype=np.float32)


def crafted(tmp_path, name, content, storages=None, **options):
    return crafting.write_checkpoint(tmp_path / name, content,
                                     {"0": STORAGE.tobytes()} if storages is None else storages,
                                     **options)


def refused(path, *patterns, error=torch_zip.CheckpointError):
    with pytest.raises(error) as raised:
        torch_zip.load(path)
    message = str(raised.value)
    assert isinstance(raised.value, InputError) and "\n" not in message
    assert message.startswith(str(path))
    for pattern in patterns:
        assert pattern in message, message
    return message


def peak_bytes(function, *arguments):
    tracemalloc.start()
    try:
        try:
            function(*arguments)
        except InputError:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# The four files of the report, each about 1 KB.

@pytest.mark.parametrize("offset,size,stride", [
    (0, (1000,), (-1000,)),        # walks backwards from element 0
    (11, (4, 3), (-4, 5)),         # lowest index -1: a negative stride past the start
    (-3, (2,), (1,)),              # negative offset
    (5, (3, 3), (1, 2)),           # highest index 5 + 2 + 4 = 11 fits, (3, 4): 13 does not
])
def test_a_view_outside_its_storage_is_refused_naming_the_key(tmp_path, offset, size, stride):
    if size == (3, 3):
        size = (3, 4)
    path = crafted(tmp_path, "outside.pth",
                   {"stem.conv.weight": crafting.Tensor("0", 12, offset, size, stride)})
    assert (tmp_path / "outside.pth").stat().st_size < 1500
    refused(path, "stem.conv.weight")


def test_views_inside_their_storage_read_what_numpy_slicing_reads(tmp_path):
    views = {"transposed": crafting.Tensor("0", 12, 0, (4, 3), (1, 4)),
             "reversed": crafting.Tensor("0", 12, 11, (6,), (-2,)),
             "offset": crafting.Tensor("0", 12, 5, (3,), (2,)),
             "empty": crafting.Tensor("0", 12, 0, (0, 5), (5, 1)),
             "scalar": crafting.Tensor("0", 12, 7, (), ())}
    read = torch_zip.load(crafted(tmp_path, "views.pth", views))
    np.testing.assert_array_equal(read["transposed"], STORAGE.reshape(3, 4).T)
    np.testing.assert_array_equal(read["reversed"], STORAGE[::-2])
    np.testing.assert_array_equal(read["offset"], STORAGE[5:11:2])
    assert read["empty"].shape == (0, 5) and read["scalar"] == 7.0
    assert read["reversed"].flags.owndata or read["reversed"].base is not None


def test_a_zero_stride_cannot_make_a_gigabyte_from_one_element(tmp_path):
    path = crafted(tmp_path, "zero_stride.pth",
                   {"w": crafting.Tensor("0", 1, 0, (1 << 28,), (0,))}, {"0": b"\0" * 4})
    assert (tmp_path / "zero_stride.pth").stat().st_size < 1024
    refused(path, "tensor w", "268435456 elements")
    assert peak_bytes(torch_zip.load, path) < 1 << 20


def test_views_cannot_multiply_a_storage(tmp_path):
    # 100 in-bounds views of one 4096-element storage: 25 times its elements.
    views = {f"w{index}": crafting.Tensor("0", 4096, 0, (4096,), (1,)) for index in range(100)}
    path = crafted(tmp_path, "views.pth", views, {"0": b"\0" * 4 * 4096})
    refused(path, "the file's storages back")


def test_a_compressed_storage_is_never_inflated_beyond_its_declared_elements(tmp_path):
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", crafting.pickle_bytes(
            {"w": crafting.Tensor("0", 4, 0, (4,), (1,))}))
        archive.writestr("archive/data/0", bytes(256 << 20))  # 256 MB of zeros, about 250 KB
    assert path.stat().st_size < 1 << 20
    read = torch_zip.load(str(path))
    np.testing.assert_array_equal(read["w"], np.zeros(4, np.float32))
    assert peak_bytes(torch_zip.load, str(path)) < 4 << 20


def test_a_storage_declaring_more_than_its_member_holds_is_refused_before_reading(tmp_path):
    path = crafted(tmp_path, "short.pth", {"w": crafting.Tensor("0", 1 << 30, 0, (4,), (1,))},
                   {"0": b"\0" * 16})
    refused(path, "storage 0", "truncated")
    assert peak_bytes(torch_zip.load, path) < 1 << 20


def test_a_member_whose_deflate_stream_cannot_back_its_declared_size_is_refused(tmp_path):
    # 2**28 elements declared, the member's headers raised to 1 GiB, its deflate stream a few
    # bytes: deflate expands at most 1032-fold, so the declared size is a lie, refused unread.
    path = tmp_path / "lying.pth"
    crafted(tmp_path, "lying.pth", {"w": crafting.Tensor("0", 1 << 28, 0, (4,), (1,))},
            {"0": bytes(16)}, compression=zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    member = b"archive/data/0"
    # (signature, offset of the uncompressed size, offset of the name) in local and central
    # directory headers.
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        position = data.find(signature)
        while position >= 0:
            if data[position + name_at:position + name_at + len(member)] == member:
                data[position + size_at:position + size_at + 4] = struct.pack("<I", 1 << 30)
            position = data.find(signature, position + 4)
    path.write_bytes(bytes(data))
    refused(str(path), "storage 0", "fewer than the 1073741824")
    assert peak_bytes(torch_zip.load, str(path)) < 1 << 20


def test_compression_methods_other_than_stored_and_deflate_are_refused(tmp_path):
    path = crafted(tmp_path, "bzip2.pth", {"w": crafting.Tensor("0", 12, 0, (12,), (1,))},
                   compression=zipfile.ZIP_BZIP2)
    refused(path, "compression method 12")


@pytest.mark.parametrize("content,expected", [
    ({"w": crafting.Call(crafting.Global("torch._utils", "_rebuild_tensor_v2"),
                         (5, 0, (1,), (1,), False, None))}, "storage is 5"),
    ({"w": crafting.Tensor("0", 12, 0, ("4",), (1,))}, "size is '4'"),
    ({"w": crafting.Tensor("0", 12, 0, (2.0,), (1,))}, "size is 2.0"),
    ({"w": crafting.Tensor("0", 12, True, (2,), (1,))}, "offset is True"),
    ({"w": crafting.Tensor("0", 12, 0, (1 << 60,), (1,))}, "size is"),
    ({"w": crafting.Call(crafting.Global("torch._utils", "_rebuild_tensor_v2"),
                         (crafting.storage_id("0", 12), 0, [2], (1,), False, None))},
     "not a tuple"),
    ({"w": crafting.Tensor("0", 12, 0, (2,), (1, 1))}, "stride (1, 1)"),
    ({"w": crafting.Tensor("0", 12, 0, tuple([1] * 40), tuple([1] * 40))}, "at most 32"),
    ({"w": crafting.storage_id("0", 12)}, "w is a _Storage"),
    ({"w": crafting.Call(crafting.Global("torch._utils", "_rebuild_tensor_v2"),
                         (crafting.storage_id("0", 12), 0, (2,), (1,)) + (None,) * 5)},
     "9 arguments"),
    ({"w": crafting.Call(crafting.Global("torch._utils", "_rebuild_parameter"),
                         ("not a tensor", False, None))}, "parameter is rebuilt from 'not a"),
    ({"w": crafting.Call(crafting.Global("collections", "OrderedDict"), ([("a", 1)],))},
     "OrderedDict is built with arguments"),
    ({"w": crafting.Global("torch", "FloatStorage")}, "w is a _StorageType"),
    ({("a", "tuple"): 1}, "has a key a tuple"),
    ({"w": crafting.Persistent(("storage", crafting.Global("torch", "FloatStorage"),
                                "../../etc/passwd", "cpu", 4))}, "a storage is named"),
    ({"w": crafting.Persistent(("storage", crafting.Global("torch", "FloatStorage"),
                                "0", "cpu", -4))}, "declares -4 elements"),
    ({"w": crafting.Persistent(("module", "x"))}, "unknown persistent object"),
    ({"a": crafting.Tensor("0", 12, 0, (2,), (1,)),
      "b": crafting.Tensor("0", 6, 0, (2,), (1,), "DoubleStorage")}, "declared as 12"),
])
def test_the_wrong_kind_of_object_anywhere_is_the_librarys_error(tmp_path, content, expected):
    refused(crafted(tmp_path, "wrong_kind.pth", content), expected)


def test_a_pickle_level_misuse_of_an_allowed_name_is_the_librarys_error(tmp_path):
    # NEWOBJ on a rebuild function and BUILD on a storage type: what pickle itself rejects.
    newobj = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n)\x81.")
    build = (b"\x80\x02ctorch\nFloatStorage\n}X\x04\x00\x00\x00nameX\x01\x00\x00\x00xsb.")
    for name, data, expected in (("newobj", newobj, "NEWOBJ"), ("build", build, "sets the state")):
        path = tmp_path / f"{name}.pth"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", data)
        refused(str(path), expected)


def test_a_pickle_cannot_rewrite_a_checked_view(tmp_path):
    # BUILD on a rebuilt tensor with the fields of a view outside its storage.
    path = tmp_path / "rewrite.pth"
    pickled = crafting.pickle_bytes({"w": crafting.Tensor("0", 12, 0, (2,), (1,))})
    state = crafting.pickle_bytes([None, -5, (1000,), (-1000,)])[2:-1]
    # The tensor's REDUCE is followed by BUILD with that state, before the dict's SETITEMS.
    pickled = pickled.replace(b"OrderedDict\n(tRtR", b"OrderedDict\n(tRtR" + state + b"b", 1)
    assert state in pickled
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/data/0", STORAGE.tobytes())
    refused(str(path), "sets the state of a TensorView")


def test_deep_nesting_cycles_and_shared_floods_are_bounded(tmp_path):
    def raw(name, opcodes):
        path = tmp_path / f"{name}.pth"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", b"\x80\x02" + opcodes + b".")
        return str(path)

    refused(raw("deep", b"]" + b"\x85" * 100), "nest deeper")  # 100 nested 1-tuples
    refused(raw("cycle", b"]q\x00h\x00a"), "nest deeper")  # a list that holds itself
    # Each level holds the previous one twice: 2**30 paths from 60 bytes of pickle.
    flood = b"]q\x00" + b"h\x00h\x00\x86q\x00" * 30
    refused(raw("flood", flood), "number more than")


def test_the_pickle_size_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(torch_zip, "MAX_PICKLE_BYTES", 64)
    refused(crafted(tmp_path, "big.pth", {"w" * 100: 1}), "more than the 64")


def test_an_unknown_byte_order_is_refused(tmp_path):
    refused(crafted(tmp_path, "order.pth", {"a": 1}, byteorder="middle"), "byte order")


def test_big_endian_checkpoints_read_in_native_order(tmp_path):
    path = crafting.state_dict_checkpoint(tmp_path / "big.pth", {"w": STORAGE}, byteorder="big")
    # The storage bytes are little-endian as written; declared big-endian they read swapped.
    np.testing.assert_array_equal(torch_zip.load(path)["w"], STORAGE.byteswap())


def test_a_planted_import_never_runs(tmp_path):
    marker = tmp_path / "ran"
    path = crafted(tmp_path, "planted.pth", {"w": crafting.Call(crafting.Global(
        "os", "system"), (f"touch {marker}",))})
    refused(path, "os.system", error=torch_zip.UnsafeCheckpointError)
    assert not marker.exists()


def test_damaged_archives_are_the_librarys_error(tmp_path):
    valid = (tmp_path / "valid.pth")
    crafting.state_dict_checkpoint(valid, {"w": STORAGE})
    data = valid.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 10):
        damaged = tmp_path / f"cut{cut}.pth"
        damaged.write_bytes(data[:cut])
        refused(str(damaged))


# Through the library's entry points, on both reading paths.

@pytest.fixture(params=["torch_zip", "torch.load"])
def reading_path(request, monkeypatch):
    if request.param == "torch.load":
        pytest.importorskip("torch")
    else:
        monkeypatch.setattr(state_dict_files, "_torch_importable", lambda: False)
    return request.param


@pytest.mark.parametrize("name,content,storage", [
    ("outside", {"stem.conv.weight": crafting.Tensor("0", 4, 0, (1000,), (-1000,))}, 16),
    ("zero_stride", {"stem.conv.weight": crafting.Tensor("0", 1, 0, (1 << 28,), (0,))}, 4),
    ("wrong_kind", {"stem.conv.weight": crafting.Call(crafting.Global(
        "torch._utils", "_rebuild_tensor_v2"), (5, 0, (1,), (1,), False, crafting.Call(
            crafting.Global("collections", "OrderedDict"), ())))}, 4),
])
def test_from_pytorch_and_read_end_in_one_line_errors(tmp_path, reading_path, name, content,
                                                      storage):
    path = crafted(tmp_path, f"{name}.pth", content, {"0": bytes(storage)})
    with pytest.raises(state_dict_files.StateDictFileError) as raised:
        state_dict_files.read(path)
    assert isinstance(raised.value, InputError) and "\n" not in str(raised.value)
    assert path in str(raised.value)
    with pytest.raises(regnet_keras.PyTorchWeightsError) as raised:
        regnet_keras.from_pytorch(path)
    assert "\n" not in str(raised.value) and path in str(raised.value)
    assert peak_bytes(state_dict_files.read, path) < 64 << 20


def test_torch_load_broadcast_views_are_refused_naming_the_key(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "expanded.pth"
    torch.save({"stem.conv.weight": torch.zeros(1).expand(1 << 28)}, path)
    with pytest.raises(state_dict_files.StateDictFileError, match="stem.conv.weight"):
        state_dict_files.read(str(path))


def test_the_kept_crafted_files_are_refused():
    """Inputs the fuzzers found or the report gave, kept as files (tests/hostile_files)."""
    import glob
    import os
    directory = os.path.join(os.path.dirname(__file__), "hostile_files")
    files = sorted(glob.glob(os.path.join(directory, "*.pth")))
    assert files
    for path in files:
        with pytest.raises(InputError):
            torch_zip.load(path)
