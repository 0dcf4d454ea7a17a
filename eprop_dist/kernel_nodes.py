"""Kernel mixin: creating nodes and reading/writing their parameters (Create, NodeCollection.get/set)."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from . import models as M
from .errors import BadProperty, EpropError, NotImplementedFeature, UnknownParameter
from .node_collections import NodeCollection, _stack


@dataclass
class Population:
    model: str            # model name (possibly a CopyModel name)
    kind: str
    first: int            # first gid
    n: int
    params: dict          # name -> per-node array (float/bool/object) or list



class NodesMixin:
    # ---- nodes -----------------------------------------------------------------------------
    def Create(self, model, n=1, params=None, positions=None):
        if isinstance(n, (dict, list, tuple)) and params is None:      # NEST: Create(model, params)
            n, params = (1 if isinstance(n, dict) else len(n)), n
        if positions is not None:
            raise NotImplementedFeature("Create: spatial 'positions' are not supported by eprop-dist; create "
                                        "the nodes without positions")
        spec = M.get_model(self.models, model)
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
            raise BadProperty(f"Create: n must be a positive integer, got {n!r}")
        if self._sim is not None:
            raise EpropError("Create after the network was built (first Simulate or GetConnections) "
                             "is not supported; build the whole network first")
        n = int(n)
        pars = {}
        for k, p in spec.params.items():
            d = self.model_defaults[model][k]
            if p.kind in ("array", "list", "nodes"):
                pars[k] = [copy.copy(d) for _ in range(n)]
            elif p.kind == "str":
                pars[k] = np.array([d] * n, dtype=object)
            elif p.kind == "bool":
                pars[k] = np.full(n, bool(d))
            else:
                pars[k] = np.full(n, float(d))
        pop = Population(model, spec.kind, self.n_nodes + 1, n, pars)
        self.populations.append(pop)
        self.pop_first.append(pop.first)
        self.n_nodes += n
        nc = NodeCollection(self, np.arange(pop.first, pop.first + n))
        if params is not None:
            try:
                nc.set(params)
            except Exception:          # a bad parameter creates nothing
                self.populations.pop()
                self.pop_first.pop()
                self.n_nodes -= n
                raise
        return nc

    def _pop_index(self, gids):
        gids = np.asarray(gids, dtype=np.int64)
        if gids.size and (gids.min() < 1 or gids.max() > self.n_nodes):
            raise BadProperty(f"node id out of range 1..{self.n_nodes}")
        return np.searchsorted(np.asarray(self.pop_first), gids, side="right") - 1

    def _pop_of(self, gids):
        return [self.populations[i] for i in self._pop_index(gids)]

    def _groups(self, gids):
        """Yield (population, positions, index-into-gids) per population touched by gids."""
        gids = np.asarray(gids, dtype=np.int64)
        pidx = self._pop_index(gids)
        for p in np.unique(pidx):
            sel = np.nonzero(pidx == p)[0]
            pop = self.populations[p]
            yield pop, gids[sel] - pop.first, sel

    def _set_nodes(self, gids, params):
        """Set node parameters; every value is checked before the core sees any, and a bad one leaves
        every node as it was (the touched entries are restored)."""
        groups = list(self._groups(gids))
        saved = []
        for pop, pos, _ in groups:
            for k in params:
                if k in pop.params:
                    arr = pop.params[k]
                    saved.append((arr, pos, arr[pos].copy() if isinstance(arr, np.ndarray) else [arr[i] for i in pos]))
        try:
            pushes, clears = self._set_nodes_checked(groups, gids, params)
        except Exception:
            for arr, pos, old in saved:
                if isinstance(arr, np.ndarray):
                    arr[pos] = old
                else:
                    for i, o in zip(pos, old):
                        arr[i] = o
            raise
        if self._sim is not None:
            for g in clears:
                self._sim.clear_events(g)
            for pop, pos, old_EL in pushes:
                self._sim.push_nodes(pop, pos, params, old_EL)

    def _set_nodes_checked(self, groups, gids, params):
        pushes, clears = [], []
        for pop, pos, sel in groups:
            spec = self.models[pop.model]
            old_EL = pop.params["E_L"][pos].copy() if "E_L" in pop.params else None
            for k, v in params.items():
                if k == "n_events" and pop.kind in ("multimeter", "spike_recorder", "weight_recorder"):
                    if v != 0:
                        raise BadProperty(f"{pop.model}: n_events can only be set to 0 (clears the events)")
                    clears.append(pop.first + pos)
                    continue
                v = M.check_value(pop.model, spec, k, v)
                p = spec.params[k]
                if p.kind in ("array", "list", "nodes"):
                    per_node = isinstance(v, list) and len(v) == len(gids) and p.kind == "array"
                    for j, (ps, sj) in enumerate(zip(pos, sel)):
                        pop.params[k][ps] = np.asarray(v[sj], dtype=float) if per_node else copy.copy(v)
                else:
                    arr = np.asarray(v, dtype=object if p.kind == "str" else None)
                    if arr.ndim == 0:
                        pop.params[k][pos] = v
                    elif arr.size == len(gids):
                        pop.params[k][pos] = arr[sel]
                    else:
                        raise BadProperty(f"{pop.model}: {k} has {arr.size} values for {len(gids)} nodes")
            if pop.kind == "rec":
                self._check_rec(pop, pos, params)
            if pop.kind == "step_rate_generator":
                self._check_rate_gen(pop, pos)
            if pop.kind == "spike_generator" and "spike_times" in params:
                for ps in pos:
                    st = pop.params["spike_times"][ps]
                    if st.size and np.any(np.diff(st) < 0):
                        raise BadProperty(f"{pop.model}: spike_times must be sorted in non-decreasing order")
                    for x in st:
                        self.ms_to_steps(float(x), f"{pop.model}: spike time", 1)
            if pop.kind == "multimeter" and "record_from" in params:
                for ps in pos:
                    for r in pop.params["record_from"][ps]:
                        if r not in M.RECORDABLE_FIELDS:
                            raise BadProperty(f"multimeter: cannot record '{r}'; recordables: "
                                              f"{', '.join(M.RECORDABLE_FIELDS)}")
            pushes.append((pop, pos, old_EL))
        return pushes, clears

    def _check_rec(self, pop, pos, params):
        P = pop.params
        if np.any(P["V_th"][pos] < P["V_min"][pos]):
            raise BadProperty(f"{pop.model}: V_th must be >= V_min")
        if "V_reset" in P:
            if np.any(P["V_reset"][pos] >= P["V_th"][pos]):
                raise BadProperty(f"{pop.model}: V_reset must be < V_th")
            if np.any(P["V_reset"][pos] < P["V_min"][pos]):
                raise BadProperty(f"{pop.model}: V_reset must be >= V_min")
        for k in ("t_ref", "ignore_and_spike_offset", "ignore_and_spike_interval"):
            if k not in P:
                continue
            for x in np.atleast_1d(P[k][pos]):
                self.ms_to_steps(float(x), f"{pop.model}: {k}")

    def _check_rate_gen(self, pop, pos):
        for ps in pos:
            t = np.asarray(pop.params["amplitude_times"][ps], float)
            v = np.asarray(pop.params["amplitude_values"][ps], float)
            if t.size != v.size:
                raise BadProperty(f"{pop.model}: amplitude_times and amplitude_values must have the same "
                                  f"length ({t.size} != {v.size})")
            if t.size and np.any(np.diff(t) <= 0):
                raise BadProperty(f"{pop.model}: amplitude_times must be strictly increasing")
            for x in t:
                self.ms_to_steps(float(x), f"{pop.model}: amplitude time")

    def _get_nodes(self, gids, keys):
        rows = []
        for g in gids:
            pop = self._pop_of([g])[0]
            pos = g - pop.first
            # NEST: neurons live on one rank (state only there); devices are on every rank
            local = pop.kind not in M.NEURON_KINDS or int(g) % self.comm.size == self.comm.rank
            d = {"model": pop.model, "global_id": int(g), "local": bool(local)}
            spec = self.models[pop.model]
            for k, arr in pop.params.items():
                v = arr[pos]
                if spec.params[k].kind == "nodes":
                    v = NodeCollection(self, v)
                d[k] = v.item() if isinstance(v, np.generic) else v
            if "f_target" in d:
                d["f_target"] = d["f_target"] / 1000.0   # NEST quirk: returned in spikes/ms
            if self._sim is not None:
                d.update(self._sim.node_state(int(g), pop))
            if pop.kind in ("multimeter", "spike_recorder", "weight_recorder"):
                d["events"] = self._recorder_events(int(g), pop, d)
                d["n_events"] = len(d["events"].get("times", ()))
            rows.append(d)
        if len(keys) == 1 and isinstance(keys[0], (list, tuple)):
            keys = tuple(keys[0])
        for k in keys:
            if k not in rows[0]:
                raise UnknownParameter(f"{rows[0]['model']}: unknown parameter '{k}'")
        if len(rows) == 1:
            r = rows[0]
            if not keys:
                return r
            return r[keys[0]] if len(keys) == 1 else {k: r[k] for k in keys}
        if not keys:
            keys = tuple(rows[0].keys())
        out = {k: _stack([r[k] for r in rows]) for k in keys}
        return out[keys[0]] if len(keys) == 1 else out

