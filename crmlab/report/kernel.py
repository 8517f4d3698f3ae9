"""Running one notebook: papermill on a kernel reached over IPC, and signals that clean up."""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Mapping

__all__: list[str] = []  # the runner's own steps (crmlab.report.runner)


def _ipc_kernel_manager(log: Path | None = None):
    """The kernel over IPC (Unix sockets), not unencrypted TCP on localhost; its own
    stdout/stderr (log lines, shutdown noise) go to ``log`` rather than the runner's stderr."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IpcKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self):
            return "ipc" if os.name == "posix" else "tcp"

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            if log is None:
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            with open(log, "ab") as fh:
                kw.setdefault("stdout", fh)
                kw.setdefault("stderr", fh)
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return IpcKernelManager


def _install_signal_handlers():
    """SIGINT/SIGTERM raise (KeyboardInterrupt / SystemExit(143)) so ``finally`` cleans up;
    a second signal during the clean-up is ignored. Returns the function that restores."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    sigs = [signal.SIGINT, signal.SIGTERM]
    old = {s: signal.getsignal(s) for s in sigs}

    def handler(signum, frame):
        for s in sigs:
            signal.signal(s, signal.SIG_IGN)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    for s in sigs:
        signal.signal(s, handler)

    def restore():
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)

    return restore


def kernel_for(name: str) -> str:
    """``name`` when Jupyter knows that kernel (``make install`` registers ``crmlab``); else
    ``python3``, the interpreter's own ipykernel: a plain ``pip install crmlab`` runs reports."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return "python3"
    return name


def _execute(nb: Path, out_nb: Path, params: Mapping, kernel_name: str, tmp: Path, name: str) -> str | None:
    """Run one notebook with papermill; the error (one line) or None."""
    import papermill as pm

    try:
        pm.execute_notebook(str(nb), str(out_nb), parameters=dict(params), kernel_name=kernel_for(kernel_name),
                            cwd=str(tmp), progress_bar=False, log_output=False,
                            kernel_manager_class=_ipc_kernel_manager(tmp / ".kernel.log"))
    except pm.PapermillExecutionError as e:
        return f"{name}: failed in cell {e.cell_index}: {e.ename}: {e.evalue}"
    except Exception as e:  # kernel died, notebook unreadable, ...
        return f"{name}: {type(e).__name__}: {e}"
    return None
