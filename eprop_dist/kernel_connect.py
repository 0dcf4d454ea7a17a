"""Kernel mixin: connecting (Connect and its rules, pair checks) and selecting connections."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import models as M
from .errors import BadProperty, EpropError, IllegalConnection, UnknownModel, UnknownParameter
from .random import RandomParameter
from .models import model_is_bss
from .node_collections import SynapseCollection, _as_gids


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


class ConnectMixin:
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
            if sspec.kind != "static":
                raise IllegalConnection(f"Connect: {syn_model} cannot connect recording devices; recorders "
                                        "connect with static_synapse (the default)")
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
        arr = self._numeric(v, what, model)
        if arr.ndim != 0:
            raise BadProperty(f"{model}: {what} must be a scalar or a random parameter for this rule")
        return float(arr)

    @staticmethod
    def _numeric(v, what, model):
        try:
            arr = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            raise BadProperty(f"Connect {model}: {what} must be numeric, got {v!r}") from None
        if not np.all(np.isfinite(arr)):
            raise BadProperty(f"Connect {model}: {what} must be finite; got {int(np.count_nonzero(~np.isfinite(arr)))} "
                              "NaN/inf value(s)")
        return arr

    def _expand(self, v, shape, what, model):
        if isinstance(v, RandomParameter):
            if what == "delay":
                raise BadProperty(f"{model}: random delays are not supported")
            return v
        arr = self._numeric(v, what, model)
        if arr.ndim == 0:
            return np.full(shape, float(arr))
        if arr.shape != shape:
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


    def num_connections(self, build=True):
        """Connections of this rank that GetConnections() returns (NEST: local to the MPI process).
        Counted from the network description while every block is deterministic; a network with a
        pairwise_bernoulli block is built first (rank-local, no communication; after that Create and
        Connect are refused, as after Simulate), unless build=False (then None)."""
        if self._sim is None and all(b.rule != "pairwise_bernoulli" for b in self.blocks
                                     if b.kind in ("static", "eprop", "learning_signal")):
            n, r = self.comm.size, self.comm.rank
            total = 0
            for b in self.blocks:
                if b.kind not in ("static", "eprop", "learning_signal"):
                    continue
                n_tgt = int(np.count_nonzero(b.tgt % n == r))
                total += n_tgt * b.rule_args["indegree"] if b.rule == "fixed_indegree" else n_tgt
            return total
        if not build and self._sim is None:
            return None
        sim = self._ensure_built()            # rank-local build; counting never communicates
        return int(sum(len(idx) for _, idx in sim.select_connections(None, None, None)))

    def GetConnections(self, source=None, target=None, synapse_model=None):
        """This rank's connections (NEST: local), or every rank's under read_scope 'global'."""
        src = None if source is None else _as_gids(source, "source")
        tgt = None if target is None else _as_gids(target, "target")
        if synapse_model is not None and synapse_model not in self.synapses:
            raise UnknownModel(f"GetConnections: unknown synapse model '{synapse_model}'; available: "
                               f"{', '.join(sorted(self.synapses))}")
        sim = self._ensure_built()
        return SynapseCollection(self, sim.select_connections(src, tgt, synapse_model),
                                 scope=self.status["read_scope"])

