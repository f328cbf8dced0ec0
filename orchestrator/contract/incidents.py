"""When repeated or unfixed incidents give the client the right to terminate.

R5.4-fix-delay, R5.4-repeat, R5.3-force-majeure, R12-suspend. Pure functions over incident
records and a given ``now``.

Reading of the French text (art. 5.3, 5.4, 12):
- R5.4-fix-delay: "Dans le cas où aucune solution ne serait trouvée dans ces délais" — the right
  arises when the 48 heures ouvrées pass without a solution. An incident resolved after its
  deadline therefore also gave the right (at its deadline); nothing in the contract makes the right
  lapse when the fix finally comes. An incident resolved after ``now`` is unresolved at ``now``.
- R5.3-force-majeure: an incident caused by force majeure never counts (neither for the delay nor
  for repetitions).
- R12-suspend: force majeure suspends the parties' obligations while it lasts, so the 48-hour clock
  of a counted incident stops while any force-majeure incident of the list is open (the caller
  passes the incidents of the contract concerned).
- R5.4-repeat: "plus de trois fois dans une période de trois mois" — at least four occurrences of
  the same malfunction (the same key) opened within three calendar months, first to last
  inclusive (same Paris wall-clock time three months later, clamped), even if each was fixed in
  time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.contract.calendar import BusinessCalendar, Reading, add_months_at, to_paris, to_utc
from orchestrator.contract.deadlines import FIX_DELAY_HEURES_OUVREES
from orchestrator.core.errors import InvalidRequest

REPEAT_MORE_THAN = 3  # R5.4-repeat: more than three times…
REPEAT_WITHIN_MONTHS = 3  # …within three months


@dataclass(frozen=True)
class Incident:
    """R5.4-fix-delay, R5.3-force-majeure: one unavailability of the service concerned."""

    opened_at: datetime
    resolved_at: datetime | None
    malfunction: str  # what went wrong, as a stable key: the same key is "the same malfunction"
    force_majeure: bool = False

    def __post_init__(self) -> None:
        opened = to_utc(self.opened_at)  # refuses naive datetimes
        if self.resolved_at is not None and to_utc(self.resolved_at) < opened:
            raise InvalidRequest(f"incident resolved ({self.resolved_at.isoformat()}) before it opened "
                                 f"({self.opened_at.isoformat()})")
        if not self.malfunction.strip():
            raise InvalidRequest("an incident needs a malfunction key")


@dataclass(frozen=True)
class TerminationRight:
    """R5.4-fix-delay, R5.4-repeat: the client may request termination of the contract concerned."""

    rule: str  # "R5.4-fix-delay" or "R5.4-repeat"
    since: datetime  # when the right arose (Europe/Paris)
    reason: str
    incidents: tuple[Incident, ...]


def _suspensions(incidents: Iterable[Incident], now: datetime) -> list[tuple[datetime, datetime | None]]:
    """R12-suspend: the merged, sorted UTC intervals during which force majeure lasted (open end:
    still going on at ``now``)."""
    now_utc = to_utc(now)
    raw: list[tuple[datetime, datetime | None]] = []
    for i in incidents:
        if i.force_majeure and to_utc(i.opened_at) <= now_utc:
            end = None if i.resolved_at is None or to_utc(i.resolved_at) > now_utc else to_utc(i.resolved_at)
            raw.append((to_utc(i.opened_at), end))
    raw.sort(key=lambda iv: iv[0])
    merged: list[tuple[datetime, datetime | None]] = []
    for start, end in raw:
        if merged:
            last_start, last_end = merged[-1]
            if last_end is None or start <= last_end:
                merged[-1] = (last_start, None if end is None or last_end is None else max(last_end, end))
                continue
        merged.append((start, end))
    return merged


def suspended_fix_deadline(opened_at: datetime, cal: BusinessCalendar, reading: Reading = "around_the_clock",
                           suspensions: Sequence[tuple[datetime, datetime | None]] = ()) -> datetime | None:
    """R5.4-fix-delay, R12-suspend: the instant at which 48 heures ouvrées (under ``reading``) have
    run since ``opened_at``, not counting time inside ``suspensions`` (sorted, disjoint UTC
    intervals; None: open-ended). None when a suspension still going on stops the clock first."""
    left = timedelta(hours=FIX_DELAY_HEURES_OUVREES)
    for start, end in cal.counted_spans(opened_at, reading):
        pieces = [(start, end)]
        for s_start, s_end in suspensions:
            cut = []
            for a, b in pieces:
                if (s_end is not None and s_end <= a) or s_start >= b:
                    cut.append((a, b))
                    continue
                if a < s_start:
                    cut.append((a, s_start))
                if s_end is None:
                    for a2, b2 in cut:  # the clock stops for good at s_start
                        if b2 - a2 >= left:
                            return to_paris(a2 + left)
                        left -= b2 - a2
                    return None
                if s_end < b:
                    cut.append((s_end, b))
            pieces = cut
        for a, b in pieces:
            if b - a >= left:
                return to_paris(a + left)
            left -= b - a
    raise AssertionError("unreachable: counted_spans never ends")  # pragma: no cover


def termination_rights(incidents: Iterable[Incident], now: datetime, cal: BusinessCalendar,
                       reading: Reading = "around_the_clock") -> list[TerminationRight]:
    """R5.4-fix-delay, R5.4-repeat, R5.3-force-majeure, R12-suspend: every right to request
    termination that the incidents opened by ``now`` gave, earliest first (see the module doc)."""
    now_utc = to_utc(now)
    known = [i for i in incidents if to_utc(i.opened_at) <= now_utc]
    suspensions = _suspensions(known, now)
    counted = sorted((i for i in known if not i.force_majeure), key=lambda i: to_utc(i.opened_at))
    rights: list[TerminationRight] = []
    for i in counted:
        deadline = suspended_fix_deadline(i.opened_at, cal, reading, suspensions)
        if deadline is None or to_utc(deadline) >= now_utc:
            continue
        if i.resolved_at is not None and to_utc(i.resolved_at) <= to_utc(deadline):
            continue
        state = "still unresolved" if i.resolved_at is None or to_utc(i.resolved_at) > now_utc else (
            f"resolved late, at {to_paris(i.resolved_at).isoformat()}")
        rights.append(TerminationRight(
            "R5.4-fix-delay", deadline,
            f"incident {i.malfunction!r} opened at {to_paris(i.opened_at).isoformat()} had no solution within "
            f"{FIX_DELAY_HEURES_OUVREES} heures ouvrées (deadline {deadline.isoformat()}; {state})", (i,)))
    by_key: dict[str, list[Incident]] = defaultdict(list)
    for i in counted:
        by_key[i.malfunction].append(i)
    for key, occurrences in by_key.items():
        right = _repeat_right(key, occurrences)
        if right is not None:
            rights.append(right)
    return sorted(rights, key=lambda r: (to_utc(r.since), r.rule))


def _repeat_right(key: str, occurrences: Sequence[Incident]) -> TerminationRight | None:
    """R5.4-repeat: the first time ``key`` had happened more than three times within three months."""
    n = REPEAT_MORE_THAN + 1
    for first in range(len(occurrences) - n + 1):
        window = occurrences[first:first + n]
        limit = add_months_at(window[0].opened_at, REPEAT_WITHIN_MONTHS)
        if to_utc(window[-1].opened_at) <= to_utc(limit):
            since = to_paris(window[-1].opened_at)
            return TerminationRight(
                "R5.4-repeat", since,
                f"malfunction {key!r} happened {n} times between {to_paris(window[0].opened_at).isoformat()} and "
                f"{since.isoformat()}: more than {REPEAT_MORE_THAN} times within {REPEAT_WITHIN_MONTHS} months",
                tuple(window))
    return None


def termination_right(incidents: Iterable[Incident], now: datetime, cal: BusinessCalendar,
                      reading: Reading = "around_the_clock") -> TerminationRight | None:
    """R5.4-fix-delay, R5.4-repeat, R5.3-force-majeure, R12-suspend: the client's first right to
    request termination of the contract concerned, or None (see ``termination_rights``)."""
    rights = termination_rights(incidents, now, cal, reading)
    return rights[0] if rights else None
