"""R2-locations: the sites where a client's VPS, backups and off-site copies may be placed."""

from __future__ import annotations

from orchestrator.core.errors import ContractRefusal

# R2-locations: exactly these 23 sites, as the contract lists them (city, ISO country code).
SITES: dict[str, str] = {
    "Amsterdam": "NL", "Chennai": "IN", "Dallas": "US", "Frankfurt": "DE", "Hong Kong": "CN",
    "Houston": "US", "London": "GB", "Madrid": "ES", "Marseille": "FR", "Melbourne": "AU",
    "Milan": "IT", "Montréal": "CA", "Oslo": "NO", "Paris": "FR", "Querétaro": "MX",
    "San Jose": "US", "São Paulo": "BR", "Seattle": "US", "Singapore": "SG", "Sydney": "AU",
    "Tokyo": "JP", "Toronto": "CA", "Washington D.C.": "US",
}


def check_site(site: str) -> str:
    """The contract's spelling of ``site`` (case-insensitive), or a refusal citing R2-locations."""
    for name in SITES:
        if name.casefold() == site.strip().casefold():
            return name
    raise ContractRefusal(
        "R2-locations", f"{site[:64]!r} is not one of the contract's sites ({', '.join(SITES)})"
    )
