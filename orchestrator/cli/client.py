"""A small typed client of the remote API (``/v1``), for ``vpsctl vps|job`` (orchestrator/cli/remote.py).

Hand-typed on httpx against the documented paths (docs/api.md), one small function per
operation, rather than generated from ``/openapi.json``:

* the CLI uses a dozen routes; a generator would bring a build step and thousands of lines for
  them, and its names would follow the document's operationIds, which are not a stable interface
  (they change as the document is improved);
* the paths, bodies and the problem+json errors are the API's contract and change rarely; the
  answers are kept as the JSON the server sent (``dict``), so a field the server adds reaches
  ``--output json`` without a client release;
* it imports nothing of the server (``api``, the models, the database): the same module works
  from a laptop that only has the package installed.

Every error leaves as :class:`ApiError` (an HTTP answer: its problem+json ``title``, ``detail``
and extra members) or :class:`Unreachable` (no answer at all); nothing here prints.

New VPS: a customer orders one from a plan (:meth:`Client.order`, ``POST /v1/orders``: the VPS
with its subscription and first invoice, R8.1-setup-fee); staff may make one without an order,
not billed, with a reason (:meth:`Client.create_unbilled`, ``POST /v1/vps``).  :meth:`Client.list_plans`
says what may be ordered."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

JSON = dict[str, Any]
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
USER_AGENT = "vpsctl-cli"


class ClientError(Exception):
    """Anything that kept a call from getting its answer."""


class Unreachable(ClientError):
    """The API did not answer (refused, timed out, TLS, DNS)."""


@dataclass
class ApiError(ClientError):
    """An HTTP error answer, read from its problem+json body (RFC 9457) when it has one."""

    status: int
    title: str
    detail: str = ""
    extra: JSON = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.title}: {self.detail}" if self.detail and self.detail != self.title else self.title

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            text = response.text.strip()[:300]
            return cls(response.status_code, response.reason_phrase or f"HTTP {response.status_code}", text)
        title = str(body.get("title") or response.reason_phrase or f"HTTP {response.status_code}")
        detail = body.get("detail")
        if not isinstance(detail, str):  # a framework's own {"detail": [...]} rather than problem+json
            detail = "" if detail is None else str(detail)
        extra = {k: v for k, v in body.items() if k not in ("type", "title", "status", "detail")}
        return cls(response.status_code, title, detail, extra)


class Client:
    """The API at ``url`` called with ``token``.  Usable as a context manager (closes the pool)."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT,
                                           "Accept": "application/json, application/problem+json"})

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, json: Any = None, params: Any = None,
                headers: dict[str, str] | None = None) -> JSON:
        """The JSON answer of a 2xx; an :class:`ApiError` for anything else."""
        try:
            response = self._http.request(method, path, json=json, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{self.url}: {exc.__class__.__name__}: {exc}") from None
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError:
            raise ApiError(response.status_code, "Not a JSON answer", response.text[:300]) from None
        return body if isinstance(body, dict) else {"items": body}

    # --- VPS -------------------------------------------------------------------------------

    def list_vps(self, *, status: str | None = None, name: str | None = None, site: str | None = None,
                 include_deleted: bool = False, limit: int = 100, everything: bool = True) -> list[JSON]:
        """``GET /v1/vps``, every page (``everything``) or the first ``limit``."""
        params: dict[str, Any] = {"limit": limit}
        for key, value in (("status", status), ("name", name), ("site", site)):
            if value is not None:
                params[key] = value
        if include_deleted:
            params["include_deleted"] = "true"
        return list(self._pages("/v1/vps", params, everything))

    def get_vps(self, vps_id: str) -> JSON:
        return self.request("GET", f"/v1/vps/{_seg(vps_id)}")

    def order(self, order: JSON, *, idempotency_key: str | None = None) -> JSON:
        """Order a VPS from a plan (``POST /v1/orders``: ``plan``, ``term_months``, ``image``, ``name``,
        ``ssh_keys`` and optionally ``site``, ``billing_period``, ``placement_group``, staff: ``customer``).
        Answers ``{"order", "subscription", "invoice", "vps", "job"}`` (R8.1-setup-fee)."""
        return self.request("POST", "/v1/orders", json=order, headers=_idempotency(idempotency_key))

    def create_unbilled(self, spec: JSON, *, idempotency_key: str | None = None) -> JSON:
        """Staff: a VPS without an order, not billed (``POST /v1/vps``: ``customer``, ``reason``,
        ``name``, ``image``, ``vcpus``, ``memory_mib``, ``disk_gib``, ``ssh_keys``, optionally ``site``,
        ``placement_group``).  Answers ``{"vps", "job"}``; a customer's token is refused (403)."""
        return self.request("POST", "/v1/vps", json=spec, headers=_idempotency(idempotency_key))

    def operate(self, vps_id: str, operation: str, body: JSON | None = None, *,
                idempotency_key: str | None = None) -> JSON:
        """``POST /v1/vps/{id}/{operation}``: ``{"job", "plan"?}``."""
        return self.request("POST", f"/v1/vps/{_seg(vps_id)}/{operation}", json=body,
                            headers=_idempotency(idempotency_key))

    def resize(self, vps_id: str, *, vcpus: int | None = None, memory_mib: int | None = None,
               disk_gib: int | None = None, reason: str | None = None) -> JSON:
        body = {k: v for k, v in (("vcpus", vcpus), ("memory_mib", memory_mib), ("disk_gib", disk_gib),
                                  ("reason", reason)) if v is not None}
        return self.operate(vps_id, "resize", body)

    def suspend(self, vps_id: str, reason: str | None = None) -> JSON:
        return self.operate(vps_id, "suspend", {"reason": reason} if reason else {})

    def resume(self, vps_id: str) -> JSON:
        return self.operate(vps_id, "resume")

    def reinstall(self, vps_id: str, ssh_keys: list[str], *, confirm_data_loss: bool, image: str | None = None,
                  keep_old_disk: bool = False) -> JSON:
        body: JSON = {"ssh_keys": ssh_keys, "confirm_data_loss": confirm_data_loss, "keep_old_disk": keep_old_disk}
        if image:
            body["image"] = image
        return self.operate(vps_id, "reinstall", body)

    def delete_vps(self, vps_id: str, *, confirm_data_loss: bool, keep_backups: list[str] | None = None) -> JSON:
        params: list[tuple[str, str]] = [("confirm_data_loss", "true" if confirm_data_loss else "false")]
        params += [("keep_backups", backup) for backup in keep_backups or []]
        return self.request("DELETE", f"/v1/vps/{_seg(vps_id)}", params=params)

    def console_url(self, vps_id: str) -> str:
        """The serial console's WebSocket address (``GET /v1/vps/{id}/console``, bearer token)."""
        parts = urlsplit(self.url)
        scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
        return urlunsplit((scheme, parts.netloc, f"{parts.path}/v1/vps/{_seg(vps_id)}/console", "", ""))

    # --- plans ---------------------------------------------------------------------------

    def list_plans(self, *, include_retired: bool = False) -> list[JSON]:
        """``GET /v1/plans``: the plans on offer (staff: retired ones too with ``include_retired``)."""
        params = {"include_retired": "true", "limit": "500"} if include_retired else {"limit": "500"}
        return list(self.request("GET", "/v1/plans", params=params).get("items", []))

    # --- jobs ------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> JSON:
        """``GET /v1/jobs/{id}``: status, ``progress`` {done, total, step} and ``events``."""
        return self.request("GET", f"/v1/jobs/{_seg(job_id)}")

    def follow_job(self, job_id: str, *, interval: float = 0.5, timeout: float | None = None,
                   sleep: Callable[[float], None] = time.sleep) -> Iterator[JSON]:
        """The job as it goes: a new reading every ``interval`` s, the last one finished.  A
        :class:`ClientError` on ``timeout`` (seconds) or when the API stops answering."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            yield job
            if job.get("status") in FINISHED:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise ClientError(f"job {job_id} still {job.get('status')} after {timeout:g} s")
            sleep(interval)

    def _pages(self, path: str, params: dict[str, Any], everything: bool) -> Iterator[JSON]:
        cursor: str | None = None
        while True:
            page = self.request("GET", path, params={**params, **({"cursor": cursor} if cursor else {})})
            yield from page.get("items", [])
            cursor = page.get("next")
            if not (everything and cursor):
                return


def _seg(value: str) -> str:
    """An id as one path segment (no ``/``, ``..`` or query smuggled into the path)."""
    return quote(value, safe="")


def _idempotency(key: str | None) -> dict[str, str] | None:
    return {"Idempotency-Key": key} if key else None
