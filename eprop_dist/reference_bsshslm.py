"""Plain-NumPy, dense, time-driven reference implementation of the ``*_bsshslm_2020`` e-prop family.

This module is the *test oracle* for the event-driven compiled core, for the models of Bellec et al. 2020 as
implemented in NEST 3.10 (SPEC sections 0, 4.3, 5, 6.2, 9): ``eprop_iaf_bsshslm_2020``,
``eprop_iaf_adapt_bsshslm_2020``, ``eprop_readout_bsshslm_2020`` (``mean_squared_error`` and
``cross_entropy``), ``eprop_synapse_bsshslm_2020``, ``eprop_learning_signal_connection_bsshslm_2020`` and the
kernel settings ``eprop_update_interval`` (T), ``eprop_learning_window`` (LW),
``eprop_reset_neurons_on_update``.  It shares no code with the rest of the package except the generic helpers
of the e-prop+ oracle ``reference.py`` (parameter handling, C-library ``exp``/``pow``, surrogate gradients,
step_rate_generator amplitudes, the vectorised optimizer, inputs and recording), which it loads from the file
next to it when it is itself loaded outside the package.

Network layout (as ``run_eprop_plus``): node ids 1..n_in spike_generators -> (static, delay 1) parrots
n_in+1..2n_in -> recurrent neurons 2n_in+1..2n_in+n_rec (``eprop_synapse_bsshslm_2020``, dense ``W_in`` /
``W_rec``, zero = no synapse, no autapses) -> readouts 2n_in+n_rec+1.. (``W_out``); feedback ``B`` (n_rec,
n_out) from every readout to every recurrent neuron; one target ``step_rate_generator`` per readout created
after the readouts; with ``cross_entropy`` the readouts are connected all-to-all (no autapses, weight 1) by
``rate_connection_delayed`` on receptor 1.  All delays are one step.

Order of operations in step ``T`` (SPEC 0.2)
-------------------------------------------
(a) secondary events of iteration T-1: the learning signal ``L[T-3, j] += B[j, k] * err_k(T-1)`` (ascending
    readout index k) and, for cross-entropy readouts, ``N_k = sum_{k' != k, ascending} u_k'(T-1)``;
(b) spikes with stamp T (parrots, then recurrent neurons, ascending id; a parrot spike of multiplicity n is
    delivered as n copies, each through all synapses of the sender) run the synapse's ``send()``
    (SPEC 5.3): drop rule, presynaptic ISI bookkeeping, and at the first spike after the interval ended the
    gradient of the finished interval and ``OPT(idx, gradient)``; then the (updated) weight is transmitted;
(c) recurrent neurons (iteration T), then readouts (iteration T); the target generators are applied through
    ``target_signal`` seen by the readout in iteration T = value whose amplitude time is <= T (SPEC 0.3).

Two synapse engines, bit-identical by construction and tested against each other:

``engine="eager"`` (default, fast): the synapse state of ``eprop_synapse_bsshslm_2020`` depends only on the
    presynaptic spike train and the target class (recurrent: shift 2 and drop rule, readout: shift 3), so the
    window bookkeeping (``t_spike_previous``, ``t_previous_update``, ``t_next_update``,
    ``t_previous_trigger_spike``) is kept per (presynaptic neuron, target class).  NEST's
    ``compute_gradient`` loops over the window ``[t_previous_trigger_spike, t_next_update + shift)`` with
    ``z = 1`` exactly at the stamps of the presynaptic spikes in the window; here the same recursions
    (``z_bar``, ``e``, ``epsilon``, ``e_bar``, ``sum_e``) are advanced eagerly, for all synapses at once, in the
    iteration in which the entry is written, and ``grad += L_e * e_bar_e`` is added as soon as ``L_e`` is
    complete (start of step e+3), in increasing e -- the same floating-point operations in the same order.
    Entries whose ``L`` is not complete when the triggering spike arrives (only entry ``t_next_update+1`` when
    the trigger has stamp ``t_next_update+3``) are added at the trigger with their current value (0), exactly
    as NEST reads them.
``engine="literal"`` (slow, small networks): one Python object per synapse running NEST's ``send()`` and
    ``compute_gradient()`` literally: the list of presynaptic ISIs, ``lower_bound`` in the (pruned) e-prop
    history, sequential reading of history entries at the time of the triggering spike.

Flush events (``flush_event_send_interval``) are accepted for compatibility (must be >= the update interval)
but not generated: they change no number (SPEC 3.5/5.3; a flush only pre-computes the gradient that the next
spike applies with the same ``idx``).

History pruning (SPEC 5.5) is emulated literally because it is visible in the ``learning_signal`` recordable
(``L`` of the first history entry with key >= t-3) and in ``eprop_history_duration``.

Floating point: propagators and ``exp``/``pow`` use the C library (``math.exp``/``math.pow``, bit-identical to
``std::exp``/``std::pow``), inputs and learning signals are accumulated with explicit ordered element-wise
additions (no BLAS).
"""

from __future__ import annotations

import bisect
import math

import numpy as np


def _load_reference():
    """The e-prop+ oracle ``reference.py`` next to this file (imported from the package when this module is part
    of it; else loaded from its file, as the tests load this one, independently of the compiled core)."""
    if __package__:
        from . import reference

        return reference
    import importlib.util
    import sys
    from pathlib import Path

    name = "_eprop_dist_reference_for_bsshslm"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("reference.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


_ref = _load_reference()
SURROGATE_GRADIENT_FUNCTIONS = _ref.SURROGATE_GRADIENT_FUNCTIONS
_broadcast_array = _ref._broadcast_array
_check_known = _ref._check_known
_DBL_MAX = _ref._DBL_MAX
_initial_rec_state = _ref._initial_rec_state
_input_and_target_lists = _ref._input_and_target_lists
_input_emissions = _ref._input_emissions
_input_weights = _ref._input_weights
_max_cpp = _ref._max_cpp
_membrane_propagators = _ref._membrane_propagators
_model_list = _ref._model_list
_n_out = _ref._n_out
_node_ids = _ref._node_ids
_OPT_DEFAULTS = _ref._OPT_DEFAULTS
_OptState = _ref._OptState
_per_neuron = _ref._per_neuron
_Recorder = _ref._Recorder
_relative_voltages = _ref._relative_voltages
_require_nonnegative = _ref._require_nonnegative
_require_positive = _ref._require_positive
_sg_codes = _ref._sg_codes
_surrogate = _ref._surrogate
_targets_per_iteration = _ref._targets_per_iteration
_validated_optimizer = _ref._validated_optimizer
_value_list = _ref._value_list
_vexp = _ref._vexp
_WeightEvents = _ref._WeightEvents

__all__ = [
    "run_bsshslm",
    "eprop_history_duration_bsshslm",
    "REC_MODELS_BSSHSLM",
    "READOUT_MODEL_BSSHSLM",
    "SURROGATE_GRADIENT_FUNCTIONS",
    "LOSSES",
]

REC_MODELS_BSSHSLM = ("eprop_iaf_bsshslm_2020", "eprop_iaf_adapt_bsshslm_2020")
READOUT_MODEL_BSSHSLM = "eprop_readout_bsshslm_2020"
LOSSES = ("mean_squared_error", "cross_entropy")

# hard-coded NEST constants (SPEC 4.1)
_SHIFT_REC = 2  # offset_gen + delay_in_rec
_SHIFT_OUT = 3  # offset_gen + delay_in_rec + delay_rec_out
_LS_SHIFT = 3  # delay_rec_out + delay_out_norm + delay_out_rec (learning-signal history shift)
_DELAY_OUT_NORM = 1  # readout history key = t - 1

# NEST defaults (SPEC 5.2), NEST units.  Voltages stored relative to E_L are handled separately.
_REC_DEFAULTS = {
    "C_m": 250.0,
    "E_L": -70.0,
    "I_e": 0.0,
    "t_ref": 2.0,
    "tau_m": 10.0,
    "adapt_beta": 1.0,
    "adapt_tau": 10.0,
    "adaptation": 0.0,
    "c_reg": 0.0,
    "f_target": 10.0,
    "surrogate_gradient_function": "piecewise_linear",
    "surrogate_gradient_height": 0.3,
    "surrogate_gradient_width": 1.0,
    "regular_spike_arrival": True,
    "flush_event_send_interval": np.inf,
}
_REC_VOLTAGES_REL = {"V_th": 15.0, "V_min": -_DBL_MAX, "V_m": 0.0}
_REC_E_L_DEFAULT = -70.0

_OUT_DEFAULTS = {
    "C_m": 250.0,
    "E_L": 0.0,
    "I_e": 0.0,
    "tau_m": 10.0,
    "loss": "mean_squared_error",
    "regular_spike_arrival": True,
}
_OUT_VOLTAGES_REL = {"V_min": -_DBL_MAX, "V_m": 0.0}
_OUT_E_L_DEFAULT = 0.0

# optimizer defaults: those of reference.py (optimize_each_step accepted, ignored by the bsshslm synapse)
_TAU_M_READOUT_DEFAULT = 10.0  # NEST's default of the synapse parameter


# --------------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------------


def _cexp(x):
    return math.exp(x)


def _cpp_rem(a, b):
    """C++ ``a % b`` for integers (truncated division: the result has the sign of ``a``)."""
    a, b = int(a), int(b)
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _cpp_div(a, b):
    """C++ ``a / b`` for integers (truncation toward zero)."""
    a, b = int(a), int(b)
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _steps(ms, dt, name):
    """NEST Time(ms(x)).get_steps() for a finite positive duration."""
    ms = float(ms)
    if not np.isfinite(ms):
        raise ValueError(f"{name}: finite value required")
    return int(round(ms / dt))


def _broadcast(value, n, name, kind="float"):
    if kind == "str":
        if isinstance(value, str):
            return [value] * n
        return [str(v) for v in _value_list(value, n, name)]
    return _broadcast_array(value, n, name, bool if kind == "bool" else np.float64)


def _clip_cpp_scalar(w, wmin, wmax):
    w = wmax if wmax < w else w
    return w if wmin < w else wmin


# --------------------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------------------


def _rec_parameters(rec_models, rec_params, n_rec, dt, T_steps, update_interval_ms):
    models = _model_list(rec_models, n_rec, REC_MODELS_BSSHSLM)
    rec_params = dict(rec_params or {})
    for bad in ("kappa", "kappa_reg", "eprop_isi_trace_cutoff", "V_reset", "refractory_input"):
        if bad in rec_params:
            raise ValueError(f"rec_params: {bad!r} is not a parameter of the bsshslm_2020 models (SPEC 5.2)")
    _check_known(rec_params, "rec_params", _REC_DEFAULTS, _REC_VOLTAGES_REL)

    p = _per_neuron(_REC_DEFAULTS, rec_params, n_rec, _broadcast,
                    {"surrogate_gradient_function": "str", "regular_spike_arrival": "bool"})
    _relative_voltages(p, rec_params, _REC_VOLTAGES_REL, _REC_E_L_DEFAULT, n_rec, _broadcast)
    p["sg_code"] = _sg_codes(p["surrogate_gradient_function"])

    _require_positive(p, "rec_params", ("C_m", "tau_m", "adapt_tau", "surrogate_gradient_height",
                                        "surrogate_gradient_width", "flush_event_send_interval"))
    _require_nonnegative(p, "rec_params", ("t_ref", "c_reg", "f_target", "adapt_beta"))
    if np.any(p["V_th_rel"] < p["V_min_rel"]):
        raise ValueError("rec_params: V_th >= V_min required")
    if np.any(p["flush_event_send_interval"] < update_interval_ms):
        raise ValueError("rec_params: flush_event_send_interval >= eprop_update_interval required")

    p["models"] = models
    p["is_adapt"] = np.array([m == "eprop_iaf_adapt_bsshslm_2020" for m in models], dtype=bool)
    p["P_v_m"], p["P_i_in"] = _membrane_propagators(p, dt)
    p["P_z_in"] = np.where(p["regular_spike_arrival"], 1.0, 1.0 - p["P_v_m"])
    p["P_adapt"] = _vexp(-dt / p["adapt_tau"])
    p["R"] = np.array([int(round(x / dt)) for x in p["t_ref"]], dtype=np.int64)
    p["f_target_ms"] = p["f_target"] / 1000.0  # setter quirk: stored per ms
    return p


def _out_parameters(out_params, n_out, dt):
    out_params = dict(out_params or {})
    _check_known(out_params, "out_params", _OUT_DEFAULTS, _OUT_VOLTAGES_REL)
    p = _per_neuron(_OUT_DEFAULTS, out_params, n_out, _broadcast, {"loss": "str", "regular_spike_arrival": "bool"})
    for loss in p["loss"] + ([out_params["loss"]] if isinstance(out_params.get("loss"), str) else []):
        if loss not in LOSSES:
            raise ValueError(f"out_params: loss must be one of {LOSSES}, got {loss!r}")
    _relative_voltages(p, out_params, _OUT_VOLTAGES_REL, _OUT_E_L_DEFAULT, n_out, _broadcast)
    _require_positive(p, "out_params", ("C_m", "tau_m"))
    p["is_ce"] = np.array([loss == "cross_entropy" for loss in p["loss"]], dtype=bool)
    p["P_v_m"], p["P_i_in"] = _membrane_propagators(p, dt)
    p["P_z_in"] = np.where(p["regular_spike_arrival"], 1.0, 1.0 - p["P_v_m"])
    return p


# --------------------------------------------------------------------------------------------------------
# e-prop history bookkeeping (SPEC 5.5), shared by both engines
# --------------------------------------------------------------------------------------------------------


class _HistoryBook:
    """Which history entries of each neuron of one class (recurrent or readout) exist, and the update history.

    The update history of a neuron holds keys ``shift + k*T``; each incoming e-prop synapse contributes one
    count to the key of the interval it last updated in (``shift + t_previous_update``), initially ``shift``;
    a key whose count drops to 0 is removed at once.  At the start of each interval of the neuron (before its
    update) the entries of intervals [key, key+T) between the first and the last key that are not keys are
    erased, and so is every entry before the first key (negative keys included).
    """

    def __init__(self, n_post, indegree, shift, T, n_steps, key_offset):
        self.n = n_post
        self.shift = shift
        self.T = T
        self.off = key_offset  # row of key k is k + off (readout keys start at -1)
        self.has = np.asarray(indegree) > 0
        self.n_k = n_steps // T + 3
        self.cnt = np.zeros((n_post, self.n_k), dtype=np.int64)
        self.cnt[:, 0] = indegree
        self.alive = np.zeros((n_steps + key_offset + 1, n_post), dtype=bool)
        self.count = np.zeros(n_post, dtype=np.int64)

    def move(self, rows, k_old, k_new):
        """write_update_to_history for the synapses (rows) of one presynaptic stream."""
        if rows.size == 0:
            return
        if k_new >= self.n_k or k_old >= self.n_k:
            raise RuntimeError("internal: update-history key index out of range")
        np.add.at(self.cnt[:, k_new], rows, 1)
        np.add.at(self.cnt[:, k_old], rows, -1)
        if np.any(self.cnt[rows, k_old] < 0):
            raise RuntimeError("internal: negative update-history count")

    def append(self, key):
        row = key + self.off
        self.alive[row, self.has] = True
        self.count += self.has

    def prune(self):
        """erase_used_eprop_history() of every neuron of the class (called at its interval start)."""
        T, sh, off = self.T, self.shift, self.off
        for j in np.flatnonzero(self.has & (self.count > 0)):
            present = np.flatnonzero(self.cnt[j] > 0)
            if present.size == 0:
                continue
            kmin, kmax = present[0], present[-1]
            col = self.alive[:, j]
            for k in range(kmin, kmax + 1):
                if self.cnt[j, k] == 0:
                    lo = max(sh + k * T + off, 0)
                    hi = max(sh + (k + 1) * T + off, 0)
                    self.count[j] -= int(col[lo:hi].sum())
                    col[lo:hi] = False
            hi = max(sh + kmin * T + off, 0)
            self.count[j] -= int(col[:hi].sum())
            col[:hi] = False

    def exists(self, key):
        row = key + self.off
        if row < 0 or row >= self.alive.shape[0]:
            return np.zeros(self.n, dtype=bool)
        return self.alive[row]

    def alive_keys(self, j):
        return np.flatnonzero(self.alive[:, j]) - self.off


# --------------------------------------------------------------------------------------------------------
# literal scalar optimizer (SPEC 3.4); the vectorised one is reference.py's _OptState
# --------------------------------------------------------------------------------------------------------


def _opt_scalar(s, idx, g, w, o):
    """Literal scalar OPT(idx, g, W) on a dict-like synapse state ``s`` (SPEC 3.4)."""
    if o["eta_change_count"] != 0 and s["n_opt"] == 0:
        s["eta_cur"] = o["eta_first_change"]
    s["cum"] += g
    cur = 1 + idx // o["batch_size"]
    if s["step"] < cur:
        s["cum"] /= o["batch_size"]
        if o["type"] == "gradient_descent":
            w -= s["eta_cur"] * s["cum"]
            s["cum"] = 0.0
        else:
            b1, b2, eps = o["beta_1"], o["beta_2"], o["epsilon"]
            for _ in range(s["step"], cur):
                s["b1p"] *= b1
                s["b2p"] *= b2
                try:
                    a = s["eta_cur"] * math.sqrt(1.0 - s["b2p"]) / (1.0 - s["b1p"])
                except ZeroDivisionError:
                    a = math.inf
                s["m"] = b1 * s["m"] + (1.0 - b1) * s["cum"]
                s["v"] = b2 * s["v"] + (1.0 - b2) * s["cum"] * s["cum"]
                den = math.sqrt(s["v"]) + eps
                num = a * s["m"]
                w -= num / den if den != 0.0 else (math.nan if num == 0.0 else math.copysign(math.inf, num))
                s["cum"] = 0.0
        w = _clip_cpp_scalar(w, o["Wmin"], o["Wmax"])
        s["eta_cur"] = o["eta"]
        s["n_opt"] += 1
        s["step"] = cur
    return w


# --------------------------------------------------------------------------------------------------------
# engine 1: eager (vectorised) synapses
# --------------------------------------------------------------------------------------------------------


class _Streams:
    """Window bookkeeping of eprop_synapse_bsshslm_2020 per presynaptic neuron for one target class."""

    def __init__(self, n_pre, T):
        self.sp_prev = np.zeros(n_pre, dtype=np.int64)  # t_spike_previous
        self.t_prev_upd = np.zeros(n_pre, dtype=np.int64)  # t_previous_update
        self.t_next_upd = np.full(n_pre, T, dtype=np.int64)  # t_next_update (= T at creation)
        self.t_trig = np.zeros(n_pre, dtype=np.int64)  # t_previous_trigger_spike

    def window_contains(self, e, shift):
        """Per presynaptic neuron: does its current window [t_previous_trigger_spike, t_next_update + shift)
        (one exists once it spiked) contain entry e?"""
        return (self.t_trig > 0) & (self.t_trig <= e) & (e < self.t_next_upd + shift)


class _EagerEngine:
    def __init__(self, net):
        self.net = net
        n_rec, P, n_out = net.n_rec, net.n_pre_rec, net.n_out
        T = net.T
        self.sr = _Streams(P, T)
        self.so = _Streams(n_rec, T)
        self.zbar_r = np.zeros((n_rec, P))
        self.ebar_r = np.zeros((n_rec, P))
        self.eps_r = np.zeros((n_rec, P))
        self.sume_r = np.zeros((n_rec, P))
        self.grad_r = np.zeros((n_rec, P))
        self.ring_r = np.zeros((3, n_rec, P))  # e_bar of the last three entries (key % 3)
        self.zbar_o = np.zeros((n_out, n_rec))
        self.grad_o = np.zeros((n_out, n_rec))
        self.opt_r = _OptState((n_rec, P))
        self.opt_o = _OptState((n_out, n_rec))
        rp = net.rp
        self.alpha_r = rp["P_v_m"][:, None]
        self.pz_r = rp["P_z_in"][:, None]
        self.beta_r = rp["adapt_beta"][:, None]
        self.rho_r = rp["P_adapt"][:, None]
        self.adapt_rows = rp["is_adapt"]
        self.any_adapt = bool(self.adapt_rows.any())
        self.all_adapt = bool(self.adapt_rows.all())
        self.alpha_o = net.op["P_v_m"][:, None]
        self.pz_o = net.op["P_z_in"][:, None]
        self.kappa = net.kappa
        self.one_minus_kappa = 1.0 - net.kappa

    # ---- (a') learning-signal terms of entry e = T-3 -------------------------------------------------
    def learning_terms(self, T):
        e = T - 3
        if e < 0:
            return
        act = self.sr.window_contains(e, _SHIFT_REC)
        if not act.any():
            return
        Le = self.net.L_hist[e][:, None]
        new = self.grad_r + Le * self.ring_r[e % 3]
        self.grad_r = np.where(act[None, :], new, self.grad_r)

    # ---- (b) one copy of a spike with stamp T of presynaptic index col through class cls ----------------
    def deliver(self, cls, col, T):
        net = self.net
        if cls == "rec":
            s, sh, rows = self.sr, _SHIFT_REC, net.targets_r[col]
            if _cpp_rem(T - sh, net.T) == 0:
                return None  # dropped: first step of a recurrent interval
        else:
            s, sh, rows = self.so, _SHIFT_OUT, net.targets_o[col]
        if s.t_trig[col] == 0:
            s.t_trig[col] = T
        if T > s.t_next_upd[col] + sh:
            if net.starts_before_history(cls, int(s.t_trig[col])):
                raise NotImplementedError(
                    f"a {cls} window starts at stamp {int(s.t_trig[col])}, before the first history entry that "
                    "survives NEST's pruning at the first interval start (presynaptic spike in iteration 0/1); "
                    "NEST then reads a shifted history -- use engine='literal'")
            idx = _cpp_div(T - sh, net.T)
            k_old = int(s.t_prev_upd[col]) // net.T
            if cls == "rec":
                book, opt, W = net.book_r, self.opt_r, net.W_r
                traces = (self.zbar_r, self.ebar_r, self.eps_r, self.sume_r, self.grad_r)
            else:
                book, opt, W = net.book_o, self.opt_o, net.W_o
                traces = (self.zbar_o, self.grad_o)
            book.move(rows, k_old, idx)
            if s.sp_prev[col] > 0:
                if cls == "rec":
                    g = self.grad_r[rows, col]
                    e = T - 2  # entry whose learning signal is not complete yet (only possible one)
                    if s.t_trig[col] <= e < s.t_next_upd[col] + sh:
                        g = g + net.L_hist[e, rows] * self.ring_r[e % 3, rows, col]
                    fr = net.fr_lookup(int(s.t_prev_upd[col]) + sh + net.T)[rows]
                    g = g + fr * self.sume_r[rows, col]
                else:
                    g = self.grad_o[rows, col]
                if net.average_gradient:
                    g = g / net.LW
            else:
                g = np.zeros(rows.size)
            net.log_gradient(cls, T, col, rows, idx, g)
            opt.optimize(W, (rows, col), idx, g, net.o)
            for a in traces:
                a[:, col] = 0.0
            t_cur = idx * net.T
            s.t_prev_upd[col] = t_cur
            s.t_next_upd[col] = t_cur + net.T
            s.t_trig[col] = T
        s.sp_prev[col] = T
        W = net.W_r if cls == "rec" else net.W_o
        return rows, W[rows, col].copy()

    # ---- (c) traces of recurrent entry T ----------------------------------------------------------------
    def after_rec_update(self, T, psi, z_pre):
        act = self.sr.window_contains(T, _SHIFT_REC)
        if not act.any():
            return
        actm = act[None, :]
        zbar = self.alpha_r * self.zbar_r + self.pz_r * z_pre[None, :]
        ps = psi[:, None]
        if self.any_adapt:
            e_ad = ps * (zbar - self.beta_r * self.eps_r)
            eps_new = self.rho_r * self.eps_r + e_ad
            if self.all_adapt:
                e = e_ad
            else:
                e = np.where(self.adapt_rows[:, None], e_ad, ps * zbar)
                eps_new = np.where(self.adapt_rows[:, None], eps_new, self.eps_r)
            self.eps_r = np.where(actm, eps_new, self.eps_r)
        else:
            e = ps * zbar
        ebar = self.kappa * self.ebar_r + self.one_minus_kappa * e
        self.zbar_r = np.where(actm, zbar, self.zbar_r)
        self.ebar_r = np.where(actm, ebar, self.ebar_r)
        self.sume_r = np.where(actm, self.sume_r + e, self.sume_r)
        self.ring_r[T % 3] = self.ebar_r

    # ---- (c') readout traces of key T-1 ------------------------------------------------------------------
    def after_out_update(self, T, err, z_pre):
        act = self.so.window_contains(T - 1, _SHIFT_OUT)
        if not act.any():
            return
        actm = act[None, :]
        zbar = self.alpha_o * self.zbar_o + self.pz_o * z_pre[None, :]
        self.zbar_o = np.where(actm, zbar, self.zbar_o)
        self.grad_o = np.where(actm, self.grad_o + err[:, None] * zbar, self.grad_o)


# --------------------------------------------------------------------------------------------------------
# engine 2: literal per-synapse NEST algorithm
# --------------------------------------------------------------------------------------------------------


def _window_entries(keys, s):
    """(key, z) of the history entries compute_gradient reads for synapse state ``s``, in order; empties s's ISIs.

    From the first existing key >= t_previous_trigger_spike on, each presynaptic ISI reads as many consecutive
    existing entries as it is long, z = 1 at the first entry of each ISI (the spike) and 0 after.
    """
    pos = int(np.searchsorted(keys, s["t_trig"], side="left"))
    for isi in s["isis"]:
        z = 1.0
        for _ in range(isi):
            if pos >= keys.size:
                raise RuntimeError("NEST assertion: e-prop history exhausted in compute_gradient")
            yield int(keys[pos]), z
            z = 0.0
            pos += 1
    s["isis"].clear()


class _LiteralEngine:
    def __init__(self, net):
        self.net = net
        self.syn = {}
        for cls, W, targets in (("rec", net.W_r, net.targets_r), ("out", net.W_o, net.targets_o)):
            for col, rows in enumerate(targets):
                for j in rows:
                    self.syn[(cls, int(j), col)] = dict(
                        sp_prev=0, t_prev_upd=0, t_next_upd=net.T, t_trig=0, isis=[],
                        cum=0.0, step=1, eta_cur=_OPT_DEFAULTS["eta"], n_opt=0, m=0.0, v=0.0, b1p=1.0, b2p=1.0)

    def learning_terms(self, T):
        pass

    def after_rec_update(self, T, psi, z_pre):
        pass

    def after_out_update(self, T, err, z_pre):
        pass

    def _grad_rec(self, j, s):
        net = self.net
        alpha, pz = float(net.rp["P_v_m"][j]), float(net.rp["P_z_in"][j])
        adapt = bool(net.rp["is_adapt"][j])
        beta, rho = float(net.rp["adapt_beta"][j]), float(net.rp["P_adapt"][j])
        kappa = net.kappa
        e_bar = eps = grad = sum_e = z_bar = 0.0
        for key, z in _window_entries(net.book_r.alive_keys(j), s):
            psi = float(net.psi_hist[key, j])
            L = float(net.L_hist[key, j])
            z_bar = alpha * z_bar + pz * z
            if adapt:
                e = psi * (z_bar - beta * eps)
                eps = rho * eps + e
            else:
                e = psi * z_bar
            e_bar = kappa * e_bar + (1.0 - kappa) * e
            grad += L * e_bar
            sum_e += e
        fr = float(net.fr_lookup(s["t_prev_upd"] + _SHIFT_REC + net.T)[j])
        grad += fr * sum_e
        if net.average_gradient:
            grad /= net.LW
        return grad

    def _grad_out(self, k, s):
        net = self.net
        alpha, pz = float(net.op["P_v_m"][k]), float(net.op["P_z_in"][k])
        grad = z_bar = 0.0
        for key, z in _window_entries(net.book_o.alive_keys(k), s):
            L = float(net.err_hist[key + 1, k])
            z_bar = alpha * z_bar + pz * z
            grad += L * z_bar
        if net.average_gradient:
            grad /= net.LW
        return grad

    def deliver(self, cls, col, T):
        net = self.net
        rows = net.targets_r[col] if cls == "rec" else net.targets_o[col]
        sh = _SHIFT_REC if cls == "rec" else _SHIFT_OUT
        W = net.W_r if cls == "rec" else net.W_o
        book = net.book_r if cls == "rec" else net.book_o
        if cls == "rec" and _cpp_rem(T - sh, net.T) == 0:
            return None
        out_w = np.zeros(rows.size)
        for n, j in enumerate(rows):
            s = self.syn[(cls, int(j), col)]
            if s["t_trig"] == 0:
                s["t_trig"] = T
            if s["sp_prev"] > 0:
                t = min(T, s["t_next_upd"] + sh)
                s["isis"].append(t - s["sp_prev"])
            if T > s["t_next_upd"] + sh:
                idx = _cpp_div(T - sh, net.T)
                t_cur = idx * net.T
                book.move(np.array([j]), s["t_prev_upd"] // net.T, idx)
                g = self._grad_rec(int(j), s) if cls == "rec" else self._grad_out(int(j), s)
                net.log_gradient(cls, T, col, np.array([j]), idx, np.array([g]))
                W[j, col] = _opt_scalar(s, idx, g, float(W[j, col]), net.o)
                s["t_prev_upd"] = t_cur
                s["t_next_upd"] = t_cur + net.T
                s["t_trig"] = T
            s["sp_prev"] = T
            out_w[n] = W[j, col]
        return rows, out_w


# --------------------------------------------------------------------------------------------------------
# the simulation
# --------------------------------------------------------------------------------------------------------


class _Net:
    pass


def run_bsshslm(*, n_steps, dt=1.0, update_interval, learning_window, reset_on_update=True, rec_models,
                rec_params, out_params, W_in, W_rec, W_out, B, input_spike_times, target_times, target_values,
                optimizer, average_gradient=False, tau_m_readout=None, extra_rec_spike_times=None,
                record_weight_events=True, engine="eager", return_internals=False):
    """Simulate a bsshslm_2020 e-prop network (SPEC 5) step by step; the test oracle.

    n_steps: iterations t = 0..n_steps-1 are simulated (``Simulate(n_steps*dt)``).
    dt: resolution (ms).
    update_interval, learning_window: kernel ``eprop_update_interval`` T and ``eprop_learning_window`` LW, in
        ms (converted to steps by rounding); T >= 1, LW >= 1.
    reset_on_update: kernel ``eprop_reset_neurons_on_update``.
    rec_models: str or list (n_rec) of ``eprop_iaf_bsshslm_2020`` / ``eprop_iaf_adapt_bsshslm_2020``.
    rec_params: dict NEST name -> scalar or (n_rec,) array (SPEC 5.2; NEST units, absolute voltages, f_target
        in Hz); unspecified -> NEST defaults.  ``flush_event_send_interval`` is accepted (>= T required) and
        changes nothing.
    out_params: dict for ``eprop_readout_bsshslm_2020`` (SPEC 5.4): C_m, E_L, I_e, tau_m, V_min, V_m, loss
        (str or list), regular_spike_arrival; scalar or (n_out,).
    W_in (n_rec, n_in), W_rec (n_rec, n_rec), W_out (n_out, n_rec): initial eprop_synapse_bsshslm_2020 weights;
        a synapse exists where the entry is != 0; the diagonal of W_rec is ignored (no autapses).
    B (n_rec, n_out): eprop_learning_signal_connection_bsshslm_2020 weights (every pair connected).
    input_spike_times: n_in arrays of spike_generator times (ms); generator -> parrot (static, delay 1).
    target_times, target_values: n_out arrays, the target step_rate_generator of each readout (receptor 2).
    optimizer: NEST optimizer dict (type, batch_size, eta, Wmin, Wmax, beta_1, beta_2, epsilon;
        optimize_each_step accepted and ignored); set once before the run.
    average_gradient: common synapse property (gradient / LW).
    tau_m_readout: synapse parameter (ms) giving kappa = exp(-dt/tau_m_readout); None -> the readouts' tau_m
        (must then be equal for all readouts; 10.0, NEST's default, if there is no readout).
    extra_rec_spike_times: optional times (ms) of a spike_generator connected (static, weight 1000, delay 1) to
        every parrot and every recurrent neuron (the examples' "force final update" generator).
    record_weight_events: collect ``weight_events`` (memory ~32 bytes per transmission).
    engine: "eager" (vectorised) or "literal" (per-synapse NEST algorithm; slow, small networks).
    return_internals: also return histories and the log of every gradient passed to OPT.

    Returns a dict; row t of every per-iteration array is the value recorded at the end of iteration t:
    'V_m', 'surrogate_gradient', 'learning_signal', 'spikes' (int; spike emitted in iteration t has stamp
    t+1), 'adaptation', 'V_th_adapt' (NaN for non-adaptive neurons), 'eprop_history_duration' (ms):
    (n_steps, n_rec); 'V_m_out', 'readout_signal', 'readout_signal_unnorm', 'target_signal', 'error_signal',
    'eprop_history_duration_out': (n_steps, n_out); 'weight_events': dict of 1-D arrays 'stamp', 'sender',
    'target', 'weight', one row per transmission through an eprop_synapse_bsshslm_2020, sorted by (stamp,
    sender, target) (copies of a multiple spike in copy order; node ids as in ``run_eprop_plus``);
    'W_in', 'W_rec', 'W_out': the final weights (the weight held by the synapse at the end; NaN where no
    synapse).
    """
    if engine not in ("eager", "literal"):
        raise ValueError("engine must be 'eager' or 'literal'")
    n_steps = int(n_steps)
    dt = float(dt)
    W_in, W_rec, n_rec, n_in = _input_weights(W_in, W_rec)
    W_out = np.asarray(W_out, dtype=np.float64)
    if W_out.size == 0:
        W_out = np.zeros((0, n_rec))
    n_out = _n_out(W_out, n_rec)
    B = np.asarray(B, dtype=np.float64)
    if B.size == 0:
        B = np.zeros((n_rec, n_out))
    if B.shape != (n_rec, n_out):
        raise ValueError(f"B: expected shape ({n_rec}, {n_out}), got {B.shape}")
    target_times, target_values = _input_and_target_lists(input_spike_times, target_times, target_values, n_in,
                                                          n_out)

    T = _steps(update_interval, dt, "update_interval")
    LW = _steps(learning_window, dt, "learning_window")
    if T < 1:
        raise ValueError("eprop_update_interval > 0 required")
    if LW < 1:
        raise ValueError("eprop_learning_window > 0 required")

    net = _Net()
    net.n_rec, net.n_in, net.n_out, net.n_pre_rec = n_rec, n_in, n_out, n_in + n_rec
    net.T, net.LW = T, LW
    net.average_gradient = bool(average_gradient)
    net.rp = rp = _rec_parameters(rec_models, rec_params, n_rec, dt, T, float(update_interval))
    net.op = op = _out_parameters(out_params, n_out, dt)
    net.o = _validated_optimizer(optimizer, float_bounds=True)
    if tau_m_readout is None:
        if n_out == 0:
            tau_m_readout = _TAU_M_READOUT_DEFAULT
        else:
            if not np.all(op["tau_m"] == op["tau_m"][0]):
                raise ValueError("tau_m_readout=None needs equal readout tau_m; pass tau_m_readout explicitly")
            tau_m_readout = float(op["tau_m"][0])
    tau_m_readout = float(tau_m_readout)
    if tau_m_readout <= 0:
        raise ValueError("tau_m_readout > 0 required")
    net.kappa = _cexp(-dt / tau_m_readout)

    # synapses: recurrent class (parrots then recurrent presynaptic neurons), readout class
    ex_in = W_in != 0
    ex_rec = W_rec != 0
    np.fill_diagonal(ex_rec, False)
    ex_r = np.hstack([ex_in, ex_rec])
    ex_o = W_out != 0
    net.W_r = np.where(ex_r, np.hstack([W_in, W_rec]), 0.0)
    net.W_o = np.where(ex_o, W_out, 0.0)
    net.ex_r, net.ex_o = ex_r, ex_o
    net.targets_r = [np.flatnonzero(ex_r[:, c]) for c in range(n_in + n_rec)]
    net.targets_o = [np.flatnonzero(ex_o[:, c]) for c in range(n_rec)]
    indeg_r = ex_r.sum(axis=1)
    indeg_o = ex_o.sum(axis=1)
    has_r = indeg_r > 0
    net.book_r = _HistoryBook(n_rec, indeg_r, _SHIFT_REC, T, n_steps, key_offset=0)
    net.book_o = _HistoryBook(n_out, indeg_o, _SHIFT_OUT, T, n_steps, key_offset=1)

    par_ids, rec_ids, out_ids = _node_ids(n_in, n_rec, n_out)
    sender_ids_r = np.concatenate([par_ids, rec_ids])

    # histories (dense; row = key; readout rows = key + 1)
    net.psi_hist = np.zeros((n_steps, n_rec))
    net.L_hist = np.zeros((n_steps, n_rec))
    net.err_hist = np.zeros((n_steps + 1, n_out))
    fr_keys, fr_vals = [], []

    def fr_lookup(key):
        i = bisect.bisect_left(fr_keys, key)
        if i == len(fr_keys):
            raise RuntimeError(f"NEST assertion: no firing-rate regularisation entry with key >= {key}")
        return fr_vals[i]

    net.fr_lookup = fr_lookup

    def starts_before_history(cls, t_trig):
        return (cls == "rec" and t_trig < _SHIFT_REC) or (cls == "out" and t_trig < _SHIFT_OUT)

    net.starts_before_history = starts_before_history
    glog = [] if return_internals else None

    def log_gradient(cls, stamp, col, rows, idx, g):
        if glog is not None:
            glog.append((cls, int(stamp), int(col), np.array(rows), int(idx), np.array(g, dtype=np.float64)))

    net.log_gradient = log_gradient

    eng = _EagerEngine(net) if engine == "eager" else _LiteralEngine(net)

    # ---- inputs ----
    par_emit, extra_at = _input_emissions(input_spike_times, extra_rec_spike_times, n_steps, n_in, dt)
    ystar_it = _targets_per_iteration(target_times, target_values, n_steps, n_out, dt)

    # ---- neuron state ----
    E_L, V_th, V_min = rp["E_L"], rp["V_th_rel"], rp["V_min_rel"]
    is_adapt = rp["is_adapt"]
    beta_a = rp["adapt_beta"]
    v, r, i_in, z, a, A = _initial_rec_state(rp, n_rec)
    n_spikes = np.zeros(n_rec, dtype=np.int64)
    f_target_step = rp["f_target_ms"] * dt

    is_ce = op["is_ce"]
    v_out = op["V_m_rel"].copy()
    i_out = np.zeros(n_out)
    y_out = np.zeros(n_out)  # readout_signal
    u_out = np.zeros(n_out)  # readout_signal_unnorm
    err_out = np.zeros(n_out)

    rec = _Recorder(n_steps, n_rec, n_out)
    rec_hd = np.zeros((n_steps, n_rec))
    out_u = np.zeros((n_steps, n_out))
    out_hd = np.zeros((n_steps, n_out))

    events = _WeightEvents()
    multi = False
    spk_prev = np.zeros(n_rec, dtype=bool)  # recurrent spikes of iteration T-1 (stamp T)
    spk_prev2 = np.zeros(n_rec, dtype=bool)  # recurrent spikes of iteration T-2 (stamp T-1)
    err_prev = np.zeros(n_out)
    u_prev = np.zeros(n_out)

    for Tn in range(n_steps):
        # (a) secondary events of iteration Tn-1: learning signals into entry Tn-3, readout rates
        if Tn >= 1:
            e = Tn - _LS_SHIFT
            if e >= 0 and n_out:
                Lrow = net.L_hist[e]
                for k in range(n_out):
                    Lrow += B[:, k] * err_prev[k]
            eng.learning_terms(Tn)
        N = np.zeros(n_out)
        if Tn >= 1:
            for k in range(n_out):
                for kk in range(n_out):
                    if kk != k and is_ce[kk]:
                        N[k] = N[k] + 1.0 * u_prev[kk]

        # (b) spikes with stamp Tn (ascending sender id; copies of a multiple spike one after the other)
        inp_rec = np.zeros(n_rec)
        inp_out = np.zeros(n_out)
        for _ in range(extra_at[Tn]):
            inp_rec = inp_rec + 1000.0  # device spike written into the ring buffer during iteration Tn-1
        if Tn >= 1:
            senders = [(c, int(par_emit[Tn - 1, c])) for c in np.flatnonzero(par_emit[Tn - 1])]
            senders += [(n_in + j, 1) for j in np.flatnonzero(spk_prev)]
            for col, mult in senders:
                if mult > 1:
                    multi = True
                for _copy in range(mult):
                    if net.targets_r[col].size:
                        res = eng.deliver("rec", col, Tn)
                        if res is not None:
                            rows, w = res
                            inp_rec[rows] = inp_rec[rows] + w
                            if record_weight_events:
                                events.add(Tn, sender_ids_r[col], rec_ids[rows], w)
                    if col >= n_in and net.targets_o[col - n_in].size:
                        rows, w = eng.deliver("out", col - n_in, Tn)
                        inp_out[rows] = inp_out[rows] + w
                        if record_weight_events:
                            events.add(Tn, sender_ids_r[col], out_ids[rows], w)

        # (c) recurrent neurons, iteration Tn
        istep = _cpp_rem(Tn - _SHIFT_REC, T)
        if istep == 0:
            net.book_r.prune()
            if reset_on_update:
                v = np.zeros(n_rec)
                r = np.zeros(n_rec, dtype=np.int64)
                z = np.zeros(n_rec)
                a = np.where(is_adapt, 0.0, a)
        r = np.where(r > 0, r - 1, r)
        v = (rp["P_i_in"] * i_in + rp["P_z_in"] * inp_rec) + rp["P_v_m"] * v
        v = v - V_th * z
        v = _max_cpp(v, V_min)
        a = np.where(is_adapt, rp["P_adapt"] * a + z, a)
        A = np.where(is_adapt, V_th + beta_a * a, A)
        thr = np.where(is_adapt, A, V_th)
        psi = _surrogate(rp["sg_code"], r, v - thr, rp["surrogate_gradient_height"], rp["surrogate_gradient_width"])
        spk = (v >= thr) & (r == 0)
        n_spikes = n_spikes + spk
        z = np.where(spk, 1.0, 0.0)
        r = np.where(spk, rp["R"], r)
        net.book_r.append(Tn)
        net.psi_hist[Tn] = psi
        if istep == T - 1:
            fr = rp["c_reg"] * (n_spikes / float(T) - f_target_step) / float(T)
            fr_keys.append(Tn + 1)
            fr_vals.append(fr)
            n_spikes = np.zeros(n_rec, dtype=np.int64)
        # recordable learning signal: L of the first existing entry with key >= Tn-3 (0 unless it is Tn-3)
        e = Tn - _LS_SHIFT
        Lrec = np.zeros(n_rec)
        if e >= 0:
            ok = has_r & net.book_r.exists(e)
            Lrec[ok] = net.L_hist[e][ok]
        i_in = 0.0 + rp["I_e"]
        rec.rec(Tn, v, E_L, psi, Lrec, spk, is_adapt, a, A)
        rec_hd[Tn] = dt * net.book_r.count
        if Tn >= 1:
            z_pre = np.concatenate([(par_emit[Tn - 1] > 0).astype(np.float64), spk_prev.astype(np.float64)])
        else:
            z_pre = np.zeros(n_in + n_rec)
        eng.after_rec_update(Tn, psi, z_pre)

        # (c') readouts, iteration Tn
        if n_out:
            if _cpp_rem(Tn - _SHIFT_OUT, T) == 0:
                net.book_o.prune()
                if reset_on_update:
                    v_out = np.zeros(n_out)
            v_out = (op["P_i_in"] * i_out + op["P_z_in"] * inp_out) + op["P_v_m"] * v_out
            v_out = _max_cpp(v_out, op["V_min_rel"])
            ys = ystar_it[Tn].copy()
            y_new = np.empty(n_out)
            u_new = np.empty(n_out)
            for k in range(n_out):
                if is_ce[k]:
                    norm = N[k] + u_out[k]
                    with np.errstate(divide="ignore", invalid="ignore"):
                        y_new[k] = np.float64(u_out[k]) / np.float64(norm)
                    u_new[k] = _cexp(float(v_out[k] + op["E_L"][k]))
                else:
                    y_new[k] = u_out[k]
                    u_new[k] = v_out[k] + op["E_L"][k]
            y_out, u_out = y_new, u_new
            err_out = y_out - ys
            if _cpp_rem(Tn - _SHIFT_OUT - _DELAY_OUT_NORM, T) < T - LW:
                ys = np.zeros(n_out)
                y_out = np.zeros(n_out)
                err_out = np.zeros(n_out)
            net.book_o.append(Tn - _DELAY_OUT_NORM)
            net.err_hist[Tn] = err_out  # row = key + 1 = Tn
            i_out = 0.0 + op["I_e"]
            rec.out(Tn, v_out, op["E_L"], y_out, ys, err_out)
            out_u[Tn] = u_out
            out_hd[Tn] = dt * net.book_o.count
            z_pre_o = spk_prev2.astype(np.float64)  # stamp Tn-1 = spikes of iteration Tn-2
            eng.after_out_update(Tn, err_out, z_pre_o)
            err_prev = err_out.copy()
            u_prev = u_out.copy()

        spk_prev2 = spk_prev
        spk_prev = spk

    we = events.arrays()
    if multi and events.stamp:
        order = np.lexsort((we["target"], we["sender"], we["stamp"]))  # stable: copies stay in order
        we = {k: v_[order] for k, v_ in we.items()}

    W_r_final = np.where(ex_r, net.W_r, np.nan)
    res = {
        **rec.rec_results(),
        "eprop_history_duration": rec_hd,
        "V_m_out": rec.V_m_out,
        "readout_signal": rec.readout_signal,
        "readout_signal_unnorm": out_u,
        "target_signal": rec.target_signal,
        "error_signal": rec.error_signal,
        "eprop_history_duration_out": out_hd,
        "weight_events": we,
        "W_in": W_r_final[:, :n_in].copy(),
        "W_rec": W_r_final[:, n_in:].copy(),
        "W_out": np.where(ex_o, net.W_o, np.nan),
    }
    if return_internals:
        res.update(_psi_hist=net.psi_hist, _L_hist=net.L_hist, _err_hist=net.err_hist[1:], _fr_keys=list(fr_keys),
                   _fr_vals=[x.copy() for x in fr_vals], _gradients=glog, _kappa=net.kappa, _T=T, _LW=LW)
    return res


def eprop_history_duration_bsshslm(*, model, n_steps, update_interval, input_spike_times, dt=1.0):
    """``eprop_history_duration`` (ms, per iteration) of ONE ``model`` neuron fed by parrots (SPEC 6.2.3).

    One spike_generator -> parrot -> (eprop_synapse_bsshslm_2020) -> neuron per entry of
    ``input_spike_times``.  The history bookkeeping depends only on the presynaptic stamps, the interval, the
    neuron's shift and the drop rule, not on any value, so only the bookkeeping of ``run_bsshslm`` is run.
    For the recurrent model this equals ``run_bsshslm(...)['eprop_history_duration']``; this function also
    covers the readout as direct target of the parrots, which ``run_bsshslm``'s layout does not.
    """
    if model not in REC_MODELS_BSSHSLM and model != READOUT_MODEL_BSSHSLM:
        raise ValueError(f"unknown model {model!r}")
    n_steps = int(n_steps)
    T = _steps(update_interval, dt, "update_interval")
    is_out = model == READOUT_MODEL_BSSHSLM
    sh = _SHIFT_OUT if is_out else _SHIFT_REC
    n_in = len(input_spike_times)
    book = _HistoryBook(1, [n_in], sh, T, n_steps, key_offset=1 if is_out else 0)
    streams = _Streams(n_in, T)
    stamps = [dict() for _ in range(n_in)]
    for i, times in enumerate(input_spike_times):
        for tm in np.asarray(times, dtype=np.float64).ravel():
            s = int(round(tm / dt))
            if 1 <= s <= n_steps:
                stamps[i][s + 1] = stamps[i].get(s + 1, 0) + 1  # parrot re-emits with stamp s+1
    out = np.zeros(n_steps)
    row = np.array([0])
    for Tn in range(n_steps):
        for i in range(n_in):
            for _ in range(stamps[i].get(Tn, 0)):
                if not is_out and _cpp_rem(Tn - sh, T) == 0:
                    continue
                if streams.t_trig[i] == 0:
                    streams.t_trig[i] = Tn
                if Tn > streams.t_next_upd[i] + sh:
                    idx = _cpp_div(Tn - sh, T)
                    book.move(row, int(streams.t_prev_upd[i]) // T, idx)
                    streams.t_prev_upd[i] = idx * T
                    streams.t_next_upd[i] = idx * T + T
                    streams.t_trig[i] = Tn
                streams.sp_prev[i] = Tn
        if _cpp_rem(Tn - sh, T) == 0:
            book.prune()
        book.append(Tn - _DELAY_OUT_NORM if is_out else Tn)
        out[Tn] = dt * book.count[0]
    return out
