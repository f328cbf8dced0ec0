"""The FastAPI application factory."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import orchestrator.workflows  # noqa: F401  (operations, workflows and periodic duties register themselves)
from api import errors, openapi
from api.admission import Admission
from api.audit import AuditTrail
from api.guard import PUBLIC, Guard
from api.routers import (
    audit,
    backups,
    billing,
    breach,
    change_orders,
    compromise,
    console,
    customers,
    dda,
    events,
    evidence,
    health,
    hosts,
    images,
    incidents,
    interruptions,
    invoices,
    jobs,
    maintenance,
    metrics,
    operations,
    orders,
    plans,
    quotas,
    subscriptions,
    tokens,
    vps,
    webhooks,
)
from api.scopes import check_declared
from api.serving import closing_event
from api.unavailable import DatabaseUnavailable
from orchestrator import __version__
from orchestrator.compute.hosts import Drivers
from orchestrator.core import clock
from orchestrator.core.db import make_engine
from orchestrator.core.settings import Settings, get_settings
from orchestrator.engine import ticker
from orchestrator.engine.worker import Worker
from orchestrator.notify import start_outbox_thread, start_webhook_thread

log = logging.getLogger(__name__)

DESCRIPTION = """
Order, run and delete virtual private servers on libvirt hosts.

Every route but `/healthz` and the docs needs `Authorization: Bearer <token>`
(`vpsctl token create`, or `POST /v1/tokens`); an expired or revoked token is a `401`.
Tokens are of three roles: a customer's act for that customer only; support has every staff
right; automation only what its token's scopes allow (`<family>:read` for GET, `<family>:write`
otherwise: vps, hosts, billing, maintenance, incidents, security, dda, customers, plans, orders,
webhooks, events), else `403` naming the missing scope. Mutating calls answer `202` with a job
to follow at `/v1/jobs/{id}`.
Errors are `application/problem+json` documents (RFC 9457).
"""


ROUTERS = tuple(module.router for module in (
    health, images, hosts, vps, operations, backups, compromise, console, jobs, maintenance, invoices, change_orders,
    incidents, subscriptions, billing, interruptions, breach, dda, evidence, customers, tokens, quotas, audit, metrics,
    plans, orders, webhooks, events))


def create_app(settings: Settings | None = None, run_worker: bool | None = None) -> FastAPI:
    settings = settings or get_settings()
    clock.start(settings.now)
    engine = make_engine(settings)
    with_worker = settings.run_worker if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = None
        outbox_stop = threading.Event()
        if with_worker:
            worker = Worker(engine, settings, Drivers())
            worker.start_thread()
            app.state.worker = worker
            start_outbox_thread(engine, settings, outbox_stop)
            start_webhook_thread(engine, settings, outbox_stop)
            ticker.start_thread(engine, settings, outbox_stop)
        try:
            yield
        finally:
            closing_event(app).set()  # event streams end (api/serving.py)
            outbox_stop.set()
            if worker is not None:
                worker.stop()
                worker.drivers.close()
            app.state.drivers.close()

    app = FastAPI(title="vpsctl", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  generate_unique_id_function=openapi.operation_id, openapi_tags=openapi.TAGS,
                  dependencies=[openapi.STRICT_REQUESTS])
    app.state.settings = settings
    closing_event(app)
    app.state.engine = engine
    app.state.drivers = Drivers()  # for the console only: everything else goes through jobs
    errors.install(app)
    app.add_middleware(AuditTrail, engine=engine)  # inside the Guard: it reads the principal
    app.add_middleware(Guard, engine=engine, max_body_bytes=settings.api.max_body_bytes,
                       rate_per_minute=settings.api.rate_per_minute, rate_storage=settings.api.rate_storage)
    app.add_middleware(Admission, engine=engine)  # no more requests at once than connections serve
    app.add_middleware(DatabaseUnavailable)  # outermost: a 503 whichever part met the database down
    for router in ROUTERS:
        check_declared(router.routes, PUBLIC)  # every route says which automation tokens may call it
        app.include_router(router)
    openapi.install(app)  # the document, completed from the routes; Location headers
    return app
