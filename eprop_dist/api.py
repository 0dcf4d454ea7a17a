"""NEST-style network building: Create, Connect, SetDefaults, GetConnections, Simulate.

A :class:`Kernel` holds one network (global, rank-agnostic description: populations with per-node
parameter arrays, connection blocks) and, once built, the :class:`~eprop_dist.simulation.Simulation`
of this rank.  The module-level functions (``eprop_dist.Create`` ...) act on a default kernel so a
PyNEST script ports line by line (``import eprop_dist as nest``).
"""
from __future__ import annotations

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
        self.ResetKernel()

    # ---- simulation ------------------------------------------------------------------------
    def _ensure_built(self):
        if self._sim is None:
            from .simulation import Simulation
            self._sim = Simulation(self, comm=self._comm_arg)
        return self._sim

    def Simulate(self, ms):
        sim = self._ensure_built()
        steps = self.ms_to_steps(float(ms), "Simulate: time")
        sim.simulate(steps)

    def Run(self, ms):
        self.Simulate(ms)

    @property
    def timers(self):
        return self._sim.timers if self._sim else {}

