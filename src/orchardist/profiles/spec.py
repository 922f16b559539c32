"""Profile spec files (TOML) → configuration profiles.

    identifier = "com.example.office"
    name = "Office"
    organization = "Example Corp"

    [[payloads]]
    type = "wifi"                               # a friendly name, or Apple's PayloadType
    SSID_STR = "Office"
    EncryptionType = "WPA2"
    Password = { env = "OFFICE_WIFI_PASSWORD" } # secrets: { env = … } or { file = … }

Values follow Apple's schema for the payload: `<data>` keys take `{ file = "ca.pem" }` or
base64 text. The built profile is checked against the schema; every problem is reported
with its key path, and nothing is built while there is one. Secret values never appear in
error messages: only where they were to come from.
"""

from __future__ import annotations

import os
import tomllib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchardist.profiles.builders import SpecError, build_payload, decode_base64
from orchardist.profiles.secrets import plaintext_secrets
from orchardist.profiles.validate import COMMON, check_profile
from orchardist.schema.validate import ANY_KEY, KeySpec, mdm_schema

_TOP_LEVEL_NAMES = {
    "name": "PayloadDisplayName",
    "organization": "PayloadOrganization",
    "description": "PayloadDescription",
    "removal_disallowed": "PayloadRemovalDisallowed",
    "scope": "PayloadScope",
}


def load_spec(path: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    return build_profile(read_spec(path), base_dir=path.parent,
                         env=os.environ if env is None else env)  # fmt: skip


def read_spec(path: Path) -> dict[str, Any]:
    """The spec as written (TOML), not built yet."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path} is not valid TOML: {exc}") from exc


@dataclass(frozen=True)
class SpecCheck:
    profile: dict[str, Any] | None  # None: it does not build
    errors: list[str]
    warnings: list[str]


def check_spec(path: Path, env: Mapping[str, str] | None = None) -> SpecCheck:
    """What `profile validate` says about a spec: every problem, secrets written in plain
    text, and environment variables not set here (checked with a stand-in, so a spec can
    be checked where its secrets are not)."""
    try:
        raw = read_spec(path)
    except SpecError as exc:
        return SpecCheck(None, exc.problems, [])
    warnings = plaintext_secrets(raw)
    stand_in = _StandIns(os.environ if env is None else env)
    try:
        profile = build_profile(raw, base_dir=path.parent, env=stand_in)
    except SpecError as exc:
        return SpecCheck(None, exc.problems, warnings + stand_in.warnings())
    return SpecCheck(profile, [], warnings + stand_in.warnings())


def build_profile(
    spec: Mapping[str, Any], *, base_dir: Path, env: Mapping[str, str]
) -> dict[str, Any]:
    """The profile (unsigned, as a plist dictionary); SpecError listing every problem."""
    identifier = spec.get("identifier")
    if not isinstance(identifier, str) or not identifier:
        raise SpecError('identifier: required, e.g. identifier = "com.example.wifi"')
    entries = spec.get("payloads")
    if not isinstance(entries, list) or not entries:
        raise SpecError("payloads: at least one [[payloads]] table is required")
    unknown = set(spec) - {"identifier", "payloads", *_TOP_LEVEL_NAMES}
    if unknown:
        raise SpecError(
            f"{sorted(unknown)[0]}: not a profile setting ({', '.join(_TOP_LEVEL_NAMES)})"
        )
    profile: dict[str, Any] = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"profile:{identifier}")).upper(),
        "PayloadDisplayName": identifier,
    }
    for name, key in _TOP_LEVEL_NAMES.items():
        if name in spec:
            profile[key] = spec[name]
    payloads = []
    secrets: list[str] = []
    for index, entry in enumerate(entries):
        path = f"payloads[{index}]"
        if not isinstance(entry, dict):
            raise SpecError(f"{path}: must be a table")
        resolved = _resolve_entry(entry, path, base_dir, _Recording(env, secrets))
        payloads.append(
            build_payload(resolved, profile_identifier=identifier, index=index, path=path)
        )
    profile["PayloadContent"] = payloads
    report = check_profile(profile)
    if report.errors:
        problems = [_hide(str(p), secrets) for p in report.errors]
        raise SpecError("; ".join(problems[:20]), problems)
    return profile


def _hide(message: str, secrets: list[str]) -> str:
    for secret in secrets:  # a secret in the wrong place must not end up in a log
        message = message.replace(secret, "***")
    return message


class _StandIns(Mapping[str, str]):
    """The environment, with an empty stand-in for each variable that is not set."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env, self.missing = env, dict[str, None]()

    def __contains__(self, name: object) -> bool:
        return True

    def __getitem__(self, name: str) -> str:
        if name in self.env:
            return self.env[name]
        self.missing[name] = None
        return ""

    def __iter__(self) -> Iterator[str]:
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)

    def warnings(self) -> list[str]:
        return [f"the environment variable {name} is not set here: checked without it "
                "(build and upload need it)" for name in self.missing]  # fmt: skip


class _Recording(Mapping[str, str]):
    """The environment, noting every value read from it: those are secrets."""

    def __init__(self, env: Mapping[str, str], seen: list[str]) -> None:
        self.env, self.seen = env, seen

    def __getitem__(self, name: str) -> str:
        value = self.env[name]
        if value:
            self.seen.append(value)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)


def _resolve_entry(
    entry: dict[str, Any], path: str, base_dir: Path, env: Mapping[str, str]
) -> dict[str, Any]:
    from orchardist.profiles.builders import FRIENDLY

    kind = str(entry.get("type", entry.get("PayloadType", "")))
    payload_type = FRIENDLY[kind].payload_type if kind in FRIENDLY else kind
    schema = mdm_schema().profiles
    keys = {s.key: s for s in (*schema.get(COMMON, ()), *schema.get(payload_type, ()))}
    return {
        key: _resolve(value, keys.get(key), f"{path}.{key}", base_dir, env)
        for key, value in entry.items()
    }


def _resolve(
    value: Any, spec: KeySpec | None, path: str, base_dir: Path, env: Mapping[str, str]
) -> Any:
    is_data = spec is not None and spec.type == "data"
    if isinstance(value, dict) and len(value) == 1 and set(value) <= {"env", "file"}:
        return _secret(value, is_data, path, base_dir, env)
    if is_data and isinstance(value, str):
        return decode_base64(value, path)
    if isinstance(value, dict):
        subkeys = {s.key: s for s in spec.subkeys} if spec is not None else {}
        return {
            k: _resolve(v, subkeys.get(k, subkeys.get(ANY_KEY)), f"{path}.{k}", base_dir, env)
            for k, v in value.items()
        }
    if isinstance(value, list):
        element = spec.subkeys[0] if spec is not None and len(spec.subkeys) == 1 else None
        return [
            _resolve(item, element, f"{path}[{i}]", base_dir, env) for i, item in enumerate(value)
        ]
    return value


def _secret(
    ref: dict[str, Any], is_data: bool, path: str, base_dir: Path, env: Mapping[str, str]
) -> str | bytes:
    if "env" in ref:
        name = str(ref["env"])
        if name not in env:
            raise SpecError(f"{path}: the environment variable {name} is not set")
        text = env[name]
        return decode_base64(text, path) if is_data else text
    file = base_dir / str(ref["file"])
    if "\x00" in str(file):  # no file has such a name; open() raises ValueError for it
        raise SpecError(f"{path}: a file name cannot hold a NUL character")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read {file}: {exc.strerror}") from exc
    if is_data:
        return data
    try:
        text = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: {file} is not UTF-8 text: {exc.reason}") from exc
    if isinstance(env, _Recording) and text:
        env.seen.append(text)
    return text
