"""``nmnist``: N-MNIST classification (SPEC 7.4), events read with tonic, nothing downloaded.

Accepted layouts under ``data_dir``: tonic's (``NMNIST/Train/<label>/*.bin``, ``NMNIST/Test/...``, what
``tonic.datasets.NMNIST(save_to=data_dir)`` leaves after its download) and NEST's example
(``Train/<label>/*.bin``, ``Test/...``).  Files are listed label by label in sorted filename order (NEST's
loader).  Each file is read with ``tonic.io.read_mnist_file`` (the 5-byte N-MNIST event format); events in
the pixel blocklist are dropped, the rest map to the 1196 input neurons in ascending pixel order; times are
rescaled ``round(t_us * seq / 336040)`` (336040 us: the longest recording).
"""
from __future__ import annotations

import hashlib
import os

import numpy as np

from ..errors import EpropError
from . import event_classification

BLOCKLIST_RANGES = (
    "0-62,64-151,159-180,196-212,232-245,267-278,301-312,335-345,370-379,404-413,438-442,444-447,471-481,"
    "506-514,539-549,573-582,608-617,641-650,675-684,709-718,743-752,776-786,810-820,843-854,877-889,910-923,"
    "943-958,976-993,1009-1028,1042-1064,1074-1218,1220-1275,1277-1288,1290-1305,1316-1335,1353-1368,"
    "1388-1391,1393-1401,1424-1433,1457,1459,1461-1467,1492-1501,1526-1533,1560-1568,1593-1598,1600-1602,"
    "1627-1636,1662-1670,1696-1704,1730-1738,1763-1772,1797-1806,1831-1839,1866-1873,1899-1907,1933-1941,"
    "1966-1975,2000-2010,2033-2043,2067-2079,2100-2109,2111-2113,2133-2149,2165-2182,2198-2219,2230-2256,"
    "2259,2261-2311")
BLOCKLIST_MD5 = "3aa1cffee029c79ff9a46a61dbaebde8"      # of NEST's NMNIST_pixels_blocklist.txt
SIDE = 34
N_PIXELS = SIDE * SIDE * 2
T_MAX_US = 336040.0
HOW_TO_GET = ("get it once with tonic: python -c \"import tonic; tonic.datasets.NMNIST(save_to='DIR', train=True); "
              "tonic.datasets.NMNIST(save_to='DIR', train=False)\" (or unpack the Train.zip/Test.zip of the "
              "N-MNIST release into DIR); eprop-dist never downloads")


def blocklist():
    v = []
    for r in BLOCKLIST_RANGES.split(","):
        a, _, b = r.partition("-")
        v.extend(range(int(a), int(b or a) + 1))
    arr = np.array(v, dtype=np.int64)
    if hashlib.md5(("\n".join(map(str, v)) + "\n").encode()).hexdigest() != BLOCKLIST_MD5:  # pragma: no cover
        raise AssertionError("N-MNIST blocklist does not match NEST's file")
    return arr


def active_pixels():
    return np.setdiff1d(np.arange(N_PIXELS), blocklist())


def find_split(data_dir, split):
    """The folder with <label>/*.bin of `split` ("Train" | "Test"): tonic's layout first, then NEST's."""
    cands = [os.path.join(data_dir, "NMNIST", split), os.path.join(data_dir, split)]
    for c in cands:
        if os.path.isdir(c):
            return c
    raise EpropError(f"N-MNIST {split} data not found: expected {cands[0]}/<0..9>/*.bin (tonic's layout) or "
                     f"{cands[1]}/<0..9>/*.bin (NEST's layout); {HOW_TO_GET.replace('DIR', data_dir)}")


def list_files(folder, data_dir):
    files, labels, missing = [], [], []
    for lab in range(10):
        d = os.path.join(folder, str(lab))
        fs = sorted(f for f in os.listdir(d) if f.endswith(".bin")) if os.path.isdir(d) else []
        if not fs:
            missing.append(str(lab))
        files.extend(os.path.join(d, f) for f in fs)
        labels.extend([lab] * len(fs))
    if missing:
        raise EpropError(f"N-MNIST data in {folder} is incomplete: no .bin files for label(s) {', '.join(missing)} "
                         f"(expected {folder}/<0..9>/*.bin); {HOW_TO_GET.replace('DIR', data_dir)}")
    for f in files:
        size = os.path.getsize(f)
        if size == 0 or size % 5:
            raise EpropError(f"N-MNIST file {f} is corrupt: {size} bytes is not a positive multiple of the "
                             "5-byte event size")
    return files, np.array(labels, dtype=np.int64)


class NmnistSet:
    """Lazily read N-MNIST samples (one file per sample, read when its phase needs it)."""

    def __init__(self, files, labels, seq):
        self.files, self.labels, self.seq = files, labels, seq
        self.pixel_to_input = np.full(N_PIXELS, -1, dtype=np.int64)
        act = active_pixels()
        self.pixel_to_input[act] = np.arange(act.size)
        self.n_in = act.size

    def __len__(self):
        return len(self.files)

    def sample(self, i):
        return read_sample(self.files[i], self.pixel_to_input, self.seq)


def read_sample(path, pixel_to_input, seq):
    """(input index, step) of the events of one .bin file (read through tonic)."""
    import tonic
    try:
        ev = tonic.io.read_mnist_file(path, dtype=tonic.datasets.NMNIST.dtype)
    except (ValueError, IndexError, OSError) as e:
        raise EpropError(f"N-MNIST file {path} is corrupt: {e}") from None
    x, y, t, p = (np.asarray(ev[f], dtype=np.int64) for f in ("x", "y", "t", "p"))
    if x.size and (x.max() >= SIDE or y.max() >= SIDE or x.min() < 0 or y.min() < 0):
        raise EpropError(f"N-MNIST file {path} is corrupt: pixel coordinates outside the 34x34 sensor")
    pix = p * SIDE * SIDE + y * SIDE + x
    inp = pixel_to_input[pix]
    steps = np.around(t * seq / T_MAX_US).astype(np.int64)
    keep = inp >= 0
    return inp[keep], steps[keep]


def datasets(cfg):
    try:
        import tonic  # noqa: F401
    except ImportError:
        raise EpropError("task nmnist reads N-MNIST with tonic: pip install 'eprop-dist[nmnist]'") from None
    if not os.path.isdir(cfg.data_dir):
        raise EpropError(f"N-MNIST data folder {cfg.data_dir} does not exist; "
                         f"{HOW_TO_GET.replace('DIR', cfg.data_dir)}")
    out = []
    for split, cap in (("Train", cfg.max_train), ("Test", cfg.max_test)):
        folder = find_split(cfg.data_dir, split)
        files, labels = list_files(folder, cfg.data_dir)
        if cap is not None and cap < len(files):
            ids = np.sort(np.random.RandomState(cfg.seed).permutation(len(files))[:cap])
            files, labels = [files[i] for i in ids], labels[ids]
        out.append(NmnistSet(files, labels, cfg.seq))
    return out[0], out[1], {"data_dir": os.path.abspath(cfg.data_dir)}


def run(cfg, kernel, report=None, progress=None):
    train, test, info = datasets(cfg)
    return event_classification.run(cfg, kernel, train, test, "nmnist", report=report, progress=progress,
                                    info=info)
