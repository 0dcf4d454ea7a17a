"""step_rate_generator amplitudes set between Simulate calls (found by benchmarks/vs_nest.py W3).

NEST's step_rate_generator keeps the amplitude it holds until the first NEW amplitude time after
the current time; new amplitude times at or before the current time are skipped.  The
evidence-accumulation example relies on this: it sets the next batch's target amplitudes while the
previous target is still being sent.  The expected traces below were recorded with NEST 3.10.0
running this same network (target_signal of the readout, times 1..30 ms).
"""
import numpy as np
import pytest

import eprop_dist as nest

BEFORE = [0.0] * 5 + [1.0] * 5                     # times 1-10: amplitude 1 from stamp 5
NEST_3_10 = {
    # new times after the set at 10 ms: NEST keeps 1.0 until the first of them takes effect
    "future": ([15.0, 18.0], [0.0, 2.0], BEFORE + [1.0] * 5 + [0.0] * 3 + [2.0] * 12),
    # a time in the past (3 ms) is skipped, not applied
    "past": ([3.0, 25.0], [3.0, 4.0], BEFORE + [1.0] * 15 + [4.0] * 5),
    # the very next step
    "next": ([11.0, 12.0], [5.0, 6.0], BEFORE + [1.0] + [5.0] + [6.0] * 18),
}


def target_trace(times, values, comm_window=None):
    nest.ResetKernel()
    nest.set(resolution=1.0)
    if comm_window is not None:
        nest.set(comm_window=comm_window)
    rec = nest.Create("eprop_iaf", 1, {"C_m": 1.0, "E_L": 0.0, "V_th": 0.03})
    out = nest.Create("eprop_readout", 1, {"C_m": 1.0, "E_L": 0.0, "tau_m": 30.0})
    gen = nest.Create("step_rate_generator", 1, {"amplitude_times": [5.0], "amplitude_values": [1.0]})
    lw = nest.Create("step_rate_generator", 1, {"amplitude_times": [1.0], "amplitude_values": [1.0]})
    nest.Connect(lw, out, "all_to_all", {"synapse_model": "rate_connection_delayed", "receptor_type": 1})
    mm = nest.Create("multimeter", 1, {"record_from": ["target_signal"], "interval": 1.0})
    nest.Connect(gen, out, "all_to_all", {"synapse_model": "rate_connection_delayed", "receptor_type": 2})
    nest.Connect(mm, out)
    nest.Connect(rec, out, "all_to_all", {"synapse_model": "eprop_synapse", "weight": 0.1})
    nest.Connect(out, rec, "all_to_all", {"synapse_model": "eprop_learning_signal_connection", "weight": 0.1})
    nest.Simulate(10.0)
    gen.set({"amplitude_times": times, "amplitude_values": values})
    nest.Simulate(20.0)
    nest.Simulate(1.0)            # collects the samples of the last window
    ev = mm.get("events")
    assert np.array_equal(np.asarray(ev["times"]), np.arange(1.0, 31.0))
    return np.asarray(ev["target_signal"]).tolist()


@pytest.mark.parametrize("case", sorted(NEST_3_10))
def test_amplitudes_set_after_simulate_match_nest(case):
    times, values, expected = NEST_3_10[case]
    assert target_trace(times, values) == expected


def test_unchanged_generator_keeps_its_schedule_when_another_is_set():
    """Setting one generator rebuilds all schedules: the untouched target generator keeps its
    schedule and the re-set learning window holds 0.5 until its new time (the readout records the
    target only while the window is open); NEST 3.10.0 gives the same values."""
    nest.ResetKernel()
    nest.set(resolution=1.0)
    out = nest.Create("eprop_readout", 1, {"C_m": 1.0, "E_L": 0.0, "tau_m": 30.0})
    gen = nest.Create("step_rate_generator", 1, {"amplitude_times": [5.0, 20.0], "amplitude_values": [1.0, 3.0]})
    lw = nest.Create("step_rate_generator", 1, {"amplitude_times": [1.0, 12.0], "amplitude_values": [1.0, 0.5]})
    mm = nest.Create("multimeter", 1, {"record_from": ["target_signal"], "interval": 1.0})
    nest.Connect(lw, out, "all_to_all", {"synapse_model": "rate_connection_delayed", "receptor_type": 1})
    nest.Connect(gen, out, "all_to_all", {"synapse_model": "rate_connection_delayed", "receptor_type": 2})
    nest.Connect(mm, out)
    nest.Simulate(10.0)
    lw.set({"amplitude_times": [15.0], "amplitude_values": [1.0]})   # gen itself is not set again
    nest.Simulate(21.0)
    ev = mm.get("events")
    sig = dict(zip(np.asarray(ev["times"]).tolist(), np.asarray(ev["target_signal"]).tolist()))
    # gen's schedule: 1.0 from stamp 5 (seen at 6), 3.0 from stamp 20 (seen at 21)
    assert [sig[t] for t in (6.0, 15.0, 20.0, 21.0, 30.0)] == [1.0, 1.0, 1.0, 3.0, 3.0]
