"""The image catalog: recipes in images/ build qcow2 files from Debian packages; a built image is
registered with its size and sha256, and uploaded to each host's pool when first needed."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from orchestrator.core.clock import utcnow
from orchestrator.core.errors import ImageError
from orchestrator.core.files import private_dir
from orchestrator.core.models import Image
from orchestrator.core.settings import Settings


@dataclass(frozen=True)
class Recipe:
    name: str
    os: str
    os_family: str
    min_disk_gib: int
    min_memory_mib: int
    recipe: str
    description: str


def catalog(settings: Settings) -> dict[str, Recipe]:
    path = settings.images_dir / "catalog.json"
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot read the image catalog {path}: {exc}") from exc
    return {
        e["name"]: Recipe(
            name=e["name"],
            os=e["os"],
            os_family=e.get("os_family", "linux"),
            min_disk_gib=int(e.get("min_disk_gib", 1)),
            min_memory_mib=int(e.get("min_memory_mib", 128)),
            recipe=e["recipe"],
            description=e.get("description", ""),
        )
        for e in entries
    }


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def virtual_size(path: Path) -> int:
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", str(path)], check=True, capture_output=True, text=True
    ).stdout
    return int(json.loads(out)["virtual-size"])


def recipe_digest(settings: Settings, recipe: Recipe) -> str:
    """SHA-256 over every file the recipe builds from: its own folder and the shared ``lib``
    (names and contents, in a fixed order), so that a changed recipe is never served from cache."""
    script = settings.images_dir / recipe.recipe
    digest = hashlib.sha256()
    for folder in (script.parent, settings.images_dir / "lib"):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(settings.images_dir)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
            digest.update(oct(path.stat().st_mode & 0o111).encode())
    return digest.hexdigest()


def build(settings: Settings, session: Session, name: str, force: bool = False) -> Image:
    """Build the image from its recipe unless a file built from the same recipe is cached, then
    register it.  The cache remembers the recipe's digest beside the file (``NAME.recipe``)."""
    recipes = catalog(settings)
    if name not in recipes:
        raise ImageError(f"no recipe for image {name!r}; known: {', '.join(sorted(recipes))}")
    recipe = recipes[name]
    private_dir(settings.images_cache)
    target = settings.images_cache / f"{name}.qcow2"
    stamp = settings.images_cache / f"{name}.recipe"
    wanted = recipe_digest(settings, recipe)
    cached = stamp.read_text().strip() if stamp.exists() else None
    if force or not target.exists() or cached != wanted:
        stamp.unlink(missing_ok=True)
        script = settings.images_dir / recipe.recipe
        result = subprocess.run(["bash", str(script), str(target)], capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout)[-2000:]
            raise ImageError(f"building image {name!r} failed:\n{tail}")
        stamp.write_text(wanted + "\n")
    return register(session, recipe, target)


def register(session: Session, recipe: Recipe, path: Path) -> Image:
    checksum = sha256_of(path)
    image = session.get(Image, recipe.name) or Image(name=recipe.name, os=recipe.os, sha256=checksum, path="")
    image.os = recipe.os
    image.os_family = recipe.os_family
    image.format = "qcow2"
    image.path = str(path)
    image.size_bytes = path.stat().st_size
    image.virtual_size_bytes = virtual_size(path)
    image.sha256 = checksum
    image.min_disk_gib = max(recipe.min_disk_gib, -(-image.virtual_size_bytes // (1 << 30)))
    image.min_memory_mib = recipe.min_memory_mib
    image.description = recipe.description
    image.built_at = utcnow()
    session.add(image)
    session.commit()
    return image


def volume_name(image: Image) -> str:
    """Content-addressed: a rebuilt image gets a new base volume; overlays keep their old base."""
    return f"image-{image.name}-{image.sha256[:16]}.qcow2"
