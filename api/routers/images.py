from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlmodel import select

from api.deps import CurrentPrincipal, SessionDep
from api.pages import Cursor, Limit, Page, filtered, page_of
from api.schemas.fleet import ImageOut
from api.scopes import scoped
from orchestrator.core.models import Image

router = APIRouter(prefix="/v1/images", tags=["images"], dependencies=[scoped("vps")])


@router.get("", response_model=Page[ImageOut])
def list_images(
    session: SessionDep, _principal: CurrentPrincipal,
    os_family: Annotated[str | None, Query(max_length=32, description="e.g. linux")] = None,
    limit: Limit = 50, cursor: Cursor = None,
    order: Annotated[Literal["asc", "desc"], Query(description="by name: asc (the default) or desc")] = "asc",
) -> Page[ImageOut]:
    """The image catalog: what a VPS can be created from, by name, a page at a time."""
    query = filtered(select(Image), ((Image.os_family, os_family),), Image.name, None, None)
    rows, after = page_of(session, query, (Image.name,), cursor, limit, order)
    return Page[ImageOut](items=[ImageOut.model_validate(image, from_attributes=True) for image in rows], next=after)
