"""A large report read in another process, and what the server's own process keeps of it.

The server's event loop shares one interpreter lock with its threads: parsing a 1 MB
InstalledApplicationList there (~25 ms) holds every Idle up, thread or not. So a worker
process (`report_pool`) runs `digest`: the plist parsed and checked as `parse_report`
does, the inventory computed, and handed back compact:

- the envelope (status, device, user, command, error chain), as `Report` has it;
- the inventory each request type with a reader would store (`stored_inventory`): which
  command this answers is known only once the exchange has stored it. Its lists (a
  thousand apps) come pickled, with their digests: storage compares the digest with the
  one it holds and unpickles a list only when it changed (`PackedLists`);
- the rest of the result with each container value pickled on its own, unpickled when
  something reads it: the hooks read a few (an app list's versions), most are never
  looked at (a certificate list's DER data).

`Digest.report(body)` is then the same `Report` that `parse_report(body)` gives.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from orchardist.mdm.inventory import READERS, stored_inventory
from orchardist.mdm.reports import Report, ReportError, Status, parse_report
from orchardist.storage.inventory import LISTS, InventoryUpdate, list_digest


@dataclass(frozen=True)
class Digest:
    status: Status
    device_id: str
    user_id: str | None
    command_uuid: str | None
    error_chain: tuple[Mapping[str, Any], ...]
    keys: tuple[str, ...]  # the result's keys, in the device's order
    plain: dict[str, Any]  # its scalar values
    packed: dict[str, bytes]  # its containers, pickled one by one
    # By request type; a type missing here failed in the worker and is read again in process.
    inventories: dict[str, _PackedInventory | None]
    pid: int  # the process that read it

    def report(self, body: bytes) -> Report:
        return Report(
            status=self.status,
            device_id=self.device_id,
            user_id=self.user_id,
            command_uuid=self.command_uuid,
            error_chain=self.error_chain,
            result=PackedResult(_Values(self.keys, dict(self.plain), dict(self.packed))),
            raw=body,
            inventories={
                kind: None if packed is None else packed.update()
                for kind, packed in self.inventories.items()
            },
        )


def digest(body: bytes) -> Digest | str:
    """In the worker: the digest, or the reason the report is refused (ReportError's).
    Other exceptions propagate; the server then reads the body in process."""
    try:
        report = parse_report(body)
    except ReportError as exc:
        return str(exc)
    plain, packed = {}, {}
    for key, value in report.result.items():
        if isinstance(value, list | dict):
            packed[key] = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        else:
            plain[key] = value
    return Digest(
        status=report.status,
        device_id=report.device_id,
        user_id=report.user_id,
        command_uuid=report.command_uuid,
        error_chain=report.error_chain,
        keys=tuple(report.result),
        plain=plain,
        packed=packed,
        inventories=_inventories(report.result),
        pid=os.getpid(),
    )


def _inventories(result: Mapping[str, Any]) -> dict[str, _PackedInventory | None]:
    found: dict[str, _PackedInventory | None] = {}
    for request_type in READERS:
        try:
            update = stored_inventory(request_type, result)
        except Exception:  # noqa: S112 - left out: the server computes it in process, as before
            continue
        found[request_type] = None if update is None else _PackedInventory.of(update)
    return found


@dataclass(frozen=True)
class _PackedInventory:
    """An InventoryUpdate as the worker hands it back: its lists pickled one by one, with
    their digests and its count of items."""

    rest: InventoryUpdate  # the lists left out (None)
    packed: dict[str, bytes]
    digests: dict[str, str]
    listed: int

    @classmethod
    def of(cls, update: InventoryUpdate) -> _PackedInventory:
        lists = {name: getattr(update, name) for name in LISTS}
        present = {name: items for name, items in lists.items() if items is not None}
        return cls(
            rest=dataclasses.replace(
                update, apps=None, certificates=None, profiles=None, provisioning_profiles=None
            ),
            packed={
                name: pickle.dumps(items, pickle.HIGHEST_PROTOCOL)
                for name, items in present.items()
            },
            digests={name: list_digest(items) for name, items in present.items()},
            listed=update.listed(),
        )

    def update(self) -> InventoryUpdate:
        return PackedLists(self)


class PackedLists(InventoryUpdate):
    """An InventoryUpdate whose lists stay pickled until read: storage reads a list only
    when its digest differs from the one it holds, and a device mostly reports the same
    apps and certificates again, so most of a large report's records are never built in
    the server's own process."""

    _packed: dict[str, bytes]
    _digests: dict[str, str]
    _listed: int

    def __init__(self, packed: _PackedInventory) -> None:
        fields = {f.name: getattr(packed.rest, f.name) for f in dataclasses.fields(InventoryUpdate)}
        super().__init__(**fields)
        object.__setattr__(self, "_packed", dict(packed.packed))
        object.__setattr__(self, "_digests", packed.digests)
        object.__setattr__(self, "_listed", packed.listed)

    def __getattribute__(self, name: str) -> Any:
        if name in LISTS:
            packed: dict[str, bytes] = object.__getattribute__(self, "_packed")
            if name in packed:  # unpickled at the first read, kept for the next
                value = pickle.loads(packed.pop(name))  # noqa: S301 - our worker's
                object.__setattr__(self, name, value)
        return object.__getattribute__(self, name)

    def list_digest(self, name: str) -> str | None:
        return self._digests.get(name)

    def listed(self) -> int:
        return self._listed

    def unread(self) -> tuple[str, ...]:
        """The lists still pickled."""
        return tuple(self._packed)

    def __eq__(self, other: object) -> bool:  # as an InventoryUpdate of the same values
        if not isinstance(other, InventoryUpdate):
            return NotImplemented
        names = [f.name for f in dataclasses.fields(InventoryUpdate)]
        return all(getattr(self, name) == getattr(other, name) for name in names)

    __hash__ = None  # type: ignore[assignment]  # holds mappings, as InventoryUpdate does


class _Values:
    """The result's values, shared by the views of one report (PackedResult.plus)."""

    def __init__(self, keys: tuple[str, ...], plain: dict[str, Any], packed: dict[str, bytes]):
        self.keys, self.plain, self.packed = keys, plain, packed

    def get(self, key: str) -> Any:
        if key in self.packed:
            self.plain[key] = pickle.loads(self.packed.pop(key))  # noqa: S301 - our worker's
        return self.plain[key]


class PackedResult(Mapping[str, Any]):
    """A report's result whose container values stay pickled until read."""

    def __init__(self, values: _Values, extra: Mapping[str, Any] | None = None) -> None:
        self._values = values
        self._extra = dict(extra or {})

    def plus(self, key: str, value: Any) -> PackedResult:
        """This result with `key` set to `value`, as {**result, key: value} would be."""
        return PackedResult(self._values, {**self._extra, key: value})

    def __getitem__(self, key: str) -> Any:
        if key in self._extra:
            return self._extra[key]
        if key not in self:
            raise KeyError(key)
        return self._values.get(key)

    def __contains__(self, key: object) -> bool:  # Mapping's own would unpickle the value
        values = self._values
        return key in self._extra or key in values.plain or key in values.packed

    def __iter__(self) -> Iterator[str]:
        yield from self._values.keys
        yield from (key for key in self._extra if key not in self._values.keys)

    def __len__(self) -> int:
        return len(set(self._values.keys) | self._extra.keys())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]  # as a dict's

    def __repr__(self) -> str:
        return f"PackedResult({dict(self.items())!r})"
