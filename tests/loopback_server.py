"""A loopback HTTP server over a directory, standing in for a weights publisher in tests."""

import contextlib
import functools
import http.server
import threading


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files quietly and records each requested path in `self.requests`."""

    def __init__(self, *args, requests, **kwargs):
        self.requests = requests
        super().__init__(*args, **kwargs)

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_directory(directory):
    """Yields (base URL ending in "/", the list of paths requested so far)."""
    requests = []
    handler = functools.partial(_CountingHandler, requests=requests, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requests
    finally:
        server.shutdown()
        server.server_close()
