"""`bazel build //...` builds the library, the tools and the benchmarks offline, in this checkout
and in one that holds what set-up and runs leave in the tree: a project-local virtualenv (Debian's
externally-managed Python makes one), whose installed TensorFlow ships BUILD files that Bazel must
never load, the web demo's npm packages, run folders."""

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO

TOOLS = ("describe", "train", "evaluate", "benchmark_input", "qat", "convert", "benchmark",
         "android_goldens")
# What TensorFlow's wheel really ships (tensorflow/include/external/...): a BUILD file that loads
# rules Bazel cannot fetch offline, so loading it fails the whole `//...` pattern.
FOREIGN_BUILD = 'load("@rules_cc//cc:cc_library.bzl", "cc_library")\ncc_library(name = "headers")\n'
FOREIGN_PACKAGES = (
    ".venv/lib/python3.11/site-packages/tensorflow/include/external/nvtx_archive",
    "venv/lib/python3.12/site-packages/tensorflow/include/external/local_tsl",
    "web_demo/node_modules/some-package",
    "runs/photos/export",
)


def _bazel():
    bazel = shutil.which("bazel")
    assert bazel, "bazel is not installed: scripts/setup.sh installs Debian's bazel-bootstrap"
    return bazel


def _build_all(workspace, *startup_options):
    result = subprocess.run([_bazel(), "--batch", *startup_options, "build", "//..."],
                            cwd=workspace, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def _assert_binaries(workspace):
    output = subprocess.run([f"{workspace}/bazel-bin/tools/describe", "RegNetX002"],
                            cwd=workspace, capture_output=True, text=True, timeout=300)
    assert "199,040,872" in output.stdout, output.stderr[-3000:]
    for binary in TOOLS:
        assert os.access(f"{workspace}/bazel-bin/tools/{binary}", os.X_OK), binary


def _project_files():
    """The files of this checkout that git keeps or would keep (tracked, or new and not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout
    return [name for name in listed.decode().split("\0")
            if name and os.path.isfile(os.path.join(REPO, name))]


def test_bazel_builds_library_and_binaries_offline():
    _build_all(REPO)
    _assert_binaries(REPO)


@pytest.mark.skipif(not os.path.isdir(os.path.join(REPO, ".git")), reason="needs a git checkout")
def test_bazel_ignores_virtualenvs_node_modules_and_runs_in_the_tree(tmp_path):
    workspace = tmp_path / "checkout"
    for name in _project_files():
        destination = workspace / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(REPO, name), destination)
    for package in FOREIGN_PACKAGES:
        (workspace / package).mkdir(parents=True)
        (workspace / package / "BUILD").write_text(FOREIGN_BUILD)
    _build_all(workspace, f"--output_base={tmp_path / 'bazel_output'}")
    _assert_binaries(workspace)


def test_every_ignored_folder_of_git_is_ignored_by_bazel():
    """A folder that git ignores holds what set-up, runs or builds made: Bazel must skip it too."""
    with open(os.path.join(REPO, ".gitignore")) as file:
        folders = [line.strip().strip("/") for line in file
                   if line.strip().endswith("/") and not any(c in line for c in "*?[")]
    with open(os.path.join(REPO, ".bazelignore")) as file:
        bazel_ignored = {line.strip() for line in file if line.strip() and not line.startswith("#")}
    missing = [folder for folder in folders if folder not in bazel_ignored
               and os.path.basename(folder) not in ("__pycache__",)]
    assert not missing, f"add {missing} to .bazelignore"
