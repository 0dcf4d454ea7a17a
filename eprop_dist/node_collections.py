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
        output = check_output(output, "NodeCollection.get")
        return to_output(self._kernel._get_nodes(self.gids, keys), output)

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


CONNECTION_KEYS = ("source", "target", "weight", "delay", "synapse_model")
_KINDS = ("static", "eprop", "ls")


def check_output(output, where):
    """NEST's output= argument: '' (dicts of arrays) or 'json'; anything else is refused by name."""
    if output in (None, ""):
        return ""
    if output == "json":
        return "json"
    raise BadProperty(f"{where}: output={output!r} is not supported; use output='' (dicts of NumPy arrays) or "
                      "output='json' (pandas is not a dependency of eprop-dist: pandas.DataFrame(result) "
                      "makes a data frame)")


def to_output(result, output):
    if output == "json":
        import json
        return json.dumps(result, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    return result


class SynapseCollection:
    """Connections selected by GetConnections on this rank (NEST: local to the MPI process), in
    NEST's order (by source, then target).  ``conns[i]``, ``conns[a:b]``, ``len(conns)``, iteration,
    ``conns.get(keys)``, ``conns.set(...)`` (a dict, keyword arguments or one dict per connection)
    and attribute access (``conns.weight``, ``conns.weight = w``) work as in PyNEST."""

    def __init__(self, kernel, selection, scope="local", gpos=None, n_global=None):
        object.__setattr__(self, "_kernel", kernel)
        object.__setattr__(self, "_sel", selection)   # list of (kind, index array) into the core's arrays
        object.__setattr__(self, "_flat", None)
        # read_scope 'global' (collective, see README): the collection stands for every rank's
        # connections; _gpos[i] is the position of local connection i (NEST order) among all of them
        object.__setattr__(self, "_scope", scope)
        if scope == "global" and gpos is None:
            gpos, n_global = self._global_positions()
        object.__setattr__(self, "_gpos", gpos)
        object.__setattr__(self, "_n_global", n_global)

    def _global_positions(self):
        sim = self._kernel._sim
        kinds, idx = self._order()
        d = sim.get_connections(self._sel, ("source", "target"), scope="local", sort=True)
        parts = sim.comm.allgather([d["source"], d["target"]])
        src = np.concatenate([p[0] for p in parts])
        tgt = np.concatenate([p[1] for p in parts])
        order = np.lexsort((tgt, src))
        inv = np.empty(src.size, np.int64)
        inv[order] = np.arange(src.size)
        off = int(sum(p[0].size for p in parts[: sim.comm.rank]))
        return inv[off: off + d["source"].size], int(src.size)

    def __len__(self):
        if self._scope == "global":
            return self._n_global
        return int(sum(len(idx) for _, idx in self._sel))

    def _order(self):
        """(kind code, index) of every connection in NEST's order (source, then target)."""
        if self._flat is None:
            sim = self._kernel._sim
            d = sim.get_connections(self._sel, ("source", "target"), scope="local", sort=False)
            kinds = np.concatenate([np.full(len(idx), _KINDS.index(k)) for k, idx in self._sel]) \
                if self._sel else np.zeros(0, int)
            idx = np.concatenate([np.asarray(i, np.int64) for _, i in self._sel]) if self._sel else np.zeros(0, np.int64)
            o = np.lexsort((d["target"], d["source"]))
            object.__setattr__(self, "_flat", (kinds[o], idx[o]))
        return self._flat

    def __getitem__(self, item):
        kinds, idx = self._order()
        n = len(self)
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer, slice)):
            raise BadProperty(f"SynapseCollection: index must be an integer or a slice, got {item!r}")
        if isinstance(item, (int, np.integer)):
            if not -n <= item < n:
                raise IndexError(f"SynapseCollection index {item} out of range for {n} connections")
            item = slice(item % n, item % n + 1)
        gpos = n_global = None
        if self._scope == "global":
            chosen = np.arange(n)[item]
            new_pos = np.full(n, -1, np.int64)
            new_pos[chosen] = np.arange(chosen.size)
            mine = np.nonzero(new_pos[self._gpos] >= 0)[0]
            mine = mine[np.argsort(new_pos[self._gpos][mine], kind="stable")]
            k2, i2, gpos, n_global = kinds[mine], idx[mine], new_pos[self._gpos][mine], int(chosen.size)
        else:
            k2, i2 = kinds[item], idx[item]
        sel = [(k, i2[k2 == c]) for c, k in enumerate(_KINDS) if np.any(k2 == c)]
        return SynapseCollection(self._kernel, sel, self._scope, gpos, n_global)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        return f"SynapseCollection(n={len(self)})"

    def __getattr__(self, name):
        if name.startswith("_") or name not in CONNECTION_KEYS + ("optimizer",):
            raise AttributeError(f"SynapseCollection has no attribute '{name}'; connection properties: "
                                 f"{', '.join(CONNECTION_KEYS)}")
        return self.get(name)

    def __setattr__(self, name, value):
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self.set({name: value})

    def get(self, keys=None, output=None):
        """This rank's connections (NEST's semantics); eprop_dist.gather_connections gives all ranks'."""
        output = check_output(output, "SynapseCollection.get")
        single = isinstance(keys, str)
        want = (keys,) if single else (CONNECTION_KEYS if keys is None else tuple(keys))
        for k in want:
            if k not in CONNECTION_KEYS:
                raise BadProperty(f"SynapseCollection.get: unknown connection property '{k}'; available: "
                                  f"{', '.join(CONNECTION_KEYS)}")
        d = self._kernel._sim.get_connections(self._sel, want, scope=self._scope)
        if len(self) == 1:
            d = {k: (v[0].item() if hasattr(v[0], "item") else v[0]) for k, v in d.items()}
        return to_output(d[keys] if single else d, output)

    def set(self, params=None, **kwargs):
        """Set weight / optimizer state (m, v): a dict or keywords (scalars, or one value per
        connection in NEST's order), or a list of one dict per connection.  Everything is checked
        before anything is written."""
        sim = self._kernel._sim
        n = len(self)
        if isinstance(params, (list, tuple)):           # one dict per connection, in NEST's order
            if len(params) != n:
                raise BadProperty(f"SynapseCollection.set: got {len(params)} parameter dicts for {n} connections")
            if kwargs:
                raise BadProperty("SynapseCollection.set: give either a list of dicts or keyword arguments")
            if not all(isinstance(p, dict) for p in params):
                raise BadProperty("SynapseCollection.set: a list must hold one dict per connection")
            keys = set(params[0]) if params else set()
            if any(set(p) != keys for p in params):
                raise BadProperty("SynapseCollection.set: every dict of the list must have the same keys")
            merged = {}
            for k in keys:
                vals = [p[k] for p in params]
                if k == "optimizer":
                    if not all(isinstance(v, dict) and set(v) == set(vals[0]) for v in vals):
                        raise BadProperty("SynapseCollection.set: optimizer must be a dict with the same keys "
                                          "in every entry")
                    merged[k] = {kk: [v[kk] for v in vals] for kk in vals[0]}
                else:
                    merged[k] = vals
            params = merged
        if params is not None and not isinstance(params, dict):
            raise BadProperty(f"SynapseCollection.set: expected a dict, a list of dicts or keywords, got {params!r}")
        params = dict(params or {})
        params.update(kwargs)
        clean = {}
        for k, v in params.items():
            if k not in ("weight", "optimizer"):
                raise BadProperty(f"SynapseCollection.set: cannot set '{k}' (settable: weight, optimizer)")
            if k == "optimizer" and (not isinstance(v, dict) or set(v) - {"m", "v"}):
                raise BadProperty(f"SynapseCollection.set: optimizer takes a dict of the per-connection Adam "
                                  f"state m, v; got {v!r}")
            checked = {}
            for name, x in (v.items() if k == "optimizer" else [(k, v)]):
                try:
                    arr = np.asarray(x, dtype=float)
                except (TypeError, ValueError):
                    raise BadProperty(f"SynapseCollection.set: {name} must be numeric, got {x!r}") from None
                if arr.ndim > 1 or (arr.ndim == 1 and arr.size != n):
                    raise BadProperty(f"SynapseCollection.set: {name} has {arr.size} values for {n} connections"
                                      + (f" (shape {arr.shape})" if arr.ndim > 1 else ""))
                if not np.all(np.isfinite(arr)):
                    raise BadProperty(f"SynapseCollection.set: {name} must be finite, got {x!r}")
                if arr.ndim == 1 and self._scope == "global":
                    arr = arr[self._gpos]           # this rank's part of the values given for all ranks
                checked[name] = arr if arr.ndim else float(arr)
            clean[k] = checked if k == "optimizer" else checked[k]
        for sel, part in self._split(clean):
            sim.set_connections([sel], part)

    def _split(self, params):
        """[((kind, index array), params of that kind)]: per-connection arrays (NEST order) cut alike."""
        kinds, idx = self._order()
        out = []
        for c, k in enumerate(_KINDS):
            m = kinds == c
            if not m.any():
                continue
            part = {}
            for key, v in params.items():
                if key == "optimizer":
                    part[key] = {kk: (np.asarray(vv, float)[m] if np.ndim(vv) else vv) for kk, vv in dict(v).items()}
                else:
                    part[key] = np.asarray(v, float)[m] if np.ndim(v) else v
            out.append(((k, idx[m]), part))
        return out


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
