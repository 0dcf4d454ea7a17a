"""Counter-based random parameters for connection rules (drawn in csrc/connect.pyx).

Every draw is a pure function of (rng_seed, connection block, target gid, counter), so a network
is the same on any number of ranks (SPEC 10.1).  Use as ``syn_spec={"weight": normal(0, 0.1)}``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import BadProperty


@dataclass(frozen=True)
class RandomParameter:
    distribution: str   # normal | uniform
    a: float            # mean | low
    b: float            # std  | high


def normal(mean=0.0, std=1.0):
    if not std >= 0:
        raise BadProperty(f"normal: std must be >= 0, got {std!r}")
    return RandomParameter("normal", float(mean), float(std))


def uniform(min=0.0, max=1.0):  # noqa: A002  (NEST's argument names)
    if not max >= min:
        raise BadProperty(f"uniform: max ({max!r}) must be >= min ({min!r})")
    return RandomParameter("uniform", float(min), float(max))
