"""What every tool shares: a quiet terminal, and bad input reported in one line, not a help page.

absl prints the whole flag listing before a UsageError's message, and a library error would end in
a traceback; `run(main)` prints either as `tool: error: MESSAGE (--helpshort lists the flags)` on
stderr and exits with status 2. Errors that are not the user's doing keep their traceback.

TensorFlow's native libraries log while they load (CUDA probes, oneDNN notices) through absl's C++
logging before it is initialised, which ignores TF_CPP_MIN_LOG_LEVEL; so `run` loads TensorFlow
with those lines dropped from stderr (everything else written there meanwhile is kept), unless
TF_CPP_MIN_LOG_LEVEL=0 asks for them.
"""

import contextlib
import os
import re
import sys
import tempfile

from absl import app, flags, logging

from regnet_keras.errors import InputError

# argparse and the shell use 2 for "wrong invocation", so that scripts can tell bad input from a
# failed run (1).
USAGE_EXIT_STATUS = 2

# A line of absl's C++ log format ("I0000 00:00:1796394551.530465   17874 port.cc:153] ..."), and
# the notice absl prints before the first such line.
NATIVE_LOG_LINE = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\s\]]+:\d+\] |"
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR)")


def run(main, loads_tensorflow: bool = True):
    """`absl.app.run(main)` with WARNING-level logging unless --verbosity is given, one-line
    errors for app.UsageError and regnet_keras' InputError, and, for a tool that needs
    TensorFlow (all but describe), a check that Keras runs on it and TensorFlow loaded quietly."""
    app.run(lambda argv: _main(main, argv, loads_tensorflow))


def _load_tensorflow(program: str):
    """Loads TensorFlow (quietly), or raises BackendError when KERAS_BACKEND picks another."""
    from regnet_keras import keras_backend
    quiet = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") or 0) > 0
    with native_log_lines_dropped() if quiet else contextlib.nullcontext():
        keras_backend.require_tensorflow_backend(f"python -m {program}")
        import tensorflow as tf
        tf.config.list_physical_devices()  # the CUDA probe logs here, once


@contextlib.contextmanager
def native_log_lines_dropped():
    """Sends file descriptor 2 to a temporary file while the block runs, then writes back to
    stderr every line of it that is not a native log line, so no Python warning or error is lost."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines(keepends=True):
                if not NATIVE_LOG_LINE.match(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


def _main(main, argv, loads_tensorflow):
    if not flags.FLAGS["verbosity"].present:
        # TensorFlow logs an INFO line through absl for every checkpoint and SavedModel write.
        logging.set_verbosity(logging.WARNING)
    try:
        if loads_tensorflow:
            _load_tensorflow(_program_name())
        return main(argv)
    except (app.UsageError, InputError) as error:
        program = _program_name()
        print(f"{program}: error: {_one_line(error)} (--helpshort lists the flags)",
              file=sys.stderr)
        sys.exit(USAGE_EXIT_STATUS)


def _program_name():
    main_module = sys.modules.get("__main__")
    spec = getattr(main_module, "__spec__", None)
    return spec.name if spec is not None else os.path.basename(sys.argv[0])


def _one_line(error):
    return " ".join(str(error).split())
