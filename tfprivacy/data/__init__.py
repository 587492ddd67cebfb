"""Datasets: the built-in benchmark, real-format loaders and tf.data pipelines."""
