"""The Android demo's Kotlin core: its goldens are tools.android_goldens' output, and its JUnit
tests (parity with regnet_keras.lite.image_preprocessing, EXIF orientation against Pillow) pass
under Debian's kotlinc, junit4 and Gson."""

import filecmp
import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import zipfile

import pytest

from tests.conftest import REPO, run_python

ANDROID = os.path.join(REPO, "android_demo")
CORE = os.path.join(ANDROID, "core")
GOLDENS = os.path.join(CORE, "src", "test", "resources", "goldens")


def _relative_files(root):
    return sorted(os.path.relpath(path, root)
                  for path in glob.glob(os.path.join(root, "**", "*"), recursive=True)
                  if os.path.isfile(path))


@pytest.fixture(scope="module")
def kotlin_run(tmp_path_factory):
    """The Kotlin build and JUnit run (about half a minute in one JVM), started by the first test
    that asks for it, so that the goldens tool (a Python process) runs beside it. Returns a
    function that waits for it and gives (exit status, output)."""
    log_path = tmp_path_factory.mktemp("kotlin") / "run_tests.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(["bash", os.path.join(CORE, "run_tests.sh")], stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)

    def finished():
        returncode = process.wait(timeout=900)
        return returncode, log_path.read_text()

    yield finished
    if process.poll() is None:  # no test waited for it (a -k selection): kotlinc and java too
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_committed_goldens_are_the_tool_output(tmp_path, kotlin_run):
    run_python(["-m", "tools.android_goldens", "--out", str(tmp_path)])
    committed, generated = _relative_files(GOLDENS), _relative_files(tmp_path)
    assert committed == generated, "rerun python -m tools.android_goldens --out " + GOLDENS
    _, mismatch, errors = filecmp.cmpfiles(GOLDENS, tmp_path, committed, shallow=False)
    assert not mismatch and not errors, (
        f"{mismatch + errors} differ from the tool's output: rerun "
        f"python -m tools.android_goldens --out android_demo/core/src/test/resources/goldens")


def test_kotlin_core_junit_tests_pass(kotlin_run):
    assert (shutil.which("kotlinc") and os.path.isfile("/usr/share/java/junit4.jar")
            and os.path.isfile("/usr/share/java/gson.jar")), (
        "kotlinc, junit4 or gson is missing: bash scripts/setup.sh installs Debian's kotlin, junit4 "
        "and libgoogle-gson-java")
    sources = glob.glob(os.path.join(CORE, "src", "test", "kotlin", "**", "*.kt"), recursive=True)
    expected = sum(len(re.findall(r"^\s*@Test\b", open(path).read(), re.M)) for path in sources)
    assert expected >= 30
    returncode, output = kotlin_run()
    assert returncode == 0, output[-6000:]
    assert f"OK ({expected} tests)" in output, output[-6000:]
    difference = float(re.search(r"largest \|float difference\| = (\S+),", output).group(1))
    assert difference <= 1e-6
    assert re.search(r"\d+ quantized values all equal", output)


# Gradle 9.4.1 as published on https://gradle.org/release-checksums/ (the wrapper jar is the one
# `gradle wrapper` writes for 9.4.x; the distribution is gradle-9.4.1-bin.zip).
GRADLE_WRAPPER_JAR_SHA256 = "55243ef57851f12b070ad14f7f5bb8302daceeebc5bce5ece5fa6edb23e1145c"
GRADLE_DISTRIBUTION_SHA256 = "2ab2958f2a1e51120c326cad6f385153bb11ee93b3c216c5fccebfdfbb7ec6cb"


def test_gradle_wrapper_is_the_official_one_and_pins_its_distribution():
    jar = os.path.join(ANDROID, "gradle", "wrapper", "gradle-wrapper.jar")
    with open(jar, "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == GRADLE_WRAPPER_JAR_SHA256
    with zipfile.ZipFile(jar) as archive:
        assert "Main-Class: org.gradle.wrapper.GradleWrapperMain" in archive.read("META-INF/MANIFEST.MF").decode()
    with open(os.path.join(ANDROID, "gradle", "wrapper", "gradle-wrapper.properties")) as handle:
        properties = dict(line.strip().split("=", 1) for line in handle if "=" in line)
    assert properties["distributionUrl"] == r"https\://services.gradle.org/distributions/gradle-9.4.1-bin.zip"
    assert properties["distributionSha256Sum"] == GRADLE_DISTRIBUTION_SHA256
    gradlew = os.path.join(ANDROID, "gradlew")
    assert os.access(gradlew, os.X_OK), "android_demo/gradlew must be executable"
    with open(gradlew) as handle:
        assert "gradle/wrapper/gradle-wrapper.jar" in handle.read()
    with open(os.path.join(ANDROID, "gradlew.bat"), "rb") as handle:
        assert b"\r\n" in handle.read(), "gradlew.bat keeps Windows line endings"


@pytest.mark.slow
def test_removing_the_source_generation_check_fails_a_test(tmp_path):
    """The session's generation check is what keeps stale photo work off the screen: with it
    reduced to a mode check, the JVM tests must fail."""
    copy = tmp_path / "core"
    shutil.copytree(CORE, copy)
    session = copy / "src" / "main" / "kotlin" / "org" / "regnetkeras" / "core" / "DemoSession.kt"
    text = session.read_text()
    check = "token.source == currentMode && token.generation == sourceGeneration"
    assert text.count(check) == 1
    session.write_text(text.replace(check, "token.source == currentMode"))
    # The theme test reads the app's resources beside the core module.
    shutil.copytree(os.path.join(ANDROID, "app", "src", "main"), tmp_path / "app" / "src" / "main")
    result = subprocess.run(["bash", str(copy / "run_tests.sh")], capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "onlyWorkStartedSinceTheLastSwitchReachesTheScreen" in output, output[-3000:]
    assert "aNewerPhotoMakesTheEarlierOnesWorkStale" in output, output[-3000:]
