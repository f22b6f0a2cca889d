"""One user's sessions: ``owned_by`` and ``revoke`` with 10k and 1M anonymous sessions in the store.

    python benchmarks/owners_bench.py                        # 10k and 1M (about 1.5 GB of memory, 1 to 2 min)
    python benchmarks/owners_bench.py --sizes 10000 300000   # fewer, where memory is short

A ``SessionFactory(owner_key="user")`` on lembro's in-memory store (a cap
large enough that nothing is evicted, no idle expiry) holds one owner's 5
sessions, signed in through the factory as a request would (``open``,
``session["user"] = ...``, ``close``), among n anonymous sessions written
through the same backend's ``save`` (the factory's record layout and ids),
for n = 0 (the store holds the owner's sessions only), 10k and 1M. Each
round times, for every store in turn (interleaved), the mean of many
``sessions.owned_by(owner)`` calls and of ``sessions.revoke(owner,
keep=this one)`` calls (each revoking the 4 others, signed in again between
calls, untimed); the table gives the median over the rounds, in
microseconds per call, and the ratio 1M / 10k (the goal: about 1x).

The peer is what apps do without an index: decode every stored session
and keep the owner's (here ``store.all()``, which unpickles each session
once, the cheapest form of that scan; a revoke by scan is the same scan
plus the destroys). It is timed each round at 10k, and at the largest size
once, when the 10k figure predicts under 30 s (else it is extrapolated,
linearly, and marked so).

The heap is frozen (``gc.freeze()``) once the stores are built, as in
pauses.py: a full collection walking a million live objects is a cost of
the process's heap, whatever the call running when it strikes.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time

from lembro_wsgi import LembroStore
from lembro_wsgi.factory import SessionFactory

OWNER, DEVICES = "ana", 5
ANONYMOUS = {"visits": 3, "csrf_token": "t" * 43}  # what a visitor who never signed in keeps
SCAN_BUDGET = 30.0  # seconds: the scan of the largest store runs once if 10k's predicts less


class Population:
    """One store: ``anonymous`` sessions, and the owner's ``DEVICES`` sessions signed in through the factory."""

    def __init__(self, anonymous: int) -> None:
        self.anonymous = anonymous
        self.store = LembroStore(interval=None, max_size="16G", timeout=None)
        self.sessions = SessionFactory(store=self.store, owner_key="user", timeout=None)
        backend, now = self.sessions.backend, time.time()
        start = time.perf_counter()
        for number in range(anonymous):
            backend.save(f"anon{number:032d}", {"created": now, "accessed": now, "data": dict(ANONYMOUS)})
        self.fill_seconds = time.perf_counter() - start
        self.devices = [self.sign_in() for _ in range(DEVICES)]
        self.keep = self.devices[0]
        assert len(self.store) == anonymous + DEVICES and self.store.stats()["owned_sessions"] == DEVICES

    def sign_in(self) -> str:
        """A new session of the owner's, as a sign-in request makes it: opened, written, closed (saved)."""
        session = self.sessions.open({})
        session["user"] = OWNER
        session["visits"] = 1
        self.sessions.close(session)
        return str(session.id)

    def owned_by(self, calls: int) -> float:
        """Seconds per ``owned_by`` call, over ``calls`` calls."""
        owned_by, start = self.sessions.owned_by, time.perf_counter()
        for _ in range(calls):
            owned_by(OWNER)
        seconds = (time.perf_counter() - start) / calls
        assert len(owned_by(OWNER)) == DEVICES
        return seconds

    def revoke(self, calls: int) -> float:
        """Seconds per ``revoke(owner, keep=...)`` of the 4 others, over ``calls`` calls; they sign in again
        between calls (untimed)."""
        spent = 0.0
        for _ in range(calls):
            start = time.perf_counter()
            revoked = self.sessions.revoke(OWNER, keep=self.keep)
            spent += time.perf_counter() - start
            assert revoked == DEVICES - 1
            for _ in range(DEVICES - 1):
                self.sign_in()
        return spent / calls

    def scan(self) -> float:
        """Seconds to find the owner's sessions without the index: decode every session, keep the owner's."""
        start = time.perf_counter()
        found = [sid for sid, record in self.store.all().items() if record["data"].get("user") == OWNER]
        seconds = time.perf_counter() - start
        assert len(found) == DEVICES
        return seconds


def label(count: int) -> str:
    if count == 0:
        return "none"
    if count % 1_000_000 == 0:
        return f"{count // 1_000_000}M"
    return f"{count // 1000}k" if count % 1000 == 0 else f"{count:,}"


def microseconds(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}" if seconds < 1e-3 else f"{seconds * 1e6:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 1_000_000], metavar="N",
                        help="the two counts of anonymous sessions (default 10000 1000000)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=2000, help="owned_by calls per store per round")
    args = parser.parse_args()
    small, large = sorted(args.sizes)
    counts = [0, small, large]

    populations: dict[int, Population] = {}
    for count in counts:
        populations[count] = Population(count)
        if count:
            print(f"  built {count:>9,} anonymous sessions in {populations[count].fill_seconds:5.1f} s "
                  f"({populations[count].fill_seconds / count * 1e6:.1f} us each through the backend's save); "
                  f"store bytes {populations[count].store.stats()['bytes']:,}", flush=True)
    gc.collect()
    gc.freeze()

    timings: dict[str, dict[int, list[float]]] = {"owned_by": {c: [] for c in counts},
                                                  "revoke": {c: [] for c in counts}}
    scans: list[float] = []
    for _ in range(args.rounds):
        for count in counts:  # interleaved: each round visits every store in turn
            population = populations[count]
            timings["owned_by"][count].append(population.owned_by(args.calls))
            timings["revoke"][count].append(population.revoke(max(args.calls // 10, 1)))
        scans.append(populations[small].scan())
    scan_small = statistics.median(scans)
    predicted = scan_small * large / small
    scan_large: float | None = None
    if predicted < SCAN_BUDGET:
        scan_large = populations[large].scan()

    med: dict[str, dict[int, float]] = {name: {c: statistics.median(v) for c, v in by.items()}
                                        for name, by in timings.items()}
    heads = [f"{label(c)} anonymous" for c in counts]
    print(f"\nOne owner's {DEVICES} sessions among n anonymous ones, through SessionFactory on the in-memory store"
          f"\n(revoke signs out the {DEVICES - 1} others): us per call, median of {args.rounds} interleaved rounds")
    print(f"  {'call':<34}" + "".join(f"{h:>16}" for h in heads)
          + f"{label(large) + ' / ' + label(small):>12}{label(large) + ' / none':>12}")
    rows: list[tuple[str, dict[int, float]]] = [
        ("sessions.owned_by(owner)", med["owned_by"]),
        ("sessions.revoke(owner, keep=sid)", med["revoke"]),
    ]
    for name, by in rows:
        print(f"  {name:<34}" + "".join(f"{microseconds(by[c]):>16}" for c in counts)
              + f"{by[large] / by[small]:>11.2f}x{by[large] / by[0]:>11.2f}x")
    large_text = (microseconds(scan_large) if scan_large is not None
                  else f"~{microseconds(predicted)} (extrapolated)")
    large_scan = scan_large if scan_large is not None else predicted
    peer = "peer: decode all, keep the owner's"
    print(f"  {peer:<34}{'-':>16}{microseconds(scan_small):>16}{large_text:>16}"
          f"{large_scan / scan_small:>11.0f}x{'':>12}")
    print(f"\n  The scan against owned_by: {scan_small / med['owned_by'][small]:,.0f}x slower at {label(small)}, "
          f"{large_scan / med['owned_by'][large]:,.0f}x at {label(large)}"
          f"{'' if scan_large is not None else ' (extrapolated from ' + label(small) + ')'}; "
          f"the {label(large)} scan {'ran once' if scan_large is not None else 'was not run (over 30 s predicted)'}.")
    print(f"  Peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB.")
    gc.unfreeze()
    for population in populations.values():
        population.store.close()


if __name__ == "__main__":
    main()
