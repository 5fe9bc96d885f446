"""The tools' terminal: native log lines dropped, bad input in one line (tools/cli.py)."""

import os
import subprocess
import sys

from tests.conftest import REPO
from tools import cli


def _run_tool(*args):
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=600)


def test_native_log_lines_are_dropped_and_everything_else_kept(capfd):
    with cli.native_log_lines_dropped():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                    b"written to STDERR\n")
        os.write(2, b"I0000 00:00:1796394551.530465   17874 port.cc:153] oneDNN custom "
                    b"operations are on.\n")
        os.write(2, b"E0000 00:00:1796394564.913349   17874 cuda_platform.cc:52] failed call "
                    b"to cuInit\n")
        os.write(2, b"a Python warning: keep me\n")
        print("an error the user must see", file=sys.stderr)
    lines = capfd.readouterr().err.splitlines()
    assert sorted(lines) == ["a Python warning: keep me", "an error the user must see"]


def test_a_usage_error_is_one_line_not_the_help_page():
    result = _run_tool("tools.train", "--dataset", "folder")
    assert result.returncode == cli.USAGE_EXIT_STATUS
    assert result.stderr.strip().splitlines() == [
        "tools.train: error: dataset='folder' needs --data_dir: a directory with one sub-folder "
        "of images per class. (--helpshort lists the flags)"]


def test_a_truncated_tflite_file_is_one_line_naming_the_file(tmp_path):
    truncated = tmp_path / "model.tflite"
    truncated.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 10)
    result = _run_tool("tools.evaluate", "--model", str(truncated))
    assert result.returncode == cli.USAGE_EXIT_STATUS
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"tools.evaluate: error: {truncated}: not a valid TFLite model")
    assert "convert it again with python -m tools.convert" in lines[0]
