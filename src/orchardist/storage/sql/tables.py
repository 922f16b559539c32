"""The schema, as SQLAlchemy Core tables. Migrations in `migrations/versions` create it;
a test checks the two never drift apart."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    text,
)

from orchardist.storage.sql.types import FittedString, UtcDateTime

# Named constraints, so that Alembic migrations can refer to them on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# 128-bit serials do not fit BIGINT: they are stored as 32 lower-case hex digits.
SERIAL_HEX_DIGITS = 32

issued_certificates = Table(
    "issued_certificates",
    metadata,
    Column("serial", String(40), primary_key=True),
    Column("subject", String(1024), nullable=False),
    Column("not_before", UtcDateTime(), nullable=False),
    Column("not_after", UtcDateTime(), nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("der", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("device_id", String(128), nullable=True),  # issued for this device (0009)
    Column("renewal_of", String(40), nullable=True),  # serial of the renewed certificate
    Index("ix_issued_certificates_not_after", "not_after"),
)

scep_challenges = Table(
    "scep_challenges",
    metadata,
    Column("challenge_sha256", String(64), primary_key=True),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime(), nullable=True),
    Column("device_id", String(128), nullable=True),  # minted for this device (OTA)
    Column("renewal_of", String(40), nullable=True),  # renews this serial (0022)
)

enrollment_tokens = Table(
    "enrollment_tokens",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime(), nullable=True),
)

scep_transactions = Table(
    "scep_transactions",
    metadata,
    Column("transaction_id", String(256), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("csr_der", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("certificate_serial", String(40), nullable=True),
    Column("device_id", String(128), nullable=True),  # its challenge's device, if any
    Column("renewal_of", String(40), nullable=True),  # its challenge renews this serial (0023)
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime()),  # 0013; None: never
    Column("revoked_at", UtcDateTime()),  # 0013
)

# -- console accounts and sessions (0013; see orchardist.accounts)

console_accounts = Table(
    "console_accounts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),  # Argon2id, PHC format
    Column("created_at", UtcDateTime(), nullable=False),
    Column("password_changed_at", UtcDateTime(), nullable=False),
    Column("disabled_at", UtcDateTime()),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_sha256", String(64), primary_key=True),  # never the id itself
    Column("name", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("kind", String(16), nullable=False),  # account or directory
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Index("ix_console_sessions_name", "name"),
)

# Failed sign-ins per key ("account:NAME", "address:IP"), console and /enroll alike.
sign_in_throttle = Table(
    "sign_in_throttle",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("first_failure_at", UtcDateTime(), nullable=False),
    Column("locked_until", UtcDateTime()),
)

# -- MDM

enrollments = Table(
    "enrollments",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("topic", FittedString(255), nullable=False),
    Column("serial_number", FittedString(64)),
    Column("model", FittedString(64)),
    Column("model_name", FittedString(128)),
    Column("product_name", FittedString(64)),
    Column("os_version", FittedString(32)),
    Column("build_version", FittedString(32)),
    Column("device_name", FittedString(255)),
    Column("imei", FittedString(64)),
    Column("meid", FittedString(64)),
    Column("identity_sha256", String(64), nullable=False),
    Column("enrolled", Boolean, nullable=False),
    Column("token", LargeBinary),
    Column("push_magic", FittedString(255)),
    Column("unlock_token", LargeBinary),  # sealed (orchardist.keys) by unlock_token_key
    Column("bootstrap_token", LargeBinary),  # sealed by bootstrap_token_key
    Column("unlock_token_key", String(16)),
    Column("bootstrap_token_key", String(16)),
    Column("authenticated_at", UtcDateTime(), nullable=False),
    Column("enrolled_at", UtcDateTime()),
    Column("last_seen_at", UtcDateTime()),
    Column("checked_out_at", UtcDateTime()),
    Column("pushed_at", UtcDateTime()),  # last push APNs accepted
    Column("token_invalid_at", UtcDateTime()),  # APNs said 410/BadDeviceToken; until TokenUpdate
    Column("ended_by", String(16)),  # checked_out, retired or erased; None while enrolled
    # os_version as digits that sort numerically (orchardist.os_versions.sort_key; 0015)
    Column("os_version_key", String(32)),
    Index("ix_enrollments_identity_sha256", "identity_sha256"),
    # The device list's sorts (0015): each a keyset range on (value, device_id).
    Index("ix_enrollments_device_name", "device_name", "device_id"),
    Index("ix_enrollments_serial_number", "serial_number", "device_id"),
    Index("ix_enrollments_os_version_key", "os_version_key", "device_id"),
    Index("ix_enrollments_last_seen_at", "last_seen_at", "device_id"),
    Index("ix_enrollments_enrolled_at", "enrolled_at", "device_id"),
)

# One row per device that owes a push: the durable job table of the pusher. Enqueueing a
# command upserts the row (many commands, one push); a pusher claims due rows for a lease
# (FOR UPDATE SKIP LOCKED on PostgreSQL), pushes, and moves due_at along the re-push
# schedule. A crashed pusher's claims come due again when the lease ends. Claims take first
# pushes (attempts 0) and re-pushes each by due_at from an index holding only its kind
# (sql/push_claims.py): one index entry per row version, not two.
FIRST_PUSH = text("attempts = 0")  # the literal a query repeats, for either index to serve it
REPUSH = text("attempts > 0")
push_jobs = Table(
    "push_jobs",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False),  # pushes accepted since the last enqueue
    Column("forced", Boolean, nullable=False),  # asked by hand: push even with nothing pending
    Column("claim", String(32)),
    Column("claimed_until", UtcDateTime()),
    Index("ix_push_jobs_first_due", "due_at", postgresql_where=FIRST_PUSH, sqlite_where=FIRST_PUSH),
    Index("ix_push_jobs_repush_due", "due_at", postgresql_where=REPUSH, sqlite_where=REPUSH),
)

commands = Table(
    "commands",
    metadata,
    Column("command_uuid", String(64), primary_key=True),
    Column("request_type", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),  # sealed when body_key is set (SEALED_COMMANDS)
    Column("body_key", String(16)),
    Column("priority", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime()),
    # The commands page: newest first, a keyset range on (created_at, command_uuid) (0016).
    Index("ix_commands_created_at", "created_at", "command_uuid"),
)

command_targets = Table(
    "command_targets",
    metadata,
    Column("command_uuid", String(64), primary_key=True),
    Column("device_id", String(128), primary_key=True),
    Column("status", String(24), nullable=False),
    # Copied from the command so that "what next for this device" is one index range.
    Column("priority", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime()),
    Column("sent_at", UtcDateTime()),
    Column("answered_at", UtcDateTime()),
    Column("result", LargeBinary),
    Index("ix_command_targets_device_id", "device_id", "status", "priority", "created_at"),
    # The queue depth /metrics reports: pending entries only, not the answered history.
    Index("ix_command_targets_status", "status", "expires_at"),
)

# -- inventory (what devices answered to queries; see orchardist.mdm.inventory)

inventory = Table(
    "inventory",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("facts", JSON),
    Column("facts_seen", JSON),  # key → ISO time it was last reported (0010)
    Column("security", JSON),
    Column("restrictions", JSON),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("list_digests", JSON),  # list table → SHA-256 of its rows as last written (0026)
)

inventory_apps = Table(
    "inventory_apps",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("identifier", String(255), primary_key=True),
    Column("name", FittedString(255)),
    Column("version", FittedString(64)),
    Column("short_version", FittedString(64)),
    Column("bundle_size", BigInteger),
    Index("ix_inventory_apps_identifier", "identifier"),
)

inventory_certificates = Table(
    "inventory_certificates",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("common_name", FittedString(255)),
    Column("is_identity", Boolean, nullable=False),
    Column("sha256", String(64)),
    Column("not_after", UtcDateTime()),
    Index("ix_inventory_certificates_not_after", "not_after"),
)

inventory_profiles = Table(
    "inventory_profiles",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("identifier", String(255), primary_key=True),
    Column("display_name", FittedString(255)),
    Column("uuid", FittedString(64)),
    Column("is_managed", Boolean, nullable=False),
)

inventory_provisioning_profiles = Table(
    "inventory_provisioning_profiles",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("uuid", String(64), primary_key=True),
    Column("name", FittedString(255)),
    Column("expires_at", UtcDateTime()),
    Index("ix_inventory_provisioning_profiles_expires_at", "expires_at"),
    Index("ix_inventory_provisioning_profiles_uuid", "uuid"),  # the profile's holders (0019)
)

# -- configuration profiles (see orchardist.profiles.library)

profiles = Table(
    "profiles",
    metadata,
    Column("identifier", String(255), primary_key=True),
    Column("display_name", String(255), nullable=False),
    Column("latest_version", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("deleted_at", UtcDateTime()),
)

profile_versions = Table(
    "profile_versions",
    metadata,
    Column("identifier", String(255), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("display_name", String(255), nullable=False),
    Column("payload_types", JSON, nullable=False),
    Column("body", LargeBinary, nullable=False),  # sealed (orchardist.keys) by body_key
    Column("body_key", String(16)),
    Column("created_at", UtcDateTime(), nullable=False),
)

profile_assignments = Table(
    "profile_assignments",
    metadata,
    Column("identifier", String(255), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("target", String(255), primary_key=True),
)

device_groups = Table(
    "device_groups",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("device_id", String(128), primary_key=True),
    Index("ix_device_groups_device_id", "device_id"),
)

device_profiles = Table(
    "device_profiles",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("identifier", String(255), primary_key=True),
    Column("desired_version", Integer),
    Column("installed_version", Integer),
    Column("state", String(16), nullable=False),
    Column("command_uuid", String(64)),
    Column("error", FittedString(2000)),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_device_profiles_identifier", "identifier"),
    Index("ix_device_profiles_command_uuid", "command_uuid"),
)

invitations = Table(
    "invitations",
    metadata,
    Column("invitation_id", String(64), primary_key=True),
    Column("user", String(255), nullable=False),
    Column("email", String(255)),
    Column("phone", String(64)),
    Column("email_status", String(500)),
    Column("sms_status", String(500)),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Index("ix_invitations_created_at", "created_at"),
)

ota_sessions = Table(
    "ota_sessions",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("user", String(255), nullable=False),
    Column("groups", JSON, nullable=False),
    Column("phase", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("challenge_sha256", String(64), unique=True),
    Column("device_id", String(128)),
    Index("ix_ota_sessions_device_id", "device_id"),
    Index("ix_ota_sessions_user", "user"),  # the device list's enrolled_by filter (0015)
)
# The device list's search on PostgreSQL (0018): a name containing the text through
# trigrams (pg_trgm), a serial, UDID or enrolling user's name starting with it through a
# range of a lower-cased key. Not on SQLite, where a LIKE on lower() cannot use an index.
POSTGRESQL_ONLY_INDEXES = tuple(
    index.ddl_if(dialect="postgresql")
    for index in (
        Index(
            "ix_enrollments_device_name_trigram",
            func.lower(enrollments.c.device_name).label("name"),
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        Index(
            "ix_enrollments_serial_number_lower",
            func.lower(enrollments.c.serial_number).label("serial"),
            postgresql_ops={"serial": "text_pattern_ops"},
        ),
        Index(
            "ix_enrollments_device_id_lower",
            func.lower(enrollments.c.device_id).label("udid"),
            postgresql_ops={"udid": "text_pattern_ops"},
        ),
        Index(
            "ix_ota_sessions_user_lower",
            func.lower(ota_sessions.c.user).label("user"),
            postgresql_ops={"user": "text_pattern_ops"},
        ),
    )
)

# One row per (event, webhook URL) until the receiver takes it (see orchardist.webhooks).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("delivery_id", Integer, primary_key=True, autoincrement=True),
    Column("url", String(2048), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("attempts", Integer, nullable=False),  # failed attempts so far
    Column("created_at", UtcDateTime(), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("claim", String(32)),
    Column("claimed_until", UtcDateTime()),
    Column("last_error", String(500)),
    Column("given_up_at", UtcDateTime()),
    Index("ix_webhook_deliveries_due_at", "due_at"),
)

# The audit log (see orchardist.storage.audit): one row per action, its targets beside it so
# that "everything done to this device" is an index lookup (ix_audit_targets_target).
audit_log = Table(
    "audit_log",
    metadata,
    Column("entry_id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", FittedString(255), nullable=False),
    Column("via", String(16), nullable=False),
    Column("action", FittedString(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", FittedString(1000)),
    Column("detail", JSON, nullable=False),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_actor", "actor"),
    Index("ix_audit_log_action", "action"),
)

audit_targets = Table(
    "audit_targets",
    metadata,
    Column("entry_id", Integer, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("target", FittedString(255), nullable=False),
    Index("ix_audit_targets_target", "target", "entry_id"),
)

# Each device's compliance verdict (0015; see orchardist.mdm.compliance), kept so that the
# device list filters on it; re-evaluated when its inputs change and by a periodic pass.
device_compliance = Table(
    "device_compliance",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("rules", String(16), nullable=False),  # fingerprint of the rules applied
    Column("evaluated_at", UtcDateTime(), nullable=False),
    Column("recheck_at", UtcDateTime()),
    Column("stale", Boolean, nullable=False),
    Index("ix_device_compliance_status", "status", "device_id"),
    Index("ix_device_compliance_recheck_at", "recheck_at"),
)

# -- in-house apps and provisioning profiles (0019; see orchardist.storage.apps, .provisioning)

apps = Table(
    "apps",
    metadata,
    Column("bundle_id", String(255), primary_key=True),
    Column("display_name", FittedString(255), nullable=False),
    Column("latest_version_id", Integer, nullable=False),
    Column("icon_sha256", String(64)),  # an admin's replacement icon
    Column("description", FittedString(4000), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# The directory groups entitled to an app in the catalog ("*": every signed-in user).
app_catalog_groups = Table(
    "app_catalog_groups",
    metadata,
    Column("bundle_id", String(255), primary_key=True),
    Column("group_name", String(255), primary_key=True),
    Index("ix_app_catalog_groups_group_name", "group_name"),
)

app_versions = Table(
    "app_versions",
    metadata,
    Column("bundle_id", String(255), primary_key=True),
    Column("version_id", Integer, primary_key=True),
    Column("short_version", String(64), nullable=False),
    Column("build", String(64), nullable=False),
    Column("display_name", FittedString(255), nullable=False),
    Column("minimum_os", FittedString(32)),
    Column("device_family", JSON, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("icon_sha256", String(64)),
    Column("provisioning_uuid", String(64)),
    Column("provisioning_expires_at", UtcDateTime()),
    Column("info", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("bundle_id", "short_version", "build", name="uq_app_versions_bundle_id"),
    Index("ix_app_versions_sha256", "sha256"),  # is a stored file still referenced?
)

app_assignments = Table(
    "app_assignments",
    metadata,
    Column("bundle_id", String(255), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("target", String(255), primary_key=True),
)

device_apps = Table(
    "device_apps",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("bundle_id", String(255), primary_key=True),
    Column("desired_version_id", Integer),
    Column("installed_version_id", Integer),
    Column("installed_version", FittedString(128)),
    Column("state", String(16), nullable=False),
    Column("command_uuid", String(64)),
    Column("error", FittedString(2000)),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_device_apps_bundle_id", "bundle_id", "state"),  # an app's devices and counts
    Index("ix_device_apps_command_uuid", "command_uuid"),
    # The paced rollout's picker: "the next N due rows in state X" and "… in any state".
    Index("ix_device_apps_state", "state", "next_attempt_at"),
    Index("ix_device_apps_next_attempt_at", "next_attempt_at"),
)

provisioning_profiles = Table(
    "provisioning_profiles",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("name", FittedString(255), nullable=False),
    Column("team_id", FittedString(64), nullable=False),
    Column("app_id", String(255), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("provisions_all_devices", Boolean, nullable=False),
    Column("device_count", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("replaced_by", String(64)),
    Column("expiry_warned_days", Integer),  # the last expiry warning logged (0020)
    Index("ix_provisioning_profiles_app_id", "app_id"),  # a renewal finds its predecessors
    Index("ix_provisioning_profiles_expires_at", "expires_at"),  # expiry warnings
)

provisioning_assignments = Table(
    "provisioning_assignments",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("target", String(255), primary_key=True),
)

device_provisioning = Table(
    "device_provisioning",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("uuid", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("command_uuid", String(64)),
    Column("error", FittedString(2000)),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_device_provisioning_uuid", "uuid", "state"),
    Index("ix_device_provisioning_command_uuid", "command_uuid"),
)

# -- named leases: one process of several runs each background pass (0024; jobs/leases.py)

leases = Table(
    "leases",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("holder", String(255)),  # NULL once released
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("done_at", UtcDateTime()),  # when a pass last finished, by any holder
)
