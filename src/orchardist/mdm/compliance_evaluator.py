"""Keeps each device's stored compliance verdict current: at once when what it reads changes
(an inventory answer, a profile result, an enrollment), and in a periodic pass for what
changes with time alone (a certificate nearing expiry, a device not checking in) or with
the rules (a restart with a new `[compliance]`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog

from orchardist.mdm.compliance import ComplianceRules, verdict_row
from orchardist.storage.compliance import ComplianceStore

# Results whose answer can change a verdict: inventory the rules read, profile states.
RELEVANT_RESULTS = frozenset(
    {"DeviceInformation", "SecurityInfo", "ProfileList", "InstallProfile", "RemoveProfile"}
)
# These only through the required profiles: without any, their answers change no verdict.
PROFILE_RESULTS = frozenset({"ProfileList", "InstallProfile", "RemoveProfile"})
BATCH = 500
log = structlog.get_logger("orchardist.compliance")


class ComplianceEvaluator:
    def __init__(
        self, store: ComplianceStore, rules: ComplianceRules, *, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.rules = rules
        self.clock = clock

    async def refresh(self, device_ids: Sequence[str]) -> int:
        """Evaluate these devices now and store their verdicts; how many were known."""
        now = self.clock()
        done = 0
        for start in range(0, len(device_ids), BATCH):
            inputs = await self.store.compliance_inputs(
                device_ids[start : start + BATCH], self.rules.required_profiles
            )
            await self.store.save_compliance([verdict_row(self.rules, i, now) for i in inputs])
            done += len(inputs)
        return done

    async def recheck(self) -> int:
        """The periodic pass: every device whose verdict is missing or out of date (see
        ComplianceStore.compliance_due), each visited once; how many were evaluated."""
        now, after, done = self.clock(), None, 0
        while due := await self.store.compliance_due(
            now, self.rules.fingerprint, after=after, limit=BATCH
        ):
            done += await self.refresh(due)
            after = due[-1]
        return done

    async def serve_pass(self) -> None:
        """`serve`'s periodic pass (under a lease, web/background.py), logged."""
        done = await self.recheck()
        log.info("compliance_pass", evaluated=done)

    async def on_result(
        self,
        device_id: str,
        command_uuid: str,
        request_type: str,
        acknowledged: bool,
        result: Mapping[str, Any],
    ) -> None:
        """An MdmService result hook: a result the rules read re-evaluates the device."""
        if request_type in PROFILE_RESULTS and not self.rules.required_profiles:
            return  # every profile result of a fleet's enrollment would be evaluated for nothing
        if request_type in RELEVANT_RESULTS:
            await self._refresh_quietly(device_id)

    async def on_enrolled(self, device_id: str) -> None:
        """A TokenUpdate: the device is (again) managed."""
        await self._refresh_quietly(device_id)

    async def _refresh_quietly(self, device_id: str) -> None:
        # The device's answer is stored already; a failure here must not turn it into a
        # 500 (the device would send it again). The periodic pass finds the verdict out of
        # date and redoes it.
        try:
            await self.refresh([device_id])
        except Exception as exc:
            log.error("compliance_failed", udid=device_id, error=str(exc) or type(exc).__name__)
