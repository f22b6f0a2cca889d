"""Helpers shared by the benchmark scripts: interleaved timing and medians."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved(contenders: dict[str, Callable[[], int]], rounds: int) -> dict[str, float]:
    """Run each contender once per round, in turn, and return the median ops per second.

    Each callable does its work and returns how many operations it did.
    Interleaving spreads machine noise evenly over all contenders.
    """
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            ops = run()
            rates[name].append(ops / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def print_rates(title: str, rates: dict[str, float], baseline: str) -> None:
    print(f"\n{title}")
    base = rates[baseline]
    for name, rate in rates.items():
        print(f"  {name:<38} {rate:>12,.0f} ops/s   {rate / base:5.2f}x {baseline}")
