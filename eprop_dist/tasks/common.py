"""What every task shares: the phase loop of NEST's e-prop examples (``TrainingPipeline``: training,
validation, early-stopping and test phases, learning rate 0 in evaluation phases), the evaluation of a
phase from the readout multimeter, weight snapshots and the result record.

A task builds a :class:`Net` (network handles + a ``load_phase(n, label)`` callback that sets the inputs and
targets of phase ``n``) and hands it to :func:`run_pipeline`.  Timing is NEST's (SPEC 7.3/7.4): phase ``n``
covers steps ``[n P, (n+1) P)`` with ``P = batch * seq``; each phase starts with ``SetDefaults(eta)``,
``Simulate(offset)``, ``Simulate(1)``, the evaluation of the *previous* phase from the readout window
``((n-1) P + offset, n P + offset]``, then the rest of the phase.  ``offset`` is the input->readout delay
(2 steps for e-prop+, 4 for bsshslm_2020).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import KernelException

PHASE_LABELS = ("training", "validation", "early-stopping", "test")


@dataclass
class Net:
    k: object                      # Kernel
    cfg: object                    # validated config (pydantic model)
    seq: int                       # steps per sample
    batch: int                     # samples per phase
    lw: int                        # learning-window steps at the end of each sample
    offset: int                    # steps from input generation to the readout signal
    loss: str                      # "mse" | "ce"
    classify: bool
    nodes: dict                    # name -> NodeCollection (rec, out, mm, sr, force, ...)
    syn_model: str                 # e-prop synapse model of the family
    eta_train: float
    load_phase: object             # callable(n, label) -> labels (batch,) or None
    populations: dict = field(default_factory=dict)   # name -> NodeCollection, for weights/spikes
    info: dict = field(default_factory=dict)          # task facts for the results (e.g. "stand-in")


def loss_and_accuracy(y, ys, net):
    """Per-phase loss (NEST's definitions) and, for classification, accuracy.

    y, ys: (batch, seq, n_out) readout and target signals of one phase."""
    w = y[:, -net.lw:, :]
    ws = ys[:, -net.lw:, :]
    if net.loss == "ce":
        loss = float(-np.mean(np.sum(ws * np.log(np.maximum(w, 1e-300)), axis=2)))
    else:
        loss = float(0.5 * np.mean(np.sum((w - ws) ** 2, axis=1)))
    if not net.classify:
        return loss, None
    pred = np.argmax(np.mean(w, axis=1), axis=1)
    label = np.argmax(np.mean(ws, axis=1), axis=1)
    return loss, float(np.mean(pred == label))


class Recorder:
    """Reads one phase's readout/target window from the multimeter and forgets what it has read, so the
    memory of the evaluation does not grow with the number of phases."""

    def __init__(self, net):
        self.net = net
        self.out_gids = net.nodes["out"].gids

    def phase(self, m):
        net = self.net
        P = net.batch * net.seq
        lo, hi = m * P + net.offset, (m + 1) * P + net.offset     # window (lo, hi] in steps (dt = 1 ms)
        mm = net.nodes["mm"]
        ev = mm.get("events")
        t = np.rint(ev["times"]).astype(np.int64)
        sel = (t > lo) & (t <= hi)
        n_out = self.out_gids.size
        if np.count_nonzero(sel) != P * n_out:
            raise KernelException(f"readout window ({lo}, {hi}] has {np.count_nonzero(sel)} samples, "
                                  f"expected {P * n_out}")
        ti = t[sel] - lo - 1
        oi = np.searchsorted(self.out_gids, ev["senders"][sel])
        y = np.empty((P, n_out))
        ys = np.empty((P, n_out))
        y[ti, oi] = ev["readout_signal"][sel]
        ys[ti, oi] = ev["target_signal"][sel]
        mm.set(n_events=0)
        return y.reshape(net.batch, net.seq, n_out), ys.reshape(net.batch, net.seq, n_out)


def schedule(cfg):
    """NEST's TrainingPipeline.run as a generator of phase labels; `send` back the error that the
    evaluation inside the phase reported (it is the error of the phase *before*, NEST's quirk, SPEC 7.3)."""
    n_train = cfg.n_iter_train if hasattr(cfg, "n_iter_train") else cfg.n_iter
    early = getattr(cfg, "do_early_stopping", False)
    every = getattr(cfg, "n_iter_validate_every", 0)
    k_iter = 0
    stop = False
    while k_iter < n_train and not stop:
        if early and k_iter % every == 0:
            err = yield "validation"
            if k_iter > 0 and err is not None and err < cfg.stop_crit:
                errs = []
                for _ in range(cfg.n_iter_early_stop):
                    errs.append((yield "early-stopping"))
                errs = [e for e in errs if e is not None]
                stop = bool(errs) and float(np.mean(errs)) < cfg.stop_crit
        yield "training"
        k_iter += 1
    for _ in range(getattr(cfg, "n_iter_test", 0)):
        yield "test"


def snapshot_weights(net):
    """All e-prop connections: (source gid, target gid, weight), grouped by projection name."""
    conns = net.k.GetConnections(synapse_model=net.syn_model).get(["source", "target", "weight"])
    pops = net.populations
    out = {}
    for pre_name, post_name in (("in", "rec"), ("rec", "rec"), ("rec", "out"), ("in", "out")):
        pre, post = pops[pre_name].gids, pops[post_name].gids
        sel = np.isin(conns["source"], pre) & np.isin(conns["target"], post)
        if pre_name == "in" and post_name == "out" and not sel.any():
            continue
        out[f"{pre_name}_{post_name}"] = {"source": conns["source"][sel], "target": conns["target"][sel],
                                          "weight": conns["weight"][sel],
                                          "source_population": pre_name, "target_population": post_name,
                                          "source_first_gid": int(pre[0]), "target_first_gid": int(post[0])}
    return out


def run_pipeline(net, report=None, progress=None):
    """Run all phases; returns the result record (plain arrays and dicts, identical on every rank)."""
    k, cfg = net.k, net.cfg
    # the pipeline evaluates the whole network's readouts and weights on every rank: collective reads
    # (NEST's reads are rank-local; eprop_dist.gather_events is the per-call equivalent)
    k.set(read_scope="global")
    P = net.batch * net.seq
    rec = Recorder(net)
    timers = {"build": 0.0, "evaluate": 0.0, "snapshot": 0.0}
    t0 = time.perf_counter()
    keep_w = getattr(net.cfg, "record_weights", True)
    w_initial = snapshot_weights(net) if keep_w else {}
    k.GetConnections(synapse_model=net.syn_model)         # builds the network (collective)
    timers["build"] = net.info.pop("_t_build", 0.0) + time.perf_counter() - t0
    phases = []               # one dict per evaluated phase
    traces = {}
    labels_of = []            # label of phase n
    gen = schedule(cfg)
    err_prev = None
    label = next(gen)
    n = 0

    def evaluate(m):
        t = time.perf_counter()
        y, ys = rec.phase(m)
        loss, acc = loss_and_accuracy(y, ys, net)
        rec_ = {"phase": m, "label": labels_of[m], "loss": loss, "accuracy": acc,
                "error": None if acc is None else 1.0 - acc, "eta": etas[m]}
        phases.append(rec_)
        lab = labels_of[m]
        if m == 0:
            traces["first"] = (m, lab, y, ys)
        traces[f"last_{lab}"] = (m, lab, y, ys)
        timers["evaluate"] += time.perf_counter() - t
        if report is not None:
            report(rec_)
        return rec_

    etas = []
    sent = []                 # the error handed to the schedule after each phase (replayed on resume)
    ckpt = getattr(k, "checkpointer", None)     # eprop_dist.checkpoint.Checkpointer, set by `eprop-dist train`
    mid = None                # resumed inside a phase: {"err_prev": ...}
    if ckpt is not None:
        sim = k._ensure_built()
        sim.max_stretch = ckpt.STRETCH_STEPS       # signal handlers run at least this often
        if ckpt.resume is not None:
            n, label, mid = _resume(net, ckpt.resume, gen, label, sim)
            ps = ckpt.resume["pipeline"]
            phases, labels_of, etas, sent = list(ps["phases"]), list(ps["labels_of"]), list(ps["etas"]), list(ps["sent"])
            timers.update({a: b for a, b in ps["timers"].items() if a != "build"})
            traces.update(ckpt.resume["traces"])
            if keep_w:
                w_initial = ckpt.resume["weights_initial"]

    def state(n_done, mid_phase=None):
        return {"n": n_done, "mid": mid_phase, "phases": phases, "labels_of": labels_of, "etas": etas, "sent": sent,
                "timers": timers, "traces": traces, "weights_initial": w_initial}

    while label is not None:
        t_ph = time.perf_counter()
        if mid is None:
            eta = net.eta_train if label == "training" else 0.0
            k.SetDefaults(net.syn_model, {"optimizer": {"eta": eta}})
            etas.append(eta)
            labels_of.append(label)
            net.load_phase(n, label)
            k.Simulate(float(net.offset))
            k.Simulate(1.0)
            err_prev = None
            if n > 0:
                r = evaluate(n - 1)
                err_prev = r["error"]
        else:
            err_prev, mid = mid["err_prev"], None
        if ckpt is None:
            k.Simulate(float(P - net.offset - 1))
        else:      # in stretches: a signal is answered inside a long phase (a safe point between stretches)
            t_end = (n + 1) * P
            stretch = max(k._sim.D, ckpt.STRETCH_STEPS // k._sim.D * k._sim.D)     # whole windows
            while k._sim.t < t_end:
                k.Simulate(float(min(t_end - k._sim.t, stretch)))
                if k._sim.t < t_end:
                    ckpt.inside_phase(n, k._sim, lambda: state(n, {"err_prev": err_prev}))
        timers[label] = timers.get(label, 0.0) + time.perf_counter() - t_ph
        if progress is not None:
            progress(n, label)
        n += 1
        sent.append(err_prev)
        try:
            label = gen.send(err_prev)
        except StopIteration:
            label = None
        if ckpt is not None:      # all ranks are here: checkpoint if due or asked for by a signal
            ckpt.phase_end(n, k._sim, state(n))
    # NEST's end of run: let the last phase's readout arrive, evaluate it, force the final update
    t_ph = time.perf_counter()
    k.Simulate(float(net.offset))
    k.Simulate(1.0)
    evaluate(n - 1)
    net.nodes["force"].set({"spike_times": [float(n * P + net.offset + 2)]})
    k.Simulate(3.0)
    timers["final"] = time.perf_counter() - t_ph
    t = time.perf_counter()
    w_final = snapshot_weights(net) if keep_w else {}
    timers["snapshot"] = time.perf_counter() - t
    spikes = {}
    sr = net.nodes.get("sr")
    if sr is not None:
        ev = sr.get("events")
        spikes["rec"] = {"times": ev["times"], "senders": ev["senders"], "first_gid": int(net.populations["rec"].gids[0]),
                         "n_nodes": len(net.populations["rec"])}
    kt = dict(k.timers)
    return {"phases": phases, "traces": traces, "weights_initial": w_initial, "weights_final": w_final,
            "spikes": spikes, "timers": timers, "kernel_timers": kt, "n_phases": n, "steps": n * P + net.offset + 4,
            "eta_train": net.eta_train, "info": net.info}


def _resume(net, ck, gen, label, sim):
    """Continue from checkpoint `ck` (eprop_dist.checkpoint.load): replay the Python side of the phases it
    covers without simulating (learning rates, each phase's inputs and targets: the task's random draws and
    generator parameters come out as in the uninterrupted run, the schedule gets the same errors), then
    load the core state by gid.  Returns (next phase index, its label, the in-phase state or None)."""
    from ..checkpoint import CheckpointError, restore
    ps = ck["pipeline"]
    k = net.k
    mid = ps.get("mid")
    n = int(ps["n"])
    for m in range(n + (1 if mid is not None else 0)):
        if label != ps["labels_of"][m]:
            raise CheckpointError(f"--resume: with this config phase {m} is {label!r}, in the checkpoint "
                                  f"{ps['labels_of'][m]!r} (the phase schedule changed)")
        # SetDefaults with an unchanged eta changes nothing (and pushes every synapse model's arrays)
        if float(ps["etas"][m]) != float(k.GetDefaults(net.syn_model)["optimizer"]["eta"]):
            k.SetDefaults(net.syn_model, {"optimizer": {"eta": ps["etas"][m]}})
        net.load_phase(m, label)
        if m == n:                # the phase the checkpoint was written in: continue inside it
            break
        try:
            label = gen.send(ps["sent"][m])
        except StopIteration:
            label = None
    restore(sim, ck)
    return n, label, mid


def connect_readout_side(k, par, rec, out, tgen, lwgen, mm, sr, force, cfg, softmax=False):
    """The connections every task makes after its e-prop projections, in NEST's order: the softmax
    normaliser between bsshslm readouts (softmax=True), target (receptor 2) and learning-window
    (receptor 1) generators onto the readouts, the readout multimeter, the spike recorder on the first
    cfg.record_spikes recurrent neurons, and NEST's "force final update" generator."""
    rate = {"synapse_model": "rate_connection_delayed", "delay": 1.0}
    if softmax:
        k.Connect(out, out, {"rule": "all_to_all", "allow_autapses": False}, dict(rate, receptor_type=1, weight=1.0))
    k.Connect(tgen, out, "one_to_one", dict(rate, receptor_type=2))
    if lwgen is not None:
        k.Connect(lwgen, out, "all_to_all", dict(rate, receptor_type=1))
    k.Connect(mm, out)
    if cfg.record_spikes:
        k.Connect(rec[: min(cfg.record_spikes, len(rec))], sr)
    k.Connect(force, par + rec, "all_to_all", {"synapse_model": "static_synapse", "weight": 1000.0, "delay": 1.0})


def connect_eprop(k, pre, post, p, std, syn, autapses=True, rng=None, dense_W=None):
    """Connect pre -> post with e-prop synapses.

    Rule-based (default, scales): ``pairwise_bernoulli(p)`` with normal(0, std) weights drawn by the
    core from counters keyed by the target gid (same on any rank count).  With `dense_W` (shape
    (n_post, n_pre), NEST's numpy draws) only its non-zero entries become connections."""
    from ..random import normal
    if dense_W is not None:
        W = np.asarray(dense_W, float)
        src, tgt = np.nonzero(W.T != 0)
        keep = pre.gids[src] != post.gids[tgt] if not autapses else np.ones(src.size, bool)
        k.Connect(pre.gids[src][keep], post.gids[tgt][keep], "one_to_one",
                  dict(syn, weight=W.T[src, tgt][keep]))
        return
    k.Connect(pre, post, {"rule": "pairwise_bernoulli", "p": float(p), "allow_autapses": autapses},
              dict(syn, weight=normal(0.0, float(std))))


def superimposed_sines(steps, periods, rng=np.random):
    """NEST's target: four sines of random amplitude and phase, starting at 0, max |.| = 1."""
    amps = rng.uniform(low=0.5, high=2.0, size=len(periods))
    phases = rng.uniform(low=0.0, high=2.0 * np.pi, size=len(periods))
    s = sum(a * np.sin(np.linspace(p, p + 2.0 * np.pi * (steps // T), steps)) for a, p, T in zip(amps, phases, periods))
    s -= s[0]
    s /= max(np.abs(s).max(), 1e-6)
    return s


def spike_times_from_bools(bools, offset):
    """(steps, n) bool -> list of n sorted float arrays of spike times ``offset + step`` (vectorised)."""
    t, i = np.nonzero(bools)
    o = np.argsort(i, kind="stable")
    t, i = t[o], i[o]
    cuts = np.searchsorted(i, np.arange(1, bools.shape[1]))
    return [(x + offset).astype(float) for x in np.split(t, cuts)]


class PhaseRates:
    """Sets the amplitudes of step_rate_generators phase by phase.  NEST keeps a generator's current rate
    when its ``amplitude_times`` are replaced, until the first new change; this engine starts from the new
    list, so the last value of the previous phase is repeated at the time of the set (the test against
    the SPEC 6.2.2 network checks this)."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.last = None

    def set(self, t_now, times, values):
        times = [np.asarray(t, float) for t in times]
        values = [np.asarray(v, float) for v in values]
        if self.last is not None:
            for i, last in enumerate(self.last):
                if times[i].size == 0 or times[i][0] > t_now:
                    times[i] = np.concatenate([[float(t_now)], times[i]])
                    values[i] = np.concatenate([[last], values[i]])
        self.nodes.set([{"amplitude_times": t, "amplitude_values": v} for t, v in zip(times, values)])
        self.last = [v[-1] if v.size else 0.0 for v in values]
