"""NEST-style network building: Create, Connect, SetDefaults, GetConnections, Simulate.

A :class:`Kernel` holds one network (global, rank-agnostic description: populations with per-node
parameter arrays, connection blocks) and, once built, the :class:`~eprop_dist.simulation.Simulation`
of this rank.  The module-level functions (``eprop_dist.Create`` ...) act on a default kernel so a
PyNEST script ports line by line (``import eprop_dist as nest``).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from . import models as M
from .errors import BadProperty, EpropError, IllegalConnection, UnknownModel, UnknownParameter
from .random import RandomParameter


# =============================================================================================
# node and synapse collections
# =============================================================================================
class NodeCollection:
    """An ordered set of node ids (gids) of one kernel."""

    def __init__(self, kernel: "Kernel", gids):
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


# =============================================================================================
# the global network description
# =============================================================================================
@dataclass
class Population:
    model: str            # model name (possibly a CopyModel name)
    kind: str
    first: int            # first gid
    n: int
    params: dict          # name -> per-node array (float/bool/object) or list


@dataclass
class ConnBlock:
    """One Connect call, kept rank-agnostic until the build."""
    index: int
    syn_model: str
    kind: str                       # static | eprop | learning_signal | rate | record
    rule: str                       # explicit | all_to_all | one_to_one | fixed_indegree | pairwise_bernoulli
    src: np.ndarray                 # gids (pool for rule-based blocks)
    tgt: np.ndarray                 # gids (pool for rule-based blocks)
    weight: object                  # array aligned with src/tgt (explicit) or scalar / RandomParameter
    delay: object                   # steps: array or scalar
    receptor: int = 0
    rule_args: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


class Kernel:
    """One network and its simulation state on this rank."""

    def __init__(self, comm=None):
        self._comm_arg = comm
        self.ResetKernel()

    # ---- kernel ----------------------------------------------------------------------------
    def ResetKernel(self):
        self.models = {k: copy.deepcopy(v) for k, v in M.BUILTIN.items()}
        self.model_defaults = {k: v.defaults() for k, v in self.models.items()}
        self.synapses = {k: copy.deepcopy(v) for k, v in M.SYNAPSES.items()}
        self.syn_common = {k: {"optimizer": dict(M.OPTIMIZER_DEFAULTS), "weight_recorder": None,
                               "eta_first_change": 1e-4, "eta_change_count": 0, "average_gradient": False}
                           for k, v in self.synapses.items() if v.kind == "eprop"}
        self.populations: list[Population] = []
        self.pop_first = []
        self.n_nodes = 0
        self.blocks: list[ConnBlock] = []
        self.status = {"resolution": 1.0, "rng_seed": 1, "comm_window": None, "exchange": "alltoall",
                       "biological_time": 0.0, "total_num_virtual_procs": 1,
                       "local_num_threads": 1, "print_time": False, "eprop_fast_path": True,
                       **M.KERNEL_BSS}
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
            if k == "eprop_fast_path":
                if not isinstance(v, (bool, np.bool_)):
                    raise BadProperty(f"kernel: eprop_fast_path must be a bool, got {v!r}")
                if self._sim is not None:
                    raise BadProperty("kernel: 'eprop_fast_path' cannot be changed after the network was built")
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

    # ---- models ----------------------------------------------------------------------------
    def CopyModel(self, existing, new, params=None):
        if new in self.models or new in self.synapses:
            raise BadProperty(f"CopyModel: model '{new}' already exists")
        if existing in self.models:
            spec = copy.deepcopy(self.models[existing])
            spec.name = new
            spec.base = spec.base or existing
            self.models[new] = spec
            self.model_defaults[new] = copy.deepcopy(self.model_defaults[existing])
            if params:
                self.SetDefaults(new, params)
        elif existing in self.synapses:
            spec = copy.deepcopy(self.synapses[existing])
            spec.name = new
            spec.base = spec.base or existing
            self.synapses[new] = spec
            if spec.kind == "eprop":
                self.syn_common[new] = copy.deepcopy(self.syn_common[existing])
            if params:
                self.SetDefaults(new, params)
        else:
            raise UnknownModel(f"CopyModel: unknown model '{existing}'")

    def SetDefaults(self, model, params=None, val=None):
        if isinstance(params, str):
            params = {params: val}
        params = dict(params or {})
        if model in self.synapses:
            return self._set_syn_defaults(model, params)
        spec = M.get_model(self.models, model)
        for k, v in params.items():
            self.model_defaults[model][k] = M.check_value(model, spec, k, v)

    def GetDefaults(self, model, key=None):
        if model in self.synapses:
            d = dict(self.synapses[model].defaults)
            d["synapse_model"] = model
            if model in self.syn_common:
                d["optimizer"] = dict(self.syn_common[model]["optimizer"])
            return d if key is None else d[key]
        M.get_model(self.models, model)
        d = dict(self.model_defaults[model])
        if "f_target" in d:
            d["f_target"] = d["f_target"] / 1000.0  # NEST quirk: returned in spikes/ms
        d["model"] = model
        return d if key is None else d[key]

    def _set_syn_defaults(self, model, params):
        spec = self.synapses[model]
        for k, v in params.items():
            if k == "optimizer":
                if spec.kind != "eprop":
                    raise UnknownParameter(f"{model}: unknown parameter 'optimizer'")
                self._set_optimizer(model, v)
            elif k == "weight_recorder":
                if spec.kind != "eprop":
                    raise UnknownParameter(f"{model}: 'weight_recorder' is supported on e-prop synapses")
                if not isinstance(v, NodeCollection) or len(v) != 1 or \
                        self._pop_of(v.gids)[0].kind != "weight_recorder":
                    raise BadProperty(f"{model}: weight_recorder must be one weight_recorder node")
                if self._sim is not None:
                    raise BadProperty(f"{model}: weight_recorder must be set before the network is built")
                self.syn_common[model]["weight_recorder"] = int(v.gids[0])
            elif k == "average_gradient" and model_is_bss(self, model):
                if not isinstance(v, (bool, np.bool_)):
                    raise BadProperty(f"{model}: average_gradient must be a bool")
                self.syn_common[model]["average_gradient"] = bool(v)
            elif k in spec.defaults:
                if k == "tau_m_readout" and not (isinstance(v, (int, float)) and v > 0):
                    raise BadProperty(f"{model}: tau_m_readout must be > 0 ms, got {v!r}")
                if k == "delay":
                    self.ms_to_steps(float(v), f"{model}: delay", 1)
                if k == "weight" and spec.kind == "eprop":
                    o = self.syn_common[model]["optimizer"]
                    if not o["Wmin"] <= float(v) <= o["Wmax"]:
                        raise BadProperty(f"{model}: weight {v} outside [Wmin, Wmax] = [{o['Wmin']}, {o['Wmax']}]")
                spec.defaults[k] = v
            else:
                raise UnknownParameter(f"{model}: unknown parameter '{k}'; valid: "
                                       f"{', '.join(sorted(list(spec.defaults) + (['optimizer', 'weight_recorder'] if spec.kind == 'eprop' else [])))}")

    def _set_optimizer(self, model, opt):
        if not isinstance(opt, dict):
            raise BadProperty(f"{model}: optimizer must be a dict")
        com = self.syn_common[model]
        cur = dict(com["optimizer"])
        for k, v in opt.items():
            if k not in M.OPTIMIZER_DEFAULTS:
                raise UnknownParameter(f"{model}: unknown optimizer parameter '{k}'; valid: "
                                       f"{', '.join(sorted(M.OPTIMIZER_DEFAULTS))}")
            cur[k] = v
        t = cur["type"]
        if t not in M.OPTIMIZER_TYPES:
            raise BadProperty(f"{model}: optimizer type {t!r} unknown; must be one of {M.OPTIMIZER_TYPES}")
        if t != com["optimizer"]["type"] and self._sim is not None:
            raise BadProperty(f"{model}: optimizer type can only be changed while no synapse of the model exists")
        checks = [("batch_size", lambda v: isinstance(v, (int, np.integer)) and v > 0, "an integer > 0"),
                  ("eta", lambda v: v >= 0, ">= 0"),
                  ("beta_1", lambda v: 0 <= v < 1, "in [0, 1)"),
                  ("beta_2", lambda v: 0 <= v < 1, "in [0, 1)"),
                  ("epsilon", lambda v: v >= 0, ">= 0")]
        for k, ok, rule in checks:
            try:
                good = bool(ok(cur[k]))
            except TypeError:
                good = False
            if not good:
                raise BadProperty(f"{model}: optimizer {k} = {cur[k]!r} is invalid; must be {rule}")
        if not cur["Wmin"] <= cur["Wmax"]:
            raise BadProperty(f"{model}: optimizer Wmin ({cur['Wmin']}) must be <= Wmax ({cur['Wmax']})")
        if not isinstance(cur["optimize_each_step"], (bool, np.bool_)):
            raise BadProperty(f"{model}: optimizer optimize_each_step must be a bool")
        if float(cur["eta"]) != float(com["optimizer"]["eta"]):       # SPEC 3.4: eta change count
            if com["eta_change_count"] == 0:
                com["eta_first_change"] = float(cur["eta"])
            com["eta_change_count"] += 1
        com["optimizer"] = cur
        if self._sim is not None:
            self._sim.push_optimizers()

    # ---- nodes -----------------------------------------------------------------------------
    def Create(self, model, n=1, params=None, positions=None):
        spec = M.get_model(self.models, model)
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise BadProperty(f"Create: n must be a positive integer, got {n!r}")
        if self._sim is not None:
            raise EpropError("Create after the network was built (first Simulate or GetConnections) "
                             "is not supported; build the whole network first")
        n = int(n)
        pars = {}
        for k, p in spec.params.items():
            d = self.model_defaults[model][k]
            if p.kind in ("array", "list"):
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
            nc.set(params)
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
        for pop, pos, sel in self._groups(gids):
            spec = self.models[pop.model]
            old_EL = pop.params["E_L"][pos].copy() if "E_L" in pop.params else None
            for k, v in params.items():
                if k == "n_events" and pop.kind in ("multimeter", "spike_recorder", "weight_recorder"):
                    if v != 0:
                        raise BadProperty(f"{pop.model}: n_events can only be set to 0 (clears the events)")
                    if self._sim is not None:
                        self._sim.clear_events(pop.first + pos)
                    continue
                v = M.check_value(pop.model, spec, k, v)
                p = spec.params[k]
                if p.kind in ("array", "list"):
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
            if self._sim is not None:
                self._sim.push_nodes(pop, pos, params, old_EL)

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
            d = {"model": pop.model, "global_id": int(g)}
            for k, arr in pop.params.items():
                v = arr[pos]
                d[k] = v.item() if isinstance(v, np.generic) else v
            if "f_target" in d:
                d["f_target"] = d["f_target"] / 1000.0   # NEST quirk: returned in spikes/ms
            if self._sim is not None:
                d.update(self._sim.node_state(int(g), pop))
            if pop.kind in ("multimeter", "spike_recorder", "weight_recorder"):
                d["events"] = self._sim.events(int(g)) if self._sim is not None else _empty_events(pop, d)
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

    # ---- connections -----------------------------------------------------------------------
    def Connect(self, pre, post, conn_spec=None, syn_spec=None):
        if self._sim is not None:
            raise EpropError("Connect after the network was built (first Simulate or GetConnections) "
                             "is not supported; build the whole network first")
        pre_g = _as_gids(pre, "pre")
        post_g = _as_gids(post, "post")
        for g, what in ((pre_g, "pre"), (post_g, "post")):
            if g.size and (g.min() < 1 or g.max() > self.n_nodes):
                raise IllegalConnection(f"Connect: {what} contains node ids outside 1..{self.n_nodes}")
        if conn_spec is None:
            conn_spec = {"rule": "all_to_all"}
        if isinstance(conn_spec, str):
            conn_spec = {"rule": conn_spec}
        conn_spec = dict(conn_spec)
        rule = conn_spec.pop("rule", "all_to_all")
        if syn_spec is None:
            syn_spec = {}
        if isinstance(syn_spec, str):
            syn_spec = {"synapse_model": syn_spec}
        syn_spec = dict(syn_spec)
        syn_model = syn_spec.pop("synapse_model", "static_synapse")
        if syn_model not in self.synapses:
            raise UnknownModel(f"Connect: unknown synapse model '{syn_model}'; available: "
                               f"{', '.join(sorted(self.synapses))}")
        sspec = self.synapses[syn_model]
        pre_pops = {p.kind for p in self._pop_of(pre_g)} if pre_g.size else set()
        post_pops = {p.kind for p in self._pop_of(post_g)} if post_g.size else set()
        # recording devices
        if pre_pops & {"multimeter"} or post_pops & {"spike_recorder"}:
            return self._connect_recorder(pre_g, post_g, pre_pops, post_pops)
        if post_pops & {"multimeter", "weight_recorder"} or pre_pops & {"spike_recorder", "weight_recorder"}:
            raise IllegalConnection("Connect: recorders connect as Connect(multimeter, neurons) and "
                                    "Connect(neurons, spike_recorder); weight recorders via the synapse "
                                    "model's 'weight_recorder'")
        weight = syn_spec.pop("weight", sspec.defaults["weight"])
        delay = syn_spec.pop("delay", sspec.defaults["delay"])
        receptor = int(syn_spec.pop("receptor_type", sspec.defaults.get("receptor_type", 0)))
        extra = {}
        if sspec.kind == "eprop" and "optimizer" in syn_spec:
            extra["optimizer"] = syn_spec.pop("optimizer")
        if "tau_m_readout" in sspec.defaults:
            tau = syn_spec.pop("tau_m_readout", sspec.defaults["tau_m_readout"])
            if not (isinstance(tau, (int, float)) and tau > 0):
                raise BadProperty(f"{syn_model}: tau_m_readout must be > 0 ms, got {tau!r}")
            extra["tau_m_readout"] = float(tau)
        for k in list(syn_spec):
            if k == "tau_m_readout":
                raise IllegalConnection(f"{syn_model}: 'tau_m_readout' belongs to eprop_synapse_bsshslm_2020")
            raise UnknownParameter(f"{syn_model}: unknown connection parameter '{k}'")
        self._check_pair(syn_model, sspec, pre_g, post_g, receptor, delay)
        allow_aut = bool(conn_spec.pop("allow_autapses", True))
        allow_mult = bool(conn_spec.pop("allow_multapses", True))
        rule_args = {}
        if rule == "all_to_all":
            n_pre, n_post = pre_g.size, post_g.size
            src = np.tile(pre_g, n_post)
            tgt = np.repeat(post_g, n_pre)
            w = self._expand(weight, (n_post, n_pre), "weight", syn_model)
            d = self._expand(delay, (n_post, n_pre), "delay", syn_model)
            keep = np.ones(src.size, bool) if allow_aut else (src != tgt)
            src, tgt = src[keep], tgt[keep]
            w = w.ravel()[keep] if not isinstance(w, RandomParameter) else w
            d = d.ravel()[keep] if isinstance(d, np.ndarray) else d
            rule_name = "explicit"
        elif rule == "one_to_one":
            if pre_g.size != post_g.size:
                raise IllegalConnection(f"Connect one_to_one: pre ({pre_g.size}) and post ({post_g.size}) "
                                        "must have the same size")
            src, tgt = pre_g, post_g
            w = self._expand(weight, (src.size,), "weight", syn_model)
            d = self._expand(delay, (src.size,), "delay", syn_model)
            if not allow_aut:
                keep = src != tgt
                src, tgt = src[keep], tgt[keep]
                w = w[keep] if isinstance(w, np.ndarray) else w
                d = d[keep] if isinstance(d, np.ndarray) else d
            rule_name = "explicit"
        elif rule == "fixed_indegree":
            k = conn_spec.pop("indegree", None)
            if not isinstance(k, (int, np.integer)) or k < 0:
                raise BadProperty(f"Connect fixed_indegree: indegree must be an integer >= 0, got {k!r}")
            n_avail = pre_g.size - (0 if allow_aut else 1)
            if not allow_mult and k > n_avail:
                raise BadProperty(f"Connect fixed_indegree: indegree {k} exceeds the {pre_g.size} possible "
                                  "sources without multapses")
            if k > 0 and n_avail <= 0:
                raise BadProperty("Connect fixed_indegree: no possible source")
            rule_args = {"indegree": int(k), "allow_autapses": allow_aut, "allow_multapses": allow_mult}
            src, tgt = pre_g, post_g
            w = self._rule_value(weight, "weight", syn_model)
            d = self._rule_value(delay, "delay", syn_model)
            rule_name = rule
        elif rule == "pairwise_bernoulli":
            p = conn_spec.pop("p", None)
            if not isinstance(p, (int, float)) or not 0 <= p <= 1:
                raise BadProperty(f"Connect pairwise_bernoulli: p must be in [0, 1], got {p!r}")
            rule_args = {"p": float(p), "allow_autapses": allow_aut}
            src, tgt = pre_g, post_g
            w = self._rule_value(weight, "weight", syn_model)
            d = self._rule_value(delay, "delay", syn_model)
            rule_name = rule
        else:
            raise BadProperty(f"Connect: unknown rule '{rule}'; available: all_to_all, one_to_one, "
                              "fixed_indegree, pairwise_bernoulli")
        if conn_spec:
            raise UnknownParameter(f"Connect {rule}: unknown conn_spec parameter(s) {sorted(conn_spec)}")
        d = self._delay_steps(d, syn_model)
        if sspec.kind == "eprop" and isinstance(w, np.ndarray) and "weight" in self.synapses[syn_model].defaults:
            pass  # NEST: a plain weight passed to Connect is set without the [Wmin, Wmax] check (SPEC 3.1)
        blk = ConnBlock(len(self.blocks), syn_model, sspec.kind, rule_name, np.asarray(src, np.int64),
                        np.asarray(tgt, np.int64), w, d, receptor, rule_args, extra)
        if sspec.kind == "eprop" and extra.get("optimizer"):
            bad = set(extra["optimizer"]) - {"m", "v"}
            if bad:
                raise UnknownParameter(f"{syn_model}: per-connection optimizer state accepts only m, v; got {sorted(bad)}")
        self.blocks.append(blk)

    def _rule_value(self, v, what, model):
        if isinstance(v, RandomParameter):
            if what == "delay":
                raise BadProperty(f"{model}: random delays are not supported")
            return v
        arr = np.asarray(v, dtype=float)
        if arr.ndim != 0:
            raise BadProperty(f"{model}: {what} must be a scalar or a random parameter for this rule")
        return float(arr)

    def _expand(self, v, shape, what, model):
        if isinstance(v, RandomParameter):
            if what == "delay":
                raise BadProperty(f"{model}: random delays are not supported")
            return v
        arr = np.asarray(v, dtype=float)
        if arr.ndim == 0:
            return np.full(shape, float(arr))
        if arr.shape != shape and not (len(shape) == 2 and arr.size == shape[0] * shape[1] and 1 in arr.shape):
            raise IllegalConnection(f"Connect {model}: {what} has shape {arr.shape}, expected {shape} "
                                    "(n_post, n_pre)" if len(shape) == 2 else
                                    f"Connect {model}: {what} has shape {arr.shape}, expected {shape}")
        return arr.reshape(shape)

    def _delay_steps(self, d, model):
        arr = np.asarray(d, dtype=float)
        steps = arr / self.dt
        r = np.rint(steps)
        if np.any(~np.isfinite(steps)) or np.any(np.abs(steps - r) > 1e-9 * np.maximum(1, np.abs(steps))):
            raise BadProperty(f"{model}: delay must be a multiple of the resolution ({self.dt} ms)")
        if np.any(r < 1):
            raise BadProperty(f"{model}: delay must be at least one step ({self.dt} ms)")
        if np.any(r > 10000):
            raise BadProperty(f"{model}: delay of more than 10000 steps is not supported")
        return r.astype(np.int64) if arr.ndim else int(r)

    def _check_pair(self, syn_model, sspec, pre_g, post_g, receptor, delay=None):
        pre_kinds = {p.kind for p in self._pop_of(pre_g)} if pre_g.size else set()
        post_kinds = {p.kind for p in self._pop_of(post_g)} if post_g.size else set()
        post_models = {p.model for p in self._pop_of(post_g)} if post_g.size else set()
        k = sspec.kind
        pre_models = {p.model for p in self._pop_of(pre_g)} if pre_g.size else set()
        bss_syn = model_is_bss(self, syn_model)
        fam = {model_is_bss(self, m) for m in pre_models | post_models
               if self.models[m].kind in ("rec", "readout")}
        if k in ("eprop", "learning_signal") and fam and fam != {bss_syn}:
            raise IllegalConnection(
                f"{syn_model}: connects the {'bsshslm_2020' if bss_syn else 'e-prop+'} family; "
                f"{', '.join(sorted(m for m in pre_models | post_models if self.models[m].kind in ('rec', 'readout')))}"
                f" belong to the other family")
        if k == "eprop" and bss_syn:
            d = np.atleast_1d(np.asarray(self.synapses[syn_model].defaults["delay"] if delay is None else delay,
                                         dtype=float))
            if np.any(np.abs(d / self.dt - 1.0) > 1e-9):
                raise IllegalConnection(f"{syn_model}: eprop synapses currently require a delay of one simulation "
                                        "step (bsshslm_2020 family)")
        if k == "eprop":
            if pre_kinds - {"rec", "parrot", "readout"} or "readout" in pre_kinds:
                raise IllegalConnection(f"{syn_model}: source must be a spiking neuron (not a device or "
                                        f"readout); got {sorted(pre_kinds)}")
            if post_kinds - {"rec", "readout"}:
                bad = sorted(m for m in post_models if self.models[m].kind not in ("rec", "readout"))
                raise IllegalConnection(f"{syn_model}: target model(s) {bad} not supported; targets must be "
                                        f"{', '.join(M.REC_MODELS)} or eprop_readout")
            if receptor != 0:
                raise IllegalConnection(f"{syn_model}: spikes use receptor_type 0")
        elif k == "static":
            if pre_kinds - {"rec", "parrot", "spike_generator", "poisson_generator"}:
                raise IllegalConnection(f"{syn_model}: source kinds {sorted(pre_kinds)} cannot send spikes")
            if post_kinds - {"rec", "readout", "parrot"}:
                raise IllegalConnection(f"{syn_model}: target kinds {sorted(post_kinds)} cannot receive spikes")
            if receptor != 0:
                raise IllegalConnection(f"{syn_model}: spikes use receptor_type 0")
        elif k == "learning_signal":
            if pre_kinds != {"readout"} or post_kinds != {"rec"}:
                raise IllegalConnection(f"{syn_model}: connects eprop_readout -> recurrent e-prop neurons; got "
                                        f"{sorted(pre_kinds)} -> {sorted(post_kinds)}")
        elif k == "rate":
            bss_post = {model_is_bss(self, m) for m in post_models}
            if pre_kinds == {"readout"} and post_kinds == {"readout"} and bss_post == {True} and \
                    all(model_is_bss(self, m) for m in pre_models):
                if receptor != 1:
                    raise IllegalConnection(f"{syn_model}: readout -> readout rate connections (softmax) use "
                                            "receptor_type 1 (readout_signal)")
                return
            if pre_kinds != {"step_rate_generator"} or post_kinds != {"readout"}:
                raise IllegalConnection(f"{syn_model}: connects step_rate_generator -> eprop_readout (or "
                                        f"bsshslm readouts to each other); got {sorted(pre_kinds)} -> "
                                        f"{sorted(post_kinds)}")
            if True in bss_post and receptor != 2:
                raise IllegalConnection(f"{syn_model}: receptor_type {receptor} is illegal for a "
                                        "step_rate_generator -> eprop_readout_bsshslm_2020; use 2 (target_signal)")
            if receptor not in (1, 2):
                raise IllegalConnection(f"{syn_model}: receptor_type {receptor} is illegal for eprop_readout; "
                                        "use 1 (eprop_learning_window) or 2 (target_signal)")

    def _connect_recorder(self, pre_g, post_g, pre_kinds, post_kinds):
        if pre_kinds == {"multimeter"}:
            if post_kinds - {"rec", "readout"}:
                raise IllegalConnection(f"multimeter: can record from e-prop neurons and readouts, not {sorted(post_kinds)}")
            rule_kind = "multimeter"
        elif post_kinds == {"spike_recorder"}:
            if pre_kinds - {"rec", "parrot"}:
                raise IllegalConnection(f"spike_recorder: can record spikes of neurons, not {sorted(pre_kinds)}")
            rule_kind = "spike_recorder"
        else:
            raise IllegalConnection("Connect: cannot mix recorders with other nodes in one call")
        src = np.repeat(pre_g, post_g.size)
        tgt = np.tile(post_g, pre_g.size)
        self.blocks.append(ConnBlock(len(self.blocks), rule_kind, "record", "explicit", src, tgt, 0.0, 1))

    def GetConnections(self, source=None, target=None, synapse_model=None):
        sim = self._ensure_built()
        src = None if source is None else _as_gids(source, "source")
        tgt = None if target is None else _as_gids(target, "target")
        return SynapseCollection(self, sim.select_connections(src, tgt, synapse_model))

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


def model_is_bss(kernel, name):
    """True for models of the bsshslm_2020 family (also CopyModel copies of them)."""
    spec = kernel.models.get(name) or kernel.synapses.get(name)
    base = (spec.base or name) if spec is not None else name
    return base in M.BSS_MODELS or base in M.BSS_SYNAPSES


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


def _empty_events(pop, d):
    if pop.kind == "multimeter":
        ev = {"senders": np.zeros(0, np.int64), "times": np.zeros(0)}
        for r in d.get("record_from", []):
            ev[r] = np.zeros(0)
        return ev
    if pop.kind == "weight_recorder":
        return {"senders": np.zeros(0, np.int64), "targets": np.zeros(0, np.int64),
                "times": np.zeros(0), "weights": np.zeros(0)}
    return {"senders": np.zeros(0, np.int64), "times": np.zeros(0)}
