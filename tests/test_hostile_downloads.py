"""Downloads of named and ImageNet weights from a server that is not trusted: a body beyond
what a weights file of the model can hold is abandoned while it streams (whatever
Content-Length says, or without one), a file failing its checksum never enters the cache, and a
cached file is checked again on every use."""

import contextlib
import dataclasses
import hashlib
import http.server
import os
import threading

import pytest

from regnet_keras.errors import InputError
from regnet_keras.weights import download, registry
from regnet_keras.weights import h5 as weights_h5
from tests.loopback_server import serve_directory


class _EndlessHandler(http.server.BaseHTTPRequestHandler):
    """Sends zeros until the client hangs up, with no Content-Length (or a false one)."""

    claimed_length = None
    sent = [0]

    def do_GET(self):
        self.send_response(200)
        if self.claimed_length is not None:
            self.send_header("Content-Length", str(self.claimed_length))
        self.end_headers()
        try:
            while self.sent[0] < 1 << 30:
                self.wfile.write(bytes(1 << 16))
                self.sent[0] += 1 << 16
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def endless_server(claimed_length=None):
    handler = type("Handler", (_EndlessHandler,), {"claimed_length": claimed_length, "sent": [0]})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler.sent
    finally:
        server.shutdown()
        server.server_close()


def no_check(path, sha256):
    return None


def test_a_body_is_read_no_further_than_its_declared_length(tmp_path):
    with endless_server(claimed_length=1000) as (url, _):
        path = download.fetch(url + "w.pth", str(tmp_path / "w.pth"), 4 << 20, no_check)
    assert os.path.getsize(path) == 1000


def test_an_endless_body_is_abandoned_at_the_bound_and_nothing_is_kept(tmp_path):
    with endless_server() as (url, sent):
        with pytest.raises(download.DownloadRefusedError) as raised:
            download.fetch(url + "w.pth", str(tmp_path / "models" / "w.pth"), 4 << 20, no_check)
    assert isinstance(raised.value, InputError) and "\n" not in str(raised.value)
    assert os.listdir(tmp_path / "models") == []
    assert sent[0] < 64 << 20  # the client hung up long before the server's gigabyte


def test_a_declared_length_beyond_the_bound_is_refused_before_reading(tmp_path):
    with endless_server(claimed_length=1 << 40) as (url, sent):
        with pytest.raises(download.DownloadRefusedError, match="1099511627776 bytes"):
            download.fetch(url + "w.pth", str(tmp_path / "w.pth"), 4 << 20, no_check)
    assert not (tmp_path / "w.pth").exists()


def test_named_weights_downloads_are_bounded_by_the_models_size(tmp_path, monkeypatch):
    entry = registry.NAMED_WEIGHTS[("RegNetY004", "torchvision_v2")]
    with endless_server() as (url, _):
        monkeypatch.setenv(registry.MIRROR_ENVIRONMENT, url)
        monkeypatch.setenv(registry.CACHE_DIR_ENVIRONMENT, str(tmp_path))
        with pytest.raises(weights_h5.WeightsDownloadError, match="more than the"):
            registry.fetch_weights("RegNetY004", "torchvision_v2")
    assert not (tmp_path / "models" / entry.file_name).exists()
    # The bound: three float32 copies of the parameters plus 16 MiB (RegNetY004: 4,344,144).
    assert registry.max_file_bytes("RegNetY004") == 12 * 4_344_144 + (16 << 20)


def test_imagenet_downloads_are_bounded_too(tmp_path, monkeypatch):
    with endless_server() as (url, _):
        monkeypatch.setenv(weights_h5.WEIGHTS_URL_ENVIRONMENT, url)
        monkeypatch.setenv(weights_h5.CACHE_DIR_ENVIRONMENT, str(tmp_path))
        with pytest.raises(weights_h5.WeightsDownloadError, match="more than the"):
            weights_h5.fetch_imagenet_weights("RegNetX002", include_top=False)


def test_a_cached_file_is_checked_again_on_every_use(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    key = ("RegNetY004", "torchvision_v2")
    entry = registry.NAMED_WEIGHTS[key]
    (served / entry.file_name).write_bytes(b"the published file")
    digest = hashlib.sha256(b"the published file").hexdigest()
    monkeypatch.setitem(registry.NAMED_WEIGHTS, key, dataclasses.replace(entry, hash=digest[:8]))
    with serve_directory(served) as (url, requests):
        monkeypatch.setenv(registry.MIRROR_ENVIRONMENT, url)
        monkeypatch.setenv(registry.CACHE_DIR_ENVIRONMENT, str(tmp_path / "cache"))
        path = registry.fetch_weights(*key)
        assert open(path, "rb").read() == b"the published file"
        assert registry.fetch_weights(*key) == path and len(requests) == 1
        with open(path, "wb") as file:
            file.write(b"replaced in the cache")
        with pytest.raises(weights_h5.WeightsDownloadError, match="hash prefix"):
            registry.fetch_weights(*key)
        assert not os.path.exists(path)
        assert registry.fetch_weights(*key) == path and len(requests) == 2
