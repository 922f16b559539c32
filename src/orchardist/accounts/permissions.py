"""Who may do what: the one table the console and the API both ask.

Three roles, each with everything the one below has: a viewer reads (never secrets), an
operator also acts on devices (queries, locks, pushes, commands, profile, app and
provisioning profile assignments, groups, invitations), an admin also does what cannot be
undone or reveals secrets (erase, clear passcodes, retire, the profile library and its
contents, the app and provisioning profile libraries, SCEP approvals, the push
certificate, API tokens, accounts, settings, the audit log). docs/console.md's "Who may
do what" is this table; a test keeps the two in step.

`Gate.require` is the single check: console handlers and API routes call it (through
`orchardist.web.console.require` and `orchardist.web.api.auth.requires`), and it tells its
`on_denied` listener (the audit log) about each refusal before raising.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
ROLES = tuple(Role)


class Permission(enum.StrEnum):
    READ = "read"
    AUDIT_READ = "audit.read"
    QUERY = "devices.query"
    PUSH = "devices.push"
    LOCK = "devices.lock"
    COMMAND = "commands.send"
    CANCEL = "commands.cancel"
    PROFILE_ASSIGN = "profiles.assign"
    APPS_ASSIGN = "apps.assign"
    GROUPS_EDIT = "groups.edit"
    INVITE = "enrollment.invite"
    ERASE = "devices.erase"
    CLEAR_PASSCODE = "devices.clear_passcode"
    DEVICE_SECRETS = "devices.secrets"
    RETIRE = "devices.retire"
    PROFILE_EDIT = "profiles.edit"
    PROFILE_CONTENTS = "profiles.contents"
    APPS_EDIT = "apps.edit"
    SCEP_APPROVE = "enrollment.approve"
    PUSHCERT = "pushcert.manage"
    TOKENS = "tokens.manage"
    ACCOUNTS = "accounts.manage"
    SETTINGS = "settings.manage"


@dataclass(frozen=True)
class Rule:
    role: Role  # the least role allowed
    what: str  # for refusals and docs: "see devices, …"


RULES: Mapping[Permission, Rule] = {
    Permission.READ: Rule(
        Role.VIEWER,
        "see devices, inventory, compliance, commands and their results, profiles (names, "
        "versions, assignments, status), apps and provisioning profiles, groups, enrollment "
        "and the push certificate",
    ),
    Permission.QUERY: Rule(Role.OPERATOR, "query devices (inventory, security, apps, lists)"),
    Permission.PUSH: Rule(Role.OPERATOR, "push devices to check in now"),
    Permission.LOCK: Rule(Role.OPERATOR, "lock devices, Lost Mode, locate"),
    Permission.COMMAND: Rule(Role.OPERATOR, "send MDM commands (restart, apps, settings…)"),
    Permission.CANCEL: Rule(Role.OPERATOR, "cancel pending commands"),
    Permission.PROFILE_ASSIGN: Rule(Role.OPERATOR, "assign and unassign profiles"),
    Permission.APPS_ASSIGN: Rule(
        Role.OPERATOR, "assign and unassign apps and provisioning profiles"
    ),
    Permission.GROUPS_EDIT: Rule(Role.OPERATOR, "create and change static groups"),
    Permission.INVITE: Rule(Role.OPERATOR, "invite users to enroll"),
    Permission.ERASE: Rule(Role.ADMIN, "erase devices and delete their users"),
    Permission.CLEAR_PASSCODE: Rule(Role.ADMIN, "clear passcodes and restrictions passwords"),
    Permission.DEVICE_SECRETS: Rule(
        Role.ADMIN,
        "see and use device secrets (unlock and bootstrap tokens, Activation Lock bypass "
        "codes, firmware and recovery passwords, FileVault keys)",
    ),
    Permission.RETIRE: Rule(Role.ADMIN, "retire devices (end their management)"),
    Permission.PROFILE_EDIT: Rule(Role.ADMIN, "upload, build and delete profiles"),
    Permission.PROFILE_CONTENTS: Rule(Role.ADMIN, "read profile contents (passwords, keys)"),
    Permission.APPS_EDIT: Rule(Role.ADMIN, "upload and remove apps and provisioning profiles"),
    Permission.SCEP_APPROVE: Rule(Role.ADMIN, "approve or reject held SCEP requests"),
    Permission.PUSHCERT: Rule(Role.ADMIN, "manage the push certificate"),
    Permission.TOKENS: Rule(Role.ADMIN, "create, list and revoke API tokens"),
    Permission.ACCOUNTS: Rule(Role.ADMIN, "manage console accounts"),
    # Who did what, refusals included: knowledge that goes with tokens and accounts.
    Permission.AUDIT_READ: Rule(Role.ADMIN, "read the audit log"),
    Permission.SETTINGS: Rule(Role.ADMIN, "change settings"),
}

# MDM commands that need more than COMMAND, by RequestType (Apple's names). Whatever the
# route (POST /api/v1/commands, a console button), the command's own permission applies.
_COMMANDS: Mapping[Permission, frozenset[str]] = {
    Permission.QUERY: frozenset(
        [
            "DeviceInformation",
            "SecurityInfo",
            "InstalledApplicationList",
            "CertificateList",
            "ProfileList",
            "ProvisioningProfileList",
            "Restrictions",
            "ManagedApplicationList",
            "ManagedApplicationAttributes",
            "ManagedApplicationFeedback",
            "ManagedMediaList",
            "AvailableOSUpdates",
            "OSUpdateStatus",
            "UserList",
            "ActiveNSExtensions",
            "NSExtensionMappings",
            "ContentCachingInformation",
        ]
    ),
    Permission.LOCK: frozenset(
        ["DeviceLock", "EnableLostMode", "DisableLostMode", "PlayLostModeSound", "DeviceLocation"]
    ),
    Permission.ERASE: frozenset({"EraseDevice", "DeleteUser"}),
    Permission.CLEAR_PASSCODE: frozenset({"ClearPasscode", "ClearRestrictionsPassword"}),
    # Their parameters or answers are secrets.
    Permission.DEVICE_SECRETS: frozenset(
        [
            "ActivationLockBypassCode",
            "ClearActivationLockBypassCode",
            "RequestUnlockToken",
            "SetAutoAdminPassword",
            "SetFirmwarePassword",
            "VerifyFirmwarePassword",
            "SetRecoveryLock",
            "VerifyRecoveryLock",
            "RotateFileVaultKey",
            "UnlockUserAccount",
        ]
    ),
    # A raw InstallProfile carries a whole profile: the library's rule.
    Permission.PROFILE_EDIT: frozenset({"InstallProfile"}),
}
_COMMAND_PERMISSIONS = {name: p for p, names in _COMMANDS.items() for name in names}

# Keys of command answers that are secrets: hidden from those without DEVICE_SECRETS.
SECRET_RESULT_KEYS = frozenset(
    {"UnlockToken", "BootstrapToken", "ActivationLockBypassCode", "EncryptedNewRecoveryKey"}
)
HIDDEN = "(hidden: needs the admin role)"


def allowed(role: Role, permission: Permission) -> bool:
    return role.rank >= RULES[permission].role.rank


def command_permission(request_type: str) -> Permission:
    """What sending this MDM command takes."""
    return _COMMAND_PERMISSIONS.get(request_type, Permission.COMMAND)


def without_secrets(value: Any, role: Role) -> Any:
    """A command's answer (JSON-ready) with secret keys hidden unless `role` may see them."""
    if allowed(role, Permission.DEVICE_SECRETS):
        return value
    if isinstance(value, dict):
        return {
            key: HIDDEN if key in SECRET_RESULT_KEYS else without_secrets(item, role)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [without_secrets(item, role) for item in value]
    return value


@dataclass(frozen=True)
class Actor:
    """Who asks: a console account, a directory user or an API token."""

    name: str
    role: Role
    kind: str  # "account", "directory" or "token"


class PermissionDeniedError(Exception):
    def __init__(self, actor: Actor, permission: Permission) -> None:
        rule = RULES[permission]
        super().__init__(
            f"the {actor.role} role cannot {rule.what}: that needs {rule.role}"
            + (" or higher" if rule.role != Role.ADMIN else "")
        )
        self.actor, self.permission = actor, permission


# Told about every refusal before it is raised: (who, what, the target if one was named).
DeniedListener = Callable[[Actor, Permission, str | None], Awaitable[None]]


@dataclass
class Gate:
    """The one check. `on_denied` is the audit log's seam: set it once at wiring."""

    on_denied: DeniedListener | None = field(default=None)

    async def require(
        self, actor: Actor, permission: Permission, target: str | None = None
    ) -> None:
        """Return when `actor` may; otherwise tell on_denied, then raise
        PermissionDeniedError (its message names the role needed)."""
        if allowed(actor.role, permission):
            return
        if self.on_denied is not None:
            await self.on_denied(actor, permission, target)
        raise PermissionDeniedError(actor, permission)
