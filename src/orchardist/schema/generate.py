"""Compile Apple's YAML schema into `data/mdm.json`.

    python -m orchardist.schema.generate tests/vectors/apple-device-management

Only what validation needs is kept: key names, types, presence, allowed values and ranges,
nested keys. Descriptions stay in Apple's files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("data") / "mdm.json"
# section → (folder, the payload key naming each entry)
SECTIONS = {
    "commands": ("mdm/commands", "requesttype"),
    "checkin": ("mdm/checkin", "requesttype"),
    "profiles": ("mdm/profiles", "payloadtype"),
}


def compile_schema(root: Path) -> dict[str, Any]:
    """The compiled schema for the Apple repository checked out at `root`."""
    import yaml  # a development dependency: the package reads only the compiled JSON

    compiled: dict[str, Any] = {"source": _source(root)}
    for section, (folder, name_key) in SECTIONS.items():
        entries: dict[str, Any] = {}
        for path in sorted((root / folder).glob("*.yaml")):
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
            name = document["payload"][name_key]
            entries[name] = {
                "file": f"{folder}/{path.name}",
                "keys": compile_keys(document.get("payloadkeys") or []),
            }
        compiled[section] = entries
    return compiled


def compile_keys(
    raw_keys: list[dict[str, Any]], _path: frozenset[int] = frozenset()
) -> list[dict[str, Any]]:
    # Some of Apple's files nest a definition inside itself through a YAML alias; such a
    # cycle is cut where it closes (the inner level then accepts any keys).
    if id(raw_keys) in _path:
        return []
    path = _path | {id(raw_keys)}
    compiled = []
    for raw in raw_keys:
        spec: dict[str, Any] = {"key": raw["key"], "type": raw.get("type", "<any>").strip("<>")}
        if raw.get("presence") == "required":
            spec["required"] = True
        if "rangelist" in raw:
            spec["values"] = raw["rangelist"]
        if "range" in raw:
            spec["range"] = {k: raw["range"][k] for k in ("min", "max") if k in raw["range"]}
        subkeys = raw.get("subkeys") or []
        if subkeys and spec["type"] == "string":
            # A string with "subkeys" lists the values it may take (DeviceInformation
            # Queries are written this way).
            spec["values"] = [sub["key"] for sub in subkeys]
        elif subkeys:
            spec["subkeys"] = compile_keys(subkeys, path)
        compiled.append(spec)
    return compiled


def _source(root: Path) -> str:
    source = root / "SOURCE.txt"
    if not source.exists():
        return "apple/device-management"
    lines = source.read_text(encoding="utf-8").splitlines()
    return next((line for line in lines if line.startswith("Commit:")), lines[0])


def render(compiled: dict[str, Any]) -> str:
    return json.dumps(compiled, indent=1, sort_keys=True) + "\n"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m orchardist.schema.generate PATH-TO-apple-device-management")
    OUTPUT.write_text(render(compile_schema(Path(sys.argv[1]))), encoding="utf-8")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
