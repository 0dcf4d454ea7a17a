"""Tests of the time-driven NumPy oracle ``eprop_dist/reference_bsshslm.py`` (the ``*_bsshslm_2020`` family).

(1) NEST's and TensorFlow's reference losses of ``test_eprop_regression`` (SPEC 6.2.1) and NEST's
    ``eprop_history_duration`` references (SPEC 6.2.3);
(2) the evidence-accumulation case (SPEC 6.2.2, references withheld) for batch 1 and 2: invariants only;
(3) the two synapse engines (eager / literal per-synapse NEST algorithm) agree bit for bit on random networks;
(4) hand-checkable unit tests of the quirks: reset at interval start, dropped first-step spikes, one-step readout
    lag, learning-window zeroing, learning-signal shift 3, trigger-time gradients recomputed independently,
    average_gradient, batching, Adam catch-up, softmax.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

_REPO = Path(__file__).resolve().parents[2]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# Load from the files so that the tests do not depend on the compiled parts of the package.
rb = _load("_eprop_reference_bsshslm_oracle", _REPO / "eprop_dist" / "reference_bsshslm.py")
nc = _load("_eprop_nest_cases_bsshslm", _REPO / "tests" / "nest_cases.py")

_REFS = nc.load_references()
needs_refs = pytest.mark.nest_reference      # tests/data; a missing file fails at import

_REC = "eprop_iaf_bsshslm_2020"
_ADA = "eprop_iaf_adapt_bsshslm_2020"
_OUT_KEYS = ("V_m", "surrogate_gradient", "learning_signal", "spikes", "adaptation", "V_th_adapt",
             "eprop_history_duration", "V_m_out", "readout_signal", "readout_signal_unnorm", "target_signal",
             "error_signal", "eprop_history_duration_out", "W_in", "W_rec", "W_out")


def _cpp_rem(a, b):
    r = abs(a) % b
    return -r if a < 0 else r


def _run(**kw):
    base = dict(dt=1.0, reset_on_update=True, rec_params={}, out_params={}, W_out=None, B=None, target_times=None,
                target_values=None, optimizer={})
    base.update(kw)
    n_rec = np.asarray(base["W_in"]).shape[0]
    if base["W_out"] is None:
        base["W_out"] = np.zeros((0, n_rec))
    n_out = np.asarray(base["W_out"]).shape[0]
    if base["B"] is None:
        base["B"] = np.zeros((n_rec, n_out))
    if "W_rec" not in base:
        base["W_rec"] = np.zeros((n_rec, n_rec))
    if base["target_times"] is None:
        base["target_times"] = [[] for _ in range(n_out)]
        base["target_values"] = [[] for _ in range(n_out)]
    return rb.run_bsshslm(**base)


def _assert_same(a, b):
    for key in _OUT_KEYS:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for key in ("stamp", "sender", "target", "weight"):
        np.testing.assert_array_equal(a["weight_events"][key], b["weight_events"][key], err_msg=key)


def _random_net(seed, n_steps=None):
    """A small random network exercising mixed models, CE/MSE, Adam/GD, batches, LW < T, multiplicities."""
    rng = np.random.default_rng(seed)
    n_in, n_rec = int(rng.integers(3, 7)), int(rng.integers(4, 8))
    n_out = int(rng.integers(1, 4))
    T = int(rng.choice([6, 9, 13]))
    LW = int(rng.integers(1, T + 1))
    n_steps = n_steps or int(T * rng.integers(4, 7) + rng.integers(0, 5))
    models = list(rng.choice(rb.REC_MODELS_BSSHSLM, n_rec))
    W_in = rng.uniform(-0.4, 1.2, (n_rec, n_in)) * (rng.random((n_rec, n_in)) < 0.7)
    W_rec = rng.uniform(-0.5, 0.8, (n_rec, n_rec)) * (rng.random((n_rec, n_rec)) < 0.5)
    W_out = rng.uniform(-0.6, 0.6, (n_out, n_rec)) * (rng.random((n_out, n_rec)) < 0.8)
    B = rng.normal(0, 1, (n_rec, n_out))
    ins = [np.sort(rng.integers(1, n_steps, rng.integers(2, 3 * n_steps // 4))).astype(float) for _ in range(n_in)]
    loss = list(rng.choice(rb.LOSSES, n_out)) if rng.random() < 0.3 else str(rng.choice(rb.LOSSES))
    rec_params = dict(
        E_L=0.0, C_m=1.0, V_th=float(rng.uniform(0.3, 0.8)), tau_m=rng.uniform(5, 25, n_rec),
        t_ref=rng.choice([0.0, 1.0, 3.0], n_rec), c_reg=rng.uniform(0, 50, n_rec), f_target=rng.uniform(0, 30),
        adapt_beta=rng.uniform(0, 0.5, n_rec), adapt_tau=rng.uniform(5, 200, n_rec),
        regular_spike_arrival=list(rng.random(n_rec) < 0.5),
        surrogate_gradient_function=list(rng.choice(rb.SURROGATE_GRADIENT_FUNCTIONS, n_rec)),
        surrogate_gradient_height=rng.uniform(0.2, 1.0, n_rec), surrogate_gradient_width=rng.uniform(0.2, 1.0, n_rec),
    )
    out_params = dict(E_L=float(rng.choice([0.0, -0.3])), C_m=1.0, tau_m=float(rng.uniform(5, 30)), loss=loss,
                      regular_spike_arrival=bool(rng.random() < 0.5))
    if rng.random() < 0.5:
        optimizer = dict(type="adam", eta=float(rng.uniform(0.01, 0.1)), batch_size=int(rng.integers(1, 4)),
                         epsilon=1e-8, Wmin=-3.0, Wmax=3.0)
    else:
        optimizer = dict(type="gradient_descent", eta=float(rng.uniform(0.05, 0.5)),
                         batch_size=int(rng.integers(1, 4)), Wmin=-2.0, Wmax=2.5)
    return dict(
        n_steps=n_steps, update_interval=float(T), learning_window=float(LW),
        reset_on_update=bool(rng.random() < 0.7), rec_models=models, rec_params=rec_params, out_params=out_params,
        W_in=W_in, W_rec=W_rec, W_out=W_out, B=B, input_spike_times=ins,
        target_times=[np.arange(1, n_steps, 1.0) for _ in range(n_out)],
        target_values=[rng.normal(0, 1, n_steps - 1) for _ in range(n_out)],
        optimizer=optimizer, average_gradient=bool(rng.random() < 0.5),
        tau_m_readout=float(rng.uniform(5, 30)),
        extra_rec_spike_times=[float(n_steps - 4)] if rng.random() < 0.5 else None,
    )


# ------------------------------------------------------------------------------------------------------
# (1) NEST / TensorFlow references
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def regression_run():
    case = nc.bsshslm_regression_case()
    out = rb.run_bsshslm(**nc.bsshslm_run_kwargs(case), record_weight_events=False)
    return case, out


@needs_refs
def test_regression_loss_matches_nest_and_tensorflow(regression_run):
    case, out = regression_run
    loss = nc.bsshslm_regression_loss(out["readout_signal"], out["target_signal"], case)
    ref = _REFS["bsshslm_2020_regression"]
    np.testing.assert_allclose(loss, np.array(ref["loss_nest"]), rtol=1e-8, atol=0)
    np.testing.assert_allclose(loss, np.array(ref["loss_tensorflow"]), rtol=ref.get("rtol_vs_tensorflow", 1e-7),
                               atol=0)


def test_regression_case_structure(regression_run):
    case, out = regression_run
    assert case["n_steps"] == 5005
    for name in ("W_in", "W_rec", "W_out", "B"):
        w = case[name]
        np.testing.assert_array_equal(w, w.astype(np.float32).astype(np.float64))
    assert np.all(np.diag(case["W_rec"]) == 0)
    # input step 0 of every sequence is zeroed -> no input time 1 + k*1000 (it would be dropped anyway)
    for times in case["input_spike_times"]:
        assert not np.any((times - 1) % 1000 == 0)
    assert out["spikes"].sum() > 0
    # the target of sample n of sequence k is used in iteration 4 + 1000k + n
    y_star = out["target_signal"]
    np.testing.assert_array_equal(y_star[4:5004, 0], case["target_values"][0])
    np.testing.assert_array_equal(y_star[:4, 0], 0.0)


@needs_refs
@pytest.mark.parametrize("model", ["eprop_iaf_bsshslm_2020", "eprop_readout_bsshslm_2020"])
def test_history_cleaning_matches_nest(model):
    expected = np.array(_REFS["bsshslm_2020_history_cleaning"][model], dtype=float)
    case = nc.bsshslm_history_cleaning_case(model)
    got = rb.eprop_history_duration_bsshslm(model=model, n_steps=case["n_steps"],
                                            update_interval=case["update_interval"],
                                            input_spike_times=case["input_spike_times"])
    np.testing.assert_allclose(got[case["record_iterations"]], expected, rtol=1e-8)
    if model != "eprop_readout_bsshslm_2020":
        kw = {k: v for k, v in case.items() if k not in ("model", "record_iterations")}
        for engine in ("eager", "literal"):
            out = rb.run_bsshslm(**kw, engine=engine)
            assert out["spikes"].sum() == 0
            np.testing.assert_allclose(out["eprop_history_duration"][case["record_iterations"], 0], expected,
                                       rtol=1e-8)


# ------------------------------------------------------------------------------------------------------
# (2) evidence accumulation (SPEC 6.2.2): invariants
# ------------------------------------------------------------------------------------------------------


def _check_classification(case, out):
    T, LW = case["seq"], case["learning_window_steps"]
    n = case["n_steps"]
    assert T == 2250 and LW == 150
    y, ys, err = out["readout_signal"], out["target_signal"], out["error_signal"]
    assert y.shape == (n, 2)
    t = np.arange(n)
    in_lw = np.array([_cpp_rem(int(x) - 4, T) >= T - LW for x in t])
    # outside the learning window everything is zeroed
    np.testing.assert_array_equal(y[~in_lw], 0.0)
    np.testing.assert_array_equal(ys[~in_lw], 0.0)
    np.testing.assert_array_equal(err[~in_lw], 0.0)
    # inside: softmax of the previous step's voltages, sums to 1, error = y - y*
    assert np.all(np.isfinite(y)) and np.all(y[in_lw] > 0)
    np.testing.assert_allclose(y[in_lw].sum(axis=1), 1.0, rtol=0, atol=1e-14)
    np.testing.assert_array_equal(err[in_lw], y[in_lw] - ys[in_lw])
    u = out["readout_signal_unnorm"]
    np.testing.assert_array_equal(u, np.vectorize(math.exp)(out["V_m_out"]))
    idx = np.flatnonzero(in_lw)
    np.testing.assert_allclose(y[idx, 0], u[idx - 1, 0] / (u[idx - 1, 1] + u[idx - 1, 0]), rtol=1e-15)
    # one-hot target of the current sequence
    np.testing.assert_array_equal(ys[in_lw].sum(axis=1), 1.0)
    seq_of = (idx - 4) // T
    np.testing.assert_array_equal(ys[idx, 1], case["target_cues"][seq_of].astype(float))
    loss = nc.bsshslm_classification_loss(y, ys, case)
    assert loss.shape == (case["n_iter"],) and np.all(np.isfinite(loss)) and np.all(loss > 0)
    # adaptive neurons (the last 50) record adaptation, the regular ones do not
    assert np.all(np.isnan(out["adaptation"][:, :50])) and np.all(np.isfinite(out["adaptation"][:, 50:]))
    assert out["spikes"][:, :50].sum() > 0 and out["spikes"][:, 50:].sum() > 0
    # learning happened (a weight may stay unchanged where its gradient is tiny: with Adam (epsilon 1e-8) a
    # gradient of 1e-26 from a spike far before the recall window moves the weight by less than an ulp)
    assert (out["W_out"] != case["W_out"]).mean() > 0.5
    assert (out["W_in"] != case["W_in"]).mean() > 0.5
    return loss


@pytest.mark.parametrize("batch_size", [1, 2])
def test_classification_case_runs_with_sane_outputs(batch_size):
    case = nc.bsshslm_classification_case(batch_size)
    assert case["n_steps"] == 5 * batch_size * 2250 + 5
    for name in ("W_in", "W_rec", "W_out", "B"):
        w = case[name]
        np.testing.assert_array_equal(w, w.astype(np.float32).astype(np.float64))
    lim = math.sqrt(3.0 / 51.0)
    assert np.all(np.abs(case["W_out"]) <= lim)
    out = rb.run_bsshslm(**nc.bsshslm_run_kwargs(case), record_weight_events=False)
    _check_classification(case, out)


def test_classification_short_is_deterministic_and_prefix_of_full_draws():
    short = nc.bsshslm_classification_case(2, n_iter=1)
    full = nc.bsshslm_classification_case(2)
    for name in ("W_in", "W_rec", "W_out", "B"):
        np.testing.assert_array_equal(short[name], full[name])
    assert list(short["target_cues"]) == list(full["target_cues"][:2])
    kw = nc.bsshslm_run_kwargs(short)
    a = rb.run_bsshslm(**kw)
    b = rb.run_bsshslm(**kw)
    _assert_same(a, b)
    # batch 2: interval 0's gradient is only accumulated at idx 1 (no weight change at the first update)
    # and the mean of two intervals is applied at idx 2 (> 2 * 2250 + shift: not reached in 4505 steps)
    np.testing.assert_array_equal(a["W_in"], short["W_in"])
    np.testing.assert_array_equal(a["W_out"], short["W_out"])


# ------------------------------------------------------------------------------------------------------
# (3) the two engines agree bit for bit
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_eager_equals_literal_on_random_networks(seed):
    kw = _random_net(seed)
    a = rb.run_bsshslm(**kw, engine="eager")
    b = rb.run_bsshslm(**kw, engine="literal")
    _assert_same(a, b)
    assert a["spikes"].sum() > 0


def test_eager_equals_literal_classification_like():
    """Mixed models, CE with 2 readouts, Adam, average_gradient, batch 2, LW < T, several intervals."""
    rng = np.random.default_rng(7)
    n_in, n_rec, T = 8, 10, 40
    n_steps = 6 * T + 5
    models = [_REC] * 5 + [_ADA] * 5
    ins = [np.sort(rng.choice(np.arange(1, n_steps), 20, replace=False)).astype(float) for _ in range(n_in)]
    kw = dict(
        n_steps=n_steps, update_interval=float(T), learning_window=15.0, rec_models=models,
        rec_params=dict(C_m=1.0, E_L=0.0, V_th=0.6, t_ref=5.0, tau_m=20.0, c_reg=300.0, f_target=10.0,
                        surrogate_gradient_height=0.5, surrogate_gradient_width=0.6,
                        adapt_tau=np.array([10.0] * 5 + [2000.0] * 5), adapt_beta=np.array([1.0] * 5 + [0.2] * 5)),
        out_params=dict(C_m=1.0, E_L=0.0, tau_m=20.0, loss="cross_entropy", regular_spike_arrival=False),
        W_in=rng.normal(0, 1.0, (n_rec, n_in)), W_rec=rng.normal(0, 0.4, (n_rec, n_rec)),
        W_out=rng.uniform(-0.3, 0.3, (2, n_rec)), B=rng.normal(0, 1, (n_rec, 2)), input_spike_times=ins,
        target_times=[np.arange(0, n_steps, T) + 4.0] * 2,
        target_values=[np.array([1, 0, 1, 1, 0, 0, 1.0])[: len(np.arange(0, n_steps, T))],
                       1 - np.array([1, 0, 1, 1, 0, 0, 1.0])[: len(np.arange(0, n_steps, T))]],
        optimizer=dict(type="adam", batch_size=2, eta=5e-3, epsilon=1e-8), average_gradient=True,
    )
    a = rb.run_bsshslm(**kw, engine="eager")
    b = rb.run_bsshslm(**kw, engine="literal")
    _assert_same(a, b)
    assert a["spikes"][:, 5:].sum() > 0


def test_window_before_first_history_entry_eager_raises_literal_runs():
    """A recurrent spike in iteration 0 (stamp 1) opens a window at entry 1, which the first interval start erases;
    NEST then reads a shifted history.  The eager engine refuses, the literal one emulates lower_bound."""
    kw = dict(n_steps=40, update_interval=10.0, learning_window=10.0, rec_models=_REC,
              rec_params=dict(E_L=0.0, C_m=1.0, V_th=0.5, V_m=0.9, t_ref=0.0, c_reg=1.0),
              W_in=np.array([[0.8], [0.0]]), W_rec=np.array([[0.0, 0.0], [0.7, 0.0]]),
              input_spike_times=[np.array([4.0, 14.0, 24.0])], optimizer=dict(eta=0.1))
    with pytest.raises(NotImplementedError):
        _run(**kw)
    out = _run(**kw, engine="literal")
    assert out["spikes"][0, 0] == 1


# ------------------------------------------------------------------------------------------------------
# (4) hand-checkable unit tests
# ------------------------------------------------------------------------------------------------------


def test_reset_at_interval_start_and_membrane_by_hand():
    E_L, C_m, tau_m, I_e, w, T = -60.0, 2.0, 8.0, 0.5, 0.9, 7
    times = np.array([3.0, 5.0, 5.0, 8.0, 12.0, 15.0])  # duplicate: two copies, received twice
    n = 30
    alpha = math.exp(-1.0 / tau_m)
    p_i = tau_m / C_m * (1.0 - alpha)
    for reset in (True, False):
        for rsa in (True, False):
            out = _run(n_steps=n, update_interval=float(T), learning_window=float(T), reset_on_update=reset,
                       rec_models=_REC, rec_params=dict(E_L=E_L, C_m=C_m, tau_m=tau_m, I_e=I_e, V_th=1000.0,
                                                        V_m=-58.0, regular_spike_arrival=rsa),
                       W_in=np.array([[w]]), input_spike_times=[times])
            p_z = 1.0 if rsa else 1.0 - alpha
            # parrot stamp = time + 1, integrated in iteration time + 1, dropped if (stamp - 2) % T == 0
            z_in = {}
            for tm in times:
                s = int(tm) + 1
                if (s - 2) % T != 0:
                    z_in[s] = z_in.get(s, 0.0) + w
            assert 9 not in z_in and 16 not in z_in and 6 in z_in  # 8+1 = 2+7 and 15+1 = 2+14 dropped
            v, i_in, expected = 2.0, 0.0, []
            for t in range(n):
                if reset and t >= 2 and (t - 2) % T == 0:
                    v = 0.0
                v = (p_i * i_in + p_z * z_in.get(t, 0.0)) + alpha * v
                expected.append(v + E_L)
                i_in = I_e
            np.testing.assert_array_equal(out["V_m"][:, 0], expected)
            we = out["weight_events"]
            assert list(we["stamp"]) == [4, 6, 6, 13]
            np.testing.assert_array_equal(we["weight"], w)


def test_dropped_spike_only_for_recurrent_targets_and_readout_lag():
    """A recurrent spike with stamp 2+kT is dropped for recurrent targets, but reaches the readout; a spike with
    stamp 3+kT reaches both.  The MSE readout signal lags the readout voltage by one step."""
    T = 10
    # neuron 0 is driven to spike in iterations 11 (stamp 12 = 2+T) and 12 (stamp 13 = 3+T) only
    n = 40
    # (no reset: with reset a neuron cannot spike in iteration 2+kT, its input of that step being dropped)
    kw = dict(n_steps=n, update_interval=float(T), learning_window=float(T), rec_models=_REC, reset_on_update=False,
              rec_params=dict(E_L=0.0, C_m=1.0, tau_m=20.0, V_th=1.0, t_ref=0.0, V_m=0.0),
              W_in=np.array([[3.0], [0.0]]), W_rec=np.array([[0.0, 0.0], [0.3, 0.0]]),
              W_out=np.array([[0.5, 0.0]]), B=np.zeros((2, 1)),
              input_spike_times=[np.array([10.0])],  # parrot stamp 11 -> integrated in iteration 11
              out_params=dict(C_m=1.0, tau_m=5.0, E_L=0.2, V_m=0.2),
              target_times=[[5.0]], target_values=[[0.25]], optimizer=dict(eta=0.0))
    out = _run(**kw)
    assert list(np.flatnonzero(out["spikes"][:, 0])) == [11, 12]
    we = out["weight_events"]
    rec_ids, out_id = (3, 4), 5
    to_rec = we["target"] == rec_ids[1]
    to_out = we["target"] == out_id
    assert list(we["stamp"][to_rec]) == [13]  # stamp 12 dropped, 13 delivered
    assert list(we["stamp"][to_out]) == [12, 13]  # readout target: nothing dropped
    # neuron 1 sees only the second spike
    v1 = out["V_m"][:, 1]
    np.testing.assert_array_equal(v1[:13], 0.0)
    assert v1[13] > 0
    # readout: y(t) = V_m_out(t-1) (= v + E_L), err = y - y* inside the window, all zero outside
    y, vo, ys, err = out["readout_signal"][:, 0], out["V_m_out"][:, 0], out["target_signal"][:, 0], \
        out["error_signal"][:, 0]
    for t in range(n):
        if _cpp_rem(t - 4, T) < 0:  # LW = T: only the negative remainders (t < 4) are outside
            assert y[t] == 0 and ys[t] == 0 and err[t] == 0
        else:
            assert y[t] == vo[t - 1]
            assert ys[t] == (0.25 if t >= 5 else 0.0)
            assert err[t] == y[t] - ys[t]
    # readout voltage (no reset): integrates P_z_in * w at stamps 12, 13
    alpha = math.exp(-1.0 / 5.0)
    p_i = 5.0 / 1.0 * (1.0 - alpha)
    v, expected = 0.0, []
    for t in range(n):
        v = (p_i * 0.0 + 1.0 * {12: 0.5, 13: 0.5}.get(t, 0.0)) + alpha * v
        expected.append(v + 0.2)
    np.testing.assert_array_equal(vo, expected)


def test_learning_window_zeroing_and_learning_signal_shift():
    kw = _random_net(3)
    kw.update(update_interval=12.0, learning_window=5.0, n_steps=80, reset_on_update=True)
    kw["out_params"]["loss"] = "mean_squared_error"
    out = rb.run_bsshslm(**kw)
    T, LW = 12, 5
    err = out["error_signal"]
    for t in range(80):
        if _cpp_rem(t - 4, T) < T - LW:
            assert np.all(err[t] == 0) and np.all(out["readout_signal"][t] == 0)
            assert np.all(out["target_signal"][t] == 0)
    # learning-signal recordable in iteration t: L of entry t-3 = sum_k B_jk err_k(t-1) (ascending k), except
    # where entry t-3 was erased at an interval start (then 0)
    B = kw["B"]
    expected = np.zeros((80, B.shape[0]))
    for t in range(3, 80):
        acc = np.zeros(B.shape[0])
        for k in range(B.shape[1]):
            acc = acc + B[:, k] * err[t - 1, k]
        expected[t] = acc
    L = out["learning_signal"]
    interior = np.array([t >= 3 and _cpp_rem(t - 2, T) >= 3 for t in range(80)])
    has_syn = (kw["W_in"] != 0).any(axis=1) | ((kw["W_rec"] * (1 - np.eye(B.shape[0]))) != 0).any(axis=1)
    np.testing.assert_array_equal(L[interior][:, has_syn], expected[interior][:, has_syn])
    np.testing.assert_array_equal(L[:, ~has_syn], 0.0)
    np.testing.assert_array_equal(L[:3], 0.0)


def _pre_stamps_rec(kw, out):
    """Stamps of the presynaptic spikes of the recurrent class (parrots, then recurrent neurons)."""
    n_in = len(kw["input_spike_times"])
    stamps = []
    for times in kw["input_spike_times"]:
        stamps.append(sorted({int(round(t)) + 1 for t in times if t >= 1}))
    for j in range(out["spikes"].shape[1]):
        stamps.append(sorted(int(t) + 1 for t in np.flatnonzero(out["spikes"][:, j])))
    return stamps, n_in


@pytest.mark.parametrize("seed", [0, 4, 8])
def test_gradients_recomputed_from_recorded_signals(seed):
    """Every gradient passed to OPT equals an independent evaluation of SPEC 5.3 from the recorded surrogate
    gradients, the completed learning signals, the firing-rate regulariser and the presynaptic stamps; in
    particular entry t_next_update+1 counts with L = 0 when the trigger has stamp t_next_update+3."""
    kw = _random_net(seed)
    kw["extra_rec_spike_times"] = None
    out = rb.run_bsshslm(**kw, return_internals=True)
    T, LW = out["_T"], out["_LW"]
    kappa = out["_kappa"]
    psi, L, err = out["_psi_hist"], out["_L_hist"], out["_err_hist"]
    fr = dict(zip(out["_fr_keys"], out["_fr_vals"]))
    rp = kw["rec_params"]
    models = kw["rec_models"]
    stamps, n_in = _pre_stamps_rec(kw, out)
    n_checked = 0
    last_update = {}  # (cls, col) -> (t_prev_update, t_trig)
    first_spike = {}
    for cls, stamp, col, rows, idx, g in out["_gradients"]:
        key = (cls, col)
        sh = 2 if cls == "rec" else 3
        pre = stamps[col] if cls == "rec" else stamps[n_in + col]
        if cls == "rec":
            pre = [s for s in pre if (s - 2) % T != 0]
        if key not in last_update:
            t_prev_upd, t_trig = 0, pre[0]
        else:
            t_prev_upd, t_trig = last_update[key]
        end = t_prev_upd + T + sh
        last_update[key] = (idx * T, stamp)
        if pre[0] == stamp and key not in first_spike:
            first_spike[key] = True
            np.testing.assert_array_equal(g, 0.0)
            continue
        window = range(t_trig, end)
        zs = set(pre)
        for n, j in enumerate(rows):
            if cls == "rec":
                alpha = math.exp(-1.0 / rp["tau_m"][j])
                pz = 1.0 if rp["regular_spike_arrival"][j] else 1.0 - alpha
                adapt = models[j] == _ADA
                beta, rho = rp["adapt_beta"][j], math.exp(-1.0 / rp["adapt_tau"][j])
                zb = eb = ep = gr = se = 0.0
                for e in window:
                    zb = alpha * zb + pz * (1.0 if e in zs else 0.0)
                    if adapt:
                        ev = psi[e, j] * (zb - beta * ep)
                        ep = rho * ep + ev
                    else:
                        ev = psi[e, j] * zb
                    eb = kappa * eb + (1.0 - kappa) * ev
                    Le = 0.0 if e + 3 > stamp else L[e, j]  # learning signal not yet complete at the trigger
                    gr += Le * eb
                    se += ev
                gr += fr[t_prev_upd + 2 + T][j] * se
            else:
                alpha = math.exp(-1.0 / kw["out_params"]["tau_m"])
                pz = 1.0 if kw["out_params"]["regular_spike_arrival"] else 1.0 - alpha
                zb = gr = 0.0
                for e in window:
                    zb = alpha * zb + pz * (1.0 if e in zs else 0.0)
                    gr += err[e, j] * zb  # readout key e = error of readout iteration e+1
            if kw["average_gradient"]:
                gr /= LW
            assert g[n] == gr, (cls, stamp, col, j)
            n_checked += 1
    assert n_checked > 10


def test_average_gradient_divides_by_learning_window():
    kw = _random_net(5)
    kw["optimizer"] = dict(type="gradient_descent", eta=0.0)
    logs = {}
    for avg in (False, True):
        kw["average_gradient"] = avg
        logs[avg] = rb.run_bsshslm(**kw, return_internals=True)["_gradients"]
    LW = int(kw["learning_window"])
    assert len(logs[True]) == len(logs[False]) > 0
    for a, b in zip(logs[False], logs[True]):
        assert a[:3] == b[:3] and a[4] == b[4]
        np.testing.assert_array_equal(b[5], a[5] / LW)


def test_batch_of_two_intervals_applies_the_mean():
    """GD with batch_size 2: the update at idx 1 leaves the weight unchanged, the one at idx 2 applies
    -eta * (g(idx 1) + g(idx 2)) / 2 (SPEC 5.3)."""
    T, eta = 10, 0.05
    kw = dict(n_steps=45, update_interval=float(T), learning_window=float(T), rec_models=_REC,
              rec_params=dict(E_L=0.0, C_m=1.0, tau_m=10.0, V_th=0.5, t_ref=0.0, c_reg=20.0, f_target=0.0),
              W_in=np.array([[0.6]]), input_spike_times=[np.array([3.0, 7.0, 13.0, 17.0, 24.0, 28.0, 34.0])],
              optimizer=dict(type="gradient_descent", batch_size=2, eta=eta))
    out = _run(**kw, return_internals=True)
    log = [x for x in out["_gradients"] if x[0] == "rec"]
    assert [x[4] for x in log] == [1, 2, 3]  # triggers: stamps 14 (idx 1), 25 (idx 2), 35 (idx 3)
    g1, g2 = log[0][5][0], log[1][5][0]
    assert g1 != 0 and g2 != 0
    we = out["weight_events"]
    w = dict(zip(we["stamp"], we["weight"]))
    assert w[4] == w[8] == w[14] == 0.6  # idx 1: accumulated only
    assert w[25] == 0.6 - eta * ((g1 + g2) / 2)
    assert w[29] == w[25] and w[35] == w[25]  # idx 3: cur = 1 + 3//2 = 2, nothing applied
    out1 = _run(**dict(kw, optimizer=dict(type="gradient_descent", batch_size=1, eta=eta)), return_internals=True)
    we1 = out1["weight_events"]
    w1 = dict(zip(we1["stamp"], we1["weight"]))
    g1b = out1["_gradients"][0][5][0]
    assert g1b == g1 and w1[14] == 0.6 - eta * g1  # batch 1: interval 0's gradient applied at idx 1


def test_adam_catch_up_after_a_silent_interval():
    """A synapse silent during a whole interval gets several Adam passes at its next update: the gradient in
    the first, zeros after (momentum continues, bias correction follows the absolute index)."""
    T, eta, b1, b2, eps = 10, 0.02, 0.9, 0.999, 1e-8
    kw = dict(n_steps=50, update_interval=float(T), learning_window=float(T), rec_models=_REC,
              rec_params=dict(E_L=0.0, C_m=1.0, tau_m=10.0, V_th=0.5, t_ref=0.0, c_reg=30.0, f_target=0.0),
              W_in=np.array([[0.6]]), input_spike_times=[np.array([3.0, 6.0, 35.0, 38.0])],
              optimizer=dict(type="adam", eta=eta, beta_1=b1, beta_2=b2, epsilon=eps))
    out = _run(**kw, return_internals=True)
    (cls, stamp, col, rows, idx, g), = [x for x in out["_gradients"]]
    assert stamp == 36 and idx == 3
    w, m, v, b1p, b2p = 0.6, 0.0, 0.0, 1.0, 1.0
    grad = g[0]
    for _ in range(3):  # optimisation steps 1, 2, 3 (cur = 1 + 3 = 4)
        b1p *= b1
        b2p *= b2
        a = eta * math.sqrt(1.0 - b2p) / (1.0 - b1p)
        m = b1 * m + (1.0 - b1) * grad
        v = b2 * v + (1.0 - b2) * grad * grad
        w -= a * m / (math.sqrt(v) + eps)
        grad = 0.0
    we = out["weight_events"]
    wts = dict(zip(we["stamp"], we["weight"]))
    assert wts[4] == wts[7] == 0.6
    assert wts[36] == w and wts[39] == w


def test_softmax_with_three_readouts_and_sum_order():
    kw = _random_net(11)
    n_rec = kw["W_in"].shape[0]
    rng = np.random.default_rng(0)
    kw.update(W_out=rng.uniform(-1, 1, (3, n_rec)), B=rng.normal(0, 1, (n_rec, 3)),
              target_times=[[4.0], [4.0], [4.0]], target_values=[[0.0], [1.0], [0.0]])
    kw["out_params"]["loss"] = "cross_entropy"
    kw["out_params"]["E_L"] = 0.1
    out = rb.run_bsshslm(**kw)
    T, LW = int(kw["update_interval"]), int(kw["learning_window"])
    u, y = out["readout_signal_unnorm"], out["readout_signal"]
    for t in range(1, kw["n_steps"]):
        if _cpp_rem(t - 4, T) >= T - LW:
            for k in range(3):
                norm = 0.0
                for kk in range(3):
                    if kk != k:
                        norm = norm + 1.0 * u[t - 1, kk]
                norm = norm + u[t - 1, k]
                assert y[t, k] == u[t - 1, k] / norm
            assert abs(y[t].sum() - 1.0) < 1e-14
    np.testing.assert_array_equal(u, np.vectorize(math.exp)(out["V_m_out"]))


def test_no_readout_and_parameter_validation():
    kw = dict(n_steps=30, update_interval=10.0, learning_window=10.0, rec_models=_ADA,
              rec_params=dict(E_L=0.0, C_m=1.0, V_th=0.5, adapt_beta=0.3, adapt_tau=20.0, adaptation=0.2),
              W_in=np.array([[0.9], [0.4]]), input_spike_times=[np.array([2.0, 3.0, 4.0, 12.0, 13.0])])
    out = _run(**kw)
    assert out["readout_signal"].shape == (30, 0) and out["W_out"].shape == (0, 2)
    # adaptation: a <- rho a + z_prev, reset to 0 at t = 2 + kT; V_th_adapt = V_th + beta a
    rho = math.exp(-1.0 / 20.0)
    a, z_prev = 0.2, 0.0
    for t in range(30):
        if t >= 2 and (t - 2) % 10 == 0:
            a, z_prev = 0.0, 0.0
        a = rho * a + z_prev
        assert out["adaptation"][t, 0] == a
        assert out["V_th_adapt"][t, 0] == 0.5 + 0.3 * a
        z_prev = float(out["spikes"][t, 0])
    with pytest.raises(ValueError):
        _run(**dict(kw, rec_params=dict(kappa=0.9)))
    with pytest.raises(ValueError):
        _run(**dict(kw, rec_params=dict(flush_event_send_interval=5.0)))
    with pytest.raises(ValueError):
        _run(**dict(kw, rec_models="eprop_iaf"))
    with pytest.raises(ValueError):
        _run(**dict(kw, out_params=dict(loss="hinge")))
    # flush_event_send_interval >= T is accepted and changes nothing
    same = _run(**dict(kw, rec_params=dict(kw["rec_params"], flush_event_send_interval=10.0)))
    _assert_same(out, same)


@pytest.mark.parametrize("seed", [1, 2, 6])
def test_history_durations_in_network_equal_single_neuron_bookkeeping(seed):
    """The e-prop history of a neuron depends only on its presynaptic stamps: in a random network it equals the
    single-neuron bookkeeping fed with the same stamps (a spike of iteration u acts like a parrot input at u)."""
    kw = _random_net(seed)
    out = rb.run_bsshslm(**kw)
    n_steps = kw["n_steps"]
    spike_iters = [np.flatnonzero(out["spikes"][:, j]).astype(float) for j in range(out["spikes"].shape[1])]
    inputs = [np.asarray(t, dtype=float) for t in kw["input_spike_times"]]
    if kw["extra_rec_spike_times"] is not None:
        inputs = [np.sort(np.concatenate([t, kw["extra_rec_spike_times"]])) for t in inputs]
    W_rec = kw["W_rec"] * (1 - np.eye(len(spike_iters)))
    for j in range(len(spike_iters)):
        pre = [inputs[i] for i in np.flatnonzero(kw["W_in"][j])] + [spike_iters[i] for i in np.flatnonzero(W_rec[j])]
        if not pre:
            np.testing.assert_array_equal(out["eprop_history_duration"][:, j], 0.0)
            continue
        got = rb.eprop_history_duration_bsshslm(model=kw["rec_models"][j], n_steps=n_steps,
                                                update_interval=kw["update_interval"], input_spike_times=pre)
        np.testing.assert_array_equal(out["eprop_history_duration"][:, j], got)
    for k in range(kw["W_out"].shape[0]):
        pre = [spike_iters[i] for i in np.flatnonzero(kw["W_out"][k])]
        if not pre:
            continue
        got = rb.eprop_history_duration_bsshslm(model=rb.READOUT_MODEL_BSSHSLM, n_steps=n_steps,
                                                update_interval=kw["update_interval"], input_spike_times=pre)
        np.testing.assert_array_equal(out["eprop_history_duration_out"][:, k], got)
