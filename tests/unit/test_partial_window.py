"""Issue 9 item 4: Simulate of any multiple of the resolution.  The core runs a shorter last window
when the communication window D (= minimum delay) does not divide the time, and the next Simulate
starts its windows where that one ended; every window length <= the minimum delay gives the same
results, so any split of the same total time gives identical (==) spikes, readout samples, weight
records, weights and neuron states.

Visible events: NEST collects the events of a Simulate's last window at the next Simulate, so runs
whose last window differs in length are compared up to the shorter visible time; runs with the same
last window (Simulate(20) vs Simulate(9) + Simulate(11), both end with the window 18..20) are
compared whole, final weights and states included."""
import os
import sys

import numpy as np
import pytest

import eprop_dist

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "invariance"))
sys.path.insert(0, os.path.dirname(HERE))
import invariance_net as inv  # noqa: E402

COMPARE = ("spk_t", "spk_s", "mm_t", "mm_s", "y", "ys", "vout", "wr_t", "wr_s", "wr_g", "wr_w")


def states(k, h):
    """V_m of every recurrent neuron and readout (after the last step simulated)."""
    return np.concatenate([np.asarray(h["rec"].get("V_m"), float), np.asarray(h["out"].get("V_m"), float)])


def run_parts(parts, comm_window=None, fast_path=True, delay=3, uniform=False, comm=None, exchange="allgather"):
    k = eprop_dist.Kernel(comm=comm)
    k.set(exchange=exchange, read_scope="global", eprop_fast_path=fast_path)
    if comm_window is not None:
        k.set(comm_window=comm_window)
    h = inv.build(k, delay, 300, uniform)      # the same network (input times up to 280 ms) for every split
    for ms in parts:
        k.Simulate(float(ms))
    sp, mm, wr = h["sr"].get("events"), h["mm"].get("events"), h["wr"].get("events")
    c = k.GetConnections(synapse_model=None).get()
    res = {"spk_t": sp["times"], "spk_s": sp["senders"], "mm_t": mm["times"], "mm_s": mm["senders"],
           "y": mm["readout_signal"], "ys": mm["target_signal"], "vout": mm["V_m"], "wr_t": wr["times"],
           "wr_s": wr["senders"], "wr_g": wr["targets"], "wr_w": wr["weights"], "c_w": c["weight"],
           "v": states(k, h)}
    return k, res


def assert_equal(a, b, keys, what):
    for key in keys:
        np.testing.assert_array_equal(a[key], b[key], err_msg=f"{what}: {key}")


@pytest.mark.parametrize("fast_path", [True, False])
def test_simulate_20_with_a_3_step_window_equals_other_splits(fast_path):
    """Delays 3 (inputs, readout path), 4 (recurrent), 5 (learning signals): D = 3."""
    k20, r20 = run_parts([20.0], fast_path=fast_path)
    assert k20._sim.D == 3 and k20.GetKernelStatus("biological_time") == 20.0
    assert k20._sim.core.last_len == 2                      # windows 0,3,..,15 then 18..20
    k9, r9 = run_parts([9.0, 11.0], fast_path=fast_path)    # 3,3,3 | 3,3,3,2
    assert k9._sim.core.last_len == 2
    assert r20["spk_t"].size > 50 and r20["wr_t"].size > 50
    assert_equal(r9, r20, COMPARE + ("c_w", "v"), "Simulate(9)+Simulate(11) vs Simulate(20)")
    _, r1 = run_parts([20.0], comm_window=1, fast_path=fast_path)       # the one-step window
    assert_equal(r1, r20, ("v",), "D=1 vs D=3: neuron state")
    t_vis = 18.0                                            # the D = 3 runs collect up to 18 ms
    assert_equal(inv.truncate(r1, t_vis), inv.truncate(r20, t_vis), COMPARE, "D=1 vs D=3")
    for parts, cw in (([20.0, 1.0, 6.0], None), ([7.0, 5.0, 1.0, 14.0], None), ([13.0, 14.0], 2)):
        _, r = run_parts(parts, comm_window=cw, fast_path=fast_path)
        _, ref = run_parts([27.0], comm_window=1, fast_path=fast_path)
        assert_equal(r, ref, ("v",), f"{parts} (comm_window {cw}) vs D=1: neuron state")
        assert_equal(inv.truncate(r, 24.0), inv.truncate(ref, 24.0), COMPARE, f"{parts} vs D=1")


def test_partial_windows_over_a_longer_run_equal_one_simulate():
    """Many short Simulate calls (1, 2, 4, 5, 7 ms, never a multiple of D = 3 in a row) over 200 ms,
    uniform and mixed delays; the last window of both runs ends at 200 with 2 steps."""
    for uniform in (False, True):
        parts = [1.0, 2.0, 4.0, 5.0, 7.0] * 10 + [20.0]      # 190 + ... = 210
        parts = parts[:-1] + [200.0 - sum(parts[:-1])]
        assert sum(parts) == 200.0
        _, a = run_parts(parts, uniform=uniform)
        k, b = run_parts([200.0], uniform=uniform)
        assert k._sim.core.last_len == 2
        assert b["spk_t"].size > 500
        # the many-parts run ends with a window of whatever length its last part leaves: compare
        # up to the visible time of both; the neuron state is complete in both
        assert_equal(a, b, ("v",), f"uniform={uniform}")
        t_vis = 200.0 - max(k._sim.core.last_len, 3)
        assert_equal(inv.truncate(a, t_vis), inv.truncate(b, t_vis), COMPARE, f"uniform={uniform}")


def test_partial_last_window_in_the_bsshslm_family():
    """The original family has one-step windows (every delay is one step): any split is exact."""
    from api_cases import build_bss_case
    from test_reference_bsshslm import _random_net
    case = _random_net(3)
    runs = []
    for parts in ((float(case["n_steps"]),), (7.0, float(case["n_steps"]) - 7.0), (5.0,) * (int(case["n_steps"]) // 5)):
        assert sum(parts) == case["n_steps"]
        k, h = build_bss_case(case)
        for ms in parts:
            k.Simulate(ms)
        ev = h["mm_out"].get("events")
        runs.append((h["sr"].get("events")["times"], ev["times"], ev["readout_signal"],
                     k.GetConnections().get("weight")))
    assert runs[0][0].size >= 5 and runs[0][1].size >= case["n_steps"] - 1
    for r in runs[1:]:
        for a, b in zip(r, runs[0]):
            np.testing.assert_array_equal(a, b)


def test_simulate_0_and_any_multiple_of_the_resolution_is_accepted():
    k = eprop_dist.Kernel()
    k.set(resolution=0.5)
    a = k.Create("parrot_neuron", 2)
    k.Connect(a, a, syn_spec={"delay": 3.0})             # 6 steps: D = 6
    for ms in (0.0, 2.5, 0.5, 4.0, 0.0, 1.5):
        k.Simulate(ms)
    assert k._sim.D == 6 and k.GetKernelStatus("biological_time") == 8.5
    with pytest.raises(eprop_dist.BadProperty, match="multiple of the resolution"):
        k.Simulate(0.25)
    assert k.GetKernelStatus("biological_time") == 8.5
