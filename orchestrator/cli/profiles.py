"""Where the remote commands find their API: named profiles (URL and token) in a TOML file, or
``VPSCTL_API_URL`` and ``VPSCTL_TOKEN``.

The file is ``$VPSCTL_CONFIG``, else ``$XDG_CONFIG_HOME/vpsctl/config.toml`` (``~/.config/...``)::

    default = "prod"

    [profiles.prod]
    url = "https://vps.example.net"
    token = "..."

It holds bearer tokens: it is written 0600 (its directory 0700) from its creation, replaced whole
(a temporary file renamed over it), and read only when it is not readable by others (as ssh does
with its keys).  Which API a command uses: ``--profile NAME`` (or ``VPSCTL_PROFILE``); else
``VPSCTL_API_URL`` with ``VPSCTL_TOKEN``; else the file's ``default`` profile."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class ProfileError(Exception):
    """A profile or the configuration cannot be used (missing, malformed, too open)."""


@dataclass(frozen=True)
class Profile:
    name: str  # "environment" when read from VPSCTL_API_URL / VPSCTL_TOKEN
    url: str
    token: str


@dataclass
class Config:
    path: Path
    profiles: dict[str, Profile]
    default: str | None = None


def config_path() -> Path:
    given = os.environ.get("VPSCTL_CONFIG")
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vpsctl" / "config.toml"


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ProfileError(f"not an API address: {url!r} (e.g. https://vps.example.net)")
    return url.rstrip("/")


def check_name(name: str) -> str:
    if not name or len(name) > 64 or not set(name) <= NAME_CHARS:
        raise ProfileError(f"a profile's name is 1-64 letters, digits, '-', '_' or '.': {name!r}")
    return name


def load(path: Path | None = None) -> Config:
    """The configuration (empty when there is no file)."""
    path = path or config_path()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return Config(path, {})
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ProfileError(f"{path} holds tokens but others may read it (mode {stat.S_IMODE(mode):o}): "
                           f"chmod 600 {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: {exc}") from None
    profiles: dict[str, Profile] = {}
    for name, entry in (data.get("profiles") or {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str) or \
                not isinstance(entry.get("token"), str):
            raise ProfileError(f"{path}: profile {name!r} needs a url and a token (strings)")
        profiles[name] = Profile(name, entry["url"], entry["token"])
    default = data.get("default")
    return Config(path, profiles, default if isinstance(default, str) else None)


def save(config: Config) -> None:
    """The whole file written again, 0600 from its first byte, then renamed over the old one."""
    directory = config.path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = ["# vpsctl profiles: API addresses and bearer tokens (keep this file private)"]
    if config.default:
        lines.append(f"default = {_toml_string(config.default)}")
    for profile in config.profiles.values():
        lines += ["", f"[profiles.{_toml_string(profile.name)}]", f"url = {_toml_string(profile.url)}",
                  f"token = {_toml_string(profile.token)}"]
    temporary = directory / f".{config.path.name}.{os.getpid()}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")
        os.replace(temporary, config.path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's for these characters)."""
    return json.dumps(value, ensure_ascii=False)


def resolve(name: str | None) -> Profile:
    """The API a command talks to (module docstring)."""
    if name:
        config = load()
        if name not in config.profiles:
            raise ProfileError(f"no profile {name!r} in {config.path} (vpsctl profile add {name} --url URL)")
        return config.profiles[name]
    url, token = os.environ.get("VPSCTL_API_URL"), os.environ.get("VPSCTL_TOKEN")
    if url:
        if not token:
            raise ProfileError("VPSCTL_API_URL is set but VPSCTL_TOKEN is not")
        return Profile("environment", check_url(url), token)
    config = load()
    if config.default and config.default in config.profiles:
        return config.profiles[config.default]
    raise ProfileError(f"no API given: use --profile NAME (profiles in {config.path}: vpsctl profile add), "
                       "or set VPSCTL_API_URL and VPSCTL_TOKEN")
