"""Samples, figures (one table row each) and the interleaving of contenders."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


class BenchError(RuntimeError):
    """The benchmark itself broke (a child failed, a flow did not finish): never a slow number."""


@dataclass(frozen=True)
class Samples:
    """Repeated measurements of one contender, in the figure's unit (ms or MiB)."""

    label: str
    values: tuple[float, ...]

    @property
    def n(self) -> int:
        """How many runs."""
        return len(self.values)

    @property
    def min(self) -> float:
        """The best run: the least disturbed by the machine's noise."""
        return min(self.values)

    @property
    def median(self) -> float:
        """The typical run."""
        return statistics.median(self.values)


@dataclass
class Figure:
    """One row of the table: ours against a peer measured in the same run, and the target.

    ``target`` is a ceiling on ``ours.median / peer.median`` when ``target_kind`` is "ratio",
    on ``ours.median`` itself (in ``unit``) when it is "absolute", and the value every sample
    must have when it is "each" (a count per cycle, e.g. one refresh per token lifetime).

    ``guard`` is the line the quick mode holds every figure to: 1.5 times the target (for
    "each", the target itself: a count is never noise). ``unguarded`` says why a figure is
    only checked for being produced.
    """

    key: str
    label: str
    unit: str
    ours: Samples | None
    peer: Samples | None
    peer_label: str
    target: float | None = None
    target_kind: str = "ratio"
    method: str = ""
    detail: str = ""
    cause: str = ""
    error: str = ""
    skipped: str = ""
    unguarded: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """Median over the peer's median."""
        if self.ours is None or self.peer is None or not self.ours.values or not self.peer.values:
            return None
        return self.ours.median / self.peer.median

    @property
    def ratio_min(self) -> float | None:
        """Min over the peer's min (the same comparison with the noise taken out)."""
        if self.ours is None or self.peer is None or not self.ours.values or not self.peer.values:
            return None
        return self.ours.min / self.peer.min

    @property
    def value(self) -> float | None:
        """What the target is held against: the ratio, or our median (None without a measurement)."""
        if self.ours is None or not self.ours.values:
            return None
        return self.ratio if self.target_kind == "ratio" else self.ours.median

    @property
    def gap(self) -> float | None:
        """How far past the target the median is, in ``unit`` (None when the target is met or absent)."""
        if self.met is not False or self.ours is None or self.target is None:
            return None
        if self.target_kind == "ratio":
            return self.ours.median - self.target * self.peer.median if self.peer is not None else None
        if self.target_kind == "each":
            return float(sum(1 for v in self.ours.values if v != self.target))
        return self.ours.median - self.target

    @property
    def target_text(self) -> str:
        """The target as people read it."""
        if self.target is None:
            return "-"
        if self.target_kind == "ratio":
            return f"<= {self.target:g}x"
        if self.target_kind == "each":
            return f"= {self.target:g} each"
        return f"<= {self.target:g} {self.unit}".rstrip()

    @property
    def met(self) -> bool | None:
        """Whether the target is met at the median (for "each": by every sample); None without one."""
        if self.target is None or self.ours is None or not self.ours.values:
            return None
        if self.target_kind == "each":
            return all(v == self.target for v in self.ours.values)
        value = self.value
        return None if value is None else value <= self.target

    @property
    def guard(self) -> float | None:
        """The quick mode's line: 1.5 times the target (the target itself for "each")."""
        if self.target is None:
            return None
        return self.target if self.target_kind == "each" else 1.5 * self.target

    @property
    def within_guard(self) -> bool | None:
        """Whether the figure is within its guard: its median or its best run, whichever is lower.

        For a ratio, the ratio of the medians or of the mins. Noise on a shared machine inflates
        some runs of a few; a regression inflates the best run too.
        """
        if self.guard is None or self.ours is None or not self.ours.values:
            return None
        if self.target_kind == "each":
            return self.met
        value = self.value
        if self.target_kind == "ratio" and self.ratio_min is not None and value is not None:
            value = min(value, self.ratio_min)
        elif self.target_kind == "absolute" and value is not None:
            value = min(value, self.ours.min)
        return None if value is None else value <= self.guard

    def to_json(self) -> dict[str, object]:
        """A plain dict for the JSON report."""

        def side(s: Samples | None) -> dict[str, object] | None:
            if s is None or not s.values:
                return None
            return {"label": s.label, "n": s.n, "min": s.min, "median": s.median, "values": list(s.values)}

        return {
            "key": self.key,
            "label": self.label,
            "unit": self.unit,
            "ours": side(self.ours),
            "peer": side(self.peer),
            "peer_label": self.peer_label,
            "ratio": self.ratio,
            "ratio_min": self.ratio_min,
            "target": self.target,
            "target_kind": self.target_kind,
            "target_text": self.target_text,
            "met": self.met,
            "gap": self.gap,
            "guard": self.guard,
            "within_guard": self.within_guard,
            "unguarded": self.unguarded,
            "method": self.method,
            "detail": self.detail,
            "cause": self.cause,
            "error": self.error,
            "skipped": self.skipped,
            "extra": self.extra,
        }


def interleave(
    contenders: Mapping[str, Callable[[], float]],
    rounds: int,
    *,
    warmup: int = 1,
    prepare: Mapping[str, Callable[[], None]] | None = None,
) -> dict[str, list[float]]:
    """Run every contender once per round, rotating who goes first; warm-up rounds are dropped.

    Interleaving (A B C, B C A, C A B, ...) spreads the machine's noise over all contenders
    instead of letting a burst land on one of them; rotating the order keeps any contender
    from always running right after another (a cache warmed by its predecessor). ``prepare``
    runs untimed before a contender's run (e.g. making a cached token stale again).
    """
    names = list(contenders)
    results: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(warmup + rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            if prepare and name in prepare:
                prepare[name]()
            value = contenders[name]()
            if round_no >= warmup:
                results[name].append(value)
    return results


def samples(label: str, values: Sequence[float], scale: float = 1.0) -> Samples:
    """Samples from raw values, scaled into the figure's unit (e.g. 1000 for seconds to ms)."""
    return Samples(label, tuple(v * scale for v in values))
