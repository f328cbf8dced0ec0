"""``/v1/webhooks``: endpoints that receive the event log as signed POSTs (orchestrator/notify/webhooks.py).

A customer's webhooks receive that customer's events; a staff token's webhook (support or
automation with ``webhooks:write``) receives every event.  Another customer's webhook is a 404,
as if it did not exist.  The signing secret is in the answer to the creation only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from sqlmodel import Session, col, select

from api.deps import CurrentPrincipal, SessionDep, SettingsDep
from api.pages import Cursor, Limit, Order, Page, Since, Until, filtered, page_of
from api.schemas.events import DeliveryOut, NewWebhookOut, WebhookBody, WebhookOut
from api.scopes import scoped
from orchestrator.core.access import listed_customer, visible
from orchestrator.core.auth import Principal
from orchestrator.core.models import Event, Webhook, WebhookDelivery
from orchestrator.notify import webhooks

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], dependencies=[scoped("webhooks")])

WebhookId = Annotated[str, Path(max_length=64)]


def webhook_out(hook: Webhook) -> WebhookOut:
    return WebhookOut(id=hook.id, url=hook.url, events=list(hook.events),
                      owner="staff" if hook.customer_id is None else "customer", customer_id=hook.customer_id,
                      enabled=hook.enabled, consecutive_failures=hook.consecutive_failures,
                      disabled_at=hook.disabled_at, created_at=hook.created_at)


def _visible(session: Session, principal: Principal, webhook_id: str) -> Webhook:
    return visible(session, Webhook, webhook_id, principal, "webhook")


@router.post("", response_model=NewWebhookOut, status_code=status.HTTP_201_CREATED, operation_id="create_webhook")
def create_webhook(body: WebhookBody, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
                   response: Response) -> NewWebhookOut:
    """A webhook: a customer's receives their own events, staff's every event. The answer holds
    the signing secret, once; it is stored encrypted and never shown again (nor kept for an
    Idempotency-Key's replay)."""
    response.headers["Cache-Control"] = "no-store"
    hook, secret = webhooks.create(session, settings, principal, body.url, body.events)
    return NewWebhookOut(**webhook_out(hook).model_dump(), secret=secret)


@router.get("", response_model=Page[WebhookOut], operation_id="list_webhooks")
def list_webhooks(
    session: SessionDep, principal: CurrentPrincipal,
    enabled: bool | None = None,
    customer_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="staff only")] = None,
    since: Since = None, until: Until = None, limit: Limit = 50, cursor: Cursor = None, order: Order = "desc",
) -> Page[WebhookOut]:
    """Webhooks, newest first, a page at a time: a customer's own; staff see every webhook."""
    query = filtered(select(Webhook), ((Webhook.customer_id, listed_customer(principal, customer_id)),
                                       (Webhook.enabled, enabled)), Webhook.created_at, since, until)
    rows, after = page_of(session, query, (Webhook.created_at, Webhook.id), cursor, limit, order)
    return Page[WebhookOut](items=[webhook_out(hook) for hook in rows], next=after)


@router.get("/{webhook_id}", response_model=WebhookOut, operation_id="get_webhook")
def get_webhook(webhook_id: WebhookId, session: SessionDep, principal: CurrentPrincipal) -> WebhookOut:
    return webhook_out(_visible(session, principal, webhook_id))


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="delete_webhook")
def delete_webhook(webhook_id: WebhookId, session: SessionDep, principal: CurrentPrincipal) -> None:
    """The webhook and its delivery log; nothing more is sent to it."""
    webhooks.remove(session, _visible(session, principal, webhook_id))


@router.post("/{webhook_id}/enable", response_model=WebhookOut, operation_id="enable_webhook")
def enable_webhook(webhook_id: WebhookId, session: SessionDep, principal: CurrentPrincipal) -> WebhookOut:
    """Enabled again after failures disabled it: the deliveries that waited are sent (409 when
    it is enabled)."""
    return webhook_out(webhooks.enable(session, _visible(session, principal, webhook_id)))


@router.get("/{webhook_id}/deliveries", response_model=Page[DeliveryOut], operation_id="list_webhook_deliveries")
def list_deliveries(webhook_id: WebhookId, session: SessionDep, principal: CurrentPrincipal,
                    since: Since = None, until: Until = None, limit: Limit = 50, cursor: Cursor = None,
                    order: Order = "desc") -> Page[DeliveryOut]:
    """The delivery log, newest first: each attempt, with the endpoint's status code or the
    error and how long it took."""
    hook = _visible(session, principal, webhook_id)
    query = filtered(select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id), (),
                     WebhookDelivery.created_at, since, until)
    page, after = page_of(session, query, (WebhookDelivery.created_at, WebhookDelivery.id), cursor, limit, order)
    types = dict(session.exec(select(Event.id, Event.type)
                              .where(col(Event.id).in_({row.event_id for row in page}))).all()) if page else {}
    items = [DeliveryOut(id=row.id, event_id=row.event_id, event_type=types.get(row.event_id, ""),
                         attempt=row.attempt, status=row.status, due_at=row.due_at, attempted_at=row.attempted_at,
                         status_code=row.status_code, error=row.error, duration_ms=row.duration_ms,
                         created_at=row.created_at) for row in page]
    return Page[DeliveryOut](items=items, next=after)
