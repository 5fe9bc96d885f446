"""regnet_keras: RegNetX/Y for Keras 3 and tf-keras, built exactly as the paper defines them.

Importing this package loads neither TensorFlow nor Keras; the builder loads the Keras of the
process (see keras_backend) when a model is first built. Models build, load, save and train on
every Keras 3 backend (TensorFlow, JAX, PyTorch); the tools are TensorFlow-only (docs/BACKENDS.md).
"""

import os

# TensorFlow's CPU kernels for grouped convolutions (forward in graph mode, and gradients) come
# from oneDNN, which TensorFlow turns on by default only on CPUs with AVX-512 VNNI or newer;
# elsewhere (AVX2 machines) tf-keras and tfmot models with grouped convolutions fail to run and
# Keras 3 training falls back to a slower per-group gradient. The variable is read when
# TensorFlow loads, so it only helps when this package is imported first; a value the user set
# is kept. Setting it loads nothing, and the JAX and PyTorch backends ignore it.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from regnet_keras.applications import (
    RegNetX002, RegNetX004, RegNetX006, RegNetX008, RegNetX016, RegNetX032, RegNetX040,
    RegNetX064, RegNetX080, RegNetX120, RegNetX160, RegNetX320, RegNetY002, RegNetY004,
    RegNetY006, RegNetY008, RegNetY016, RegNetY032, RegNetY040, RegNetY064, RegNetY080,
    RegNetY120, RegNetY160, RegNetY320, build_model)
from regnet_keras.applications import RegNet
from regnet_keras.complexity import Complexity, Cost, complexity
from regnet_keras.design_space import AnyNetConfig, RegNetConfig, StageSpec
from regnet_keras.feature_pyramid import feature_extractor
from regnet_keras.hub.loading import from_preset
from regnet_keras.hub.registration import install as _register_with_keras_hub
from regnet_keras.inference import fold_batch_norm
from regnet_keras.introspect import design_of_model
from regnet_keras.preprocessing import preprocess_input
from regnet_keras.saving import load_model
from regnet_keras.tf_speedups.fused_batch_norm import enable as enable_fused_batch_norm
from regnet_keras.tf_speedups.grouped_conv import enable as enable_fast_grouped_conv
from regnet_keras.weights.h5 import (WeightsDownloadError, WeightsFileError, open_weights_file,
                                  save_weights)
from regnet_keras.weights.origin import EvaluationTransform, WeightsOrigin
from regnet_keras.weights.pytorch import PyTorchWeightsError, from_pytorch, to_pytorch
from regnet_keras.weights.registry import fetch_weights, list_weights
from regnet_keras.zoo import get_config, list_models

__version__ = "0.1.0"

# KerasHub's from_preset finds RegNet presets after `import regnet_keras` (no Keras is loaded).
_register_with_keras_hub()
