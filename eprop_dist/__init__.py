"""eprop-dist: distributed event-driven e-prop / e-prop+ learning in recurrent spiking networks.

NEST-style API on a default kernel, so ``import eprop_dist as nest`` ports a PyNEST e-prop script::

    import eprop_dist as nest
    nest.ResetKernel()
    rec = nest.Create("eprop_iaf", 100, {...})
    nest.Connect(rec, rec, {"rule": "fixed_indegree", "indegree": 10}, {"synapse_model": "eprop_synapse"})
    nest.Simulate(1000.0)
"""
from .api import Kernel, NodeCollection, SynapseCollection
from .errors import (BadProperty, EpropError, IllegalConnection, KernelException, NESTError,
                     UnknownModel, UnknownParameter)
from .random import normal, uniform

__version__ = "0.1.0"

_kernel = Kernel()


def kernel() -> Kernel:
    """The default kernel behind the module-level functions."""
    return _kernel


def ResetKernel(comm=None):
    """Forget the network; `comm` (an mpi4py communicator or None for MPI_COMM_WORLD/serial)."""
    global _kernel
    _kernel = Kernel(comm=comm)


def set(**params):  # noqa: A001  (NEST's name)
    _kernel.set(**params)


def SetKernelStatus(params):
    _kernel.SetKernelStatus(params)


def GetKernelStatus(key=None):
    return _kernel.GetKernelStatus(key)


def Create(model, n=1, params=None, positions=None):
    return _kernel.Create(model, n, params, positions)


def Connect(pre, post, conn_spec=None, syn_spec=None):
    return _kernel.Connect(pre, post, conn_spec, syn_spec)


def SetDefaults(model, params=None, val=None):
    return _kernel.SetDefaults(model, params, val)


def GetDefaults(model, key=None):
    return _kernel.GetDefaults(model, key)


def CopyModel(existing, new, params=None):
    return _kernel.CopyModel(existing, new, params)


def GetConnections(source=None, target=None, synapse_model=None):
    return _kernel.GetConnections(source, target, synapse_model)


def SetStatus(nodes, params, val=None):
    if isinstance(params, str):
        params = {params: val}
    nodes.set(params)


def GetStatus(nodes, keys=None):
    return nodes.get() if keys is None else nodes.get(keys)


def Simulate(ms):
    _kernel.Simulate(ms)


def Run(ms):
    _kernel.Simulate(ms)


def timers():
    """Per-phase wall-clock seconds of this rank: build, update, deliver, eprop, communicate, record."""
    return dict(_kernel.timers)


__all__ = ["Kernel", "NodeCollection", "SynapseCollection", "BadProperty", "EpropError", "IllegalConnection",
           "KernelException", "NESTError", "UnknownModel", "UnknownParameter", "normal", "uniform", "kernel",
           "ResetKernel", "set", "SetKernelStatus", "GetKernelStatus", "Create", "Connect", "SetDefaults",
           "GetDefaults", "CopyModel", "GetConnections", "SetStatus", "GetStatus", "Simulate", "Run", "timers"]
