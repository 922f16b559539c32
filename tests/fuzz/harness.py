"""The fuzz tests' budget and bounds.

In the suite each target tries a fixed, derandomized number of inputs (a few seconds in
all). `make fuzz` sets FUZZ_EXAMPLES: then every target tries that many inputs, fresh
random ones on each run, and the session ends with a table of how many inputs each target
took (tests/fuzz/conftest.py).

Every input is parsed inside `bounded_call`: the parser may answer or refuse with its
documented error type, nothing else; no input may take more than TIME_LIMIT seconds of CPU
(a generous ceiling that only a hang or a quadratic blow-up crosses, not a timing: timings
live in bench/; CPU, not wall-clock time, so that a busy machine fails nothing), and for
the pure parsers no input may make Python allocate more than `memory_limit(len(input))` at
its peak (tracemalloc).

Tracing costs about a microsecond per allocation, so a parser that is linear but allocates
an object per few bytes of input spends up to ~2.5 µs per byte under it (asn1crypto
decoding a 300,000-byte OBJECT IDENTIFIER into its arcs: 0.05 s untraced, 0.74 s traced;
plistlib building half a megabyte of containers: 0.1 s and 0.8 s). The largest inputs
the strategies make are about 600 KB, so a traced input is allowed TRACED_CPU_PER_MIB
seconds of CPU per MiB on top of TIME_LIMIT (3.8 s at 600 KB): a quadratic path at that
size takes far longer. Untraced inputs have TIME_LIMIT whatever their size.

A full (generation 2) garbage collection that happens to fall inside an input's parse is
not counted against it: it walks the whole process's heap — after tens of thousands of
inputs mostly Hypothesis' own records — and under tracemalloc one took seconds (a
4.8 KB provisioning profile "took" 2.5 s once in the 1,000,000-input run and never on
replay). The parser's own garbage is the young generations', which count; what it
allocates is bounded by tracemalloc."""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, settings

T = TypeVar("T")
TIME_LIMIT = 2.0  # CPU seconds for one input
TRACED_CPU_PER_MIB = 3.0  # CPU seconds more per MiB of a traced input (see above)
WALL_LIMIT_FACTOR = 30  # a hang: wall-clock seconds, in TIME_LIMITs
MiB = 1024 * 1024
COUNTS: Counter[str] = Counter()  # target → inputs tried this session


class _FullCollections:
    """CPU seconds this process spent in generation-2 collections (see the docstring)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started: float | None = None
        gc.callbacks.append(self.observe)

    def observe(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.process_time()
        elif self._started is not None:
            self.seconds += time.process_time() - self._started
            self._started = None


_FULL_COLLECTIONS = _FullCollections()


def long_run() -> int | None:
    """FUZZ_EXAMPLES when `make fuzz` set it: inputs per target."""
    value = os.environ.get("FUZZ_EXAMPLES", "")
    return int(value) if value.strip() else None


def fuzzing(examples: int) -> settings:
    """`examples` derandomized inputs in the suite, or FUZZ_EXAMPLES random ones; never a
    deadline (the bound is ours, see bounded_call), no example database, and shrinking
    only in the long run, where a failure is worth minutes to see at its smallest."""
    long = long_run()
    phases = [Phase.explicit, Phase.generate]
    return settings(
        max_examples=long or examples,
        derandomize=long is None,
        deadline=None,
        database=None,
        phases=[*phases, Phase.shrink] if long else phases,
        suppress_health_check=list(HealthCheck),
    )


def memory_limit(size: int) -> int:
    """Peak allocation allowed for parsing `size` bytes: a fixed allowance (a certificate,
    a schema lookup, a compiled pattern) plus a small multiple of the input. A parser that
    expands what it reads (a shared-container bomb, a nested-length lie) crosses it."""
    return 16 * MiB + 40 * size


@contextmanager
def traced() -> Iterator[None]:
    """tracemalloc on for one test: it slows every allocation, so only around a test."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        yield
    finally:
        if started:
            tracemalloc.stop()


def bounded_call(
    target: str,
    parse: Callable[[], T],
    refusals: tuple[type[BaseException], ...],
    *,
    size: int | None = None,
    time_limit: float = TIME_LIMIT,
) -> T | None:
    """parse(), which may refuse only with `refusals` (None then). With `size` (the input's
    length; inside `traced()`), its peak allocation is bounded too, and its CPU bound
    grows by TRACED_CPU_PER_MIB per MiB."""
    if size is not None:
        time_limit += TRACED_CPU_PER_MIB * size / MiB
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
    start, started_cpu = time.monotonic(), time.process_time()
    collecting = _FULL_COLLECTIONS.seconds
    result: T | None = None
    try:
        result = parse()
    except refusals:
        result = None
    cpu, elapsed = time.process_time() - started_cpu, time.monotonic() - start
    collected = _FULL_COLLECTIONS.seconds - collecting
    cpu -= collected
    COUNTS[target] += 1
    # The bound is on CPU time (this process's: the server's worker threads count too), so
    # a loaded machine does not fail an input; the wall-clock ceiling only catches a hang.
    assert cpu < time_limit, (
        f"{target}: one input took {cpu:.1f} s of CPU (and {collected:.1f} s in full collections)"
    )
    assert elapsed < WALL_LIMIT_FACTOR * time_limit, f"{target}: one input took {elapsed:.0f} s"
    if size is not None:
        peak = tracemalloc.get_traced_memory()[1] - before
        limit = memory_limit(size)
        assert peak < limit, f"{target}: {peak:,} bytes allocated for a {size:,}-byte input"
    return result


def report(counts: dict[str, Any]) -> list[str]:
    """The table `make fuzz` ends with."""
    width = max((len(name) for name in counts), default=6)
    lines = [f"{'target':<{width}}  inputs", f"{'-' * width}  ------"]
    lines += [f"{name:<{width}}  {count:>6}" for name, count in sorted(counts.items())]
    lines.append(f"{'total':<{width}}  {sum(counts.values()):>6}")
    return lines
