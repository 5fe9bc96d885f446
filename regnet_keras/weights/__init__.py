"""Weights in and out of regnet_keras models: our files, keras.applications' files, downloads."""
