"""Exponential backoff with jitter, as a pure schedule.

Why jitter: after a portal outage every sink instance (and every retrying request) would otherwise knock again at
the same instants and knock the portal over as it comes back. Each delay is drawn from
[nominal * (1 - jitter), nominal], nominal = min(max_s, base_s * 2 ** (attempt - 1)): never longer than the cap,
never shorter than the un-jittered share, so the worst-case retry time stays predictable.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from topology.errors import SettingsError


@dataclass(frozen=True)
class Backoff:
    """Delay before the next attempt, after `attempt` failed attempts (1, 2, ...)."""

    base_s: float = 0.5
    max_s: float = 30.0
    jitter: float = 0.5  # share of each delay that is random, 0 (none) .. 1 ("full jitter")

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.max_s < self.base_s or not 0 <= self.jitter <= 1:
            raise SettingsError("backoff needs 0 <= base <= max and 0 <= jitter <= 1")

    def nominal(self, attempt: int) -> float:
        if attempt < 1:
            raise ValueError("attempt counts from 1")
        return min(self.max_s, self.base_s * 2 ** min(attempt - 1, 60))  # min(): no float overflow on long runs

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        nominal = self.nominal(attempt)
        return nominal * (1 - self.jitter * (rng or random).random())

    def worst_case(self, attempts: int) -> float:
        """Longest total wait across `attempts` attempts (the waits between them), for sizing timeouts."""
        return sum(self.nominal(a) for a in range(1, attempts))
