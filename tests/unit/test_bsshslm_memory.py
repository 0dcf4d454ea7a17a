"""Bounded memory of the original family (issue 8): a source that falls silent must not pin its
targets' histories.  BsshslmSynapses.settle computes a finished window's gradient at the interval end
(the same operations the next spike would run) and moves the synapse's update-history key, so the
history ring stays at a few update intervals; without it (NEST's bookkeeping, also what
eprop_fast_path=False runs) the ring grows with simulated time.  Numbers are unchanged (==)."""
import numpy as np

import nest_cases as nc
from api_cases import build_bss_case

OUT = ("readout_signal", "target_signal")      # not eprop_history_duration: that keeps NEST's bookkeeping
N_INTERVALS = 10


def _run(settle):
    case = nc.bsshslm_regression_case()
    # the 5-sequence input and target of the test, repeated: 10 update intervals of 1000 steps
    T = int(case["update_interval"])
    case["input_spike_times"] = [np.concatenate([t, t + 5 * T]) for t in case["input_spike_times"]]
    case["target_times"] = [np.concatenate([t, t + 5 * T]) for t in case["target_times"]]
    case["target_values"] = [np.concatenate([v, v]) for v in case["target_values"]]
    k, h = build_bss_case(case, record_rec=True, rec_fields=("learning_signal", "V_m"), out_fields=OUT)
    k._ensure_built()
    if not settle:                       # the same run with NEST's bookkeeping only
        np.asarray(k._sim.core.history.bsshslm_settle)[:] = 0
    spans = []
    for _ in range(N_INTERVALS):
        k.Simulate(float(T))
        hs = k._sim.core.history
        spans.append(int(np.max(np.asarray(hs.end) - np.minimum(np.asarray(hs.front),
                                                                np.asarray(hs.first_update_key)))))
    ev = h["mm_out"].get("events")
    ls = h["mm_rec"].get("events")["learning_signal"]
    w = k.GetConnections(synapse_model="eprop_synapse_bsshslm_2020").get("weight")
    return spans, k._sim.core.history.capacity, (ev["readout_signal"], ls), w, k


def test_history_stays_bounded_with_silent_sources():
    spans, cap, y, w, k = _run(True)
    T = 1000
    # some recurrent neurons never spike: without settling their synapses pin the history at step 2
    assert np.count_nonzero(np.asarray(k._sim.core.syn.t_spike_previous) == 0) > 0
    assert max(spans) <= 3 * T and cap <= 4096, (spans, cap)
    ref_spans, ref_cap, ref_y, ref_w, _ = _run(False)
    assert ref_spans[-1] > (N_INTERVALS - 1) * T          # the reference bookkeeping grows with time
    np.testing.assert_array_equal(y[0], ref_y[0])
    # the learning_signal recordable (entry t-3) is not changed by settling either
    assert np.count_nonzero(y[1]) > 1000
    np.testing.assert_array_equal(y[1], ref_y[1])
    np.testing.assert_array_equal(w, ref_w)
