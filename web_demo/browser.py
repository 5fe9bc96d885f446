"""The demo page in headless Chromium, from Python: a local server and web_demo/driver.mjs.

Used by tests/test_web_demo.py and web_demo/benchmark.py:

    with BrowserSession(models_dir) as browser:
        browser.open("st", threads=1)
        result = browser.classify("st", model=0, image="picture.png")
"""

import json
import os
import shutil
import subprocess
import threading

from web_demo import serve

CHROMIUM = os.environ.get("CHROMIUM", "/usr/lib/chromium/chromium")
DRIVER = os.path.join(serve.DEMO_DIR, "driver.mjs")


def missing_pieces() -> list[str]:
    """What the browser tests need and this machine lacks (bash scripts/setup.sh installs all)."""
    missing = []
    if not shutil.which("node"):
        missing.append("node")
    if not os.path.isfile(CHROMIUM):
        missing.append(f"Chromium ({CHROMIUM})")
    for package in ("@litertjs/core", "puppeteer-core"):
        if not os.path.isdir(os.path.join(serve.DEMO_DIR, "node_modules", package)):
            missing.append(f"web_demo/node_modules/{package}")
    return missing


class BrowserError(RuntimeError):
    """The page or the browser failed a command."""


class BrowserSession:
    def __init__(self, models_dir: str):
        self.server = serve.make_server(0, models_dir)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.driver = subprocess.Popen(["node", DRIVER], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True,
                                       env=dict(os.environ, CHROMIUM=CHROMIUM))

    def command(self, action: str, **arguments):
        self.driver.stdin.write(json.dumps({"do": action, **arguments}) + "\n")
        self.driver.stdin.flush()
        line = self.driver.stdout.readline()
        if not line:
            raise BrowserError(f"the browser driver ended (exit {self.driver.wait()}) "
                               f"during {action}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise BrowserError(f"{action} failed: {reply['error']}")
        return reply["value"]

    def open(self, page: str, threads: int) -> dict:
        return self.command("open", page=page, url=f"{self.url}?threads={threads}")

    def classify(self, page: str, model: int, image: str) -> dict:
        result = self.command("classify", page=page, model=model, image=os.path.abspath(image))
        if "error" in result:
            raise BrowserError(f"the page refused {image}: {result['error']}")
        return result

    def time(self, page: str, runs: int) -> list[float]:
        return self.command("time", page=page, runs=runs)

    def screenshot(self, page: str, path: str) -> None:
        self.command("screenshot", page=page, path=os.path.abspath(path))

    def close(self) -> None:
        try:
            if self.driver.poll() is None:
                self.command("close")
        finally:
            if self.driver.poll() is None:
                self.driver.kill()
            self.driver.wait()
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
