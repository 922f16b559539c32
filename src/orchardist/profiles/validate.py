"""A whole configuration profile against Apple's schema (TopLevel, CommonPayloadKeys and
each payload type), every problem naming its key path:
`PayloadContent[2].EAPClientConfiguration.AcceptEAPTypes[0]: must be an integer, not string`.

Keys Apple's files do not define are errors in what we build, warnings in what we import
(profiles from Apple Configurator or other MDMs carry keys the schema lags behind on).

Required keys come from the schema (`presence: required`). A few requirements Apple states
only in a key's description, because they depend on another key: those are in
`REQUIREMENTS`, each with Apple's sentence, so a payload a device would refuse is refused
here with a reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from orchardist.schema.validate import KeySpec, Problem, mdm_schema, validate_dictionary

UNKNOWN_KEY = "is not a key Apple defines here"
TOP_LEVEL, COMMON = "TopLevel", "CommonPayloadKeys"


@dataclass(frozen=True)
class Requirement:
    """In `payload_type`, at least one of `keys` must be present (the first is named when
    none is), if `when` holds (a key and the value that makes them required)."""

    payload_type: str
    keys: tuple[str, ...]
    apple_says: str
    when: tuple[str, str] | None = None

    def problem(self, payload: dict[str, Any], path: str) -> Problem | None:
        if self.when is not None and payload.get(self.when[0]) != self.when[1]:
            return None
        if any(key in payload for key in self.keys):
            return None
        return Problem(f"{path}.{self.keys[0]}", f"is required ({self.apple_says})")


REQUIREMENTS = (
    # Apple's file marks SSID_STR optional only because a Hotspot 2.0 network is found by
    # its DomainName instead; without either the device has no network to join.
    Requirement("com.apple.wifi.managed", ("SSID_STR", "DomainName"),
                "the network's name: Apple makes it optional only for a Hotspot 2.0 network, "
                "which has a DomainName"),
    Requirement("com.apple.airplay.security", ("Password",),
                "Apple: required if SecurityType is PASSWORD", when=("SecurityType", "PASSWORD")),
    Requirement("com.apple.proxy.http.global", ("ProxyServer",),
                "Apple: required if ProxyType is Manual", when=("ProxyType", "Manual")),
    Requirement("com.apple.proxy.http.global", ("ProxyServerPort",),
                "Apple: required if ProxyType is Manual", when=("ProxyType", "Manual")),
)  # fmt: skip


@dataclass
class ProfileReport:
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_profile(profile: Any, *, unknown_keys_are_errors: bool = True) -> ProfileReport:
    report = ProfileReport()

    def add(problems: list[Problem]) -> None:
        for problem in problems:
            lenient = problem.message == UNKNOWN_KEY and not unknown_keys_are_errors
            (report.warnings if lenient else report.errors).append(problem)

    schema = mdm_schema().profiles
    if not isinstance(profile, dict):
        report.errors.append(Problem("", "a profile must be a dictionary at the top"))
        return report
    # PayloadContent items are checked below, each against its own PayloadType; an
    # encrypted profile carries EncryptedPayloadContent instead.
    top = [_optional(s) if s.key == "PayloadContent" else s for s in schema[TOP_LEVEL]]
    add(validate_dictionary(_without(profile, "PayloadContent"), top))
    if "PayloadContent" not in profile and "EncryptedPayloadContent" not in profile:
        report.errors.append(Problem("PayloadContent", "is required"))
    if profile.get("PayloadType") not in (None, "Configuration"):
        report.errors.append(Problem("PayloadType", "must be 'Configuration' at the top"))
    payloads = profile.get("PayloadContent", [])
    if not isinstance(payloads, list):
        report.errors.append(Problem("PayloadContent", "must be an array of payloads"))
        return report
    for index, payload in enumerate(payloads):
        add(payload_problems(payload, f"PayloadContent[{index}]"))
    report.errors += _duplicates(profile, payloads)
    return report


def payload_problems(payload: Any, path: str) -> list[Problem]:
    """One payload: the common keys plus its type's keys."""
    schema = mdm_schema().profiles
    if not isinstance(payload, dict):
        return [Problem(path, "a payload must be a dictionary")]
    payload_type = payload.get("PayloadType")
    keys = schema.get(str(payload_type)) if payload_type not in (TOP_LEVEL, COMMON) else None
    if keys is None:
        return [
            Problem(f"{path}.PayloadType", f"{payload_type!r} is not a payload type Apple defines")
        ]
    own = {spec.key for spec in keys}
    merged = [spec for spec in schema[COMMON] if spec.key not in own] + list(keys)
    problems = validate_dictionary(payload, merged, path)
    for requirement in REQUIREMENTS:
        if requirement.payload_type == payload_type:
            missing = requirement.problem(payload, path)
            problems += [missing] if missing is not None else []
    return problems


def _duplicates(profile: dict[str, Any], payloads: list[Any]) -> list[Problem]:
    """Apple: PayloadUUIDs are unique, and PayloadIdentifiers unique within the profile."""
    problems = []
    items = [p for p in payloads if isinstance(p, dict)]
    for key in ("PayloadUUID", "PayloadIdentifier"):
        seen = Counter(str(p.get(key)) for p in items if key in p)
        if key == "PayloadUUID" and "PayloadUUID" in profile:
            seen[str(profile["PayloadUUID"])] += 1
        for index, payload in enumerate(payloads):
            if isinstance(payload, dict) and key in payload and seen[str(payload[key])] > 1:
                problems.append(Problem(f"PayloadContent[{index}].{key}", "is used twice"))
    return problems


def _optional(spec: KeySpec) -> KeySpec:
    return KeySpec(spec.key, spec.type, False, spec.values, spec.minimum, spec.maximum)


def _without(profile: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in profile.items() if k != key}
