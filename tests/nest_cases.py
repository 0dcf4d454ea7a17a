"""Builders of NEST's e-prop+ test setups (SPEC 6.1), as keyword arguments of ``run_eprop_plus``.

Plain helper module (no tests here).  The numpy random calls, their order and the float32 casts follow
NEST's ``testsuite/pytests/synapses/test_eprop_plasticity.py`` exactly (SPEC 6.1.1, 6.1.2), so the
weights and inputs are bit-identical to the ones NEST used for its reference numbers.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import numpy as np

REC_MODELS = ("eprop_iaf", "eprop_iaf_adapt", "eprop_iaf_psc_delta", "eprop_iaf_psc_delta_adapt")
SURROGATE_TYPES = ("piecewise_linear", "exponential", "fast_sigmoid_derivative", "arctan_derivative")

_RUN_KEYS = (
    "n_steps", "dt", "rec_models", "rec_params", "out_params", "W_in", "W_rec", "W_out", "B",
    "input_spike_times", "target_times", "target_values", "lw_times", "lw_values", "optimizer",
    "extra_rec_spike_times",
)


def find_shared():
    """The shared folder (``<repo>/../shared``, else ``$EPROP_SHARED``), or None if neither exists."""
    repo = Path(__file__).resolve().parents[1]
    candidates = [repo.parent / "shared"]
    env = os.environ.get("EPROP_SHARED")
    if env:
        candidates.append(Path(env))
    for cand in candidates:
        if (cand / "reference" / "nest_eprop_references.json").is_file():
            return cand
    return None


def load_references():
    """The parsed ``reference/nest_eprop_references.json``, or None if the shared folder is not found."""
    shared = find_shared()
    if shared is None:
        return None
    with open(shared / "reference" / "nest_eprop_references.json") as f:
        return json.load(f)


def run_kwargs(case, run_fn=None):
    """Only the entries of a case dict that are keyword arguments of ``run_eprop_plus`` (or ``run_fn``)."""
    keys = set(_RUN_KEYS)
    if run_fn is not None:
        keys = set(inspect.signature(run_fn).parameters)
    return {k: v for k, v in case.items() if k in keys}


def _generate_superimposed_sines(steps_sequence, periods):
    n_sines = len(periods)
    amplitudes = np.random.uniform(low=0.5, high=2.0, size=n_sines)
    phases = np.random.uniform(low=0.0, high=2.0 * np.pi, size=n_sines)
    sines = [
        A * np.sin(np.linspace(phi, phi + 2.0 * np.pi * (steps_sequence // T), steps_sequence))
        for A, phi, T in zip(amplitudes, phases, periods)
    ]
    superposition = sum(sines)
    superposition -= superposition[0]
    superposition /= max(np.abs(superposition).max(), 1e-6)
    return superposition


def sine_regression_case(neuron_model, optimizer_type):
    """SPEC 6.1.1: ``test_eprop_regression[neuron_model, optimizer_type]`` (sine-wave regression task)."""
    if neuron_model not in REC_MODELS:
        raise ValueError(f"unknown neuron model {neuron_model!r}")
    if optimizer_type not in ("gradient_descent", "adam"):
        raise ValueError(f"unknown optimizer {optimizer_type!r}")

    np.random.seed(1)

    group_size = 1
    n_iter = 5
    seq = 100
    task = n_iter * group_size * seq
    offset_gen, delay_in_rec, extension_sim = 1, 1, 3
    total_offset = offset_gen + delay_in_rec
    sim = task + total_offset + extension_sim
    step = 1.0

    n_in, n_rec, n_out = 100, 100, 1

    params_nrn_out = {
        "C_m": 1.0,
        "E_L": 0.0,
        "eprop_isi_trace_cutoff": 100.0,
        "I_e": 0.0,
        "tau_m": 30.0,
        "V_m": 0.0,
    }
    params_nrn_rec = {
        "C_m": 1.0,
        "c_reg": 300.0 / (seq * step),
        "E_L": 0.0,
        "eprop_isi_trace_cutoff": 100.0,
        "f_target": 10.0,
        "flush_event_send_interval": seq * step,
        "I_e": 0.0,
        "kappa": 0.97,
        "kappa_reg": 0.97,
        "surrogate_gradient_function": "piecewise_linear",
        "surrogate_gradient_height": 10.0,
        "surrogate_gradient_width": 0.03,
        "t_ref": 0.0,
        "tau_m": 30.0,
        "V_m": 0.0,
        "V_th": 0.03,
    }
    scale_factor = 1.0 - params_nrn_rec["kappa"]

    if neuron_model in ("eprop_iaf_psc_delta", "eprop_iaf_psc_delta_adapt"):
        params_nrn_rec["V_reset"] = -0.5
        params_nrn_rec["c_reg"] = 2.0 / (seq * step) / scale_factor**2
        params_nrn_rec["V_th"] = 0.5
    elif neuron_model == "eprop_iaf_adapt":
        params_nrn_rec["adapt_beta"] = 0.0174
        params_nrn_rec["adapt_tau"] = 2000.0
        params_nrn_rec["adaptation"] = 0.0

    dtype_weights = np.float32
    weights_in_rec = np.array(np.random.randn(n_in, n_rec).T / np.sqrt(n_in), dtype=dtype_weights)
    weights_rec_rec = np.array(np.random.randn(n_rec, n_rec).T / np.sqrt(n_rec), dtype=dtype_weights)
    np.fill_diagonal(weights_rec_rec, 0.0)
    weights_rec_out = np.array(np.random.randn(n_rec, n_out).T / np.sqrt(n_rec), dtype=dtype_weights) * scale_factor
    weights_out_rec = np.array(np.random.randn(n_rec, n_out) / np.sqrt(n_rec), dtype=dtype_weights)

    if neuron_model in ("eprop_iaf", "eprop_iaf_adapt"):
        weights_in_rec *= scale_factor
        weights_rec_rec *= scale_factor
        weights_out_rec *= scale_factor
    else:
        weights_out_rec /= scale_factor

    opt = {
        "type": optimizer_type,
        "batch_size": 1,
        "eta": 1e-4 * scale_factor**2,
        "optimize_each_step": True,
        "Wmin": -100.0,
        "Wmax": 100.0,
    }
    if optimizer_type == "adam":
        opt.update({"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7})

    input_spike_prob = 0.05
    input_spike_bools = (np.random.rand(seq, n_in) < input_spike_prob).swapaxes(0, 1)
    sequence_starts = np.arange(0.0, task * step, seq * step) + offset_gen * step
    input_spike_times = []
    for bools in input_spike_bools:
        times = np.arange(0.0, seq * step, step)[bools]
        input_spike_times.append(np.hstack([times + start for start in sequence_starts]).astype(np.float32))

    target = _generate_superimposed_sines(seq, [1000, 500, 333, 200])

    for w in (weights_in_rec, weights_rec_rec, weights_rec_out, weights_out_rec):
        assert w.dtype == np.float32

    return {
        "n_steps": sim,
        "dt": step,
        "rec_models": neuron_model,
        "rec_params": params_nrn_rec,
        "out_params": params_nrn_out,
        "W_in": weights_in_rec.astype(np.float64),
        "W_rec": weights_rec_rec.astype(np.float64),
        "W_out": weights_rec_out.astype(np.float64),
        "B": weights_out_rec.astype(np.float64),
        "input_spike_times": [t.astype(np.float64) for t in input_spike_times],
        "target_times": [np.arange(0.0, task * step, step) + total_offset * step],
        "target_values": [np.tile(target, n_iter * group_size)],
        "lw_times": np.array([total_offset * step]),
        "lw_values": np.array([1.0]),
        "optimizer": opt,
        # test bookkeeping
        "n_iter": n_iter,
        "seq": seq,
        "group_size": group_size,
        "n_out": n_out,
        # multimeter mm_out: start = total_offset, stop = total_offset + task -> iterations [2, 501]
        "record_start": total_offset,
        "record_stop": total_offset + task,
    }


def loss_from_readout(readout_signal, target_signal, case):
    """The test's loss vector (one value per training iteration) from recorded (n_steps, n_out) signals."""
    start, stop = case["record_start"], case["record_stop"]  # multimeter start/stop in steps
    n_out, n_iter, group, seq = case["n_out"], case["n_iter"], case["group_size"], case["seq"]
    y = np.asarray(readout_signal)[start:stop].T.reshape(n_out, n_iter, group, seq)
    ys = np.asarray(target_signal)[start:stop].T.reshape(n_out, n_iter, group, seq)
    return 0.5 * np.mean(np.sum((y - ys) ** 2, axis=3), axis=(0, 2))


def surrogate_case(sg_type):
    """SPEC 6.1.2: ``test_eprop_surrogate_gradients[sg_type]``; one input -> one eprop_iaf, no readout."""
    if sg_type not in SURROGATE_TYPES:
        raise ValueError(f"unknown surrogate gradient type {sg_type!r}")
    np.random.seed(1)  # as in the test (unused)
    params_nrn_rec = {
        "C_m": 1.0,
        "c_reg": 0.0,
        "E_L": 0.0,
        "I_e": 0.0,
        "surrogate_gradient_function": sg_type,
        "surrogate_gradient_height": 0.5,
        "surrogate_gradient_width": 1.0 / 1.7,
        "t_ref": 3.0,
        "V_m": 0.0,
        "V_th": 0.6,
    }
    n_steps = 20  # Simulate(20.0) at dt = 1
    return {
        "n_steps": n_steps,
        "dt": 1.0,
        "rec_models": "eprop_iaf",
        "rec_params": params_nrn_rec,
        "out_params": {},
        "W_in": np.array([[0.3]]),
        "W_rec": np.zeros((1, 1)),
        "W_out": np.zeros((0, 1)),
        "B": np.zeros((1, 0)),
        "input_spike_times": [np.array([1.0, 2.0, 3.0, 5.0, 9.0, 11.0])],
        "target_times": [],
        "target_values": [],
        "lw_times": np.array([]),
        "lw_values": np.array([]),
        "optimizer": {},
        # the multimeter records iterations 0..18 (iteration 19 is never collected); the test reads the last 5
        "record_iterations": np.arange(14, 19),
    }
