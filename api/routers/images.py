from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep
from api.schemas.fleet import ImageOut
from api.scopes import scoped
from orchestrator.core.models import Image

router = APIRouter(prefix="/v1/images", tags=["images"], dependencies=[scoped("vps")])


@router.get("", response_model=list[ImageOut])
def list_images(session: SessionDep, _principal: CurrentPrincipal) -> list[ImageOut]:
    """The image catalog: what a VPS can be created from."""
    images = session.exec(select(Image).order_by(col(Image.name))).all()
    return [ImageOut.model_validate(image, from_attributes=True) for image in images]
