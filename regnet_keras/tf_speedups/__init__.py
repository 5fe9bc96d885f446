"""TensorFlow-only speed-ups that re-route plain Keras layers to TensorFlow's native kernels."""
