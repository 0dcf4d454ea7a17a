"""Kernel mixin: kernel status (ResetKernel, set/SetKernelStatus, GetKernelStatus) and time units."""
from __future__ import annotations

import copy
import math

import numpy as np

from . import models as M
from .errors import BadProperty, UnknownParameter


class StatusMixin:
    # ---- kernel ----------------------------------------------------------------------------
    def ResetKernel(self):
        self.models = {k: copy.deepcopy(v) for k, v in M.BUILTIN.items()}
        self.model_defaults = {k: v.defaults() for k, v in self.models.items()}
        self.synapses = {k: copy.deepcopy(v) for k, v in M.SYNAPSES.items()}
        self.syn_common = {k: {"optimizer": dict(M.OPTIMIZER_DEFAULTS), "weight_recorder": None,
                               "eta_first_change": 1e-4, "eta_change_count": 0, "average_gradient": False}
                           for k, v in self.synapses.items() if v.kind == "eprop"}
        self.populations = []            # kernel_nodes.Population
        self.pop_first = []
        self.n_nodes = 0
        self.blocks = []                 # kernel_connect.ConnBlock
        self.status = {"resolution": 1.0, "rng_seed": 1, "comm_window": None, "exchange": "alltoall",
                       "biological_time": 0.0, "total_num_virtual_procs": 1,
                       "local_num_threads": 1, "print_time": False, **M.KERNEL_BSS}
        self._sim = None

    def SetKernelStatus(self, params):
        self.set(**params)

    def set(self, **params):
        for k, v in params.items():
            if k not in self.status:
                raise UnknownParameter(f"kernel: unknown parameter '{k}'; valid: {', '.join(sorted(self.status))}")
            if k in ("resolution", "rng_seed", "comm_window") and self._sim is not None:
                raise BadProperty(f"kernel: '{k}' cannot be changed after the network was built")
            if k == "resolution" and not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise BadProperty(f"kernel: resolution must be a positive number of ms, got {v!r}")
            if k == "rng_seed" and not (isinstance(v, (int, np.integer)) and 0 <= v < 2**63):
                raise BadProperty(f"kernel: rng_seed must be a non-negative integer, got {v!r}")
            if k == "comm_window" and v is not None and not (isinstance(v, (int, np.integer)) and v >= 1):
                raise BadProperty(f"kernel: comm_window must be an integer >= 1 (steps) or None, got {v!r}")
            if k == "exchange" and v not in ("allgather", "alltoall"):
                raise BadProperty(f"kernel: exchange must be 'allgather' or 'alltoall', got {v!r}")
            if k == "exchange" and self._sim is not None:
                raise BadProperty("kernel: 'exchange' cannot be changed after the network was built")
            if k == "biological_time":
                raise BadProperty("kernel: biological_time is read-only")
            if k in ("eprop_update_interval", "eprop_learning_window"):
                if self._sim is not None:
                    raise BadProperty(f"kernel: '{k}' cannot be changed after the network was built")
                if not (isinstance(v, (int, float)) and v > 0):
                    raise BadProperty(f"kernel: {k} must be > 0 ms, got {v!r}")
            if k == "eprop_reset_neurons_on_update" and not isinstance(v, (bool, np.bool_)):
                raise BadProperty(f"kernel: eprop_reset_neurons_on_update must be a bool, got {v!r}")
            self.status[k] = v

    def GetKernelStatus(self, key=None):
        st = dict(self.status)
        st["biological_time"] = (self._sim.t if self._sim else 0) * self.status["resolution"]
        if self._sim is not None:
            st["comm_window"] = self._sim.D
        return st if key is None else st[key]

    @property
    def dt(self):
        return float(self.status["resolution"])

    def ms_to_steps(self, ms, what, minimum=0):
        steps = ms / self.dt
        r = round(steps)
        if not math.isfinite(steps) or abs(steps - r) > 1e-9 * max(1.0, abs(steps)) or r < minimum:
            raise BadProperty(f"{what} = {ms} ms must be a multiple of the resolution ({self.dt} ms)"
                              + (f" and at least {minimum} step(s)" if minimum else ""))
        return int(r)
