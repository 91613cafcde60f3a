"""Data parallelism with `jax.sharding`: one mesh axis, "batch", over every device.

Parameters, batch-norm statistics and optimizer state are replicated; every batch is
split along its leading axis. XLA's SPMD partitioner then inserts the gradient
all-reduce, and batch-norm statistics are computed over the whole global batch (the
mean over a sharded axis is a cross-device reduction), so a data-parallel step equals
the single-device step on the same global batch up to floating-point reassociation.

Multi-host: `jax.distributed.initialize()` when a cluster environment is detected;
each host feeds only its slice of the global batch
(`jax.make_array_from_process_local_data`).
"""

import logging
import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

logger = logging.getLogger("corridors.train")

BATCH_AXIS = "batch"

# Environment variables whose presence means "this process is one of several".
_CLUSTER_VARIABLES = (
    "JAX_COORDINATOR_ADDRESS",
    "COORDINATOR_ADDRESS",
    "OMPI_COMM_WORLD_SIZE",
    "SLURM_NTASKS",
    "TPU_WORKER_HOSTNAMES",
    "MEGASCALE_COORDINATOR_ADDRESS",
)


def cluster_detected(environ=None) -> bool:
    """Whether the environment describes a multi-process job (SLURM with > 1 task,
    Open MPI with > 1 rank, an explicit JAX coordinator, a TPU pod)."""
    environ = os.environ if environ is None else environ
    for name in _CLUSTER_VARIABLES:
        value = environ.get(name)
        if value is None:
            continue
        if name in ("OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS"):
            try:
                if int(value) > 1:
                    return True
            except ValueError:
                continue
        elif value:
            return True
    return False


_initialized = False


def initialize_distributed(mode: str) -> None:
    """Call `jax.distributed.initialize()` for `mode` "on", or for "auto" when
    `cluster_detected()`; "off" does nothing. Safe to call twice."""
    global _initialized
    if _initialized or mode == "off":
        return
    if mode == "auto" and not cluster_detected():
        return
    if jax.distributed.is_initialized():
        _initialized = True
        return
    jax.distributed.initialize()
    _initialized = True
    logger.info(
        "jax.distributed: process %d of %d, %d local devices",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
    )


def data_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh named "batch" over `devices` (default: every device of the job).

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec
    import corridors.train as ct
    mesh = ct.data_mesh(jax.devices()[:1])
    print(mesh.axis_names, mesh.size)  # ('batch',) 1
    batch = jax.device_put(jnp.zeros((8, 3)), NamedSharding(mesh, PartitionSpec("batch")))
    print(batch.shape)  # (8, 3)
    ```
    """
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (BATCH_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Split the leading axis over the mesh."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """A full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place every leaf of `tree`, identical on all hosts, on every device."""
    sharding = replicated(mesh)
    return jax.tree.map(lambda leaf: jax.device_put(leaf, sharding), tree)


def global_batch(local: dict, mesh: Mesh) -> dict:
    """Assemble host-local batch arrays into global arrays split over "batch"."""
    sharding = batch_sharding(mesh)
    return {
        name: jax.make_array_from_process_local_data(sharding, np.asarray(value))
        for name, value in local.items()
    }


def to_host(tree: Any) -> Any:
    """NumPy copies of replicated arrays (this host's first local copy)."""

    def fetch(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return np.asarray(leaf.addressable_data(0))
        return np.asarray(leaf)

    return jax.tree.map(fetch, tree)
