"""The child side of the server's worker processes: never outlive the server, and bound every task in time.

Every child the server starts (trace workers, profile processes) calls `guard_parent()` first. Two guards,
because each covers a case the other misses:

- `PR_SET_PDEATHSIG` (Linux): the kernel sends SIGKILL when the thread that started the child ends, which also
  happens when the server is killed with SIGKILL. It fires even while the child holds the GIL in a long call.
- a watchdog thread blocked on the parent's sentinel (the pipe multiprocessing keeps open to every spawned
  child): it reads end-of-file when the parent process is gone, on any platform.

`worker_main` is a trace worker's loop: warm up (import torch, trace a tiny model) and say "ready", then run one
task at a time under a wall-clock limit that the task keeps itself (`time_limit`): the deadline is checked where
stopping is safe, never from a signal handler. A `SIGALRM` handler used to raise inside whatever ran, torch's
own mode-stack push and pop included, which then failed with a `RuntimeError` (a 500) and left the process in a
state nobody could vouch for. The parent (app.workers) kills and replaces a worker that does not stop by itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
WORKER_NICENESS = 5  # weight 1:3 against the server under CFS; the server still goes first


def guard_parent(parent_pid: int, pdeathsig: bool = True) -> None:
    """End this process as soon as the server process is gone.

    PR_SET_PDEATHSIG fires when the *thread* that started the child ends: only for children started from a
    long-lived thread. The watchdog on the parent's sentinel covers the rest."""
    if pdeathsig and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the guard was set
        os._exit(1)
    parent = mp.parent_process()
    if parent is not None:

        def watch() -> None:
            wait([parent.sentinel])
            os._exit(1)

        threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


class TaskTimeout(Exception):
    """A task ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise TaskTimeout from this task's own code once `seconds` of wall time have passed.

    The deadline is checked at points where an exception is an ordinary one: whenever a module registers a
    submodule (so building a model is covered) and before every module's forward (between modules, never inside
    torch's dispatch machinery). The tracer's counting mode checks its own deadline between operations too."""
    if seconds is None:
        yield
        return
    deadline = time.monotonic() + seconds

    def check(*_: Any, **__: Any) -> None:
        if time.monotonic() > deadline:
            raise TaskTimeout

    from torch.nn.modules import module

    handles = [
        module.register_module_module_registration_hook(check),
        module.register_module_forward_pre_hook(check),
    ]
    try:
        check()
        yield
    finally:
        for handle in handles:
            handle.remove()


def clean_state() -> bool:
    """Whether a task that stopped early left torch as a fresh worker has it: no mode pushed, gradients on, no
    global hook left. A worker that cannot say so is replaced, never reused."""
    import torch
    from torch.nn.modules import module

    hooks = (
        module._global_forward_pre_hooks,
        module._global_forward_hooks,
        module._global_module_registration_hooks,
        module._global_backward_hooks,
    )
    return (
        torch._C._len_torch_dispatch_stack() == 0
        and torch._C._len_torch_function_stack() == 0
        and torch.is_grad_enabled()
        and not any(hooks)
    )


def rss_bytes() -> int:
    """This process's resident memory, from /proc (0 where there is none)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def worker_main(conn: Connection, parent_pid: int) -> None:
    """A trace worker: ("ready", rss) once warm, then one reply per ("task", id, name, args, limit)."""
    guard_parent(parent_pid)
    # Below the server in CPU priority: when both want a core, the server's requests go first and the traces
    # take what is left (timed profiles keep the normal priority: their times must not depend on it).
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    from app.workers import tasks  # imports torch and the model code: the slow part of a start

    tasks.warm()
    conn.send(("ready", rss_bytes()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        _, task_id, name, args, limit = message
        outcome = _run(tasks, name, args, limit)
        # After a task that stopped early, say whether this process may serve again (the parent replaces it if not).
        reusable = outcome[0] in ("done", "refused") or clean_state()
        conn.send((*outcome, task_id, rss_bytes(), reusable))


def _run(tasks: Any, name: str, args: tuple, limit: float | None) -> tuple:
    """("done", result), ("refused", (status, field, reason)), ("timeout", None) or ("failed", message)."""
    from sdunet_core.tracer.trace import TraceTimeout

    try:
        with time_limit(limit):
            return ("done", tasks.TASKS[name](*args))
    except (TaskTimeout, TraceTimeout):
        return ("timeout", None)
    except tasks.Refusal as exc:
        return ("refused", (exc.status, exc.field, exc.reason))
    except MemoryError:
        return ("refused", (413, None, "the task ran out of memory; try a smaller model or input"))
    except Exception as exc:  # a bug: the parent answers 500, the traceback stays in the log
        log.exception("worker task %s failed", name)
        return ("failed", f"{type(exc).__name__}: {str(exc)[:200]}")
