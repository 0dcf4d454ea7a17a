"""``digits``: an offline STAND-IN for N-MNIST (no download), through the same pipeline as ``nmnist``.

scikit-learn's bundled 8x8 handwritten digits (1797 images, shipped inside the package) are turned into
ON/OFF event streams the way N-MNIST was recorded: the image (upsampled ``upsample`` times) moves along
N-MNIST's triangular saccade path (right-down, right-up, back left; ``saccade_steps`` pixels per leg) and
every pixel whose brightness rises (falls) by more than 0.1 at a move emits an ON (OFF) event.  Like
N-MNIST's blocklist, pixels that never fire in the whole set are dropped.  The split into training and
held-out images is a seeded permutation (``test_fraction``).  It is NOT N-MNIST: accuracies are not
comparable with N-MNIST results.

The network is the N-MNIST example's (SPEC 7.4); its learning parameters for e-prop+ are the stand-in's
own (``config.Digits.EPROP_PLUS_DEFAULTS``): with NEST's N-MNIST values (readout tau 100 ms, gradient
descent with eta 5e-3 (1-kappa)^2, feedback 1/(1-kappa)) the 60-step samples overlap in the readout,
which is never reset, and learning needs far more samples than a test can afford (small eta stays at
chance, large eta diverges).  Readout tau 10 ms, Adam with one optimisation per sample, feedback randn
and twice NEST's input weights reach 0.69 held-out after 600 samples (0.74 with seed 2).
"""
from __future__ import annotations

import numpy as np

from ..errors import EpropError
from . import event_classification

THRESHOLD = 0.1


def _load_images():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise EpropError("task digits needs scikit-learn (its bundled 8x8 digits): pip install "
                         "'eprop-dist[digits]'") from None
    d = load_digits()
    return d.images / 16.0, d.target.astype(np.int64)


def saccade_path(seq, m):
    """Integer (dx, dy) offset of the image at every step of a sample: three legs of seq//3 steps."""
    corners = np.array([[0.0, 0.0], [m / 2.0, m], [m, 0.0], [0.0, 0.0]])
    leg = max(1, seq // 3)
    pts = []
    for a, b in zip(corners[:-1], corners[1:]):
        f = np.arange(leg) / leg
        pts.append(a + f[:, None] * (b - a))
    path = np.rint(np.concatenate(pts)).astype(int)
    out = np.zeros((seq, 2), int)
    out[: min(seq, path.shape[0])] = path[:seq]
    if path.shape[0] < seq:
        out[path.shape[0]:] = path[-1]
    return out


def events_of(images, seq, upsample, m):
    """All images -> (sample, pixel, step) event arrays; pixel = polarity*C*C + y*C + x."""
    imgs = np.kron(images, np.ones((upsample, upsample)))
    n, S, _ = imgs.shape
    C = S + m
    path = saccade_path(seq, m)
    frames_at = {}
    for dx, dy in {tuple(p) for p in path}:
        f = np.zeros((n, C, C))
        f[:, dy:dy + S, dx:dx + S] = imgs
        frames_at[(dx, dy)] = f
    smp, pix, stp = [], [], []
    for t in range(1, seq):
        a, b = tuple(path[t - 1]), tuple(path[t])
        if a == b:
            continue
        diff = (frames_at[b] - frames_at[a]).reshape(n, -1)
        for pol, sel in ((1, diff > THRESHOLD), (0, diff < -THRESHOLD)):
            s, p = np.nonzero(sel)
            smp.append(s)
            pix.append(p + pol * C * C)
            stp.append(np.full(s.size, t))
    return np.concatenate(smp), np.concatenate(pix), np.concatenate(stp), 2 * C * C


class EventSet:
    """Samples as sorted event arrays (input index, step), with the labels."""

    def __init__(self, smp, inp, stp, labels, n_in, ids):
        self.labels = labels
        self.n_in = n_in
        o = np.lexsort((stp, smp))
        self._smp, self._inp, self._stp = smp[o], inp[o], stp[o]
        self._ptr = np.searchsorted(self._smp, np.arange(len(labels) + 1))
        self.ids = ids

    def __len__(self):
        return len(self.labels)

    def sample(self, i):
        a, b = self._ptr[i], self._ptr[i + 1]
        return self._inp[a:b], self._stp[a:b]


def datasets(cfg):
    images, labels = _load_images()
    smp, pix, stp, n_pix = events_of(images, cfg.seq, cfg.upsample, cfg.saccade_steps)
    active = np.unique(pix)                           # the data-derived "blocklist": never-firing pixels out
    inp = np.searchsorted(active, pix)
    perm = np.random.RandomState(cfg.seed).permutation(len(labels))
    n_test = int(round(cfg.test_fraction * len(labels)))
    test_ids, train_ids = np.sort(perm[:n_test]), np.sort(perm[n_test:])

    def subset(ids):
        pos = np.full(len(labels), -1)
        pos[ids] = np.arange(ids.size)
        keep = pos[smp] >= 0
        return EventSet(pos[smp[keep]], inp[keep], stp[keep], labels[ids], active.size, ids)
    return subset(train_ids), subset(test_ids), {"n_pixels": n_pix, "stand_in": "scikit-learn 8x8 digits, "
                                                 "simulated saccades (NOT N-MNIST)"}


def run(cfg, kernel, report=None, progress=None):
    train, test, info = datasets(cfg)
    return event_classification.run(cfg, kernel, train, test, "digits (N-MNIST stand-in)", report=report,
                                     progress=progress, info=info, parrot_flush=True)
