"""NEST-style network building: Create, Connect, SetDefaults, GetConnections, Simulate.

A :class:`Kernel` holds one network (global, rank-agnostic description: populations with per-node
parameter arrays, connection blocks) and, once built, the :class:`~eprop_dist.simulation.Simulation`
of this rank.  The module-level functions (``eprop_dist.Create`` ...) act on a default kernel so a
PyNEST script ports line by line (``import eprop_dist as nest``).
"""
from __future__ import annotations

import math
import sys

import numpy as np

from .comm import as_comm
from .errors import BadProperty, EpropError

from .kernel_connect import ConnBlock, ConnectMixin
from .kernel_devices import DevicesMixin
from .kernel_models import ModelsMixin
from .kernel_nodes import NodesMixin, Population
from .kernel_status import StatusMixin
from .models import model_is_bss  # noqa: F401  (kept importable from here)
from .node_collections import NodeCollection, SynapseCollection

__all__ = ["Kernel", "NodeCollection", "SynapseCollection", "Population", "ConnBlock", "model_is_bss"]


class Kernel(StatusMixin, ModelsMixin, NodesMixin, ConnectMixin, DevicesMixin):
    """One network and its simulation state on this rank.

    The methods live with their concern: kernel status in kernel_status.py, the model catalogue
    in kernel_models.py, nodes in kernel_nodes.py, connections in kernel_connect.py, recording
    devices in kernel_devices.py; this class adds the simulation (build on demand, Simulate).
    """

    def __init__(self, comm=None):
        self._comm_arg = comm
        self.comm = as_comm(comm)          # first MPI use: installs the abort-on-error hook under MPI
        self.ResetKernel()

    # ---- simulation ------------------------------------------------------------------------
    def _ensure_built(self, collective=False):
        """Build this rank's part of the network (rank-local: no communication).  With
        `collective` (Simulate: every rank is here), a build error on any rank is raised on every
        rank, exactly once per kernel."""
        err = None
        if self._sim is None:
            from .simulation import Simulation
            try:
                self._sim = Simulation(self, comm=self.comm)
            except EpropError as e:
                err = e
        if collective and not self._build_agreed:
            self.comm.check(err)
            self._build_agreed = True
        elif err is not None:
            raise err
        return self._sim

    def _simulate_steps(self, ms):
        """Validate a Simulate time (ms) and return it in steps; nothing is built or run here."""
        if isinstance(ms, (bool, np.bool_)) or not isinstance(ms, (int, float, np.integer, np.floating)):
            raise BadProperty(f"Simulate: time must be a number of ms, got {ms!r} ({type(ms).__name__})")
        ms = float(ms)
        if not math.isfinite(ms):
            raise BadProperty(f"Simulate: time must be a finite number of ms, got {ms!r}")
        if ms < 0:
            raise BadProperty(f"Simulate: time must be >= 0 ms, got {ms!r}")
        return self.ms_to_steps(ms, "Simulate: time")

    def Simulate(self, ms):
        steps = self._simulate_steps(ms)
        sim = self._ensure_built(collective=True)
        progress = _print_progress if self.status["print_time"] and self.comm.rank == 0 else None
        sim.simulate(steps, progress=progress)
        sim.check_finite()

    def Run(self, ms):
        self.Simulate(ms)

    @property
    def timers(self):
        return self._sim.timers if self._sim else {}


def _print_progress(t_ms, t_start_ms, t_stop_ms):
    """NEST's print_time: one line per stretch of the run, on rank 0 (stderr)."""
    span = t_stop_ms - t_start_ms
    pct = 100.0 if span <= 0 else 100.0 * (t_ms - t_start_ms) / span
    sys.stderr.write(f"[ {pct:5.1f}% ] Model time: {t_ms:.1f} ms, simulating {t_start_ms:.1f} -> {t_stop_ms:.1f} ms\n")
    sys.stderr.flush()
