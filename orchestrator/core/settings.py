"""Every setting, in groups, read once from the environment (``VPSCTL_*``) or a ``.env`` file.

Each group is the settings of one part of the orchestrator (``settings.jobs``, ``settings.smtp``,
...); every field carries its environment variable's name and, for numbers, its bounds: a value
outside them stops the process at start-up with the variable named, rather than misbehaving
later.  The environment variables are the interface (README, "Settings"); the attribute names
are the code's.

``Settings(**values)`` also takes the variables' names without their prefix, lowercased
(``Settings(job_lease_seconds=5)``, ``settings.replace(smtp_port=2525)``), the same spelling as
the environment; ``as_environment()`` turns settings back into ``VPSCTL_*`` variables for a
child process.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
_SHIPPED_HOOKS = REPO_ROOT / "playbooks" / "hooks"
PREFIX = "VPSCTL_"
HOUR, DAY = 3600.0, 86400.0
TOKEN_DAYS, TOKEN_MAX_DAYS = 90, 3650  # an API token's lifetime by default, and the longest one


def env(name: str, default: Any, **bounds: Any) -> Any:
    """A field read from ``VPSCTL_<name>``, with its bounds (``gt``, ``ge``, ``le``, ...)."""
    return Field(default, validation_alias=PREFIX + name, **bounds)


def env_factory(name: str, factory: Any, **bounds: Any) -> Any:
    return Field(default_factory=factory, validation_alias=PREFIX + name, **bounds)


class Group(BaseSettings):
    """One group of settings; its fields are read from their own environment variables."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)


class DatabaseSettings(Group):
    url: str = env("DATABASE_URL", "")  # default: SQLite in the state directory


class ApiSettings(Group):
    host: str = env("API_HOST", "127.0.0.1")
    port: int = env("API_PORT", 8080, gt=0, lt=65536)
    # A request body larger than this is refused (413) before it is read; none needs more.
    max_body_bytes: int = env("API_MAX_BODY_BYTES", 1 << 20, ge=1024, le=1 << 30)
    # Requests per token in any moving minute (429 past it); counted in this process's memory, or
    # in a storage the API processes share (``redis://...``: the `limits` library's URLs).
    rate_per_minute: int = env("API_RATE_PER_MINUTE", 300, ge=1, le=1_000_000)
    rate_storage: str = env("API_RATE_STORAGE", "memory://")
    # A new token expires this many days after its creation unless it is given its own lifetime.
    token_days: int = env("TOKEN_DAYS", TOKEN_DAYS, ge=1, le=TOKEN_MAX_DAYS)


class HostSettings(Group):
    """The first hypervisor host, registered at start-up, and how every host is prepared."""

    libvirt_uri: str = env("LIBVIRT_URI", "qemu:///system")
    name: str = env("HOST_NAME", "local", min_length=1, max_length=64)
    site: str = env("HOST_SITE", "Marseille")
    storage_pool: str = env("STORAGE_POOL", "vpsctl", min_length=1, max_length=64)
    storage_pool_path: Path = env("STORAGE_POOL_PATH", Path("/var/lib/libvirt/vpsctl"))
    backup_pool: str = env("BACKUP_POOL", "vpsctl-backup", min_length=1, max_length=64)
    backup_pool_path: Path = env("BACKUP_POOL_PATH", Path("/var/lib/libvirt/vpsctl-backup"))
    guest_network: str = env("GUEST_NETWORK", "vpsctl", min_length=1, max_length=64)
    guest_bridge: str = env("GUEST_BRIDGE", "vpsbr0", min_length=1, max_length=15)
    guest_subnet: str = env("GUEST_SUBNET", "192.168.150.0/24")
    # How the orchestrator reaches a guest's port when the guests' network is not routed to it:
    # an OpenSSH-style ProxyCommand with %h/%p, e.g. "ssh -W %h:%p jump" or a netns exec.
    guest_proxy_command: str = env("GUEST_PROXY_COMMAND", "")
    serial_log_dir: str = env("SERIAL_LOG_DIR", "/var/log/libvirt/qemu")  # on the host


class CapacitySettings(Group):
    """Placement: overcommit ratios and what each host keeps for itself."""

    cpu_allocation_ratio: float = env("CPU_ALLOCATION_RATIO", 4.0, gt=0, le=64)
    ram_allocation_ratio: float = env("RAM_ALLOCATION_RATIO", 1.0, gt=0, le=16)
    disk_allocation_ratio: float = env("DISK_ALLOCATION_RATIO", 1.0, gt=0, le=16)
    reserved_memory_mib: int = env("RESERVED_HOST_MEMORY_MIB", 512, ge=0, le=1 << 24)
    reserved_disk_gib: int = env("RESERVED_HOST_DISK_GIB", 2, ge=0, le=1 << 24)


class LimitSettings(Group):
    """The largest VPS anyone may ask for: anything outside is refused as bad input."""

    max_vcpus: int = env("MAX_VCPUS", 32, ge=1, le=1024)
    max_memory_mib: int = env("MAX_MEMORY_MIB", 262_144, ge=64, le=1 << 24)
    max_disk_gib: int = env("MAX_DISK_GIB", 4_096, ge=1, le=1 << 20)
    max_ssh_keys: int = env("MAX_SSH_KEYS", 20, ge=1, le=100)


class QuotaSettings(Group):
    """What a customer may hold by default; staff set other quotas per customer (Quota)."""

    vps: int = env("QUOTA_VPS", 10, ge=0, le=100_000)
    vcpus: int = env("QUOTA_VCPUS", 20, ge=0, le=1_000_000)
    memory_mib: int = env("QUOTA_MEMORY_MIB", 40_960, ge=0, le=1 << 30)
    disk_gib: int = env("QUOTA_DISK_GIB", 500, ge=0, le=1 << 30)
    backups: int = env("QUOTA_BACKUPS", 20, ge=0, le=100_000)
    active_backups: int = env("QUOTA_ACTIVE_BACKUPS", 2, ge=0, le=1_000)


class LifecycleSettings(Group):
    """How operations treat a guest: waits, live-resize room, what a delete leaves."""

    # A VPS is defined with room to grow live: max vCPUs and max memory = ordered x headroom.
    live_resize_headroom: float = env("LIVE_RESIZE_HEADROOM", 2.0, ge=1.0, le=16)
    stop_timeout_seconds: float = env("STOP_TIMEOUT_SECONDS", 60.0, gt=0, le=HOUR)  # ACPI, then forced
    # The power button pressed again while waiting: a guest still booting when it was pressed did
    # not hear it (its ACPI handler was not running yet).
    shutdown_retry_seconds: float = env("SHUTDOWN_RETRY_SECONDS", 10.0, gt=0, le=HOUR)
    address_timeout_seconds: float = env("ADDRESS_TIMEOUT_SECONDS", 180.0, gt=0, le=HOUR)
    # A live migration's bandwidth, disks and memory (MiB/s; 0: as fast as the hosts go), so that
    # moving a VPS does not take the network from the guests
    migration_bandwidth_mib: int = env("MIGRATION_BANDWIDTH_MIB", 0, ge=0, le=100_000)
    migration_timeout_seconds: float = env("MIGRATION_TIMEOUT_SECONDS", 4 * HOUR, gt=0, le=DAY)  # then called off
    verify_guest_ssh: bool = env("VERIFY_GUEST_SSH", True)
    ssh_ready_timeout_seconds: float = env("SSH_READY_TIMEOUT_SECONDS", 180.0, gt=0, le=HOUR)
    # A job needing an image another job is uploading to the same host waits this long for it.
    image_upload_timeout_seconds: float = env("IMAGE_UPLOAD_TIMEOUT_SECONDS", 1800.0, gt=0, le=DAY)
    # A live memory change waits this long for the guest's balloon to reach the new size.
    balloon_timeout_seconds: float = env("BALLOON_TIMEOUT_SECONDS", 60.0, gt=0, le=HOUR)
    backup_timeout_seconds: float = env("BACKUP_TIMEOUT_SECONDS", HOUR, gt=0, le=7 * DAY)
    # R6.2-transfer: the old disk is hot-plugged into the reinstalled system this long after it
    # started, once it has mounted its own filesystems (the old disk has the same labels).
    transfer_attach_delay_seconds: float = env("TRANSFER_ATTACH_DELAY_SECONDS", 120.0, ge=0, le=DAY)
    wipe_volumes_on_delete: bool = env("WIPE_VOLUMES_ON_DELETE", False)  # zeros before deleting


class JobSettings(Group):
    """Durable jobs: leases, heartbeats, polling, attempts, and how many a worker runs at once."""

    # Jobs one worker process runs at once (never two of one VPS).  Most of a job's time is spent
    # waiting on libvirt, QEMU and the guest, not on this process's CPU; and a job waiting for its
    # guest gives its slot back (wait_hold_seconds), so a few slots per process go a long way.
    worker_slots: int = env("WORKER_SLOTS", 4, ge=1, le=64)
    # How long a step polls a guest in its slot before giving the slot back, and how soon the
    # job is taken up again to look once more.
    wait_hold_seconds: float = env("JOB_WAIT_HOLD_SECONDS", 2.0, ge=0, le=HOUR)
    wait_poll_seconds: float = env("JOB_WAIT_POLL_SECONDS", 1.0, gt=0, le=HOUR)
    lease_seconds: float = env("JOB_LEASE_SECONDS", 30.0, gt=0, le=HOUR)
    heartbeat_seconds: float = env("JOB_HEARTBEAT_SECONDS", 5.0, gt=0, le=HOUR)
    poll_seconds: float = env("JOB_POLL_SECONDS", 0.2, gt=0, le=60)
    max_attempts: int = env("JOB_MAX_ATTEMPTS", 3, ge=1, le=100)
    # Fault points (orchestrator/core/faults): where the worker kills itself, and the file where it
    # writes each point it reaches.  For crash tests and incident drills only, never for production.
    fault_kill_at: str = env("FAULT_KILL_AT", "")
    fault_log: Path | None = env("FAULT_LOG", None)

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> JobSettings:
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError("VPSCTL_JOB_HEARTBEAT_SECONDS must be shorter than VPSCTL_JOB_LEASE_SECONDS")
        return self


class PeriodicSettings(Group):
    """The periodic duties every worker process runs (0 turns one off)."""

    ticker_seconds: float = env("TICKER_SECONDS", 1.0, gt=0, le=60)  # how often they are looked at
    # R5.2-keep-running: compare the hosts' domains with the records; start again a VPS found down
    reconcile_seconds: float = env("RECONCILE_SECONDS", 60.0, ge=0, le=DAY)
    reconcile_restart: bool = env("RECONCILE_RESTART", True)
    # each running domain's interface filter against the record's (one read per domain: not in
    # every reconcile pass, which is one bulk call per host)
    filter_check_seconds: float = env("FILTER_CHECK_SECONDS", 600.0, ge=0, le=DAY)
    # each host's CPUs, memory and storage pool size read again (placement counts with them)
    capacity_seconds: float = env("CAPACITY_SECONDS", 600.0, ge=0, le=DAY)
    traffic_seconds: float = env("TRAFFIC_SECONDS", HOUR, ge=0, le=DAY)  # R5.4-hours: interface counters
    billing_run_seconds: float = env("BILLING_RUN_SECONDS", 300.0, ge=0, le=DAY)  # R8.2-rent, R8.6-billing


class ContractSettings(Group):
    """How the contract is read where it leaves a choice."""

    # holidays' subdivision of France for jours ouvrés (e.g. "Alsace-Moselle"); empty: metropolitan
    calendar_subdivision: str = env("CALENDAR_SUBDIVISION", "")
    # R5.4-fix-delay: the 48 heures ouvrées around the clock on jours ouvrés, or in support hours
    fix_delay_reading: Literal["around_the_clock", "support_hours"] = env("FIX_DELAY_READING", "around_the_clock")
    # R8.7-default: open a payment default this many days after an invoice's due date; unset: staff only
    auto_default_after_days: int | None = env("AUTO_DEFAULT_AFTER_DAYS", None, ge=0, le=365)
    # R2-dda: the Statement of Applicability, disclosed to a client once approved and under NDA
    dda_document_path: Path | None = env("DDA_DOCUMENT_PATH", None)
    # R6.3-evidence: a fetch of what a VPS serves ends within this time; its body is kept up to this size
    evidence_timeout_seconds: float = env("EVIDENCE_TIMEOUT_SECONDS", 30.0, gt=0, le=600)
    evidence_max_bytes: int = env("EVIDENCE_MAX_BYTES", 5 * 1024 * 1024, gt=0, le=1 << 30)


class HookSettings(Group):
    """Ansible hooks: ``<directory>/<event>.yml`` run after an operation (orchestrator/workflows/hooks)."""

    # Default: the playbooks shipped in playbooks/hooks; empty turns hooks off.
    directory: str = env("HOOKS_DIR", str(_SHIPPED_HOOKS) if _SHIPPED_HOOKS.is_dir() else "")
    data_dir: Path | None = env("HOOKS_DATA_DIR", None)  # the hooks' files; default <state_dir>/hooks
    timeout_seconds: float = env("HOOK_TIMEOUT_SECONDS", 300.0, gt=0, le=DAY)
    max_attempts: int = env("HOOK_MAX_ATTEMPTS", 3, ge=1, le=100)  # runs of a failing hook, then failed


class SmtpSettings(Group):
    """The SMTP server the outbox sends through."""

    host: str = env("SMTP_HOST", "127.0.0.1")
    port: int = env("SMTP_PORT", 25, gt=0, lt=65536)
    user: str | None = env("SMTP_USER", None)
    password: SecretStr | None = env("SMTP_PASSWORD", None)  # never logged: SecretStr hides it
    starttls: bool = env("SMTP_STARTTLS", False)
    ca_file: Path | None = env("SMTP_CA_FILE", None)  # a private CA to verify the server's certificate by
    timeout_seconds: float = env("SMTP_TIMEOUT_SECONDS", 30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _no_password_in_clear(self) -> SmtpSettings:
        if self.user and not self.starttls:
            raise ValueError("VPSCTL_SMTP_USER needs VPSCTL_SMTP_STARTTLS=true: the password never travels in clear")
        return self


class MailSettings(Group):
    """Notices (R6.5-contact, R9-delivery, ...): who they are from, how the outbox retries."""

    sender: str = env("MAIL_FROM", "vpsctl <noreply@localhost>")
    company_name: str = env("COMPANY_NAME", "vpsctl hosting")
    retry_seconds: float = env("OUTBOX_RETRY_SECONDS", 60.0, ge=0, le=DAY)  # doubles on each failure
    max_backoff_seconds: float = env("OUTBOX_MAX_BACKOFF_SECONDS", HOUR, ge=0, le=7 * DAY)
    max_attempts: int = env("OUTBOX_MAX_ATTEMPTS", 20, ge=1, le=1000)  # then failed (kept, never lost)
    poll_seconds: float = env("OUTBOX_POLL_SECONDS", 5.0, gt=0, le=HOUR)


class EventSettings(Group):
    """Webhooks and the event stream (orchestrator/notify/webhooks.py, api/routers/events.py)."""

    # The key that encrypts webhooks' signing secrets in the database (a Fernet key: 32 bytes,
    # urlsafe base64); unset: generated once in <state_dir>/webhook.key (0600). Processes that
    # share a database share this key.
    webhook_key: SecretStr | None = env("WEBHOOK_KEY", None)
    timeout_seconds: float = env("WEBHOOK_TIMEOUT_SECONDS", 5.0, gt=0, le=60)  # one delivery's POST
    max_attempts: int = env("WEBHOOK_MAX_ATTEMPTS", 6, ge=1, le=50)  # deliveries of one event, then given up
    retry_seconds: float = env("WEBHOOK_RETRY_SECONDS", 30.0, ge=0, le=DAY)  # doubles on each failure
    max_backoff_seconds: float = env("WEBHOOK_MAX_BACKOFF_SECONDS", HOUR, ge=0, le=DAY)
    disable_after: int = env("WEBHOOK_DISABLE_AFTER", 20, ge=1, le=10_000)  # consecutive failures
    poll_seconds: float = env("WEBHOOK_POLL_SECONDS", 2.0, gt=0, le=HOUR)
    slots: int = env("WEBHOOK_SLOTS", 4, ge=1, le=64)  # POSTs one process makes at once
    # Endpoints may be on loopback, private, link-local or other non-public addresses (a test
    # receiver, an intranet); off: only public addresses, checked when the webhook is made and at
    # every connection (orchestrator/notify/targets.py).
    private_targets: bool = env("WEBHOOK_PRIVATE_TARGETS", False)
    heartbeat_seconds: float = env("EVENTS_HEARTBEAT_SECONDS", 15.0, gt=0, le=HOUR)  # SSE comment lines
    stream_poll_seconds: float = env("EVENTS_POLL_SECONDS", 1.0, gt=0, le=60)  # new events in the database
    # A gap in event ids (a transaction that took its id but has not committed yet, or rolled
    # back) holds a stream this long at most before it moves on past it.
    gap_wait_seconds: float = env("EVENTS_GAP_WAIT_SECONDS", 5.0, ge=0, le=600)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)
    GROUPS: ClassVar[dict[str, type[Group]]] = {
        "db": DatabaseSettings, "api": ApiSettings, "hosts": HostSettings, "capacity": CapacitySettings,
        "limits": LimitSettings, "quotas": QuotaSettings, "lifecycle": LifecycleSettings, "jobs": JobSettings,
        "periodic": PeriodicSettings, "contract": ContractSettings, "hooks": HookSettings,
        "smtp": SmtpSettings, "mail": MailSettings, "events": EventSettings,
    }

    state_dir: Path = env("STATE_DIR", Path("/var/lib/vpsctl"))  # database file, built images, exports
    images_dir: Path = env("IMAGES_DIR", REPO_ROOT / "images")  # recipes and catalog.json
    image_cache_dir: Path | None = env("IMAGE_CACHE_DIR", None)  # built images; default <state_dir>/images
    run_worker: bool = env("RUN_WORKER", True)  # `vpsctl serve` runs a worker in-process
    # The orchestrator's clock starts at this instant and runs on (demos, and tests of dates the
    # contract cares about); unset: the real time.
    now: AwareDatetime | None = env("NOW", None)

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    hosts: HostSettings = Field(default_factory=HostSettings)
    capacity: CapacitySettings = Field(default_factory=CapacitySettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    periodic: PeriodicSettings = Field(default_factory=PeriodicSettings)
    contract: ContractSettings = Field(default_factory=ContractSettings)
    hooks: HookSettings = Field(default_factory=HookSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    events: EventSettings = Field(default_factory=EventSettings)

    def __init__(self, **values: Any) -> None:
        known = set(type(self).model_fields) | set(_flat_names())
        unknown = sorted(set(values) - known)
        if unknown:  # a typo in code; the environment and .env may hold other variables
            raise TypeError(f"unknown settings: {', '.join(unknown)}")
        super().__init__(**values)

    @model_validator(mode="before")
    @classmethod
    def _route_flat_names(cls, values: Any) -> Any:
        """``job_lease_seconds=5`` -> ``jobs=JobSettings(lease_seconds=5)``, the group's other
        fields read from the environment as usual."""
        if not isinstance(values, dict):
            return values
        values = dict(values)
        per_group: dict[str, dict[str, Any]] = {}
        for flat, (group, field) in _flat_names().items():
            for key in [k for k in values if isinstance(k, str) and k.lower() in (flat, PREFIX.lower() + flat)]:
                per_group.setdefault(group, {})[field] = values.pop(key)
        for group, given in per_group.items():
            if isinstance(values.get(group), Group):
                raise ValueError(f"give either {group}= or its fields, not both")
            values[group] = cls.GROUPS[group](**given)
        return values

    def replace(self, **values: Any) -> Settings:
        """A copy with some settings changed (flat names as above); validated like any other."""
        current: dict[str, Any] = {name: getattr(self, name) for name in type(self).model_fields}
        for flat, (group, field) in _flat_names().items():
            if flat in values:
                current[group] = current[group].model_copy(update={field: values.pop(flat)})
        current.update(values)
        return Settings.model_validate({k: (v.model_dump() if isinstance(v, Group) else v)
                                        for k, v in current.items()})

    def as_environment(self) -> dict[str, str]:
        """The ``VPSCTL_*`` variables that give a child process these settings."""
        out: dict[str, str] = {}

        def add(model: BaseSettings) -> None:
            for name, info in type(model).model_fields.items():
                value = getattr(model, name)
                if isinstance(value, Group):
                    add(value)
                elif value is not None and isinstance(info.validation_alias, str):
                    secret = value.get_secret_value() if isinstance(value, SecretStr) else value
                    out[info.validation_alias] = secret.isoformat() if isinstance(secret, datetime) else str(secret)

        add(self)
        return out

    # --- derived ----------------------------------------------------------------------------
    @property
    def database(self) -> str:
        return self.db.url or f"sqlite:///{self.state_dir / 'vpsctl.db'}"

    @property
    def images_cache(self) -> Path:
        return self.image_cache_dir or self.state_dir / "images"

    @property
    def hooks_data(self) -> Path:
        return self.hooks.data_dir or self.state_dir / "hooks"


@lru_cache
def _flat_names() -> dict[str, tuple[str, str]]:
    """Each group field's environment name without the prefix, lowercased -> (group, field)."""
    names: dict[str, tuple[str, str]] = {}
    for group, cls in Settings.GROUPS.items():
        for field, info in cls.model_fields.items():
            assert isinstance(info.validation_alias, str)
            names[info.validation_alias.removeprefix(PREFIX).lower()] = (group, field)
    return names


@lru_cache
def get_settings() -> Settings:
    return Settings()
