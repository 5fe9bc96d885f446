"""The Android demo's Kotlin core: its goldens are tools.android_goldens' output, and its JUnit
tests (parity with regnet_keras.lite.image_preprocessing, EXIF orientation against Pillow) pass
under Debian's kotlinc, junit4 and Gson."""

import filecmp
import glob
import os
import re
import shutil
import subprocess

from tests.conftest import REPO, run_python

CORE = os.path.join(REPO, "android_demo", "core")
GOLDENS = os.path.join(CORE, "src", "test", "resources", "goldens")


def _relative_files(root):
    return sorted(os.path.relpath(path, root)
                  for path in glob.glob(os.path.join(root, "**", "*"), recursive=True)
                  if os.path.isfile(path))


def test_committed_goldens_are_the_tool_output(tmp_path):
    run_python(["-m", "tools.android_goldens", "--out", str(tmp_path)])
    committed, generated = _relative_files(GOLDENS), _relative_files(tmp_path)
    assert committed == generated, "rerun python -m tools.android_goldens --out " + GOLDENS
    _, mismatch, errors = filecmp.cmpfiles(GOLDENS, tmp_path, committed, shallow=False)
    assert not mismatch and not errors, (
        f"{mismatch + errors} differ from the tool's output: rerun "
        f"python -m tools.android_goldens --out android_demo/core/src/test/resources/goldens")


def test_kotlin_core_junit_tests_pass():
    assert (shutil.which("kotlinc") and os.path.isfile("/usr/share/java/junit4.jar")
            and os.path.isfile("/usr/share/java/gson.jar")), (
        "kotlinc, junit4 or gson is missing: bash scripts/setup.sh installs Debian's kotlin, junit4 "
        "and libgoogle-gson-java")
    sources = glob.glob(os.path.join(CORE, "src", "test", "kotlin", "**", "*.kt"), recursive=True)
    expected = sum(len(re.findall(r"^\s*@Test\b", open(path).read(), re.M)) for path in sources)
    assert expected >= 30
    result = subprocess.run(["bash", os.path.join(CORE, "run_tests.sh")], capture_output=True,
                            text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert f"OK ({expected} tests)" in output, output[-6000:]
    difference = float(re.search(r"largest \|float difference\| = (\S+),", output).group(1))
    assert difference <= 1e-6
    assert re.search(r"\d+ quantized values all equal", output)
