"""Faults for tests, installed in Ray workers with ``worker_process_setup_hook``: the
code under test is the real one, only the fault is added."""

from __future__ import annotations

import time


def stall_shard_zero() -> None:
    """Shard 0's task hangs (as a task stuck on a dead mount would); the others run."""
    import lstm_worker.shard.run as shard_module

    real = shard_module.run_shard

    def stalled(job, shard, *args, **kwargs):
        if shard.index == 0:
            time.sleep(3600)
        return real(job, shard, *args, **kwargs)

    shard_module.run_shard = stalled
