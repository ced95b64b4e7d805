"""The worker processes' start: which start method, what they load, and starting early.

Local worker processes fork from a server process (multiprocessing's "forkserver" start
method; "spawn" where there is none) that has imported gtmsim and loaded the model's
compiled kernels once (`gtmsim.worker`), so each worker starts ready to simulate instead of
importing gtmsim and loading the kernels itself.

The server takes about two seconds to get ready. `start_early` starts it at the beginning
of a command, so that it gets ready on another core while the command imports its own
libraries and reads its inputs; `gtmsim.experiment.executor_for` then finds it running.
This module imports nothing heavy: the CLI calls it before it knows what the command needs.
"""

from __future__ import annotations

import multiprocessing
import os
import signal

# Imported by the server before it forks any worker (`gtmsim/worker.py`).
PRELOAD = ["gtmsim.worker"]

_started_early: list[int] = []  # pid of a server `start_early` started


def cpu_count() -> int:
    """Cores this process may use."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def context() -> multiprocessing.context.BaseContext:
    """The start method local workers use: forkserver (safe with the threads a progress bar
    or Dask start, which fork is not), else spawn."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    return ctx


def start_early(workers: int | None, scheduler: str | None) -> None:
    """Start the fork server now if the command will use local workers (`workers` > 1, or
    unset on a machine with more than one core, and no Dask scheduler)."""
    if scheduler is not None or (workers or cpu_count()) <= 1:
        return
    if context().get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    forkserver.ensure_running()
    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    if pid is not None and not _started_early:
        _started_early.append(pid)


def stop_early_server() -> None:
    """End a server `start_early` started (a command that ends before it uses its workers,
    e.g. on bad input, leaves no process behind, not even one still loading)."""
    if not _started_early:
        return
    from multiprocessing import forkserver

    server = forkserver._forkserver
    pid = _started_early.pop()
    if getattr(server, "_forkserver_pid", None) != pid:
        return  # already stopped (`gtmsim.experiment` ends it with the workers it stops)
    try:
        os.kill(pid, signal.SIGTERM)  # it may still be loading: do not wait for it
    except OSError:
        pass
    try:
        server._stop()  # closes its pipe, reaps it and forgets it
    except (OSError, ChildProcessError):
        pass
