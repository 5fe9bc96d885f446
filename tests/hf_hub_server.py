"""A loopback server speaking the Hugging Face Hub's file protocol, for hf:// downloads in tests.

huggingface_hub (with HF_ENDPOINT or endpoint= pointing here) resolves a file with
`HEAD /{repo_id}/resolve/{revision}/{path}` and reads the commit from X-Repo-Commit, the file's
identity from ETag (the git blob SHA-1 of a plain file, the SHA-256 of an LFS file, as the Hub
sends them) and its size from Content-Length, then fetches it with GET. A repository can be told
to lie: `tampered` serves other bytes of the same length under the true ETag, `truncated` sends
the true Content-Length and then only part of the body.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import threading
import urllib.parse

# Files the Hub keeps in LFS (their ETag is the SHA-256 of the content).
LFS_SUFFIXES = (".safetensors", ".h5", ".bin", ".pth")


def git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def etag_of(path: str, content: bytes) -> str:
    if path.endswith(LFS_SUFFIXES):
        return hashlib.sha256(content).hexdigest()
    return git_blob_sha1(content)


class HubRepositories:
    """repo_id -> {path: bytes}, lies to tell: {(repo_id, path): "tampered" | "truncated"}."""

    def __init__(self):
        self.files: dict[str, dict[str, bytes]] = {}
        self.lies: dict[tuple[str, str], str] = {}
        self.requests: list[tuple[str, str]] = []

    def add(self, repo_id: str, files: dict[str, bytes]) -> None:
        self.files[repo_id] = dict(files)

    def commit_of(self, repo_id: str) -> str:
        digest = hashlib.sha1()
        for path, content in sorted(self.files[repo_id].items()):
            digest.update(path.encode() + b"\0" + content)
        return digest.hexdigest()

    def find(self, url_path: str):
        """(repo_id, path) of /{repo_id}/resolve/{revision}/{path}, or None."""
        parts = urllib.parse.unquote(urllib.parse.urlsplit(url_path).path).strip("/").split("/")
        if "resolve" not in parts:
            return None
        marker = parts.index("resolve")
        repo_id, path = "/".join(parts[:marker]), "/".join(parts[marker + 2:])
        if path in self.files.get(repo_id, {}):
            return repo_id, path
        return None


class _HubHandler(http.server.BaseHTTPRequestHandler):
    repositories: HubRepositories  # set per server

    def do_HEAD(self):
        self._answer(send_body=False)

    def do_GET(self):
        self._answer(send_body=True)

    def _answer(self, send_body: bool):
        self.repositories.requests.append((self.command, self.path))
        found = self.repositories.find(self.path)
        if found is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        repo_id, path = found
        content = self.repositories.files[repo_id][path]
        lie = self.repositories.lies.get((repo_id, path))
        self.send_response(200)
        self.send_header("X-Repo-Commit", self.repositories.commit_of(repo_id))
        self.send_header("ETag", f'"{etag_of(path, content)}"')
        self.send_header("Content-Length", str(len(content)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if not send_body:
            return
        if lie == "tampered":
            content = bytes(reversed(content))
        elif lie == "truncated":
            content = content[:len(content) // 2]
            self.close_connection = True
        self.wfile.write(content)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_hub(repositories: HubRepositories):
    """Yields the endpoint URL (no trailing slash) of a Hub serving `repositories`."""
    handler = type("Handler", (_HubHandler,), {"repositories": repositories})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
