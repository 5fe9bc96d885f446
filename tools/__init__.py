"""Command-line front-ends over regnet_keras."""

import os

# A quiet terminal: TensorFlow's C++ INFO and WARNING lines (oneDNN notices, CUDA probes, graph
# optimizer dumps) hide the progress and results a user runs a tool for. TensorFlow reads this when
# it loads, so it is set before anything imports it; TF_CPP_MIN_LOG_LEVEL=0 in the environment
# brings them back (and --verbosity=0 brings back absl's INFO lines, see tools/cli.py).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import regnet_keras  # noqa: E402,F401  (first, so that TensorFlow loads with its oneDNN kernels)
