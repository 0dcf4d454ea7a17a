"""The only module that talks MPI (DESIGN 4).

:class:`SerialComm` serves single-process runs; :class:`MPIComm` wraps an mpi4py communicator.
The hot path uses buffer-based ``Allgatherv`` on preallocated NumPy arrays; pickled lower-case calls
are used only at set-up and for gathering results.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

_MPI_ENV = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS",
            "HYDI_CONTROL_FD", "SLURM_STEP_NUM_TASKS")


class SerialComm:
    """Communicator of one process: every collective is the identity."""
    rank = 0
    size = 1

    def allgather(self, obj):
        return [obj]

    def bcast(self, obj, root=0):
        return obj

    def gather(self, obj, root=0):
        return [obj]

    def any_true(self, flag: bool) -> bool:
        return bool(flag)

    def allreduce_max(self, x):
        return x

    def allreduce_sum(self, x):
        return x

    def allgatherv(self, send: np.ndarray, recv: np.ndarray, counts: np.ndarray):
        recv[: send.size] = send
        counts[0] = send.size

    def alltoall(self, objs):
        return list(objs)

    def exchange_alltoallv(self, send, sendcounts, sdispl, recvcounts, rdispl, recv_grow):
        recvcounts[0] = sendcounts[0]
        rdispl[0] = 0
        recv = recv_grow(int(sendcounts[0]))
        recv[: sendcounts[0]] = send[sdispl[0]: sdispl[0] + sendcounts[0]]
        return recv

    def exchange_allgatherv(self, send, n, recvcounts, rdispl, recv_grow):
        recvcounts[0] = n
        rdispl[0] = 0
        recv = recv_grow(int(n))
        recv[:n] = send[:n]
        return recv

    def barrier(self):
        pass

    def check(self, error):
        if error is not None:
            raise error

    def abort(self, code=1):
        os._exit(code)


def _install_abort_hook(MPI):
    """An unhandled exception on one rank prints its traceback and aborts every rank (no hang),
    also when the script was not started with ``python -m mpi4py``."""
    if getattr(sys, "_eprop_abort_hook", False):
        return
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        try:
            rank = MPI.COMM_WORLD.Get_rank()
            sys.stderr.write(f"eprop-dist: rank {rank}: {exc_type.__name__}: {exc}\n")
            sys.stderr.flush()
            previous(exc_type, exc, tb)
            sys.stderr.write(f"eprop-dist: rank {rank}: aborting all ranks\n")
            sys.stderr.flush()
            time.sleep(0.5)      # let the launcher forward this output before the job is torn down
        finally:
            MPI.COMM_WORLD.Abort(1)

    sys.excepthook = hook
    sys._eprop_abort_hook = True


class MPIComm:
    """mpi4py communicator with the few collectives the simulator needs."""

    def __init__(self, comm):
        from mpi4py import MPI
        _install_abort_hook(MPI)
        self._MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self._displs = np.zeros(self.size, dtype=np.int64)
        self._one = np.zeros(1, dtype=np.int64)

    def allgather(self, obj):
        return self.comm.allgather(obj)

    def bcast(self, obj, root=0):
        return self.comm.bcast(obj, root=root)

    def gather(self, obj, root=0):
        """Every rank's `obj` on `root` (a list in rank order), None elsewhere (pickled: checkpoints)."""
        return self.comm.gather(obj, root=root)

    def any_true(self, flag: bool) -> bool:
        return bool(self.comm.allreduce(bool(flag), op=self._MPI.LOR))

    def allreduce_max(self, x):
        return self.comm.allreduce(x, op=self._MPI.MAX)

    def allreduce_sum(self, x):
        return self.comm.allreduce(x, op=self._MPI.SUM)

    def allgatherv(self, send: np.ndarray, recv: np.ndarray, counts: np.ndarray):
        """Concatenate every rank's `send` (same dtype) into `recv` in rank order; counts per rank."""
        self.allgather_counts(send.size, counts)
        self.allgatherv_known(send, recv, counts)

    def allgather_counts(self, n: int, counts: np.ndarray):
        self._one[0] = n
        self.comm.Allgather(self._one, counts)

    def allgatherv_known(self, send, recv, counts):
        np.cumsum(counts[:-1], out=self._displs[1:])
        self.comm.Allgatherv(send, [recv, counts, self._displs, self._MPI._typedict[send.dtype.char]])

    # ---- the per-window exchange: int64 words, every count/displacement array preallocated by the
    # caller (Simulation._prep_exchange); recv_grow(n) returns a buffer of at least n words ----
    def exchange_alltoallv(self, send, sendcounts, sdispl, recvcounts, rdispl, recv_grow):
        """Directed exchange: send[sdispl[r]:sdispl[r]+sendcounts[r]] goes to rank r.  Fills
        recvcounts/rdispl; returns the receive buffer (messages in rank order)."""
        self.comm.Alltoall(sendcounts, recvcounts)
        np.cumsum(recvcounts[:-1], out=rdispl[1:])
        recv = recv_grow(int(rdispl[-1] + recvcounts[-1]))
        t = self._MPI.INT64_T
        self.comm.Alltoallv([send, sendcounts, sdispl, t], [recv, recvcounts, rdispl, t])
        return recv

    def exchange_allgatherv(self, send, n, recvcounts, rdispl, recv_grow):
        """Every rank's first `n` words of `send`, concatenated in rank order."""
        self._one[0] = n
        self.comm.Allgather(self._one, recvcounts)
        np.cumsum(recvcounts[:-1], out=rdispl[1:])
        recv = recv_grow(int(rdispl[-1] + recvcounts[-1]))
        t = self._MPI.INT64_T
        self.comm.Allgatherv([send, n, t], [recv, recvcounts, rdispl, t])
        return recv

    def alltoall(self, objs):
        return self.comm.alltoall(objs)

    def barrier(self):
        self.comm.Barrier()

    def check(self, error):
        """Collective error check: every rank raises if any rank had `error` (an exception or None)."""
        msgs = self.comm.allgather(None if error is None else f"{type(error).__name__}: {error}")
        if any(m is not None for m in msgs):
            if error is not None:
                raise error
            from .errors import EpropError
            first = next(r for r, m in enumerate(msgs) if m is not None)
            raise EpropError(f"rank {first} failed: {msgs[first]}")

    def abort(self, code=1):
        self.comm.Abort(code)


def world():
    """The communicator of this launch: MPI when started under an MPI launcher, else serial."""
    if "mpi4py" in sys.modules or any(k in os.environ for k in _MPI_ENV):
        try:
            from mpi4py import MPI
        except ImportError:  # pragma: no cover - mpi4py is a dependency
            return SerialComm()
        if MPI.COMM_WORLD.Get_size() > 1:
            return MPIComm(MPI.COMM_WORLD)
        launched = launcher_size(os.environ)
        if launched is not None:
            from .errors import EpropError
            raise EpropError(launch_mismatch_message(MPI.Get_library_version(), *launched))
    return SerialComm()


# (variable, what sets it) of launchers that tell each process how many ranks were started
_LAUNCHER_SIZE_VARS = (("OMPI_COMM_WORLD_SIZE", "Open MPI's mpirun/mpiexec"),
                       ("PMI_SIZE", "an MPICH-family launcher (Hydra mpiexec, Intel MPI) or srun --mpi=pmi2"),
                       ("MPI_LOCALNRANKS", "an MPICH Hydra mpiexec"))


def launcher_size(env):
    """(n, variable, launcher) when `env` shows a launch of n > 1 ranks, else None.  Slurm counts only
    inside an srun step (SLURM_STEP_ID set), not in the batch script of an allocation."""
    for var, who in _LAUNCHER_SIZE_VARS:
        try:
            n = int(env.get(var, ""))
        except ValueError:
            continue
        if n > 1:
            return n, var, who
    try:
        n = int(env.get("SLURM_STEP_NUM_TASKS", ""))
    except ValueError:
        n = 0
    if n > 1 and "SLURM_STEP_ID" in env and env["SLURM_STEP_ID"] not in ("4294967294", "4294967295", "batch", "extern"):
        who = "srun --mpi=pmix" if any(k.startswith("PMIX_") for k in env) else "srun"
        return n, "SLURM_STEP_NUM_TASKS", who
    return None


def launch_mismatch_message(library_version, n, var, who):
    lib = (library_version.strip().splitlines() or ["?"])[0].strip()
    return (f"MPI launch mismatch: this process was started by {who} as one of {n} ranks ({var}={n}), "
            f"but mpi4py's MPI library ({lib}) sees a world of 1 rank, so every rank would run the whole "
            f"job alone.  mpi4py is built against a different MPI than the launcher's.  Launch with the "
            f"launcher of that library (for the PyPI mpich wheel: the mpiexec in the virtual environment; "
            f"under Slurm: srun --mpi=pmix for Open MPI, srun --mpi=pmi2 for MPICH), or rebuild mpi4py "
            f"against the launcher's MPI: pip install --no-binary mpi4py --force-reinstall --no-cache-dir mpi4py "
            f"(with that MPI's mpicc on PATH).  `python -m eprop_dist.mpirun --describe` shows both.")


def as_comm(comm):
    """Accept None (world), a SerialComm/MPIComm, or a raw mpi4py communicator."""
    if comm is None:
        return world()
    if isinstance(comm, (SerialComm, MPIComm)):
        return comm
    return MPIComm(comm)


def mpi_library_version() -> str:
    """The MPI library's version string (provenance); 'none' when mpi4py cannot be imported."""
    try:
        from mpi4py import MPI
    except ImportError:  # pragma: no cover - mpi4py is a dependency
        return "none"
    return " ".join(MPI.Get_library_version().split())[:200]
