"""gid <-> (rank, lid): pure functions, no MPI.

Neurons are dealt round-robin like NEST's virtual processes (``rank = gid % n_ranks``), which
balances every population across ranks.  Devices (generators, recorders) are replicated.
"""
import numpy as np


def owner_rank(gid, n_ranks):
    """Rank that owns neuron `gid` (scalar or array)."""
    return np.asarray(gid) % n_ranks


def is_local(gids, rank, n_ranks):
    """Boolean mask of the gids owned by `rank`."""
    return (np.asarray(gids) % n_ranks) == rank


def local_gids(gids, rank, n_ranks):
    """The gids of `gids` owned by `rank`, in the given (ascending) order."""
    gids = np.asarray(gids, dtype=np.int64)
    return gids[is_local(gids, rank, n_ranks)]
