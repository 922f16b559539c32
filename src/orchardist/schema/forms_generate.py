"""Compile the iOS profile payloads of Apple's YAML into `data/profile_forms.json`: what the
console's profile builder shows (titles, help text, defaults, allowed values, ranges, nested
keys) beside what validation already reads from `data/mdm.json`.

    python -m orchardist.schema.forms_generate tests/vectors/apple-device-management

Only payload types and keys available on iOS are kept: a key whose iOS entry says
`introduced: n/a`, or that iOS removed, is left out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from orchardist.schema.generate import _source

OUTPUT = Path(__file__).with_name("data") / "profile_forms.json"
FOLDER = "mdm/profiles"
# Top-level profile keys and per-payload bookkeeping the builder fills in itself.
SKIPPED_FILES = {"TopLevel.yaml", "CommonPayloadKeys.yaml"}


def compile_forms(root: Path) -> dict[str, Any]:
    import yaml  # a development dependency: the package reads only the compiled JSON

    payloads: dict[str, Any] = {}
    for path in sorted((root / FOLDER).glob("*.yaml")):
        if path.name in SKIPPED_FILES:
            continue
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        payload = document["payload"]
        ios = (payload.get("supportedOS") or {}).get("iOS")
        if not _on_ios(ios):
            continue
        assert isinstance(ios, dict)
        payloads[payload["payloadtype"]] = {
            "title": document.get("title", payload["payloadtype"]),
            "description": (document.get("description") or "").strip(),
            "introduced": str(ios.get("introduced", "")),
            "multiple": bool(ios.get("multiple", False)),
            "supervised": bool(ios.get("supervised", False)),
            "keys": _keys(document.get("payloadkeys") or [], frozenset()),
        }
    return {"source": _source(root), "payloads": payloads}


def _on_ios(ios: Any) -> bool:
    if not isinstance(ios, dict):
        return False
    return ios.get("introduced") != "n/a" and not ios.get("removed")


def _keys(raw_keys: list[dict[str, Any]], path: frozenset[int]) -> list[dict[str, Any]]:
    if id(raw_keys) in path:  # a definition nested in itself through a YAML alias
        return []
    path = path | {id(raw_keys)}
    compiled = []
    for raw in raw_keys:
        ios = (raw.get("supportedOS") or {}).get("iOS")
        if ios is not None and not _on_ios({"introduced": "?", **ios}):
            continue
        field: dict[str, Any] = {
            "key": raw["key"],
            "type": raw.get("type", "<any>").strip("<>"),
            "title": raw.get("title") or raw["key"],
            "help": (raw.get("content") or "").strip(),
        }
        if raw.get("presence") == "required":
            field["required"] = True
        if "default" in raw and _json_ready(raw["default"]):
            field["default"] = raw["default"]
        if "rangelist" in raw:
            field["values"] = raw["rangelist"]
        if "range" in raw:
            field["range"] = {k: raw["range"][k] for k in ("min", "max") if k in raw["range"]}
        if ios and ios.get("supervised"):
            field["supervised"] = True
        subkeys = raw.get("subkeys") or []
        if subkeys and field["type"] == "string":
            field["values"] = [sub["key"] for sub in subkeys]
        elif subkeys:
            field["subkeys"] = _keys(subkeys, path)
        compiled.append(field)
    return compiled


def _json_ready(value: Any) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False  # a YAML date or the like: shown without a default
    return True


def render(compiled: dict[str, Any]) -> str:
    return json.dumps(compiled, indent=1, sort_keys=True) + "\n"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(
            "usage: python -m orchardist.schema.forms_generate PATH-TO-apple-device-management"
        )
    OUTPUT.write_text(render(compile_forms(Path(sys.argv[1]))), encoding="utf-8")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
