"""NodeCollection and SynapseCollection: the handles PyNEST scripts hold (gids, selected connections)."""
from __future__ import annotations

import numpy as np

from .errors import BadProperty, IllegalConnection


class NodeCollection:
    """An ordered set of node ids (gids) of one kernel."""

    def __init__(self, kernel, gids):
        self._kernel = kernel
        self.gids = np.asarray(gids, dtype=np.int64).ravel()

    def __len__(self):
        return self.gids.size

    def __iter__(self):
        for g in self.gids:
            yield NodeCollection(self._kernel, [g])

    def __getitem__(self, item):
        if isinstance(item, (int, np.integer)):
            return NodeCollection(self._kernel, [self.gids[item]])
        return NodeCollection(self._kernel, self.gids[item])

    def __add__(self, other):
        if not isinstance(other, NodeCollection) or other._kernel is not self._kernel:
            raise TypeError("can only add NodeCollections of the same kernel")
        return NodeCollection(self._kernel, np.concatenate([self.gids, other.gids]))

    def __eq__(self, other):
        return isinstance(other, NodeCollection) and np.array_equal(self.gids, other.gids)

    def __repr__(self):
        if self.gids.size == 0:
            return "NodeCollection(<empty>)"
        return f"NodeCollection(first={self.gids[0]}, last={self.gids[-1]}, n={self.gids.size})"

    def tolist(self):
        return [int(g) for g in self.gids]

    @property
    def global_id(self):
        return int(self.gids[0]) if self.gids.size == 1 else self.tolist()

    def get(self, *keys, output=None):
        return self._kernel._get_nodes(self.gids, keys)

    def set(self, params=None, **kwargs):
        if params is None:
            params = {}
        if isinstance(params, (list, tuple)):
            if len(params) != len(self):
                raise BadProperty(f"set: got {len(params)} parameter dicts for {len(self)} nodes")
            for g, p in zip(self.gids, params):
                self._kernel._set_nodes(np.array([g]), dict(p))
            return
        params = dict(params)
        params.update(kwargs)
        self._kernel._set_nodes(self.gids, params)


class SynapseCollection:
    """Connections selected by GetConnections; get/set read and write the built synapse arrays."""

    def __init__(self, kernel, selection):
        self._kernel = kernel
        self._sel = selection  # list of (kind, index array) into the simulation's arrays

    def __len__(self):
        return int(sum(len(idx) for _, idx in self._sel))

    def get(self, keys=None, output=None):
        return self._kernel._sim.get_connections(self._sel, keys)

    def set(self, params=None, **kwargs):
        params = dict(params or {})
        params.update(kwargs)
        self._kernel._sim.set_connections(self._sel, params)



def _stack(vals):
    if all(isinstance(v, (int, float, np.integer, np.floating, bool, np.bool_)) for v in vals):
        return np.asarray(vals)
    return vals


def _as_gids(x, what):
    if isinstance(x, NodeCollection):
        return x.gids
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise IllegalConnection(f"Connect: {what} must be a NodeCollection or an integer array of node ids")
    return arr.astype(np.int64).ravel()
