"""One harness for the multi-process (gloo, CPU) tests: fork ``world`` ranks of the test
process, join them with a generous timeout, kill what is left, and check every exit code.

Forking, not spawning: a spawned rank would import torch again (seconds each on a loaded
machine). A rank's function runs, then the child leaves with ``os._exit`` (0, or 1 after
printing the traceback), so no pytest or atexit code of the parent runs in it.

Rendezvous never picks a free TCP port and hopes it stays free: "bind port 0, close it,
give the number to rank 0 to bind again" lets any other process (another xdist worker, a
second test run on the machine, an outgoing connection) take the port in between, and the
ranks then fail with "address already in use" or join the wrong group. Instead

- :func:`file_init_method` gives ``init_process_group`` a file store in the test's own
  temporary folder (no port at all), or
- :func:`host_env_rendezvous` lets rank 0 bind a ``TCPStore`` to port 0 and *keep* it, and
  publishes the port it got; every rank then sets torchrun's variables, so code that reads
  them (``genoise.train.init_distributed``) is tested as it runs under torchrun.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

JOIN_TIMEOUT = 300.0  # generous: a loaded machine is slow, not wrong


def file_init_method(folder: str | os.PathLike) -> str:
    """``init_method`` of a file store in ``folder`` (which must be new for each group)."""
    return f"file://{Path(folder).resolve()}/store"


def host_env_rendezvous(rank: int, world: int, folder: str | os.PathLike,
                        timeout: float = JOIN_TIMEOUT):
    """Set torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
    MASTER_ADDR, MASTER_PORT) for ``rank`` of a group meeting through a TCP store that
    rank 0 hosts on a port the kernel chose and that stays bound.

    ``TORCHELASTIC_USE_AGENT_STORE=True`` tells ``env://`` rendezvous that the store already
    exists (as torchrun's agent hosts it), so no rank binds ``MASTER_PORT`` again. Returns
    the store on rank 0 (keep a reference until the group is destroyed), ``None`` elsewhere.
    """
    from torch.distributed import TCPStore

    port_file = Path(folder) / "master_port"
    store = None
    if rank == 0:
        store = TCPStore("127.0.0.1", 0, world, is_master=True, wait_for_workers=False,
                         timeout=timedelta(seconds=timeout))
        partial = port_file.with_suffix(".partial")
        partial.write_text(str(store.port))
        partial.replace(port_file)  # atomic: the other ranks never read half a number
    else:
        deadline = time.monotonic() + timeout
        while not port_file.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"rank 0 did not publish its store port in {port_file}")
            time.sleep(0.01)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=port_file.read_text(), TORCHELASTIC_USE_AGENT_STORE="True")
    return store


def _child(target: Callable[[int], object], rank: int) -> None:
    code = 0
    try:
        target(rank)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_ranks(target: Callable[[int], object], world: int = 2, timeout: float = JOIN_TIMEOUT) -> None:
    """Run ``target(rank)`` in ``world`` forked processes and wait for all of them.

    Raises ``AssertionError`` naming the exit codes when a rank failed or had to be killed
    (its traceback is in the captured stderr)."""
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_child, args=(target, rank)) for rank in range(world)]
    for proc in procs:
        proc.start()
    deadline = time.monotonic() + timeout
    try:
        for proc in procs:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join()
    codes = [proc.exitcode for proc in procs]
    assert codes == [0] * world, f"rank exit codes {codes} (negative: killed after {timeout:.0f} s)"
