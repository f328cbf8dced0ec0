"""All settings, read once from the environment (prefix ``VPSCTL_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
_SHIPPED_HOOKS = REPO_ROOT / "playbooks" / "hooks"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VPSCTL_", env_file=".env", extra="ignore")

    # --- where things live -------------------------------------------------------------------
    state_dir: Path = Path("/var/lib/vpsctl")
    database_url: str = ""  # default: sqlite file in state_dir
    images_dir: Path = REPO_ROOT / "images"  # recipes and catalog.json
    image_cache_dir: Path | None = None  # built images; default state_dir/images

    # --- the first hypervisor host, registered at start-up ------------------------------------
    libvirt_uri: str = "qemu:///system"
    host_name: str = "local"
    host_site: str = "Marseille"
    storage_pool: str = "vpsctl"
    storage_pool_path: Path = Path("/var/lib/libvirt/vpsctl")
    backup_pool: str = "vpsctl-backup"
    backup_pool_path: Path = Path("/var/lib/libvirt/vpsctl-backup")
    backup_timeout_seconds: float = 3600.0
    guest_network: str = "vpsctl"
    guest_bridge: str = "vpsbr0"
    guest_subnet: str = "192.168.150.0/24"

    # --- capacity policy (placement) ----------------------------------------------------------
    cpu_allocation_ratio: float = Field(4.0, gt=0)
    ram_allocation_ratio: float = Field(1.0, gt=0)
    disk_allocation_ratio: float = Field(1.0, gt=0)
    reserved_host_memory_mib: int = Field(512, ge=0)
    reserved_host_disk_gib: int = Field(2, ge=0)

    # --- VPS size limits (anything outside is refused as bad input) ---------------------------
    max_vcpus: int = 32
    max_memory_mib: int = 262_144
    max_disk_gib: int = 4_096
    max_ssh_keys: int = 20

    # --- contract ---------------------------------------------------------------------------
    # holidays' subdivision of France for jours ouvrés (e.g. "Alsace-Moselle"); empty: metropolitan
    calendar_subdivision: str = ""
    # R5.4-fix-delay: how the 48 heures ouvrées are counted ("around_the_clock" on jours ouvrés,
    # or "support_hours", R4-support-hours)
    fix_delay_reading: Literal["around_the_clock", "support_hours"] = "around_the_clock"
    # R5.2-keep-running: how often every worker compares the hosts' domains with the records, and
    # whether it starts again a VPS found down; R5.4-hours: how often interface counters are read
    reconcile_seconds: float = 60.0
    reconcile_restart: bool = True
    traffic_seconds: float = 3600.0
    # R8.2-rent, R8.6-billing: how often every worker looks for rent invoices due (orchestrator/billing_run)
    billing_run_seconds: float = 300.0
    # R8.7-default: open a payment default automatically this many days after an invoice's due
    # date (the billing run does it); unset: only staff declare a default
    auto_default_after_days: int | None = Field(None, ge=0)

    # --- lifecycle ------------------------------------------------------------------------------
    # A VPS is defined with room to grow live: max vCPUs and max memory = ordered x headroom.
    live_resize_headroom: float = Field(2.0, ge=1.0)
    stop_timeout_seconds: float = 60.0  # graceful stop: ACPI, then forced off after this
    serial_log_dir: str = "/var/log/libvirt/qemu"  # on the host

    # --- jobs and worker ----------------------------------------------------------------------
    run_worker: bool = True  # `vpsctl serve` runs a worker in-process
    job_lease_seconds: float = 30.0
    job_heartbeat_seconds: float = 5.0
    job_poll_seconds: float = 0.2
    job_max_attempts: int = 3
    ticker_seconds: float = Field(1.0, gt=0)  # how often periodic tasks are looked at (orchestrator/ticker)
    address_timeout_seconds: float = 180.0
    verify_guest_ssh: bool = True
    ssh_ready_timeout_seconds: float = 180.0
    # How the orchestrator reaches a guest's port, when the guests' network is not routed to it:
    # an OpenSSH-style ProxyCommand with %h/%p, e.g. "ssh -W %h:%p jump" or a netns exec.
    guest_proxy_command: str = ""
    # R6.3-evidence: fetching what a VPS serves: the whole exchange must end within this time, and
    # the body kept is cut at this size (the evidence says it was truncated)
    evidence_timeout_seconds: float = Field(30.0, gt=0)
    evidence_max_bytes: int = Field(5 * 1024 * 1024, gt=0)
    # R2-dda: the Statement of Applicability, disclosed to a client once approved and under NDA
    dda_document_path: Path | None = None
    # R6.2-transfer: the old disk is hot-plugged into the reinstalled system this long after it
    # started, once it has mounted its own filesystems (the old disk has the same labels).
    transfer_attach_delay_seconds: float = Field(120.0, ge=0)
    wipe_volumes_on_delete: bool = False  # discard (delete) is the default; wipe writes zeros first

    # --- Ansible hooks (orchestrator/hooks.py): <hooks_dir>/<event>.yml run after an operation ---
    # Default: the playbooks/hooks directory shipped with the project; empty disables hooks.
    hooks_dir: str = str(_SHIPPED_HOOKS) if _SHIPPED_HOOKS.is_dir() else ""
    hooks_data_dir: Path | None = None  # the hooks' files (inventory, audit log); default state_dir/hooks
    hook_timeout_seconds: float = Field(300.0, gt=0)
    hook_max_attempts: int = Field(3, ge=1)  # runs of a failing hook in all, then recorded failed

    # --- API ----------------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8080

    # --- email (orchestrator/notify: the outbox and its SMTP sender) ---------------------------
    # R6.5-contact: notices go to the address on file when they are sent; R9-delivery, R6.2-notice,
    # R8.7-default: deadlines count from the actual sending time (Outbox.sent_at).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(25, gt=0, lt=65536)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None  # never logged (SecretStr hides it in repr and dumps)
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(30.0, gt=0)
    mail_from: str = "vpsctl <noreply@localhost>"
    company_name: str = "vpsctl hosting"
    outbox_retry_seconds: float = Field(60.0, ge=0)  # first retry delay; doubles on each failure
    outbox_max_backoff_seconds: float = Field(3600.0, ge=0)  # ceiling of the retry delay
    outbox_max_attempts: int = Field(20, ge=1)  # then the message is marked failed (kept, never lost)
    outbox_poll_seconds: float = Field(5.0, gt=0)  # run_outbox_forever's idle wait
    # --- end of email ---------------------------------------------------------------------------

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'vpsctl.db'}"

    @property
    def images_cache(self) -> Path:
        return self.image_cache_dir or self.state_dir / "images"

    @property
    def hooks_data(self) -> Path:
        return self.hooks_data_dir or self.state_dir / "hooks"


@lru_cache
def get_settings() -> Settings:
    return Settings()
