"""eprop-dist: distributed event-driven e-prop / e-prop+ learning in recurrent spiking networks.

NEST-style API on a default kernel, so ``import eprop_dist as nest`` ports a PyNEST e-prop script::

    import eprop_dist as nest
    nest.ResetKernel()
    rec = nest.Create("eprop_iaf", 100, {...})
    nest.Connect(rec, rec, {"rule": "fixed_indegree", "indegree": 10}, {"synapse_model": "eprop_synapse"})
    nest.Simulate(1000.0)
"""
import enum as _enum
import sys as _sys
import types as _types

from .api import Kernel, NodeCollection, SynapseCollection
from .errors import (BadProperty, EpropError, IllegalConnection, KernelException, NESTError, NESTErrors,
                     NotImplementedFeature, UnknownModel, UnknownParameter)
from .random import normal, uniform

__version__ = "0.1.0"


class VerbosityLevel(_enum.IntEnum):
    """NEST's message levels (``nest.verbosity = nest.VerbosityLevel.WARNING``)."""
    ALL = 0
    DEBUG = 5
    STATUS = 7
    INFO = 10
    PROGRESS = 15
    DEPRECATED = 18
    WARNING = 20
    ERROR = 30
    FATAL = 40
    QUIET = 100


_verbosity = VerbosityLevel.INFO
_kernel = Kernel()


def kernel() -> Kernel:
    """The default kernel behind the module-level functions."""
    return _kernel


def ResetKernel(comm=None):
    """Forget the network; `comm` (an mpi4py communicator or None for MPI_COMM_WORLD/serial)."""
    global _kernel
    _kernel = Kernel(comm=comm)


def message(level, text):
    """Print `text` to stderr on rank 0 if `level` is at least ``nest.verbosity``."""
    if VerbosityLevel(level) >= _verbosity and _kernel.comm.rank == 0:
        print(f"eprop-dist: {text}", file=_sys.stderr)


def _as_level(level):
    if isinstance(level, str):                 # NEST 2 style "M_WARNING"
        name = level[2:] if level.startswith("M_") else level
        if name not in VerbosityLevel.__members__:
            raise BadProperty(f"verbosity: unknown level {level!r}; levels: "
                              f"{', '.join('M_' + n for n in VerbosityLevel.__members__)}")
        return VerbosityLevel[name]
    try:
        return VerbosityLevel(level)
    except ValueError:
        raise BadProperty(f"verbosity: unknown level {level!r}; use nest.VerbosityLevel.<name>") from None


def set_verbosity(level):
    """NEST's old form: ``set_verbosity("M_WARNING")`` (or a VerbosityLevel)."""
    global _verbosity
    _verbosity = _as_level(level)


def get_verbosity():
    return _verbosity


def Rank():
    """MPI rank of this process (0 in a serial run)."""
    return _kernel.comm.rank


def NumProcesses():
    """Number of MPI processes."""
    return _kernel.comm.size


def GetLocalNodeCollection(nodes):
    """The nodes of `nodes` that live on this rank (NEST's name)."""
    return NodeCollection(_kernel, nodes.gids[nodes.gids % _kernel.comm.size == _kernel.comm.rank])


def gather_events(recorder, root=None):
    """Events of `recorder` from every rank (collective: every rank must call it).  root=None: the
    merged events on every rank; root=r: on rank r, None elsewhere.  ``recorder.get("events")`` is
    this rank's events only, as in NEST."""
    if len(recorder) != 1:
        raise BadProperty("gather_events: give one recorder")
    sim = _kernel._sim
    if sim is None:
        return recorder.get("events")
    ev = sim.events(int(recorder.gids[0]), scope="global")
    return ev if root is None or _kernel.comm.rank == root else None


def gather_connections(conns=None, keys=None, root=None):
    """Connections of every rank (collective): ``conns`` a SynapseCollection (default: all
    connections), `keys` as for get().  root=None: on every rank; root=r: on rank r, None elsewhere."""
    if conns is None:
        conns = GetConnections()
    ev = _kernel._sim.get_connections(conns._sel, keys, scope="global")
    return ev if root is None or _kernel.comm.rank == root else None


def set(**params):  # noqa: A001  (NEST's name)
    _kernel.set(**params)


def SetKernelStatus(params):
    _kernel.SetKernelStatus(params)


def GetKernelStatus(key=None):
    return _kernel.GetKernelStatus(key)


def get(*keys):
    """Kernel properties (PyNEST 3: ``nest.get("resolution")``)."""
    if not keys:
        return _kernel.GetKernelStatus()
    return _kernel.GetKernelStatus(keys[0] if len(keys) == 1 else keys)


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


def GetStatus(nodes, keys=None, output=""):
    """Status of nodes or connections (NEST: list of dicts / values, one per element)."""
    if isinstance(nodes, SynapseCollection):
        d = nodes.get(keys, output=output)
        return d
    return nodes.get(output=output) if keys is None else nodes.get(keys, output=output)


def Simulate(ms):
    _kernel.Simulate(ms)


def Run(ms):
    _kernel.Simulate(ms)


def timers():
    """Per-phase wall-clock seconds of this rank: build, update, deliver, eprop, communicate, record."""
    return dict(_kernel.timers)


__all__ = ["VerbosityLevel", "NESTErrors", "NotImplementedFeature", "set_verbosity", "get_verbosity", "message",
           "Rank", "NumProcesses", "GetLocalNodeCollection", "gather_events", "gather_connections", "get",
           "Kernel", "NodeCollection", "SynapseCollection", "BadProperty", "EpropError", "IllegalConnection",
           "KernelException", "NESTError", "UnknownModel", "UnknownParameter", "normal", "uniform", "kernel",
           "ResetKernel", "set", "SetKernelStatus", "GetKernelStatus", "Create", "Connect", "SetDefaults",
           "GetDefaults", "CopyModel", "GetConnections", "SetStatus", "GetStatus", "Simulate", "Run", "timers"]


# ---- PyNEST 3 module attributes: kernel properties read and written as nest.<name> ----------------
class _EpropModule(_types.ModuleType):
    """``nest.resolution``, ``nest.rng_seed = 5``, ``nest.biological_time``, ``nest.node_models``,
    ``nest.verbosity = nest.VerbosityLevel.WARNING`` ... as in PyNEST 3 (PEP 562 via the module class).
    Setting an unknown public attribute is an error, as in PyNEST."""

    @property
    def verbosity(self):
        return _verbosity

    @verbosity.setter
    def verbosity(self, level):
        set_verbosity(level)

    def __getattr__(self, name):
        if not name.startswith("_") and (name in _kernel.status or name in _kernel.KEYS_COMPUTED):
            return _kernel.GetKernelStatus(name)
        raise AttributeError(f"module 'eprop_dist' has no attribute '{name}'")

    def __setattr__(self, name, value):
        if name.startswith("_") or name in self.__dict__ or hasattr(type(self), name):
            super().__setattr__(name, value)
        elif name in _kernel.status or name in _kernel.READ_ONLY:
            _kernel.set(**{name: value})          # validates; read-only keys raise BadProperty
        else:
            raise AttributeError(f"eprop_dist: cannot set unknown kernel attribute '{name}'; kernel "
                                 f"attributes: {', '.join(sorted(_kernel.status))}")


_sys.modules[__name__].__class__ = _EpropModule
