"""Command-line front-ends over regnet_keras."""

import regnet_keras  # noqa: F401  (first, so that TensorFlow loads with its oneDNN kernels)
