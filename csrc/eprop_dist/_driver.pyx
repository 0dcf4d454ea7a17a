# The window driver of one rank (DESIGN 1, SPEC 10.2).  Per communication window of n = min(D,
# t_stop - W) steps starting at step W = Core.t (windows are not aligned to multiples of D: the last
# window of a Simulate that D does not divide is shorter, and the next one starts where it ended;
# every window length <= the minimum delay gives the same results), with m = Core.last_len the
# length of the window before:
#   1. deliver (Core.deliver): device events join the incoming spikes (Delivery.add_device_events),
#      learning signals of the last window (readout errors of iterations W-m..W-1,
#      Delivery.deliver_learning_signals) and the deferred learning_signal samples
#      (Recording.record_learning_signals), then the spikes of the last window through the local
#      synapses in (stamp, source gid) order (Delivery.deliver_spikes: e-prop gradient window,
#      optimizer, transmission of the updated weight)
#   2. check room for the window (Core.check_capacity)
#   3. advance recurrent neurons, parrots and readouts n steps (Core.step: _neurons_eprop or
#      _neurons_bsshslm, Delivery.step_parrots)
#   4. return EXCHANGE to the Python layer (MPI) or loop on (serial run)
# `run` is resumable at step boundaries: it returns GROW when a buffer needs more room and the
# Python layer (eprop_dist/state.py) reallocates and calls it again.  Kernels never allocate.
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from libc.math cimport exp
from _typedefs cimport EPROP_INF_STEPS
from eprop_dist._neurons_eprop cimport step_recurrent, step_readouts
from eprop_dist._neurons_bsshslm cimport step_recurrent_bsshslm, step_readouts_bsshslm
from eprop_dist._delivery import spike_key, key_to_stamp_gid   # re-exported for the Python layer

INF_STEPS = EPROP_INF_STEPS

STATUS = {"DONE": DONE, "EXCHANGE": EXCHANGE, "GROW": GROW, "ERR_HISTORY": ERR_HISTORY}
GROW_REASONS = {"history": GROW_HISTORY, "samples": GROW_SAMPLES, "spikerec": GROW_SPIKEREC,
                "weightrec": GROW_WEIGHTREC, "incoming": GROW_INCOMING}


cdef inline double now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + 1e-9 * ts.tv_nsec


cdef class Core:

    def __init__(self):
        self.t = 0
        self.last_len = 0
        self.delivered = False
        self.grow_what = 0
        self.t_deliver = 0.0
        self.t_update = 0.0
        self.rec = RecurrentNeurons()
        self.out = Readouts()
        self.parrots = Parrots()
        self.history = History()
        self.optimizer = Optimizer()
        self.syn = EpropSynapses()
        self.bsshslm_syn = BsshslmSynapses()
        self.delivery = Delivery()
        self.generators = Generators()
        self.recording = Recording()
        self.recording.n_samples = 0
        self.recording.n_spikes = 0
        self.recording.n_weights = 0
        self.generators.spike_gen_next = 0
        self.delivery.n_outgoing = 0
        self.delivery.n_incoming = 0
        self.delivery.n_syn_events = 0
        self.syn.n_fast_events = 0
        self.syn.n_fast_adaptive = 0
        self.syn.n_settled = 0
        self.syn.settle_windows = True          # internal flushes of finished cutoff windows (memory)
        self.syn.settle_next = 0
        self.history.fast_path = False
        self.history.prefix_done = 0
        self.bsshslm_syn.settled_through = 0
        self.bsshslm_syn.n_fast_windows = 0
        self.delivery.n_ep_events = 0
        self.delivery.t_eprop = 0.0
        # links between the kernels (fixed: the objects are never replaced, only their arrays)
        s = self.syn
        s.rec, s.out, s.history, s.optimizer = self.rec, self.out, self.history, self.optimizer
        b = self.bsshslm_syn
        b.syn, b.rec, b.out, b.history, b.optimizer = s, self.rec, self.out, self.history, self.optimizer
        d = self.delivery
        d.history, d.syn, d.bsshslm_syn, d.optimizer = self.history, s, b, self.optimizer
        d.generators, d.recording = self.generators, self.recording

    @property
    def kernels(self):
        """name -> state object of each kernel (for inspection, e.g. memory accounting)."""
        return {"rec": self.rec, "out": self.out, "parrots": self.parrots, "history": self.history,
                "optimizer": self.optimizer, "syn": self.syn, "bsshslm_syn": self.bsshslm_syn,
                "delivery": self.delivery, "generators": self.generators, "recording": self.recording}

    cdef void share_sizes(self):
        """Copy the sizes the kernels need from the driver (the only place they are set)."""
        self.syn.n_rec = self.n_rec
        self.syn.shift = self.shift
        self.bsshslm_syn.n_rec = self.n_rec
        self.bsshslm_syn.update_interval = self.update_interval
        self.bsshslm_syn.learning_window = self.learning_window
        self.history.shift = self.shift
        self.history.update_interval = self.update_interval
        self.delivery.n_rec = self.n_rec
        self.delivery.n_out = self.n_out
        self.delivery.n_tgt = self.n_tgt
        self.delivery.d_ro = self.d_ro
        self.delivery.bsshslm = self.bsshslm

    cdef int deliver(self) noexcept nogil:
        """Deliveries at the window start W = t of what the last window [W - m, W) produced,
        m = last_len (capacity first: a GROW loses nothing)."""
        cdef int64_t W = self.t, m = self.last_len
        if self.recording.n_weights + self.delivery.weight_records_needed() > self.recording.weight_value.shape[0]:
            self.grow_what = GROW_WEIGHTREC
            return GROW
        if not self.delivery.add_device_events(W, m):
            self.grow_what = GROW_INCOMING
            return GROW
        if W > 0:
            self.delivery.deliver_learning_signals(W, m)
            if self.history.fast_path:
                self.history.complete_prefixes(self.n_rec, W - self.d_ro)
            self.recording.record_learning_signals(self.history, W, m)
        if self.delivery.deliver_spikes(W) != 0:
            return ERR_HISTORY
        if self.bsshslm and self.bsshslm_syn.settle(W) != 0:
            return ERR_HISTORY
        if not self.bsshslm and self.syn.settle_windows and self.syn.settle(W) != 0:
            return ERR_HISTORY
        return 0

    cdef void step(self, int64_t t, int64_t w_start) noexcept nogil:
        """One iteration t of all local nodes (recurrent neurons, parrots, readouts) in the window
        that starts at w_start (readout errors go to row t - w_start)."""
        if self.bsshslm:
            step_recurrent_bsshslm(self.rec, self.delivery, self.history, self.recording, t, self.dt,
                                   self.reset_on_update)
        else:
            step_recurrent(self.rec, self.delivery, self.history, self.recording, t, self.dt)
        self.delivery.step_parrots(self.parrots, t)
        if self.bsshslm:
            # (bsshslm networks have D = 1: every window is one step, row t % 1 = 0)
            step_readouts_bsshslm(self.out, self.delivery, self.history, self.recording, self.generators,
                                  t, self.dt, self.D, self.learning_window, self.reset_on_update)
        else:
            step_readouts(self.out, self.delivery, self.history, self.recording, self.generators, t,
                          self.dt, w_start)

    cdef int check_capacity(self) noexcept nogil:
        """Before a window: room for D appends per history, samples, spike records (D bounds the
        window length)."""
        cdef int64_t n_slots = self.recording.slot_multimeter.shape[0]
        self.grow_what = 0
        if self.history.needs_growth(self.n_rec + self.n_out, self.n_rec, self.D, self.t, self.bsshslm):
            self.grow_what |= GROW_HISTORY
        if self.recording.n_samples + 2 * n_slots * self.D > self.recording.sample_value.shape[0]:
            self.grow_what |= GROW_SAMPLES
        if self.recording.n_spikes + self.n_tgt * self.D > self.recording.spike_key.shape[0]:
            self.grow_what |= GROW_SPIKEREC
        return GROW if self.grow_what else 0

    def run(self, int64_t t_stop, bint serial):
        """Advance to step t_stop (any step >= t: the last window is shortened to end there).
        Returns the status code."""
        cdef int st = 0
        cdef int64_t i, j, n, w_start
        cdef double t0
        self.share_sizes()
        with nogil:
            while True:
                if not self.delivered:
                    if self.t >= t_stop:
                        st = DONE
                        break
                    t0 = now()
                    st = self.deliver()
                    self.t_deliver += now() - t0
                    if st != 0:
                        break
                    self.delivered = True
                st = self.check_capacity()
                if st != 0:
                    break
                t0 = now()
                n = t_stop - self.t if t_stop - self.t < self.D else self.D
                w_start = self.t
                for i in range(n):
                    self.step(self.t, w_start)
                    self.t += 1
                self.t_update += now() - t0
                self.last_len = n
                self.delivered = False
                if serial:
                    # every spike and readout is local: this window's output is the next delivery's input
                    for i in range(n):
                        for j in range(self.n_out):
                            self.delivery.error_all[i, j] = self.delivery.error_local[i, j]
                    if self.bsshslm:
                        for j in range(self.n_out):
                            self.delivery.readout_u_all[j] = self.delivery.readout_u_local[n - 1, j]
                    for i in range(2 * self.delivery.n_outgoing):
                        self.delivery.spikes_in[2 * self.delivery.n_incoming + i] = self.delivery.spikes_out[i]
                    self.delivery.n_incoming += self.delivery.n_outgoing
                    self.delivery.n_outgoing = 0
                else:
                    st = EXCHANGE
                    break
        return st


def c_exp(const double[::1] x, double[::1] out):
    """out = exp(x) with the C library's exp (bit-identical to NEST's std::exp, unlike np.exp)."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(x.shape[0]):
            out[i] = exp(x[i])
