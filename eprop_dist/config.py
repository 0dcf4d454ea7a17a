"""Run configurations: TOML files and ``--set key=value`` overrides, validated against one schema per
task (pydantic v2: unknown keys forbidden, strict types, finite numbers, ranges).

A configuration is flat: ``key = value`` pairs; ``task`` and ``family`` may appear in the file (they must
agree with the command line).  Every error names the offending key and says what is expected, before any
network is built.  Files are data: read with ``tomllib`` (``tomli`` on Python 3.10), never evaluated.
"""
from __future__ import annotations

import math
import sys
from typing import ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import EpropError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

FAMILIES = ("eprop_plus", "bsshslm_2020")
REC_MODELS = {"eprop_plus": ("eprop_iaf", "eprop_iaf_adapt", "eprop_iaf_psc_delta", "eprop_iaf_psc_delta_adapt"),
              "bsshslm_2020": ("eprop_iaf_bsshslm_2020", "eprop_iaf_adapt_bsshslm_2020")}

class ConfigError(EpropError):
    """A configuration value is unknown, of the wrong type, out of range or not applicable."""


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_default=True)

    task: str
    family: Literal["eprop_plus", "bsshslm_2020"] = "eprop_plus"
    seed: int = Field(1, ge=0, le=2**32 - 1, description="numpy seed of weights, inputs and targets")
    eta: Optional[float] = Field(None, ge=0.0, description="learning rate in training phases (None: NEST's)")
    optimizer: Optional[Literal["gradient_descent", "adam"]] = Field(None, description="None: the task's (NEST's) optimizer")
    optimize_each_step: bool = False
    record_spikes: int = Field(100, ge=0, description="recurrent neurons whose spikes are written")
    record_weights: bool = Field(True, description="initial and final weights of every e-prop connection "
                                 "(gathered on every rank: turn off for very large networks)")
    weights: Literal["rules", "nest_example"] = "rules"

    # keys that only one family knows
    EPROP_PLUS_ONLY: ClassVar[tuple] = ("optimize_each_step",)

    @model_validator(mode="after")
    def _family_keys(self):
        if self.family == "bsshslm_2020":
            for k in self.EPROP_PLUS_ONLY:
                if k in self.model_fields_set:
                    raise ValueError(f"config key '{k}' does not apply to family bsshslm_2020 (e-prop+ only)")
        return self


class SineWaves(_Base):
    """SPEC 7.1 (e-prop+) / 7.2 (bsshslm_2020): pattern generation, one readout learns four sines."""
    n_iter: int = Field(200, ge=1, description="training iterations (one sequence each)")
    seq: int = Field(1000, ge=200, le=100_000, description="sequence length in steps of 1 ms (>= 200, the "
                     "shortest target period: NEST's target has whole periods per sequence only)")
    n_in: int = Field(100, ge=1)
    n_rec: int = Field(100, ge=2)
    n_out: int = Field(1, ge=1)
    neuron_model: Optional[str] = None
    input_spike_prob: float = Field(0.05, ge=0.0, le=1.0, description="input spike probability per step")
    p_in: float = Field(1.0, gt=0.0, le=1.0, description="input -> recurrent connection probability")
    p_rec: float = Field(1.0, gt=0.0, le=1.0, description="recurrent -> recurrent connection probability")

    @model_validator(mode="after")
    def _model(self):
        _check_model(self)
        return self


class _Classification(_Base):
    n_iter_train: int = Field(50, ge=1, description="training phases (early stopping may end sooner)")
    n_iter_test: int = Field(4, ge=0, description="test phases after training")
    batch_size: int = Field(32, ge=1, description="samples per phase (NEST: batch_size / group_size)")
    do_early_stopping: bool = True
    n_iter_validate_every: int = Field(10, ge=1)
    n_iter_early_stop: int = Field(8, ge=1)
    stop_crit: float = Field(0.07, ge=0.0, le=1.0, description="classification error that stops training")


class EvidenceAccumulation(_Classification):
    """SPEC 7.3: evidence accumulation (bsshslm_2020, NEST's example); an e-prop+ variant with MSE readouts."""
    n_in: int = Field(40, ge=4)
    n_reg: int = Field(50, ge=0, description="regular (non-adaptive) recurrent neurons")
    n_ad: int = Field(50, ge=0, description="adaptive recurrent neurons")
    n_cues: int = Field(7, ge=1)
    cue_steps: int = Field(100, ge=1)
    spacing_steps: int = Field(50, ge=1)
    bg_noise_steps: int = Field(1050, ge=0)
    recall_steps: int = Field(150, ge=1)
    prob_group: float = Field(0.3, ge=0.0, le=1.0)
    spike_prob: float = Field(0.04, ge=0.0, le=1.0)
    p_in: float = Field(1.0, gt=0.0, le=1.0)
    p_rec: float = Field(1.0, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _sizes(self):
        if self.n_reg + self.n_ad < 2:
            raise ValueError(f"config keys 'n_reg' + 'n_ad' = {self.n_reg + self.n_ad}: need >= 2 recurrent neurons")
        return self


class _EventDigits(_Classification):
    """Shared by nmnist and digits (SPEC 7.4 pipeline)."""
    n_iter_train: int = Field(10, ge=1)
    n_iter_test: int = Field(2, ge=0)
    batch_size: int = Field(100, ge=1, description="samples per phase (NEST's group_size)")
    do_early_stopping: bool = False
    seq: int = Field(300, ge=10, description="steps per sample; event times are rescaled to it")
    learning_window: int = Field(10, ge=1, description="steps at the end of each sample with a target")
    n_rec: int = Field(150, ge=2)
    p_in: float = Field(0.25, gt=0.0, le=1.0)
    p_rec: float = Field(0.01, gt=0.0, le=1.0)
    neuron_model: Optional[str] = None
    tau_m_readout: Optional[float] = Field(None, gt=0.0, le=1e4, description="readout membrane time constant "
                                           "(ms); None: NEST's 100 with kappa 0.99; else kappa = exp(-1/tau)")
    p_in_out: float = Field(0.0, ge=0.0, le=1.0, description="input -> readout e-prop projection (0: none, "
                            "NEST's network)")
    optimizer_batch_size: int = Field(1, ge=1, description="e-prop+ optimizer batch in time steps (NEST: 1)")
    c_reg: Optional[float] = Field(None, ge=0.0, description="firing-rate regularisation; None: NEST's "
                                   "2 / seq / (1 - kappa)^2")
    input_weight_scale: float = Field(1.0, gt=0.0, le=1e3, description="input weights: normal(0, this / sqrt(n_in))")
    feedback_scale: Optional[float] = Field(None, gt=0.0, description="feedback weights randn * this; "
                                            "None: NEST's 1 / (1 - kappa)")

    @model_validator(mode="after")
    def _lw(self):
        if self.learning_window > self.seq:
            raise ValueError(f"config key 'learning_window' = {self.learning_window}: must be <= seq ({self.seq})")
        _check_model(self)
        return self


class Nmnist(_EventDigits):
    """SPEC 7.4: N-MNIST (real data, read with tonic); nothing is downloaded."""
    data_dir: str = Field("data/nmnist", min_length=1, description="folder with NMNIST/Train|Test or Train|Test")
    max_train: Optional[int] = Field(None, ge=1, description="use only the first N training samples")
    max_test: Optional[int] = Field(None, ge=1)


class Digits(_EventDigits):
    """Offline STAND-IN for N-MNIST: scikit-learn's bundled 8x8 digits as ON/OFF event streams."""
    n_rec: int = Field(100, ge=2)
    batch_size: int = Field(50, ge=1)
    n_iter_train: int = Field(12, ge=1, description="training phases (12 x 50 samples)")
    n_iter_test: int = Field(2, ge=0)
    seq: int = Field(60, ge=12)
    learning_window: int = Field(10, ge=1)
    upsample: int = Field(2, ge=1, le=4, description="pixel upsampling of the 8x8 images before saccades")
    saccade_steps: int = Field(3, ge=1, le=8, description="pixel shift per saccade leg")
    p_in: float = Field(1.0, gt=0.0, le=1.0)
    p_rec: float = Field(0.1, gt=0.0, le=1.0)
    test_fraction: float = Field(0.25, gt=0.0, lt=1.0, description="held-out share of the 1797 images")

    # The stand-in's OWN learning parameters for e-prop+ (not NEST's N-MNIST values, which stay the nmnist
    # defaults; with those the stand-in does not learn within a few hundred samples): a readout time
    # constant shorter than a sample (an eprop_readout is not reset between samples, NEST's 100 ms would
    # mix several 60-step samples), Adam with one optimisation per sample (optimizer_batch_size = seq,
    # counted in time steps; per-step Adam would also run one catch-up pass per elapsed step), feedback
    # randn * 1, input weights twice NEST's scale.  Keys given in the file or by --set win.  Measured in
    # NOTES.md ("digits stand-in: learning").
    EPROP_PLUS_DEFAULTS: ClassVar[dict] = {"tau_m_readout": 10.0, "optimizer": "adam", "eta": 1e-3,
                                           "feedback_scale": 1.0, "input_weight_scale": 2.0}

    @model_validator(mode="before")
    @classmethod
    def _stand_in_defaults(cls, data):
        if not isinstance(data, dict) or data.get("family", "eprop_plus") != "eprop_plus":
            return data
        out = dict(cls.EPROP_PLUS_DEFAULTS)
        seq = data.get("seq", cls.model_fields["seq"].default)
        if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1:
            out["optimizer_batch_size"] = seq          # one optimisation per sample
        out.update(data)
        return out


TASKS = {"sine_waves": SineWaves, "evidence_accumulation": EvidenceAccumulation, "digits": Digits,
         "nmnist": Nmnist}
DEFAULT_FAMILY = {"sine_waves": "eprop_plus", "evidence_accumulation": "bsshslm_2020", "digits": "eprop_plus",
                  "nmnist": "eprop_plus"}
FAMILIES_OF = {"sine_waves": FAMILIES, "evidence_accumulation": FAMILIES, "digits": FAMILIES,
               "nmnist": ("eprop_plus",)}


def _check_model(cfg):
    models = REC_MODELS[cfg.family]
    if cfg.neuron_model is None:
        cfg.neuron_model = models[0]
    elif cfg.neuron_model not in models:
        raise ValueError(f"config key 'neuron_model' = {cfg.neuron_model!r}: not a recurrent model of family {cfg.family}; "
                         f"choose one of {', '.join(models)}")


def all_keys():
    return sorted({k for m in TASKS.values() for k in m.model_fields})


def load_toml(path):
    """The key/value table of a TOML file; clear errors for a missing or malformed file."""
    if not str(path).strip():
        raise ConfigError("--config: empty file name")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not a TOML text file (not UTF-8: byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"config file {path} cannot be read: {e.strerror or e}") from None
    for k, v in data.items():
        if isinstance(v, dict):
            raise ConfigError(f"config file {path}: table [{k}] is not supported; keys are flat (key = value)")
    return data


def parse_set(items):
    """``key=value`` strings -> dict; values are TOML literals (``5``, ``1e-3``, ``true``, ``"x"``); a bare
    word that is no TOML literal is taken as a string (``neuron_model=eprop_iaf_adapt``)."""
    out = {}
    for it in items or ():
        if "=" not in it:
            raise ConfigError(f"--set {it!r}: expected key=value")
        k, v = it.split("=", 1)
        k = k.strip()
        if not k:
            raise ConfigError(f"--set {it!r}: empty key")
        try:
            out[k] = tomllib.loads(f"v = {v.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[k] = v.strip()
    return out


def resolve(task, family=None, file_cfg=None, sets=None):
    """Validate the merged configuration (defaults < file < --set) of `task`; returns the pydantic model."""
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; available: {', '.join(TASKS)}")
    data = dict(file_cfg or {})
    data.update(sets or {})
    if "task" in data and data["task"] != task:
        raise ConfigError(f"config key 'task' = {data['task']!r} disagrees with the task on the command line "
                          f"({task!r})")
    data["task"] = task
    if family is not None:
        if "family" in data and data["family"] != family:
            raise ConfigError(f"config key 'family' = {data['family']!r} disagrees with --family {family}")
        data["family"] = family
    data.setdefault("family", DEFAULT_FAMILY[task])
    if data["family"] not in FAMILIES_OF[task]:
        raise ConfigError(f"config key 'family': task {task} is available for {', '.join(FAMILIES_OF[task])}, "
                          f"not {data['family']!r}")
    model = TASKS[task]
    known = set(model.model_fields)
    everywhere = set(all_keys())
    for k in data:
        if k not in known:
            if k in everywhere:
                raise ConfigError(f"config key '{k}' does not apply to task {task}; its keys: "
                                  f"{', '.join(sorted(known - {'task'}))}")
            raise ConfigError(f"unknown config key '{k}'; keys of task {task}: {', '.join(sorted(known - {'task'}))}")
    try:
        return model(**data)
    except ValidationError as e:
        raise ConfigError(_message(e, data)) from None


def _message(e, data):
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or None
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if loc:
            got = data.get(err["loc"][0], "<default>")
            if isinstance(got, float) and not math.isfinite(got):
                msg = "must be a finite number"
            parts.append(f"config key '{loc}' = {got!r}: {msg}")
        else:
            parts.append(msg if msg.startswith("config key") else f"config: {msg}")
    return "; ".join(parts)


def as_dict(cfg):
    return cfg.model_dump()


# ---- memory of the recording, checked before anything is built ------------------------------------
# the compact multimeter store (mm_store.py): per sampled step a time (int64), per readout one
# presence byte and one float64 per recorded signal; the kernels' raw buffer (20 B per value) is
# drained before it passes mm_store.RAW_CAP values and doubles on its way there
ROW_BYTES = 8
SENDER_BYTES = 1
VALUE_BYTES = 8
RAW_PEAK_BYTES = 3 * 20 * 65536


def recording_bytes(phases, P, n_out, n_signals=2):
    return phases * P * (ROW_BYTES + n_out * (SENDER_BYTES + n_signals * VALUE_BYTES)) + RAW_PEAK_BYTES


def recorded_samples(cfg):
    """(readout multimeter samples the run keeps, phases, steps per phase, readouts, keys that set
    them).  Every task records readout_signal and target_signal of each readout at every step
    (SPEC 7), and the core keeps the samples of the whole run (NEST's memory backend does too);
    phases: the most the schedule can run (early stopping may end sooner) plus the final evaluation."""
    if cfg.task == "sine_waves":
        P, n_out, phases, keys = cfg.seq, cfg.n_out, cfg.n_iter, ("n_iter", "seq")
    else:
        if cfg.task == "evidence_accumulation":
            from .tasks.evidence_accumulation import steps_of
            seq, n_out = steps_of(cfg)["sequence"], 2
            keys = ("n_iter_train", "batch_size", "bg_noise_steps")
        else:
            seq, n_out = cfg.seq, 10
            keys = ("n_iter_train", "batch_size", "seq")
        P = seq * cfg.batch_size
        phases = cfg.n_iter_train + cfg.n_iter_test
        if cfg.do_early_stopping:
            phases += -(-cfg.n_iter_train // cfg.n_iter_validate_every) * (1 + cfg.n_iter_early_stop)
    phases += 1
    return phases * P * n_out * 2, phases, P, n_out, keys


def machine_memory():
    """Bytes of physical memory of this machine (the same on every rank of a node; None if unknown)."""
    import os
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):   # pragma: no cover - not POSIX
        return None


def check_memory(cfg, available=None):
    """Refuse a run whose recording cannot fit in memory, before anything is built or written (else it
    would stop with a MemoryError after minutes).  `available`: bytes (None: this machine's physical
    memory, a value every rank of a node sees alike, so the decision is the same on every rank).
    Returns the estimate in bytes."""
    n, phases, P, n_out, keys = recorded_samples(cfg)
    need = recording_bytes(phases, P, n_out)
    avail = machine_memory() if available is None else available
    if avail is not None and need > avail:
        vals = ", ".join(f"{k} = {getattr(cfg, k)}" for k in keys)
        raise ConfigError(f"the run would record {n:,} readout samples ({phases:,} phases x {P:,} steps x "
                          f"{n_out} readouts x 2 signals; {vals}): about {_gib(need)} ({VALUE_BYTES} B per "
                          f"value plus {ROW_BYTES} B per step and {SENDER_BYTES} B per readout and step), "
                          f"more than the {_gib(avail)} of "
                          f"memory of this machine; lower {' or '.join(repr(k) for k in keys)}")
    return need


def _gib(b):
    return f"{b / 2**30:.3g} GiB" if b >= 2**28 else f"{b / 2**20:.3g} MiB"
