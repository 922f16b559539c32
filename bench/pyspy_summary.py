"""`python -m bench.pyspy_summary RAW [--top N] [--match TEXT …]`: where a py-spy recording
(`py-spy record -f raw`) spent its samples.

Each line of the raw format is a collapsed stack ("frame;frame;…;leaf COUNT", outermost
first, a frame being "function (file:line)"). Per function (file and name, lines merged)
the summary gives its inclusive samples (on the stack at all, counted once per stack) and
its self samples (the leaf), as shares of all samples. `--match` adds the inclusive share
of stacks holding a frame containing each text (a phase: "scep", "on_enrolled", …);
`--under` what the first frame containing a text calls, by samples.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def read(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([_function(f) for f in stack.split(";")], int(count)))
    return stacks


def _function(frame: str) -> str:
    found = _FRAME.match(frame)
    if found is None:
        return frame
    file = found["file"]
    for marker in ("site-packages/", "src/", "lib/python"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{found['name']} ({file})"


def summarize(stacks: list[tuple[list[str], int]]) -> tuple[int, Counter[str], Counter[str]]:
    total = sum(count for _, count in stacks)
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, count in stacks:
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    return total, inclusive, own


def share_matching(stacks: list[tuple[list[str], int]], text: str) -> float:
    total = sum(count for _, count in stacks) or 1
    return sum(count for frames, count in stacks if any(text in f for f in frames)) / total


def callees(stacks: list[tuple[list[str], int]], text: str) -> Counter[str]:
    """Samples per frame called directly by the first frame containing `text` ("(self)"
    when it is the leaf)."""
    below: Counter[str] = Counter()
    for frames, count in stacks:
        for depth, frame in enumerate(frames):
            if text in frame:
                below[frames[depth + 1] if depth + 1 < len(frames) else "(self)"] += count
                break
    return below


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("raw", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", action="append", default=[])
    parser.add_argument("--under", action="append", default=[], help="callees of a frame")
    args = parser.parse_args()
    stacks = read(args.raw)
    total, inclusive, own = summarize(stacks)
    print(f"{total} samples")
    print("\ninclusive")
    for name, count in inclusive.most_common(args.top):
        print(f"{count / total:7.1%}  {name}")
    print("\nself")
    for name, count in own.most_common(args.top):
        print(f"{count / total:7.1%}  {name}")
    if args.match:
        print("\nstacks holding")
        for text in args.match:
            print(f"{share_matching(stacks, text):7.1%}  {text}")
    for text in args.under:
        print(f"\ncalled by {text}")
        for name, count in callees(stacks, text).most_common(args.top):
            print(f"{count / total:7.1%}  {name}")


if __name__ == "__main__":
    main()
