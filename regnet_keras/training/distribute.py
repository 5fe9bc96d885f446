"""Choosing a tf.distribute strategy, and who in a cluster is the chief.

Must run before any other TensorFlow op of the process: MultiWorkerMirroredStrategy and TPU
initialisation configure the runtime, which TensorFlow freezes at its first op.
"""

from __future__ import annotations

import json
import os

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")


def cluster_workers() -> int:
    """Number of workers TF_CONFIG names (1 without TF_CONFIG)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    cluster = config.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def make_strategy(name: str = "auto", tpu_address: str | None = None):
    import tensorflow as tf
    if name not in STRATEGIES:
        raise ValueError(f"strategy={name!r} is invalid: choose one of {STRATEGIES}.")
    if name == "auto":
        if tpu_address:
            name = "tpu"
        elif cluster_workers() > 1:
            name = "multi_worker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if name == "multi_worker":
        if cluster_workers() < 1:
            raise ValueError("strategy='multi_worker' needs TF_CONFIG naming the cluster's "
                             "workers and this process's task.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def worker_identity(strategy) -> tuple[int, int, bool]:
    """(worker index, number of workers, is chief) of this process."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", None):
        return 0, 1, True
    spec = resolver.cluster_spec().as_dict()
    task_type, task_id = resolver.task_type, resolver.task_id
    if not spec or task_type is None:
        return 0, 1, True
    workers = len(spec.get("worker", [])) + len(spec.get("chief", []))
    has_chief = "chief" in spec
    is_chief = (task_type == "chief") or (task_type == "worker" and task_id == 0 and
                                          not has_chief)
    index = task_id + (1 if has_chief and task_type == "worker" else 0)
    return index, workers, is_chief
