"""Plain-NumPy, dense, time-driven reference implementation of the e-prop+ model family.

This module is the *test oracle* for the event-driven compiled core.  It is written directly from
``SPEC.md`` sections 0-4 (NEST 3.10's ``eprop_iaf``, ``eprop_iaf_adapt``, ``eprop_iaf_psc_delta``,
``eprop_iaf_psc_delta_adapt``, ``eprop_readout``, ``eprop_synapse`` and
``eprop_learning_signal_connection``) and shares no code with the rest of the package; it imports only NumPy
and the standard library.  Its generic helpers (parameter handling, C-library ``exp``/``pow``, surrogate
gradients, step_rate_generator amplitudes, the optimizer, inputs and recording) also serve the
``*_bsshslm_2020`` oracle ``reference_bsshslm.py``.

Formulation
-----------
Everything is stepped in time, every step, over all neurons and over all synapses held as dense
``(n_post, n_pre)`` matrices (a synapse exists where the initial weight is non-zero).  All delays are one
step.  At step ``T`` (SPEC 0.2):

(a) the learning signal of entry ``T-2`` is completed: ``L[T-2, j] = sum_k B[j, k] * err_k(T-1)``
    (ascending readout index);
(b) entry ``t = T-2`` is processed for every synapse whose current window contains it
    (``s_p - 1 <= t < s_p - 1 + cutoff``, ``s_p`` = stamp of the synapse's last presynaptic spike): the
    two-slot ``z`` buffer, the traces ``z_bar, e_bar, e_bar_reg, epsilon`` and, in each-step mode, the
    optimizer call ``OPT(idx=t+1, g_t)``; in per-spike mode ``g_t`` is accumulated;
(c) the spikes with stamp ``T`` pass their synapses in ascending sender node id (parrots, then recurrent
    neurons), each copy of a multiple spike separately: the analytic decay over the part of the inter-spike
    interval beyond the cutoff (``pow`` like NEST), the per-spike ``OPT(idx=T-1, G)``, then the
    (updated) weight is transmitted: recorded and added to the target's input of step ``T``;
(d) recurrent neurons are updated (iteration ``T``), then readouts, then the ``step_rate_generator`` s.

Applying each-step optimizer calls eagerly (when the entry becomes complete) instead of lazily (at the
next presynaptic spike) yields the same per-synapse sequence of optimizer calls and therefore the same
transmitted weights.

Floating point: the formulas and their evaluation order follow the SPEC / NEST code; ``exp`` and ``pow``
use the C library (``math.exp``/``math.pow``, as ``std::exp``/``std::pow`` in NEST) and not NumPy's own
SIMD versions; inputs are summed in delivery order (ascending sender id, each copy of a multiple spike
separately) with explicit element-wise float64 additions.

Flush events change no number (SPEC 3.5).  They are modelled only where they are visible: the
``learning_signal`` recordable of SPEC 1.2 step 8 reads "the first history entry with key >= t-2", which
depends on the history pruning of SPEC 1.5, which depends on the stamps of all events (spikes and
flushes) that passed the neuron's incoming synapses.  Flushes of recurrent neurons are therefore generated
(``flush_event_send_interval``) but only update these stamps.  The pruning is evaluated in closed form:

    Entry T-2 of neuron j (cutoff c steps) exists at the start of step T and is erased during step T's
    events iff
      (A) some event at step T passed a synapse whose previous event stamp u satisfies
          max(1, T-c) <= u <= T-1, and after all events of step T no incoming synapse of j has its last
          event stamp in [T-c, T-1]  (SPEC 1.5 step 2: nobody's window needs the entry any more), or
      (B) after the events of step T every incoming synapse that ever had an event has its last event at
          stamp T  (SPEC 1.5 step 3: keep = T-1).
    The recordable of iteration T is then L[T-2] if the entry survives, else 0 (the next entry's learning
    signal is not complete yet).

A literal implementation of SPEC 1.5 is available for cross-checking (``_run(..., literal_history=True)``),
which also returns ``eprop_history_duration`` and reproduces NEST's ``test_eprop_history_cleaning``.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

__all__ = ["run_eprop_plus", "REC_MODELS", "SURROGATE_GRADIENT_FUNCTIONS"]

REC_MODELS = ("eprop_iaf", "eprop_iaf_adapt", "eprop_iaf_psc_delta", "eprop_iaf_psc_delta_adapt")
SURROGATE_GRADIENT_FUNCTIONS = ("piecewise_linear", "exponential", "fast_sigmoid_derivative", "arctan_derivative")

_DBL_MAX = np.finfo(np.float64).max

# NEST defaults (SPEC 1.1), in NEST units.  Voltages that NEST stores relative to E_L are listed with their
# default *relative* value under "_rel" names and handled specially (see _rec_parameters).
_REC_DEFAULTS = {
    "C_m": 250.0,
    "E_L": -70.0,
    "I_e": 0.0,
    "t_ref": 2.0,
    "tau_m": 10.0,
    "refractory_input": False,
    "adapt_beta": 1.0,
    "adapt_tau": 10.0,
    "adaptation": 0.0,
    "c_reg": 0.0,
    "f_target": 10.0,
    "kappa": 0.97,
    "kappa_reg": 0.97,
    "surrogate_gradient_function": "piecewise_linear",
    "surrogate_gradient_height": 0.3,
    "surrogate_gradient_width": 1.0,
    "eprop_isi_trace_cutoff": np.inf,
    "flush_event_send_interval": np.inf,
    "ignore_and_spike": False,
    "ignore_and_spike_offset": 1.0,
    "ignore_and_spike_interval": 100.0,
}
_REC_VOLTAGES_REL = {"V_th": 15.0, "V_min": -_DBL_MAX, "V_reset": 0.0, "V_m": 0.0}
_REC_E_L_DEFAULT = -70.0

_OUT_DEFAULTS = {"C_m": 250.0, "E_L": 0.0, "I_e": 0.0, "tau_m": 10.0, "eprop_isi_trace_cutoff": np.inf}
_OUT_VOLTAGES_REL = {"V_min": -_DBL_MAX, "V_m": 0.0}
_OUT_E_L_DEFAULT = 0.0

_OPT_DEFAULTS = {
    "type": "gradient_descent",
    "batch_size": 1,
    "eta": 1e-4,
    "optimize_each_step": True,
    "Wmin": -100.0,
    "Wmax": 100.0,
    "beta_1": 0.9,
    "beta_2": 0.999,
    "epsilon": 1e-7,
}

_SG_CODE = {name: i for i, name in enumerate(SURROGATE_GRADIENT_FUNCTIONS)}

# Effectively infinite cutoff for the integer bookkeeping of the literal history pruning (NEST uses the
# step count of Time::pos_inf(), a huge finite number; a true inf would break the interval tests).
_BIG_STEPS = 2**62 // 1000


# --------------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------------


def _vexp(x):
    """Element-wise C-library exp (bit-identical to std::exp); NumPy's SIMD exp differs in the last bit."""
    x = np.asarray(x, dtype=np.float64)
    return np.fromiter((math.exp(v) for v in x.ravel()), dtype=np.float64, count=x.size).reshape(x.shape)


def _vpow(base, expo):
    """Element-wise C-library pow (bit-identical to std::pow)."""
    base, expo = np.broadcast_arrays(np.asarray(base, dtype=np.float64), np.asarray(expo, dtype=np.float64))
    out = np.fromiter(
        (math.pow(b, e) for b, e in zip(base.ravel(), expo.ravel())), dtype=np.float64, count=base.size
    )
    return out.reshape(base.shape)


def _steps(ms, dt):
    """NEST Time(ms(x)).get_steps(): round to the grid; +inf stays +inf (float array)."""
    ms = np.asarray(ms, dtype=np.float64)
    out = np.full(ms.shape, np.inf)
    fin = np.isfinite(ms)
    out[fin] = np.round(ms[fin] / dt)
    return out


def _value_list(value, n, name):
    """A per-neuron list of n values from one string or a sequence of n values."""
    if isinstance(value, str):
        return [value] * n
    vals = list(value)
    if len(vals) != n:
        raise ValueError(f"parameter {name!r}: expected {n} values, got {len(vals)}")
    return vals


def _broadcast_array(value, n, name, dtype=np.float64):
    """A scalar or shape (n,) value as a fresh (n,) array of ``dtype``."""
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim == 0:
        return np.full(n, arr, dtype=dtype)
    if arr.shape != (n,):
        raise ValueError(f"parameter {name!r}: expected a scalar or shape ({n},), got shape {arr.shape}")
    return arr.copy()


def _broadcast(value, n, name, dtype=np.float64):
    if isinstance(value, str) or dtype is object:
        arr = np.empty(n, dtype=object)
        arr[:] = _value_list(value, n, name)
        return arr
    return _broadcast_array(value, n, name, dtype)


def _max_cpp(v, vmin):
    """std::max(v, V_min) = (v < V_min) ? V_min : v."""
    return np.where(v < vmin, vmin, v)


def _clip_cpp(w, wmin, wmax):
    """std::max(Wmin, std::min(w, Wmax)), including its NaN behaviour."""
    w = np.where(wmax < w, wmax, w)
    return np.where(wmin < w, w, wmin)


# --------------------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------------------


def _model_list(rec_models, n_rec, allowed):
    """The recurrent model name of each neuron (one name for all, or a list of n_rec names)."""
    if isinstance(rec_models, str):
        models = [rec_models] * n_rec
    else:
        models = list(rec_models)
        if len(models) != n_rec:
            raise ValueError(f"rec_models: expected {n_rec} model names, got {len(models)}")
    for m in models:
        if m not in allowed:
            raise ValueError(f"rec_models: unknown recurrent model {m!r}; allowed: {allowed}")
    return models


def _check_known(params, what, *known):
    """Reject the keys of ``params`` that are in none of the ``known`` collections of names."""
    unknown = set(params) - set().union(*known)
    if unknown:
        raise ValueError(f"{what}: unknown parameter(s) {sorted(unknown)}")


def _per_neuron(defaults, given, n, broadcast, special=None):
    """Each parameter of ``defaults`` (the given value, else the default) broadcast to n values; ``special``:
    name -> the last argument of ``broadcast`` (dtype or kind) where it is not the default."""
    special = special or {}
    p = {}
    for name, default in defaults.items():
        val = given.get(name, default)
        p[name] = broadcast(val, n, name, special[name]) if name in special else broadcast(val, n, name)
    return p


def _relative_voltages(p, given, rel_defaults, e_l_default, n, broadcast):
    """p[name + '_rel'] for the voltages NEST stores relative to E_L (p['E_L'] already set).

    Given voltages are absolute (relative = value - E_L); the others keep their default absolute value, i.e.
    relative default - (E_L - E_L_default), exactly like NEST's set_status.
    """
    delta_el = p["E_L"] - e_l_default
    for name, rel_default in rel_defaults.items():
        if name in given:
            p[name + "_rel"] = broadcast(given[name], n, name) - p["E_L"]
        else:
            p[name + "_rel"] = rel_default - delta_el


def _sg_codes(names):
    """Index in SURROGATE_GRADIENT_FUNCTIONS of each neuron's surrogate_gradient_function."""
    codes = []
    for f in names:
        if f not in _SG_CODE:
            raise ValueError(
                f"rec_params: unknown surrogate_gradient_function {f!r}; allowed: {SURROGATE_GRADIENT_FUNCTIONS}"
            )
        codes.append(_SG_CODE[f])
    return np.array(codes, dtype=np.int64)


def _require_positive(p, what, names):
    for name in names:
        if np.any(p[name] <= 0):
            raise ValueError(f"{what}: {name} > 0 required")


def _require_nonnegative(p, what, names):
    for name in names:
        if np.any(p[name] < 0):
            raise ValueError(f"{what}: {name} >= 0 required")


def _membrane_propagators(p, dt):
    """(P_v_m, P_i_in) of the pre_run_hook, computed with the C library exp like NEST."""
    P_v_m = _vexp(-dt / p["tau_m"])
    return P_v_m, p["tau_m"] / p["C_m"] * (1.0 - P_v_m)


def _rec_parameters(rec_models, rec_params, n_rec, dt):
    models = _model_list(rec_models, n_rec, REC_MODELS)
    rec_params = dict(rec_params or {})
    _check_known(rec_params, "rec_params", _REC_DEFAULTS, _REC_VOLTAGES_REL)

    p = _per_neuron(_REC_DEFAULTS, rec_params, n_rec, _broadcast,
                    {"surrogate_gradient_function": object, "refractory_input": bool, "ignore_and_spike": bool})
    _relative_voltages(p, rec_params, _REC_VOLTAGES_REL, _REC_E_L_DEFAULT, n_rec, _broadcast)
    p["sg_code"] = _sg_codes(p["surrogate_gradient_function"])

    _require_positive(p, "rec_params", ("C_m", "tau_m", "adapt_tau"))
    _require_nonnegative(p, "rec_params", ("t_ref", "c_reg", "f_target", "adapt_beta", "eprop_isi_trace_cutoff"))
    for name in ("kappa", "kappa_reg"):
        if np.any((p[name] < 0) | (p[name] > 1)):
            raise ValueError(f"rec_params: {name} in [0, 1] required")
    _require_positive(p, "rec_params", ("surrogate_gradient_height", "surrogate_gradient_width",
                                        "flush_event_send_interval", "ignore_and_spike_offset",
                                        "ignore_and_spike_interval"))
    if np.any(p["V_th_rel"] < p["V_min_rel"]):
        raise ValueError("rec_params: V_th >= V_min required")

    p["models"] = models
    p["is_delta"] = np.array([m in ("eprop_iaf_psc_delta", "eprop_iaf_psc_delta_adapt") for m in models])
    p["is_adapt"] = np.array([m in ("eprop_iaf_adapt", "eprop_iaf_psc_delta_adapt") for m in models])
    if np.any(p["is_delta"] & ((p["V_reset_rel"] >= p["V_th_rel"]) | (p["V_reset_rel"] < p["V_min_rel"]))):
        raise ValueError("rec_params: V_min <= V_reset < V_th required")

    # propagators (pre_run_hook), computed with the C library exp like NEST
    p["P_v_m"], p["P_i_in"] = _membrane_propagators(p, dt)
    p["P_adapt"] = _vexp(-dt / p["adapt_tau"])
    p["R"] = _steps(p["t_ref"], dt).astype(np.int64)
    p["cutoff_steps"] = _steps(p["eprop_isi_trace_cutoff"], dt)
    p["flush_steps"] = _steps(p["flush_event_send_interval"], dt)
    p["f_target_ms"] = p["f_target"] / 1000.0  # the f_target quirk: stored per ms
    p["ias_offset_steps"] = _steps(p["ignore_and_spike_offset"], dt).astype(np.int64)
    p["ias_interval_steps"] = _steps(p["ignore_and_spike_interval"], dt).astype(np.int64)
    return p


def _out_parameters(out_params, n_out, dt):
    out_params = dict(out_params or {})
    _check_known(out_params, "out_params", _OUT_DEFAULTS, _OUT_VOLTAGES_REL)
    p = _per_neuron(_OUT_DEFAULTS, out_params, n_out, _broadcast)
    _relative_voltages(p, out_params, _OUT_VOLTAGES_REL, _OUT_E_L_DEFAULT, n_out, _broadcast)
    _require_positive(p, "out_params", ("C_m", "tau_m"))
    _require_nonnegative(p, "out_params", ("eprop_isi_trace_cutoff",))
    p["P_v_m"], p["P_i_in"] = _membrane_propagators(p, dt)
    p["cutoff_steps"] = _steps(p["eprop_isi_trace_cutoff"], dt)
    return p


def _optimizer_parameters(optimizer):
    """The optimizer dict of run_eprop_plus (optimize_each_step as bool)."""
    o = _validated_optimizer(optimizer)
    o["optimize_each_step"] = bool(o["optimize_each_step"])
    return o


def _validated_optimizer(optimizer, float_bounds=False):
    """The NEST optimizer dict completed with the SPEC 3.4 defaults and checked (float_bounds: Wmin and Wmax
    converted to float before the check)."""
    optimizer = dict(optimizer or {})
    unknown = set(optimizer) - set(_OPT_DEFAULTS)
    if unknown:
        raise ValueError(f"optimizer: unknown key(s) {sorted(unknown)}")
    o = dict(_OPT_DEFAULTS)
    o.update(optimizer)
    if o["type"] not in ("gradient_descent", "adam"):
        raise ValueError(f"optimizer: type must be 'gradient_descent' or 'adam', got {o['type']!r}")
    o["batch_size"] = int(o["batch_size"])
    if o["batch_size"] <= 0:
        raise ValueError("optimizer: batch_size > 0 required")
    o["eta"] = float(o["eta"])
    if o["eta"] < 0:
        raise ValueError("optimizer: eta >= 0 required")
    if float_bounds:
        o["Wmin"], o["Wmax"] = float(o["Wmin"]), float(o["Wmax"])
    if o["Wmin"] > o["Wmax"]:
        raise ValueError("optimizer: Wmin <= Wmax required")
    if not (0.0 <= o["beta_1"] < 1.0) or not (0.0 <= o["beta_2"] < 1.0):
        raise ValueError("optimizer: beta_1, beta_2 in [0, 1) required")
    if o["epsilon"] < 0:
        raise ValueError("optimizer: epsilon >= 0 required")
    # eta set once before the run: a change from the default 1e-4 counts as the first change (SPEC 3.4)
    if o["eta"] != _OPT_DEFAULTS["eta"]:
        o["eta_change_count"] = 1
        o["eta_first_change"] = o["eta"]
    else:
        o["eta_change_count"] = 0
        o["eta_first_change"] = _OPT_DEFAULTS["eta"]
    return o


def _amplitude_per_iteration(times, values, n_steps, dt):
    """Value a readout uses in iteration t from a step_rate_generator created after it (SPEC 0.3).

    The generator switches to value k in its iteration u when u+1 == time_k/dt and writes its value into
    the readout during its own update; the readout (updated before it) sees it in iteration u+1.  So the
    readout uses in iteration t the value switched to in iteration t-1, i.e. the latest value whose step is
    <= t (steps <= 0 never switch); initial value 0.
    """
    out = np.zeros(n_steps)
    times = np.asarray(times, dtype=np.float64).ravel()
    values = np.asarray(values, dtype=np.float64).ravel()
    if times.shape != values.shape:
        raise ValueError("step_rate_generator: amplitude_times and amplitude_values differ in length")
    switch = {}
    for tm, val in zip(times, values):
        s = int(round(tm / dt))
        if s >= 1:
            switch[s] = val  # later entries win
    current = 0.0
    for t in range(n_steps):
        # generator update of iteration t-1 (only exists for t >= 1)
        if t >= 1 and t in switch:
            current = switch[t]
        out[t] = current if t >= 1 else 0.0
    return out


def _targets_per_iteration(target_times, target_values, n_steps, n_out, dt):
    """(n_steps, n_out): the target value readout k uses in each iteration."""
    ystar_it = np.zeros((n_steps, n_out))
    for k in range(n_out):
        ystar_it[:, k] = _amplitude_per_iteration(target_times[k], target_values[k], n_steps, dt)
    return ystar_it


# --------------------------------------------------------------------------------------------------------
# network layout, inputs and recording
# --------------------------------------------------------------------------------------------------------


def _input_weights(W_in, W_rec):
    """(W_in, W_rec, n_rec, n_in) as float64 arrays, checked."""
    W_in = np.asarray(W_in, dtype=np.float64)
    W_rec = np.asarray(W_rec, dtype=np.float64)
    n_rec, n_in = W_in.shape
    if W_rec.shape != (n_rec, n_rec):
        raise ValueError(f"W_rec: expected shape ({n_rec}, {n_rec}), got {W_rec.shape}")
    return W_in, W_rec, n_rec, n_in


def _n_out(W_out, n_rec):
    """The number of readouts of a checked (n_out, n_rec) W_out."""
    n_out = W_out.shape[0]
    if W_out.shape != (n_out, n_rec):
        raise ValueError(f"W_out: expected shape (n_out, {n_rec}), got {W_out.shape}")
    return n_out


def _input_and_target_lists(input_spike_times, target_times, target_values, n_in, n_out):
    """Check the numbers of input and target arrays; the target lists (None -> [])."""
    if len(input_spike_times) != n_in:
        raise ValueError(f"input_spike_times: expected {n_in} arrays, got {len(input_spike_times)}")
    target_times = list(target_times) if target_times is not None else []
    target_values = list(target_values) if target_values is not None else []
    if len(target_times) != n_out or len(target_values) != n_out:
        raise ValueError(f"target_times/target_values: expected {n_out} arrays each")
    return target_times, target_values


def _node_ids(n_in, n_rec, n_out):
    """NEST node ids of the canonical creation order: spike_generators 1..n_in, parrots, recurrent, readouts."""
    par_ids = np.arange(n_in + 1, 2 * n_in + 1)
    rec_ids = np.arange(2 * n_in + 1, 2 * n_in + n_rec + 1)
    out_ids = np.arange(2 * n_in + n_rec + 1, 2 * n_in + n_rec + n_out + 1)
    return par_ids, rec_ids, out_ids


def _input_emissions(input_spike_times, extra_rec_spike_times, n_steps, n_in, dt):
    """(par_emit, extra_at): events parrot i emits in iteration u (stamp u+1), one per generator spike with
    stamp u, including the spikes of the extra generator, which also reaches every recurrent neuron
    (extra_at[u]: number of extra-generator spikes received in iteration u)."""
    par_emit = np.zeros((n_steps + 1, n_in), dtype=np.int64)
    for i, times in enumerate(input_spike_times):
        for tm in np.asarray(times, dtype=np.float64).ravel():
            s = int(round(tm / dt))
            if 1 <= s <= n_steps:
                par_emit[s, i] += 1
    extra_at = np.zeros(n_steps + 1, dtype=np.int64)
    if extra_rec_spike_times is not None:
        for tm in np.asarray(extra_rec_spike_times, dtype=np.float64).ravel():
            s = int(round(tm / dt))
            if 1 <= s <= n_steps:
                extra_at[s] += 1
    par_emit += extra_at[:, None]
    return par_emit, extra_at


class _WeightEvents:
    """The 'weight_events' record: one row per transmission through an e-prop synapse."""

    def __init__(self):
        self.stamp, self.sender, self.target, self.weight = [], [], [], []

    def add(self, stamp, sender, targets, weights):
        self.stamp.append(np.full(targets.size, stamp, dtype=np.int64))
        self.sender.append(np.full(targets.size, sender, dtype=np.int64))
        self.target.append(targets)
        self.weight.append(weights)

    def arrays(self):
        if self.stamp:
            return {"stamp": np.concatenate(self.stamp), "sender": np.concatenate(self.sender),
                    "target": np.concatenate(self.target), "weight": np.concatenate(self.weight)}
        return {"stamp": np.zeros(0, np.int64), "sender": np.zeros(0, np.int64), "target": np.zeros(0, np.int64),
                "weight": np.zeros(0)}


def _initial_rec_state(rp, n_rec):
    """(v, r, i_in, z, a, A) of the recurrent neurons before iteration 0: membrane voltage (relative to E_L) and
    adaptation as set, refractory counter, input current and spike zero, threshold V_th + adapt_beta * a."""
    a = rp["adaptation"].copy()
    return (rp["V_m_rel"].copy(), np.zeros(n_rec, dtype=np.int64), np.zeros(n_rec), np.zeros(n_rec), a,
            rp["V_th_rel"] + rp["adapt_beta"] * a)


class _Recorder:
    """The per-iteration recordables of the recurrent neurons and the readouts (rows = iterations)."""

    def __init__(self, n_steps, n_rec, n_out):
        self.V_m = np.zeros((n_steps, n_rec))
        self.surrogate_gradient = np.zeros((n_steps, n_rec))
        self.learning_signal = np.zeros((n_steps, n_rec))
        self.spikes = np.zeros((n_steps, n_rec), dtype=np.int64)
        self.adaptation = np.full((n_steps, n_rec), np.nan)
        self.V_th_adapt = np.full((n_steps, n_rec), np.nan)
        self.V_m_out = np.zeros((n_steps, n_out))
        self.readout_signal = np.zeros((n_steps, n_out))
        self.target_signal = np.zeros((n_steps, n_out))
        self.error_signal = np.zeros((n_steps, n_out))

    def rec(self, t, v, E_L, psi, L, spk, is_adapt, a, A):
        """Row t of the recurrent recordables (v, A relative to E_L; NaN adaptation for non-adaptive ones)."""
        self.V_m[t] = v + E_L
        self.surrogate_gradient[t] = psi
        self.learning_signal[t] = L
        self.spikes[t] = spk
        self.adaptation[t] = np.where(is_adapt, a, np.nan)
        self.V_th_adapt[t] = np.where(is_adapt, A + E_L, np.nan)

    def rec_results(self):
        return {"V_m": self.V_m, "surrogate_gradient": self.surrogate_gradient,
                "learning_signal": self.learning_signal, "spikes": self.spikes, "adaptation": self.adaptation,
                "V_th_adapt": self.V_th_adapt}

    def out(self, t, v, E_L, y, ys, err):
        self.V_m_out[t] = v + E_L
        self.readout_signal[t] = y
        self.target_signal[t] = ys
        self.error_signal[t] = err


# --------------------------------------------------------------------------------------------------------
# the projections (dense synapse matrices) and the optimizer
# --------------------------------------------------------------------------------------------------------


class _Projection:
    """All eprop_synapses from one presynaptic population to one postsynaptic population."""

    def __init__(self, W0, *, post_is_readout, post_alpha, post_cutoff, post_kappa=None, post_kappa_reg=None,
                 post_beta=None, post_rho=None, post_adapt=None, pre_node_ids, post_node_ids, exclude_diagonal=False):
        W0 = np.asarray(W0, dtype=np.float64)
        self.n_post, self.n_pre = W0.shape
        exists = W0 != 0
        if exclude_diagonal:
            np.fill_diagonal(exists, False)
        self.exists = exists
        self.W = np.where(exists, W0, 0.0).ravel().copy()
        self.W_last = self.W.copy()
        self.post_is_readout = post_is_readout
        self.alpha = np.asarray(post_alpha, dtype=np.float64)
        self.cutoff = np.asarray(post_cutoff, dtype=np.float64)
        if not post_is_readout:
            self.kappa = np.asarray(post_kappa, dtype=np.float64)
            self.kappa_reg = np.asarray(post_kappa_reg, dtype=np.float64)
            self.one_minus_kappa_reg = 1.0 - self.kappa_reg
            self.beta = np.asarray(post_beta, dtype=np.float64)
            self.rho = np.asarray(post_rho, dtype=np.float64)
            self.adapt = np.asarray(post_adapt, dtype=bool)
        n = self.n_post * self.n_pre
        self.rows_flat = np.repeat(np.arange(self.n_post), self.n_pre)
        self.cutoff_flat = self.cutoff[self.rows_flat]
        self.last = np.zeros(n, dtype=np.int64)  # stamp of the last real spike (0: none yet)
        self.key = np.zeros(n, dtype=np.int64)  # stamp of the last event incl. flushes (history pruning)
        self.zbuf = np.zeros(n)  # z_previous_buffer
        self.z_bar = np.zeros(n)
        self.e_bar = np.zeros(n)
        self.e_bar_reg = np.zeros(n)
        self.epsilon = np.zeros(n)
        self.G = np.zeros(n)  # per-spike mode gradient accumulator
        self.opt = _OptState(n)
        self.targets_of = [np.flatnonzero(exists[:, i]) for i in range(self.n_pre)]
        self.pre_node_ids = np.asarray(pre_node_ids, dtype=np.int64)
        self.post_node_ids = np.asarray(post_node_ids, dtype=np.int64)

    def weights_out(self):
        return np.where(self.exists, self.W_last.reshape(self.n_post, self.n_pre), np.nan)


def _optimize(P, sel, idx, g, o):
    """OPT(idx, g, W) of SPEC 3.4 for the synapses with flat indices ``sel`` (unique), all with the same idx."""
    P.opt.optimize(P.W, sel, idx, g, o)


class _OptState:
    """Optimizer state (SPEC 3.4) of an array of synapses, indexed like their weight array."""

    def __init__(self, shape):
        self.cum = np.zeros(shape)
        self.step = np.ones(shape, dtype=np.int64)
        self.eta_cur = np.full(shape, _OPT_DEFAULTS["eta"])
        self.n_opt = np.zeros(shape, dtype=np.int64)
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)
        self.b1p = np.ones(shape)
        self.b2p = np.ones(shape)

    def optimize(self, W, sel, idx, g, o):
        """W[sel] = OPT(idx, g, W[sel]) for distinct synapses, all with the same idx.

        sel: a 1-D array of flat indices, or a pair (rows, col) of a row-index array and one column.
        """
        rows = sel[0] if isinstance(sel, tuple) else sel
        if rows.size == 0:
            return

        def part(mask):
            return (rows[mask], sel[1]) if isinstance(sel, tuple) else rows[mask]

        if o["eta_change_count"] != 0:
            first = self.n_opt[sel] == 0
            if first.any():
                self.eta_cur[part(first)] = o["eta_first_change"]
        cum = self.cum[sel] + g
        bs = o["batch_size"]
        cur = 1 + idx // bs
        do = self.step[sel] < cur
        if not do.any():
            self.cum[sel] = cum
            return
        s = part(do)
        c = cum[do] / bs
        w = W[s]
        eta_c = self.eta_cur[s]
        if o["type"] == "gradient_descent":
            w = w - eta_c * c
        else:
            b1, b2, eps = o["beta_1"], o["beta_2"], o["epsilon"]
            npass = cur - self.step[s]
            m, v, b1p, b2p = self.m[s], self.v[s], self.b1p[s], self.b2p[s]
            with np.errstate(divide="ignore", invalid="ignore"):
                # first pending pass: the real gradient
                b1p = b1p * b1
                b2p = b2p * b2
                a = eta_c * np.sqrt(1.0 - b2p) / (1.0 - b1p)
                m = b1 * m + (1.0 - b1) * c
                v = b2 * v + (1.0 - b2) * c * c
                w = w - a * m / (np.sqrt(v) + eps)
                # catch-up passes with zero gradient (momentum continues, bias correction advances)
                k = npass - 1
                live = np.flatnonzero(k > 0)
                zero = 0.0
                while live.size:
                    b1p[live] = b1p[live] * b1
                    b2p[live] = b2p[live] * b2
                    a = eta_c[live] * np.sqrt(1.0 - b2p[live]) / (1.0 - b1p[live])
                    m[live] = b1 * m[live] + (1.0 - b1) * zero
                    v[live] = b2 * v[live] + (1.0 - b2) * zero * zero
                    w[live] = w[live] - a * m[live] / (np.sqrt(v[live]) + eps)
                    k[live] -= 1
                    live = live[k[live] > 0]
            self.m[s], self.v[s], self.b1p[s], self.b2p[s] = m, v, b1p, b2p
        W[s] = _clip_cpp(w, o["Wmin"], o["Wmax"])
        cum[do] = 0.0
        self.cum[sel] = cum
        self.eta_cur[s] = o["eta"]
        self.n_opt[s] += 1
        self.step[s] = cur


# --------------------------------------------------------------------------------------------------------
# literal SPEC 1.5 history pruning (cross-check only)
# --------------------------------------------------------------------------------------------------------


class _LiteralHistory:
    def __init__(self, has_hist, cutoff_steps):
        n = len(has_hist)
        self.has_hist = has_hist
        self.c = [(_BIG_STEPS if not np.isfinite(c) else int(c)) for c in cutoff_steps]
        self.entries = [[] for _ in range(n)]
        self.upd = [dict() for _ in range(n)]

    def append(self, j, t):
        if self.has_hist[j]:
            self.entries[j].append(t)

    def erase_used(self, j, t_spike, t_prev):
        upd = self.upd[j]
        upd[t_spike] = upd.get(t_spike, 0) + 1
        hist = self.entries[j]
        if t_prev > 0:
            if t_prev in upd:
                cnt = max(upd[t_prev] - 1, 0)
                if cnt == 0:
                    del upd[t_prev]
                else:
                    upd[t_prev] = cnt
            c = self.c[j]
            cb, ce = t_prev - 1, t_prev - 1 + c
            eb, ee = cb, ce
            lo = max(0, cb - c)
            for u in sorted(upd):
                if eb >= ee:
                    break
                if u < lo:
                    continue
                if u > ce:
                    break
                rb, re_ = u - 1, u - 1 + c
                if cb <= rb <= ce:
                    ee = min(ee, rb)
                if cb <= re_ <= ce:
                    eb = max(eb, re_)
            if eb < ee:
                i0 = bisect.bisect_left(hist, eb)
                i1 = bisect.bisect_left(hist, ee)
                del hist[i0:i1]
        if hist and upd:
            keep = min(upd) - 1
            i = bisect.bisect_left(hist, keep)
            if i < len(hist) and hist[i] == keep and i > 0:
                del hist[:i]

    def first_key_at_least(self, j, t):
        hist = self.entries[j]
        i = bisect.bisect_left(hist, t)
        return hist[i] if i < len(hist) else None


# --------------------------------------------------------------------------------------------------------
# the simulation
# --------------------------------------------------------------------------------------------------------


def _surrogate(code, r, x, height, width):
    """SPEC 1.3, with x = v - v_th; zero if r > 0."""
    psi = np.zeros(x.shape)
    for c in np.unique(code):
        m = code == c
        ax = np.abs(x[m])
        w = width[m]
        h = height[m]
        if c == 0:  # piecewise_linear
            val = h * np.maximum(0.0, 1.0 - ax / w)
        elif c == 1:  # exponential
            val = h * _vexp(-ax / w)
        elif c == 2:  # fast_sigmoid_derivative
            val = h * _vpow(1.0 + ax / w, -2.0)
        else:  # arctan_derivative
            y = x[m] / w
            val = h / (1.0 + y * y)
        psi[m] = val
    psi[r > 0] = 0.0
    return psi


def run_eprop_plus(*, n_steps, dt=1.0, rec_models, rec_params, out_params, W_in, W_rec, W_out, B,
                   input_spike_times, target_times, target_values, lw_times, lw_values, optimizer,
                   extra_rec_spike_times=None):
    """Simulate an e-prop+ network (SPEC sections 0-4) step by step; the test oracle.

    n_steps: iterations t = 0..n_steps-1 are simulated.
    rec_models: str or list (len n_rec) of the four recurrent model names.
    rec_params: dict NEST param name -> scalar or array (n_rec,), NEST units (mV absolute, ms, pF, Hz);
        unspecified -> NEST defaults (SPEC 1.1).  Voltages not given keep their default absolute value.
    out_params: dict for eprop_readout (SPEC 2.1), scalar or (n_out,) arrays.
    W_in (n_rec, n_in), W_rec (n_rec, n_rec), W_out (n_out, n_rec): initial eprop_synapse weights; a synapse
        exists where the entry is != 0; no autapses (diagonal of W_rec ignored).
    B (n_rec, n_out): eprop_learning_signal_connection weights (all pairs, even zero).
    input_spike_times: list of n_in 1-D arrays of spike_generator times in ms (may contain duplicates); each
        generator -> parrot (static, delay 1) -> eprop_synapse.
    target_times/target_values: lists of n_out arrays (the target step_rate_generator of readout k).
    lw_times/lw_values: the single learning-window step_rate_generator connected to all readouts.
    optimizer: dict with NEST optimizer keys (type, batch_size, eta, optimize_each_step, Wmin, Wmax, beta_1,
        beta_2, epsilon); missing -> SPEC 3.4 defaults.  eta is set once before the run.
    extra_rec_spike_times: optional times (ms) of a spike_generator connected (static, weight 1000, delay 1)
        to every parrot and every recurrent neuron (the "force final update" generator).

    Returns a dict of arrays indexed by iteration t (row t = value recorded at the end of iteration t):
    'V_m', 'surrogate_gradient', 'learning_signal', 'spikes' (int, emitted in iteration t -> stamp t+1),
    'adaptation', 'V_th_adapt' (NaN for non-adaptive neurons) of shape (n_steps, n_rec);
    'V_m_out', 'readout_signal', 'target_signal', 'error_signal' of shape (n_steps, n_out);
    'weight_events': dict of 1-D arrays 'stamp', 'sender', 'target', 'weight' (one row per transmission
    through an eprop_synapse, ordered by stamp, sender, copy, target; NEST node ids of the canonical creation
    order: generators 1..n_in, parrots n_in+1..2n_in, recurrent next, readouts next);
    'W_in', 'W_rec', 'W_out': the weight at the last transmission through each synapse (initial weight if
    it never transmitted; NaN where no synapse).
    """
    return _run(n_steps=n_steps, dt=dt, rec_models=rec_models, rec_params=rec_params, out_params=out_params,
                W_in=W_in, W_rec=W_rec, W_out=W_out, B=B, input_spike_times=input_spike_times,
                target_times=target_times, target_values=target_values, lw_times=lw_times, lw_values=lw_values,
                optimizer=optimizer, extra_rec_spike_times=extra_rec_spike_times)


def _run(*, n_steps, dt=1.0, rec_models, rec_params, out_params, W_in, W_rec, W_out, B, input_spike_times,
         target_times, target_values, lw_times, lw_values, optimizer, extra_rec_spike_times=None,
         literal_history=False, return_internals=False):
    """run_eprop_plus with two cross-checking options.

    literal_history: evaluate the learning_signal recordable with a literal implementation of SPEC 1.5
        (slow) instead of the closed form, and also return 'eprop_history_duration' (n_steps, n_rec) in ms.
    return_internals: also return the completed histories '_psi_hist', '_L_hist', '_F_hist' (rows = entry
        t, (n_steps, n_rec)), '_err_hist' (n_steps, n_out) and '_has_hist' (n_rec,) bool.
    """
    n_steps = int(n_steps)
    dt = float(dt)
    W_in, W_rec, n_rec, n_in = _input_weights(W_in, W_rec)
    W_out = np.asarray(W_out, dtype=np.float64)
    if W_out.size == 0:
        W_out = W_out.reshape(-1, n_rec) if W_out.ndim == 2 else np.zeros((0, n_rec))
    n_out = _n_out(W_out, n_rec)
    B = np.asarray(B, dtype=np.float64).reshape(n_rec, n_out)
    target_times, target_values = _input_and_target_lists(input_spike_times, target_times, target_values, n_in,
                                                          n_out)

    rp = _rec_parameters(rec_models, rec_params, n_rec, dt)
    op = _out_parameters(out_params, n_out, dt)
    o = _optimizer_parameters(optimizer)

    par_ids, rec_ids, out_ids = _node_ids(n_in, n_rec, n_out)

    # ---- inputs: parrot i emits in iteration u (stamp u+1) one event per generator spike with stamp u ----
    par_emit, extra_at = _input_emissions(input_spike_times, extra_rec_spike_times, n_steps, n_in, dt)
    ystar_it = _targets_per_iteration(target_times, target_values, n_steps, n_out, dt)
    lw_it = _amplitude_per_iteration(lw_times if lw_times is not None else [],
                                     lw_values if lw_values is not None else [], n_steps, dt)

    # ---- projections ----
    rec_kw = dict(post_is_readout=False, post_alpha=rp["P_v_m"], post_cutoff=rp["cutoff_steps"],
                  post_kappa=rp["kappa"], post_kappa_reg=rp["kappa_reg"],
                  post_beta=np.where(rp["is_adapt"], rp["adapt_beta"], 0.0),
                  post_rho=np.where(rp["is_adapt"], rp["P_adapt"], 0.0), post_adapt=rp["is_adapt"])
    P_in = _Projection(W_in, pre_node_ids=par_ids, post_node_ids=rec_ids, **rec_kw)
    P_rec = _Projection(W_rec, pre_node_ids=rec_ids, post_node_ids=rec_ids, exclude_diagonal=True, **rec_kw)
    P_out = _Projection(W_out, post_is_readout=True, post_alpha=op["P_v_m"], post_cutoff=op["cutoff_steps"],
                        pre_node_ids=rec_ids, post_node_ids=out_ids)
    rec_projs = (P_in, P_rec)
    all_projs = (P_in, P_rec, P_out)
    has_hist = P_in.exists.any(axis=1) | P_rec.exists.any(axis=1)  # eprop indegree > 0
    each_step = o["optimize_each_step"]

    # ---- neuron state ----
    E_L = rp["E_L"]
    V_th = rp["V_th_rel"]
    V_min = rp["V_min_rel"]
    V_reset = rp["V_reset_rel"]
    is_delta, is_adapt = rp["is_delta"], rp["is_adapt"]
    beta_a = rp["adapt_beta"]
    v, r, i_in, z, a, A = _initial_rec_state(rp, n_rec)
    refr_buf = np.zeros(n_rec)
    f_av = np.zeros(n_rec)
    ias = rp["ignore_and_spike"]
    ias_counter = rp["ias_offset_steps"].copy()
    last_event_time = np.zeros(n_rec, dtype=np.int64)
    one_minus_kappa_reg = 1.0 - rp["kappa_reg"]
    f_target_step = rp["f_target_ms"] * dt

    v_out = op["V_m_rel"].copy()
    i_out = np.zeros(n_out)

    psi_hist = np.zeros((n_steps, n_rec))
    F_hist = np.zeros((n_steps, n_rec))
    L_hist = np.zeros((n_steps, n_rec))
    err_hist = np.zeros((n_steps, n_out))

    rec = _Recorder(n_steps, n_rec, n_out)
    hist_dur = np.zeros((n_steps, n_rec)) if literal_history else None
    events = _WeightEvents()

    spiked_prev = np.zeros(n_rec, dtype=bool)  # emitted in the previous iteration (stamp T)
    flushed_prev = np.zeros(n_rec, dtype=bool)
    err_prev = np.zeros(n_out)
    lit = _LiteralHistory(has_hist, rp["cutoff_steps"]) if literal_history else None
    rec_cut = rp["cutoff_steps"]

    def deliver(P, i, T, inp, track_keys, ev_in_range, is_flush=False):
        """One event (one copy) with stamp T from presynaptic index i through all its synapses in P."""
        rows = P.targets_of[i]
        if rows.size == 0:
            return
        flat = rows * P.n_pre + i
        if track_keys:
            prev = P.key[flat]
            cut = rec_cut[rows]
            in_range = (prev >= 1) & (prev >= T - cut) & (prev <= T - 1)
            ev_in_range[rows[in_range]] = True
            if lit is not None:
                for j, tp in zip(rows, prev):
                    lit.erase_used(j, T, int(tp))
            P.key[flat] = T
        if is_flush:
            return  # numerically neutral: windows, traces and per-spike gradients carry over (SPEC 3.5)
        last = P.last[flat]
        had = last != 0
        if had.any():
            sub = flat[had]
            isi = (T - last[had]).astype(np.float64)
            n_win = np.minimum(P.cutoff[rows[had]], isi)
            dec = isi - n_win
            dm = dec > 0
            if dm.any():
                sd = sub[dm]
                rd = rows[had][dm]
                ex = dec[dm]
                P.z_bar[sd] *= _vpow(P.alpha[rd], ex)
                if not P.post_is_readout:
                    P.e_bar[sd] *= _vpow(P.kappa[rd], ex)
                    P.e_bar_reg[sd] *= _vpow(P.kappa_reg[rd], ex)
                    ad = P.adapt[rd]
                    if ad.any():
                        P.epsilon[sd[ad]] *= _vpow(P.rho[rd[ad]], ex[ad])
            if not each_step:
                _optimize(P, sub, T - 1, P.G[sub], o)
                P.G[sub] = 0.0
        P.last[flat] = T
        w = P.W[flat]
        P.W_last[flat] = w
        inp[rows] += w
        events.add(T, P.pre_node_ids[i], P.post_node_ids[rows], w.copy())

    for T in range(n_steps):
        t_e = T - 2  # entry completed at the start of this step

        # (a) learning signals into entry T-2 (ascending readout index)
        if t_e >= 0:
            Lt = L_hist[t_e]
            for k in range(n_out):
                Lt += B[:, k] * err_prev[k]

        # (b) gradient work for entry T-2
        if t_e >= 0:
            for P in all_projs:
                active = (P.last > 0) & ((t_e - (P.last - 1)) < P.cutoff_flat)
                sel = np.flatnonzero(active)
                if sel.size == 0:
                    continue
                rows = P.rows_flat[sel]
                p0 = (t_e - (P.last[sel] - 1)) == 0
                zz = P.zbuf[sel]
                P.zbuf[sel] = np.where(p0, 1.0, 0.0)
                zb = P.alpha[rows] * P.z_bar[sel] + zz
                P.z_bar[sel] = zb
                if P.post_is_readout:
                    g = err_hist[t_e][rows] * zb
                else:
                    psi = psi_hist[t_e][rows]
                    ad = P.adapt[rows]
                    eps_old = P.epsilon[sel]
                    e = np.where(ad, psi * (zb - P.beta[rows] * eps_old), psi * zb)
                    P.epsilon[sel] = np.where(ad, P.rho[rows] * eps_old + e, eps_old)
                    eb = P.kappa[rows] * P.e_bar[sel] + e
                    ebr = P.kappa_reg[rows] * P.e_bar_reg[sel] + P.one_minus_kappa_reg[rows] * e
                    P.e_bar[sel] = eb
                    P.e_bar_reg[sel] = ebr
                    g = L_hist[t_e][rows] * eb + F_hist[t_e][rows] * ebr
                if each_step:
                    _optimize(P, sel, t_e + 1, g, o)
                else:
                    P.G[sel] += g

        # (c) events with stamp T, ascending sender node id
        inp_rec = np.zeros(n_rec)
        inp_out = np.zeros(n_out)
        if extra_at[T]:
            for _ in range(extra_at[T]):
                inp_rec += 1000.0  # device spike, written into the ring buffer during iteration T-1
        ev_in_range = np.zeros(n_rec, dtype=bool)
        if T >= 1:
            for i in np.flatnonzero(par_emit[T - 1]):
                for _ in range(par_emit[T - 1, i]):
                    deliver(P_in, i, T, inp_rec, True, ev_in_range)
            for i in np.flatnonzero(spiked_prev | flushed_prev):
                fl = bool(flushed_prev[i])
                deliver(P_rec, i, T, inp_rec, True, ev_in_range, is_flush=fl)
                if not fl:
                    deliver(P_out, i, T, inp_out, False, None)

        # does history entry T-2 survive this step's events? (closed form of SPEC 1.5, see module doc)
        if T >= 2:
            remaining = np.zeros(n_rec, dtype=bool)
            any_T = np.zeros(n_rec, dtype=bool)
            other = np.zeros(n_rec, dtype=bool)
            for P in rec_projs:
                K = P.key.reshape(P.n_post, P.n_pre)
                remaining |= ((K >= 1) & (K >= T - rec_cut[:, None]) & (K <= T - 1)).any(axis=1)
                any_T |= (K == T).any(axis=1)
                other |= ((K >= 1) & (K != T)).any(axis=1)
            erased = (ev_in_range & ~remaining) | (any_T & ~other)
        else:
            erased = np.zeros(n_rec, dtype=bool)

        # (d) recurrent neurons, iteration T
        z_prev = z
        nd = ~is_delta
        # eprop_iaf / eprop_iaf_adapt
        r_nd = np.where(nd & (r > 0), r - 1, r)
        v_nd = (rp["P_i_in"] * i_in + inp_rec) + rp["P_v_m"] * v  # NEST order: P_i_in*i_in + z_in + P_v_m*v
        v_nd = _max_cpp(v_nd, V_min)
        # eprop_iaf_psc_delta(_adapt)
        nonref = r == 0
        v_d = (rp["P_i_in"] * (i_in + rp["I_e"]) + rp["P_v_m"] * v) + inp_rec
        use_b = nonref & rp["refractory_input"] & (refr_buf != 0.0)
        v_d = np.where(use_b, v_d + refr_buf, v_d)
        v_d = _max_cpp(v_d, V_min)
        ref_d = is_delta & ~nonref
        new_refr_buf = refr_buf.copy()
        acc = ref_d & rp["refractory_input"]
        if acc.any():
            new_refr_buf[acc] = refr_buf[acc] + inp_rec[acc] * _vexp(-r[acc] * dt / rp["tau_m"][acc])
        new_refr_buf[is_delta & use_b] = 0.0
        refr_buf = np.where(is_delta, new_refr_buf, refr_buf)
        r_d = np.where(ref_d, r - 1, r)
        v_d = np.where(nonref, v_d, v)  # refractory: v unchanged (clamped at V_reset)

        v = np.where(is_delta, v_d, v_nd)
        r = np.where(is_delta, r_d, r_nd)
        # adaptation: every step for eprop_iaf_adapt, only non-refractory steps for the psc_delta variant
        upd_a = is_adapt & (nd | nonref)
        a = np.where(upd_a, rp["P_adapt"] * a + z_prev, a)
        A = np.where(upd_a, V_th + beta_a * a, A)
        thr = np.where(is_adapt, A, V_th)

        psi = _surrogate(rp["sg_code"], r, v - thr, rp["surrogate_gradient_height"], rp["surrogate_gradient_width"])

        dyn = np.where(is_delta, v >= thr, (v >= thr) & (r == 0))
        if ias.any():
            ias_counter = np.where(ias, ias_counter - 1, ias_counter)
            forced = ias & (ias_counter == 0)
            ias_counter = np.where(forced, rp["ias_interval_steps"], ias_counter)
            spk = np.where(ias, forced, dyn)
        else:
            spk = dyn
        z = np.where(spk, 1.0, 0.0)
        v = np.where(spk & nd, v - V_th * 1.0, v)
        v = np.where(spk & is_delta, V_reset, v)
        r = np.where(spk, rp["R"], r)
        flush = (~spk) & (last_event_time > 0) & ((T - last_event_time) >= rp["flush_steps"])
        last_event_time = np.where(spk | flush, T, last_event_time)

        # history entry T and the firing-rate regulariser (only with eprop indegree > 0)
        psi_hist[T] = psi
        f_av = np.where(has_hist, rp["kappa_reg"] * f_av + one_minus_kappa_reg * z / dt, f_av)
        F_hist[T] = rp["c_reg"] * (f_av - f_target_step)

        # recordable learning signal: L of the first history entry with key >= T-2
        if lit is None:
            Lrec = np.zeros(n_rec)
            if T >= 2:
                ok = has_hist & ~erased
                Lrec[ok] = L_hist[T - 2][ok]
        else:
            Lrec = np.zeros(n_rec)
            for j in range(n_rec):
                lit.append(j, T)
                k = lit.first_key_at_least(j, T - 2)
                if k is not None and k >= 0:
                    Lrec[j] = L_hist[k, j]
                hist_dur[T, j] = dt * len(lit.entries[j])

        i_in = np.where(is_delta, 0.0, 0.0 + rp["I_e"])  # I_stim = 0; psc_delta adds I_e when used

        rec.rec(T, v, E_L, psi, Lrec, spk, is_adapt, a, A)

        # (d') readouts, iteration T
        if n_out:
            vo = (op["P_i_in"] * i_out + inp_out) + op["P_v_m"] * v_out
            v_out = _max_cpp(vo, op["V_min_rel"])
            y = v_out + op["E_L"]
            ys = ystar_it[T]
            err = y - ys
            lw = lw_it[T]
            ys = ys * lw
            y = y * lw
            err = err * lw
            err_hist[T] = err
            i_out = 0.0 + op["I_e"]
            rec.out(T, v_out, op["E_L"], y, ys, err)
            err_prev = err

        spiked_prev = spk
        flushed_prev = flush

    res = {
        **rec.rec_results(),
        "V_m_out": rec.V_m_out,
        "readout_signal": rec.readout_signal,
        "target_signal": rec.target_signal,
        "error_signal": rec.error_signal,
        "weight_events": events.arrays(),
        "W_in": P_in.weights_out(),
        "W_rec": P_rec.weights_out(),
        "W_out": P_out.weights_out(),
    }
    if literal_history:
        res["eprop_history_duration"] = hist_dur
    if return_internals:
        res.update(_psi_hist=psi_hist, _L_hist=L_hist, _F_hist=F_hist, _err_hist=err_hist, _has_hist=has_hist)
    return res

