"""Temperature annealing schedules for the Gumbel-Softmax relaxations: tau as a function of the training step."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from sparsexc._params import NON_NEGATIVE, POSITIVE, POSITIVE_INT, Params, setting

__all__ = ["SCHEDULES", "RelaxationParams", "TemperatureSchedule"]

SCHEDULES: tuple[str, ...] = ("constant", "exponential", "linear", "cosine")


@dataclass(frozen=True)
class TemperatureSchedule:
    """Temperature :math:`\\tau(t)` at optimiser step :math:`t \\ge 0`, from ``start`` towards ``end``.

    * ``constant``: :math:`\\tau = \\mathrm{start}`.
    * ``exponential`` (Jang, Gu & Poole 2017): :math:`\\tau = \\max(\\mathrm{end}, \\mathrm{start}\\, e^{-r t})`
      with ``r = rate``.
    * ``linear``: from ``start`` at t = 0 to ``end`` at t = ``steps``, then ``end``.
    * ``cosine``: :math:`\\mathrm{end} + (\\mathrm{start} - \\mathrm{end})(1 + \\cos(\\pi \\min(t/\\mathrm{steps},
      1)))/2`.

    Both temperatures must be positive; the exponential schedule needs ``end <= start``.
    """

    kind: str = "exponential"
    start: float = 1.0
    end: float = 0.5
    rate: float = 1e-3
    steps: int = 1000

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"schedule kind={self.kind!r} is not allowed; choose one of {', '.join(SCHEDULES)}")
        if not (self.start > 0 and self.end > 0):
            raise ValueError(f"temperatures must be positive; got start={self.start}, end={self.end}")
        if self.kind == "exponential" and self.end > self.start:
            raise ValueError(f"the exponential schedule decays: end={self.end} must be <= start={self.start}")
        if not self.rate >= 0:
            raise ValueError(f"rate={self.rate} must be >= 0")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps={self.steps!r} must be a positive integer")

    def __call__(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"step={step} must be >= 0")
        if self.kind == "constant":
            return float(self.start)
        if self.kind == "exponential":
            return float(max(self.end, self.start * math.exp(-self.rate * step)))
        if step >= self.steps:
            return float(self.end)
        frac = step / self.steps
        if self.kind == "linear":
            return float(self.start + (self.end - self.start) * frac)
        return float(self.end + (self.start - self.end) * 0.5 * (1.0 + math.cos(math.pi * frac)))


@dataclasses.dataclass
class RelaxationParams(Params):
    """Settings of the Gumbel-Softmax relaxations shared by the SDLGM head and the VAEs (subclasses may change
    the defaults by declaring a field again).

    schedule, temperature, min_temperature, anneal_rate, anneal_steps : the :class:`TemperatureSchedule`
        (kind, start, end, rate, steps) of both relaxations over the optimiser steps.
    straight_through : exact 0/1 masks forward, relaxed gradients backward.
    fixed_level : L = L0 for every row (q(L|x) and p(L) point masses at L0, no level network, level KL 0):
        the fixed-sparsity ablation of SDLGM's learned level L <= L0 (shared by the head and the VAE).
    """

    schedule: str = setting("exponential", "Temperature schedule of the Gumbel-Softmax relaxations.", choices=SCHEDULES)
    temperature: float = setting(1.0, "Starting temperature of the relaxations.", range=POSITIVE)
    min_temperature: float = setting(0.5, "Temperature the schedule anneals to.", range=POSITIVE)
    anneal_rate: float = setting(1e-3, "Decay rate r of the exponential schedule, per step.", range=NON_NEGATIVE)
    anneal_steps: int = setting(1000, "Steps of the linear and cosine schedules.", range=POSITIVE_INT)
    straight_through: bool = setting(False, "Exact 0/1 masks forward, relaxed gradients backward.")
    fixed_level: bool = setting(
        False,
        "Fix the level L = L0 for every row instead of learning q(L|x) (the ablation of the learned sparsity).",
    )

    def validate(self) -> None:
        if self.schedule == "exponential" and self.min_temperature > self.temperature:
            raise ValueError(
                f"{type(self).__name__}: the exponential schedule decays; min_temperature={self.min_temperature} "
                f"must be <= temperature={self.temperature}"
            )

    def temperature_schedule(self) -> TemperatureSchedule:
        return TemperatureSchedule(
            self.schedule, self.temperature, self.min_temperature, self.anneal_rate, self.anneal_steps
        )
