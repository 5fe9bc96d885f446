"""Serves the web demo on 127.0.0.1 with the headers LiteRT.js' threaded WASM build needs.

    python3 -m web_demo.serve [--port 8000] [--models_dir web_demo/models]

Cross-origin isolation (COOP same-origin, COEP require-corp) lets the page use
SharedArrayBuffer, which the threaded build runs on; without it the page falls back to one
thread. /models/ is served from --models_dir (what `tools.convert --web_assets` fills).
"""

import functools
import http.server
import os
import sys

from absl import app, flags

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))

FLAGS = flags.FLAGS
flags.DEFINE_integer("port", 8000, "Port on 127.0.0.1 (0: any free port, printed).")
flags.DEFINE_string("models_dir", os.path.join(DEMO_DIR, "models"),
                    "Folder served as /models/: NAME.tflite, NAME.json and models.json.")


class DemoHandler(http.server.SimpleHTTPRequestHandler):
    """Static files of web_demo/, /models/ from another folder, isolation headers, no caching."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript", ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".tflite": "application/octet-stream",
                      ".json": "application/json"}

    def __init__(self, *args, models_dir, **kwargs):
        self.models_dir = models_dir
        super().__init__(*args, directory=DEMO_DIR, **kwargs)

    def translate_path(self, path):
        route = path.split("?", 1)[0].split("#", 1)[0]
        if route.startswith("/models/"):
            name = os.path.basename(route)
            return os.path.join(self.models_dir, name) if name else self.models_dir
        return super().translate_path(path)

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_request(self, code="-", size="-"):  # failures only: a page load is many requests
        if str(getattr(code, "value", code)).startswith(("4", "5")):
            super().log_request(code, size)


def make_server(port: int, models_dir: str) -> http.server.ThreadingHTTPServer:
    if not os.path.isdir(os.path.join(DEMO_DIR, "node_modules", "@litertjs", "core")):
        raise SystemExit("web_demo/node_modules is missing: run `npm ci` in web_demo/ "
                         "(bash scripts/setup.sh does it).")
    handler = functools.partial(DemoHandler, models_dir=os.path.abspath(models_dir))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    server = make_server(FLAGS.port, FLAGS.models_dir)
    print(f"web demo on http://127.0.0.1:{server.server_address[1]}/ "
          f"(models from {FLAGS.models_dir}); Ctrl-C stops it", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    app.run(main)
