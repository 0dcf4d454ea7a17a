"""Kernel mixin: kernel status (ResetKernel, set/SetKernelStatus, GetKernelStatus) and time units."""
from __future__ import annotations

import copy
import math
import os

import numpy as np

from . import models as M
from .errors import BadProperty, UnknownParameter


def default_read_scope():
    """'local' (NEST) unless the environment says EPROP_DIST_READ_SCOPE=global."""
    v = os.environ.get("EPROP_DIST_READ_SCOPE", "local")
    if v not in ("local", "global"):
        raise BadProperty(f"EPROP_DIST_READ_SCOPE must be 'local' or 'global', got {v!r}")
    return v


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
                       "local_num_threads": 1, "print_time": False, "read_scope": default_read_scope(),
                       "eprop_fast_path": True, "eprop_settle_windows": True, **M.KERNEL_BSS}
        self._sim = None
        self._build_agreed = False

    def SetKernelStatus(self, params):
        if not isinstance(params, dict):
            raise BadProperty(f"SetKernelStatus: expected a dict of kernel parameters, got {type(params).__name__}")
        self.set(**params)

    # kernel properties that can be read but not set (NEST's read-only kernel attributes)
    READ_ONLY = ("biological_time", "node_models", "synapse_models", "num_connections", "network_size",
                 "num_processes", "local_num_threads_max")

    def _check_kernel_value(self, k, v):
        """Validate one kernel parameter; raise naming it.  Nothing is changed here."""
        built = self._sim is not None
        if k in self.READ_ONLY:
            raise BadProperty(f"kernel: {k} is read-only")
        if k not in self.status:
            raise UnknownParameter(f"kernel: unknown parameter '{k}'; valid: {', '.join(sorted(self.status))}")
        if k in ("resolution", "rng_seed", "comm_window", "exchange", "eprop_update_interval",
                 "eprop_learning_window", "eprop_fast_path", "eprop_settle_windows") and built:
            raise BadProperty(f"kernel: '{k}' cannot be changed after the network was built")
        if k == "resolution":
            if not (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                    and v > 0 and math.isfinite(v)):
                raise BadProperty(f"kernel: resolution must be a positive number of ms, got {v!r}")
            if (self.populations or self.blocks) and float(v) != self.dt:
                raise BadProperty("kernel: resolution cannot be changed after nodes were created (delays and "
                                  "times already converted to steps would change); call ResetKernel() first")
        if k == "rng_seed" and not (isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                    and 0 <= v < 2**63):
            raise BadProperty(f"kernel: rng_seed must be a non-negative integer below 2**63, got {v!r}")
        if k == "comm_window" and v is not None and not (isinstance(v, (int, np.integer)) and v >= 1):
            raise BadProperty(f"kernel: comm_window must be an integer >= 1 (steps) or None, got {v!r}")
        if k == "exchange" and v not in ("allgather", "alltoall"):
            raise BadProperty(f"kernel: exchange must be 'allgather' or 'alltoall', got {v!r}")
        if k in ("eprop_update_interval", "eprop_learning_window"):
            if not (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                    and v > 0 and math.isfinite(v)):
                raise BadProperty(f"kernel: {k} must be a finite number > 0 ms, got {v!r}")
        if k in ("eprop_reset_neurons_on_update", "print_time", "eprop_fast_path", "eprop_settle_windows") and \
                not isinstance(v, (bool, np.bool_)):
            raise BadProperty(f"kernel: {k} must be a bool, got {v!r}")
        if k == "local_num_threads" and v != 1:
            raise BadProperty(f"kernel: local_num_threads = {v!r} is not supported: eprop-dist runs one thread "
                              "per MPI rank; start more ranks instead (mpiexec -n N)")
        if k == "total_num_virtual_procs":
            n = self.comm.size
            if not (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v in (1, n)):
                raise BadProperty(
                    f"kernel: total_num_virtual_procs = {v!r} is not supported on {n} rank(s): eprop-dist has one "
                    f"virtual process per MPI rank (start mpiexec -n N for N); the value 1 is accepted on any "
                    f"number of ranks because the results equal NEST's single-process results there")
        if k == "read_scope" and v not in ("local", "global"):
            raise BadProperty(f"kernel: read_scope must be 'local' (NEST: each rank reads its own connections "
                              f"and the events of its own nodes) or 'global' (collective), got {v!r}")

    def set(self, **params):
        for k, v in params.items():        # validate everything first: a bad key changes nothing
            self._check_kernel_value(k, v)
        for k, v in params.items():
            if k == "total_num_virtual_procs":
                continue                   # always the number of ranks (see _check_kernel_value)
            self.status[k] = v

    KEYS_COMPUTED = ("biological_time", "total_num_virtual_procs", "num_processes", "local_num_threads_max",
                     "network_size", "node_models", "synapse_models", "num_connections")

    def GetKernelStatus(self, key=None):
        if key is not None and not isinstance(key, str):
            keys = list(key)
            st = self.GetKernelStatus()
            for k in keys:
                if k not in st:
                    raise UnknownParameter(f"kernel: unknown parameter '{k}'; valid: {', '.join(sorted(st))}")
            return [st[k] for k in keys]
        st = dict(self.status)
        st["biological_time"] = (self._sim.t if self._sim else 0) * self.status["resolution"]
        if self._sim is not None:
            st["comm_window"] = self._sim.D
        st["total_num_virtual_procs"] = self.comm.size
        st["num_processes"] = self.comm.size
        st["local_num_threads_max"] = 1
        st["network_size"] = self.n_nodes
        st["node_models"] = tuple(self.models)
        st["synapse_models"] = tuple(self.synapses)
        if key is None:
            n = self.num_connections(build=False)
            if n is not None:        # (a pairwise_bernoulli network counts once built: ask for the key)
                st["num_connections"] = n
            return st
        if key == "num_connections":
            return self.num_connections()
        if key not in st:
            raise UnknownParameter(f"kernel: unknown parameter '{key}'; valid: {', '.join(sorted(st))}")
        return st[key]

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
