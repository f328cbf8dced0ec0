"""``/v1/subscriptions/{id}/breach-notices`` and ``/terminate``: the end of a contract by right
(R10-breach): a formal notice by registered letter for a breach that had no effect by its cure
date, or the client's insolvency or cessation of activity (staff only)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, status
from sqlmodel import select

from api.deps import SessionDep, SettingsDep, StaffPrincipal
from api.openapi import located
from api.pages import Cursor, Limit, Order, Page, Since, Until, filtered, page_of
from api.schemas.breach import BreachNoticeBody, BreachNoticeOut, RemediedBody, TerminateBody, TerminateOut
from api.scopes import scoped
from orchestrator.core.models import BreachNotice
from orchestrator.workflows import breach, subscriptions

router = APIRouter(prefix="/v1/subscriptions", tags=["billing"], dependencies=[scoped("billing")])


def _out(notice: BreachNotice) -> BreachNoticeOut:
    assert notice.letter_sent_on is not None and notice.cure_by is not None and notice.terminates_at is not None
    return BreachNoticeOut(
        id=notice.id, subscription_id=notice.subscription_id, breach=notice.breach,
        letter_sent_on=notice.letter_sent_on, cure_by=notice.cure_by, terminates_at=notice.terminates_at,
        status=notice.status, termination_job_id=notice.job_id, recorded_by=notice.recorded_by,
        recorded_at=notice.recorded_at, remedied_at=notice.remedied_at, remedied_by=notice.remedied_by,
        remedy_note=notice.remedy_note)


@router.post("/{subscription_id}/breach-notices", status_code=status.HTTP_201_CREATED,
             response_model=BreachNoticeOut)
def record_breach_notice(subscription_id: str, body: BreachNoticeBody, session: SessionDep, settings: SettingsDep,
                  staff: StaffPrincipal) -> BreachNoticeOut:
    """R10-breach: staff record the formal notice sent by registered letter. Unless recorded
    remedied, the subscription is terminated as the day after `cure_by` begins (Paris)."""
    record = subscriptions.visible(session, staff, subscription_id)
    notice = breach.record_notice(session, settings, staff, record, body.breach, body.letter_sent_on, body.cure_by)
    return _out(notice)


@router.get("/{subscription_id}/breach-notices", response_model=Page[BreachNoticeOut])
def list_breach_notices(
    subscription_id: str, session: SessionDep, staff: StaffPrincipal,
    status: Literal["open", "remedied", "terminated"] | None = None,
    since: Since = None, until: Until = None, limit: Limit = 50, cursor: Cursor = None, order: Order = "desc",
) -> Page[BreachNoticeOut]:
    """The subscription's breach notices, newest recorded first, a page at a time (staff)."""
    record = subscriptions.visible(session, staff, subscription_id)
    query = filtered(select(BreachNotice).where(BreachNotice.subscription_id == record.id),
                     ((BreachNotice.status, status),), BreachNotice.recorded_at, since, until)
    rows, after = page_of(session, query, (BreachNotice.recorded_at, BreachNotice.id), cursor, limit, order)
    return Page[BreachNoticeOut](items=[_out(n) for n in rows], next=after)


@router.post("/{subscription_id}/breach-notices/{notice_id}/remedied", response_model=BreachNoticeOut)
def mark_breach_remedied(subscription_id: str, notice_id: str, body: RemediedBody, session: SessionDep,
             staff: StaffPrincipal) -> BreachNoticeOut:
    """R10-breach: the breach was remedied in time: the termination deadline job is called off."""
    record = subscriptions.visible(session, staff, subscription_id)
    notice = breach.remedied(session, staff, breach.get_notice(session, record, notice_id), body.note)
    return _out(notice)


@router.post("/{subscription_id}/terminate", status_code=status.HTTP_202_ACCEPTED, response_model=TerminateOut,
             responses={202: located("/v1/jobs/{termination_job_id}", "Termination scheduled")})
def terminate_subscription(subscription_id: str, body: TerminateBody, session: SessionDep, settings: SettingsDep,
              staff: StaffPrincipal) -> TerminateOut:
    """R10-breach: insolvency or cessation of activity ends the contract at once (a terminate job
    now: the VPS is powered off, the client emailed)."""
    record = subscriptions.visible(session, staff, subscription_id)
    job_id = breach.terminate_now(session, settings, staff, record, body.reason, body.note)
    return TerminateOut(termination_job_id=job_id, reason=body.reason)
