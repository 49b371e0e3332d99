# Copyright: (c) 2026, i2pc.scipion_cloud authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A course over several sites: which seat goes where.

A course file may list ``sites:``, each with a ``provider`` and that provider's section, and
``seats:`` as a number or ``fill``. Seat names stay those of the whole course (``seat_names``,
or ``<prefix>-01`` ... from the course's ``seats``), so a seat keeps its name whichever site
holds it. Where a seat was placed before (the course's record) it stays, as long as its site
still wants that many seats: adding a site, or growing one, never moves or renames a seat.
``fill`` sites share the seats the fixed sites leave, in proportion to their free quota.
"""

from __future__ import annotations

import re
from typing import Any

PROVIDERS = ("aws", "openstack", "local")
FILL = "fill"
SITE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def site_problems(sites: Any, total: Any = None) -> list[str]:
    """What is wrong with a course's ``sites:`` list, each as a sentence that says what to change."""
    if not isinstance(sites, list) or not sites:
        return ["sites: give a list of sites, each with name, provider, seats and that provider's section."]
    problems = []
    names = []
    for index, site in enumerate(sites, 1):
        where = f"sites[{index}]"
        if not isinstance(site, dict):
            problems.append(f"{where}: give a mapping with name, provider, seats and that provider's section.")
            continue
        name = site.get("name")
        if not isinstance(name, str) or not SITE_NAME.match(name):
            problems.append(f"{where}: name {name!r} must start with a letter and hold only a-z, 0-9 and -, at most 31 "
                            f"characters (it names the site in the plan, the sheet and -e course_skip_sites).")
        else:
            where = f"sites[{index}] ({name})"
            names.append(name)
        provider = site.get("provider")
        if provider not in PROVIDERS:
            problems.append(f"{where}: provider {provider!r} is not one of {', '.join(PROVIDERS)}.")
        elif provider != "local" and not isinstance(site.get(provider), dict):
            problems.append(f"{where}: give the provider's settings in a '{provider}:' section (as a single-site "
                            f"course file does).")
        seats = site.get("seats")
        if seats != FILL and (isinstance(seats, bool) or not isinstance(seats, int) or seats < 0):
            problems.append(f"{where}: seats must be a number of seats (0 or more) or 'fill', not {seats!r}.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"sites: names must be unique; repeated: {', '.join(repeated)}.")
    fills = [s for s in sites if isinstance(s, dict) and s.get("seats") == FILL]
    if fills and (isinstance(total, bool) or not isinstance(total, int) or total < 1):
        problems.append("sites: a site with seats: fill shares the course's seats, so give the course's seats: (the whole class).")
    if not problems and not fills and isinstance(total, int) and not isinstance(total, bool):
        listed = sum(s["seats"] for s in sites)
        if listed != total:
            problems.append(f"sites: the sites hold {listed} seats but the course has seats: {total}; make them agree, or "
                            f"let a site take seats: fill.")
    return problems


def fill_counts(total: int, sites: list[dict[str, Any]], free: dict[str, int]) -> dict[str, int]:
    """Seats per site: fixed sites keep theirs; ``fill`` sites share the rest in proportion to their
    free seats (``free``: site name -> seats its free quota still holds), never beyond them.

    Raises ValueError, with what to do, when the fill sites together cannot hold what is left."""
    counts = {s["name"]: s["seats"] for s in sites if s["seats"] != FILL}
    fills = [s["name"] for s in sites if s["seats"] == FILL]
    left = total - sum(counts.values())
    if left < 0:
        raise ValueError(f"The fixed sites hold {sum(counts.values())} seats, more than the course's {total}: "
                         f"lower their seats or raise the course's seats.")
    if not fills:
        return counts
    room = {name: max(0, int(free.get(name, 0))) for name in fills}
    if sum(room.values()) < left:
        have = ", ".join(f"{name} {room[name]}" for name in fills)
        raise ValueError(f"The fill sites have room for {sum(room.values())} more seats ({have}), but {left} are left to "
                         f"place: add a site, ask the sites for more quota, or lower the course's seats.")
    whole = sum(room.values())
    # Largest remainder: each site's share of `left` by its room, rounded so that the shares add up.
    shares = {name: (left * room[name] // whole if whole else 0) for name in fills}
    order = sorted(fills, key=lambda n: (-(left * room[n] % whole if whole else 0), fills.index(n)))
    spare = left - sum(shares.values())
    while spare:
        for name in order:
            if spare and shares[name] < room[name]:
                shares[name] += 1
                spare -= 1
    counts.update(shares)
    return counts


def assign_seats(seat_names: list[str], counts: dict[str, int], placed: dict[str, str] | None = None) -> dict[str, list[str]]:
    """The seats of each site, in course order. ``counts``: site -> seats, in the course file's order;
    ``placed``: seat -> site from an earlier run. A seat stays on its earlier site while that site
    wants it (the lowest-numbered first); the other seats go, in course order, to the sites that
    still have room, in the order the sites are listed."""
    if sum(counts.values()) != len(seat_names):
        raise ValueError(f"The sites hold {sum(counts.values())} seats but the course names {len(seat_names)}.")
    placed = placed or {}
    sites: dict[str, list[str]] = {name: [] for name in counts}
    rest = []
    for seat in seat_names:
        site = placed.get(seat)
        if site in sites and len(sites[site]) < counts[site]:
            sites[site].append(seat)
        else:
            rest.append(seat)
    for name, count in counts.items():
        while len(sites[name]) < count:
            sites[name].append(rest.pop(0))
    order = {seat: index for index, seat in enumerate(seat_names)}
    return {name: sorted(seats, key=order.__getitem__) for name, seats in sites.items()}
