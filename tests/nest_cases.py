"""Builders of NEST's e-prop+ test setups (SPEC 6.1), as keyword arguments of ``run_eprop_plus``.

Plain helper module (no tests here).  The numpy random calls, their order and the float32 casts follow
NEST's ``testsuite/pytests/synapses/test_eprop_plasticity.py`` exactly (SPEC 6.1.1, 6.1.2), so the
weights and inputs are bit-identical to the ones NEST used for its reference numbers.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np

REC_MODELS = ("eprop_iaf", "eprop_iaf_adapt", "eprop_iaf_psc_delta", "eprop_iaf_psc_delta_adapt")
SURROGATE_TYPES = ("piecewise_linear", "exponential", "fast_sigmoid_derivative", "arctan_derivative")

_RUN_KEYS = (
    "n_steps", "dt", "rec_models", "rec_params", "out_params", "W_in", "W_rec", "W_out", "B",
    "input_spike_times", "target_times", "target_values", "lw_times", "lw_values", "optimizer",
    "extra_rec_spike_times",
)


REFERENCES = Path(__file__).resolve().parent / "data" / "nest_eprop_references.json"


def load_references():
    """The NEST reference numbers kept in the project (tests/data/nest_eprop_references.json, copied
    from NEST's test suite).  A missing file is an error, never a skip."""
    if not REFERENCES.is_file():
        raise FileNotFoundError(f"NEST reference numbers missing: {REFERENCES} (part of the repository)")
    with open(REFERENCES) as f:
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


# ======================================================================================================
# bsshslm_2020 family (SPEC 6.2): builders of keyword arguments of ``reference_bsshslm.run_bsshslm``
# ======================================================================================================

_BSSHSLM_RUN_KEYS = (
    "n_steps", "dt", "update_interval", "learning_window", "reset_on_update", "rec_models", "rec_params",
    "out_params", "W_in", "W_rec", "W_out", "B", "input_spike_times", "target_times", "target_values",
    "optimizer", "average_gradient", "tau_m_readout", "extra_rec_spike_times",
)


def bsshslm_run_kwargs(case):
    """Only the entries of a bsshslm case dict that are keyword arguments of ``run_bsshslm``."""
    return {k: v for k, v in case.items() if k in _BSSHSLM_RUN_KEYS}


def bsshslm_regression_case():
    """SPEC 6.2.1: ``test_eprop_regression`` of ``test_eprop_bsshslm_2020_plasticity.py`` (sine waves vs TF)."""
    np.random.seed(1)

    batch_size = 1
    n_iter = 5
    seq = 1000
    learning_window = seq
    task = n_iter * batch_size * seq
    offset_gen, delay_in_rec, delay_rec_out, delay_out_norm, extension_sim = 1, 1, 1, 1, 1
    total_offset = offset_gen + delay_in_rec + delay_rec_out + delay_out_norm
    sim = task + total_offset + extension_sim
    step = 1.0

    n_in, n_rec, n_out = 100, 100, 1

    params_nrn_out = {
        "C_m": 1.0,
        "E_L": 0.0,
        "I_e": 0.0,
        "loss": "mean_squared_error",
        "regular_spike_arrival": False,
        "tau_m": 30.0,
        "V_m": 0.0,
    }
    params_nrn_rec = {
        "C_m": 1.0,
        "c_reg": 300.0,
        "E_L": 0.0,
        "f_target": 10.0,
        "flush_event_send_interval": seq * step,
        "I_e": 0.0,
        "regular_spike_arrival": False,
        "surrogate_gradient_function": "piecewise_linear",
        "surrogate_gradient_height": 0.3,
        "surrogate_gradient_width": 1.0,
        "t_ref": 0.0,
        "tau_m": 30.0,
        "V_m": 0.0,
        "V_th": 0.03,
    }
    params_nrn_rec["surrogate_gradient_height"] /= params_nrn_rec["V_th"]
    params_nrn_rec["surrogate_gradient_width"] *= np.abs(params_nrn_rec["V_th"])

    dtype_weights = np.float32
    weights_in_rec = np.array(np.random.randn(n_in, n_rec).T / np.sqrt(n_in), dtype=dtype_weights)
    weights_rec_rec = np.array(np.random.randn(n_rec, n_rec).T / np.sqrt(n_rec), dtype=dtype_weights)
    np.fill_diagonal(weights_rec_rec, 0.0)
    weights_rec_out = np.array(np.random.randn(n_rec, n_out).T / np.sqrt(n_rec), dtype=dtype_weights)
    weights_out_rec = np.array(np.random.randn(n_rec, n_out) / np.sqrt(n_rec), dtype=dtype_weights)

    opt = {"type": "gradient_descent", "batch_size": batch_size, "eta": 1e-4, "Wmin": -100.0, "Wmax": 100.0}

    input_spike_prob = 0.05
    input_spike_bools = (np.random.rand(seq, n_in) < input_spike_prob).swapaxes(0, 1)
    input_spike_bools[:, 0] = 0
    sequence_starts = np.arange(0.0, task * step, seq * step) + offset_gen * step
    input_spike_times = []
    for bools in input_spike_bools:
        times = np.arange(0.0, seq * step, step)[bools]
        input_spike_times.append(np.hstack([times + start for start in sequence_starts]).astype(np.float32))

    target = _generate_superimposed_sines(seq, [1000, 500, 333, 200])

    return {
        "n_steps": sim,
        "dt": step,
        "update_interval": seq * step,
        "learning_window": learning_window * step,
        "reset_on_update": True,
        "rec_models": "eprop_iaf_bsshslm_2020",
        "rec_params": params_nrn_rec,
        "out_params": params_nrn_out,
        "W_in": weights_in_rec.astype(np.float64),
        "W_rec": weights_rec_rec.astype(np.float64),
        "W_out": weights_rec_out.astype(np.float64),
        "B": weights_out_rec.astype(np.float64),
        "input_spike_times": [t.astype(np.float64) for t in input_spike_times],
        "target_times": [np.arange(0.0, task * step, step) + total_offset * step],
        "target_values": [np.tile(target, n_iter * batch_size)],
        "optimizer": opt,
        "average_gradient": False,
        "tau_m_readout": params_nrn_out["tau_m"],
        # test bookkeeping: multimeter mm_out start = total_offset, stop = total_offset + task
        "n_iter": n_iter,
        "seq": seq,
        "batch_size": batch_size,
        "n_out": n_out,
        "record_start": total_offset,
        "record_stop": total_offset + task,
    }


def bsshslm_regression_loss(readout_signal, target_signal, case):
    """SPEC 6.2.1 loss per iteration: 0.5 * mean_{out,batch} sum_t (y - y*)^2 over multimeter iterations 4..5003."""
    start, stop = case["record_start"], case["record_stop"]
    shape = (case["n_out"], case["n_iter"], case["batch_size"], case["seq"])
    y = np.asarray(readout_signal)[start:stop].T.reshape(shape)
    ys = np.asarray(target_signal)[start:stop].T.reshape(shape)
    return 0.5 * np.mean(np.sum((y - ys) ** 2, axis=3), axis=(0, 2))


def _generate_evidence_accumulation_input_output(batch_size, n_in, steps, inp):
    n_pop_nrn = n_in // inp["n_symbols"]

    prob_choices = np.array([inp["prob_group"], 1 - inp["prob_group"]], dtype=np.float32)
    idx = np.random.choice([0, 1], batch_size)
    probs = np.zeros((batch_size, 2), dtype=np.float32)
    probs[:, 0] = prob_choices[idx]
    probs[:, 1] = prob_choices[1 - idx]

    batched_cues = np.zeros((batch_size, inp["n_cues"]), dtype=int)
    for b_idx in range(batch_size):
        batched_cues[b_idx, :] = np.random.choice([0, 1], inp["n_cues"], p=probs[b_idx])

    input_spike_probs = np.zeros((batch_size, steps["sequence"], n_in))

    for b_idx in range(batch_size):
        for c_idx in range(inp["n_cues"]):
            cue = batched_cues[b_idx, c_idx]

            step_start = c_idx * (steps["cue"] + steps["spacing"]) + steps["spacing"]
            step_stop = step_start + steps["cue"]

            pop_nrn_start = cue * n_pop_nrn
            pop_nrn_stop = pop_nrn_start + n_pop_nrn

            input_spike_probs[b_idx, step_start:step_stop, pop_nrn_start:pop_nrn_stop] = inp["spike_prob"]

    input_spike_probs[:, -steps["recall"]:, 2 * n_pop_nrn: 3 * n_pop_nrn] = inp["spike_prob"]
    input_spike_probs[:, :, 3 * n_pop_nrn:] = inp["spike_prob"] / 4.0
    input_spike_bools = input_spike_probs > np.random.rand(input_spike_probs.size).reshape(input_spike_probs.shape)
    input_spike_bools[:, 0, :] = 0

    target_cues = np.zeros(batch_size, dtype=int)
    target_cues[:] = np.sum(batched_cues, axis=1) > int(inp["n_cues"] / 2)

    return input_spike_bools, target_cues


def bsshslm_classification_case(batch_size, n_iter=5):
    """SPEC 6.2.2: ``test_eprop_classification[batch_size]`` (evidence accumulation, 50 regular + 50 adaptive).

    ``n_iter`` other than 5 is a shortened variant for quick checks: the random draws of the weights are the
    same, then ``n_iter`` input draws follow (the first ``n_iter`` of the full case).
    """
    if batch_size < 1:
        raise ValueError("batch_size >= 1 required")
    np.random.seed(1)

    inp = {"n_symbols": 4, "n_cues": 7, "prob_group": 0.3, "spike_prob": 0.04}
    steps = {"cue": 100, "spacing": 50, "bg_noise": 1050, "recall": 150}
    steps["cues"] = inp["n_cues"] * (steps["cue"] + steps["spacing"])
    steps["sequence"] = steps["cues"] + steps["bg_noise"] + steps["recall"]
    steps["learning_window"] = steps["recall"]
    steps["task"] = n_iter * batch_size * steps["sequence"]
    steps.update({"offset_gen": 1, "delay_in_rec": 1, "delay_rec_out": 1, "delay_out_norm": 1, "extension_sim": 1})
    steps["delays"] = steps["delay_in_rec"] + steps["delay_rec_out"] + steps["delay_out_norm"]
    steps["total_offset"] = steps["offset_gen"] + steps["delays"]
    steps["sim"] = steps["task"] + steps["total_offset"] + steps["extension_sim"]
    step = 1.0
    duration = {key: value * step for key, value in steps.items()}

    n_in, n_ad, n_reg, n_out = 40, 50, 50, 2
    n_rec = n_ad + n_reg

    params_nrn_out = {
        "C_m": 1.0,
        "E_L": 0.0,
        "I_e": 0.0,
        "loss": "cross_entropy",
        "regular_spike_arrival": False,
        "tau_m": 20.0,
        "V_m": 0.0,
    }
    params_nrn_reg = {
        "C_m": 1.0,
        "c_reg": 300.0,
        "E_L": 0.0,
        "f_target": 10.0,
        "flush_event_send_interval": duration["sequence"],
        "I_e": 0.0,
        "regular_spike_arrival": True,
        "surrogate_gradient_function": "piecewise_linear",
        "surrogate_gradient_height": 0.3,
        "surrogate_gradient_width": 1.0,
        "t_ref": 5.0,
        "tau_m": 20.0,
        "V_m": 0.0,
        "V_th": 0.6,
    }
    params_nrn_reg["surrogate_gradient_height"] /= params_nrn_reg["V_th"]
    params_nrn_reg["surrogate_gradient_width"] *= np.abs(params_nrn_reg["V_th"])
    params_nrn_ad = dict(params_nrn_reg)
    params_nrn_ad["adapt_tau"] = 2000.0
    params_nrn_ad["adaptation"] = 0.0
    params_nrn_ad["adapt_beta"] = 1.7 * (
        (1.0 - np.exp(-step / params_nrn_ad["adapt_tau"])) / (1.0 - np.exp(-step / params_nrn_ad["tau_m"]))
    )

    def calculate_glorot_dist(fan_in, fan_out):
        glorot_scale = 1.0 / max(1.0, (fan_in + fan_out) / 2.0)
        glorot_limit = np.sqrt(3.0 * glorot_scale)
        return np.random.uniform(low=-glorot_limit, high=glorot_limit, size=(fan_in, fan_out))

    dtype_weights = np.float32
    weights_in_rec = np.array(np.random.randn(n_in, n_rec).T / np.sqrt(n_in), dtype=dtype_weights)
    weights_rec_rec = np.array(np.random.randn(n_rec, n_rec).T / np.sqrt(n_rec), dtype=dtype_weights)
    np.fill_diagonal(weights_rec_rec, 0.0)
    weights_rec_out = np.array(calculate_glorot_dist(n_rec, n_out).T, dtype=dtype_weights)
    weights_out_rec = np.array(np.random.randn(n_rec, n_out), dtype=dtype_weights)

    opt = {
        "type": "adam",
        "batch_size": batch_size,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-8,
        "eta": 5e-3,
        "Wmin": -100.0,
        "Wmax": 100.0,
    }

    input_spike_bools_list = []
    target_cues_list = []
    for _ in range(n_iter):
        input_spike_bools, target_cues = _generate_evidence_accumulation_input_output(batch_size, n_in, steps, inp)
        input_spike_bools_list.append(input_spike_bools)
        target_cues_list.extend(target_cues)

    input_spike_bools_arr = np.array(input_spike_bools_list).reshape(steps["task"], n_in)
    timeline_task = np.arange(0.0, duration["task"], step) + duration["offset_gen"]
    input_spike_times = [
        timeline_task[input_spike_bools_arr[:, nrn_in_idx]].astype(np.float32) for nrn_in_idx in range(n_in)
    ]

    target_rate_changes = np.zeros((n_out, batch_size * n_iter))
    target_rate_changes[np.array(target_cues_list), np.arange(batch_size * n_iter)] = 1

    # the two recurrent populations (regular first), as per-neuron parameter arrays
    rec_models = ["eprop_iaf_bsshslm_2020"] * n_reg + ["eprop_iaf_adapt_bsshslm_2020"] * n_ad
    rec_params = dict(params_nrn_reg)
    rec_params["adapt_tau"] = np.array([10.0] * n_reg + [params_nrn_ad["adapt_tau"]] * n_ad)  # 10.0: NEST default
    rec_params["adapt_beta"] = np.array([1.0] * n_reg + [params_nrn_ad["adapt_beta"]] * n_ad)  # 1.0: NEST default
    rec_params["adaptation"] = 0.0

    return {
        "n_steps": steps["sim"],
        "dt": step,
        "update_interval": duration["sequence"],
        "learning_window": duration["learning_window"],
        "reset_on_update": True,
        "rec_models": rec_models,
        "rec_params": rec_params,
        "out_params": params_nrn_out,
        "W_in": weights_in_rec.astype(np.float64),
        "W_rec": weights_rec_rec.astype(np.float64),
        "W_out": weights_rec_out.astype(np.float64),
        "B": weights_out_rec.astype(np.float64),
        "input_spike_times": [t.astype(np.float64) for t in input_spike_times],
        "target_times": [np.arange(0.0, duration["task"], duration["sequence"]) + duration["total_offset"]
                         for _ in range(n_out)],
        "target_values": [target_rate_changes[k] for k in range(n_out)],
        "optimizer": opt,
        "average_gradient": True,
        "tau_m_readout": params_nrn_out["tau_m"],
        # test bookkeeping
        "n_iter": n_iter,
        "seq": steps["sequence"],
        "batch_size": batch_size,
        "n_out": n_out,
        "learning_window_steps": steps["learning_window"],
        "record_start": steps["total_offset"],
        "record_stop": steps["total_offset"] + steps["task"],
        "target_cues": np.array(target_cues_list),
    }


def bsshslm_classification_loss(readout_signal, target_signal, case):
    """SPEC 6.2.2 loss per iteration: -mean_{batch,t} sum_k y*_k log y_k over the last LW steps of each sequence."""
    start, stop = case["record_start"], case["record_stop"]
    shape = (case["n_out"], case["n_iter"], case["batch_size"], case["seq"])
    y = np.asarray(readout_signal)[start:stop].T.reshape(shape)[:, :, :, -case["learning_window_steps"]:]
    ys = np.asarray(target_signal)[start:stop].T.reshape(shape)[:, :, :, -case["learning_window_steps"]:]
    return -np.mean(np.sum(ys * np.log(y), axis=0), axis=(1, 2))


def bsshslm_history_cleaning_case(model):
    """SPEC 6.2.3: ``test_eprop_history_cleaning[model]``; 3 generators -> 3 parrots -> 1 ``model`` neuron.

    Returns the common description ('model', 'n_steps', 'update_interval', 'input_spike_times',
    'record_iterations') usable with ``reference_bsshslm.eprop_history_duration_bsshslm``; for the recurrent
    model also the keyword arguments of ``run_bsshslm`` (default neuron parameters, weight 1.0, no readout).
    The NEST test leaves ``eprop_learning_window`` at its default; it has no influence on the history, the run
    uses LW = T.
    """
    if model not in ("eprop_iaf_bsshslm_2020", "eprop_iaf_adapt_bsshslm_2020", "eprop_readout_bsshslm_2020"):
        raise ValueError(f"unknown model {model!r}")
    input_spike_times = [np.array([10.0, 20.0, 50.0, 60.0]), np.array([10.0, 30.0, 50.0, 90.0]),
                         np.array([40.0, 60.0])]
    case = {
        "model": model,
        "n_steps": 110,  # Simulate(110.0)
        "dt": 1.0,
        "update_interval": 20.0,
        "input_spike_times": input_spike_times,
        "record_iterations": np.arange(0, 109),  # the sample of the last iteration is not collected
    }
    if model != "eprop_readout_bsshslm_2020":
        case.update({
            "learning_window": 20.0,
            "rec_models": model,
            "rec_params": {},
            "out_params": {},
            "W_in": np.ones((1, 3)),
            "W_rec": np.zeros((1, 1)),
            "W_out": np.zeros((0, 1)),
            "B": np.zeros((1, 0)),
            "target_times": [],
            "target_values": [],
            "optimizer": {},
        })
    return case
