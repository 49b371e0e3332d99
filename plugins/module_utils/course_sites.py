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

# The providers a site may have: cloud ones. Local containers are one machine's, a course of its own.
SITE_PROVIDERS = ("aws", "openstack")
# Every provider, each with a section of the course file.
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
        if provider not in SITE_PROVIDERS:
            problems.append(f"{where}: provider {provider!r} is not one of {', '.join(SITE_PROVIDERS)} (local containers make a "
                            f"course of their own, with provider: local).")
        elif not isinstance(site.get(provider), dict):
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
    if not problems and isinstance(total, int) and not isinstance(total, bool):
        listed = sum(s["seats"] for s in sites if s["seats"] != FILL)
        if not fills and listed != total:
            problems.append(f"sites: the sites hold {listed} seats but the course has seats: {total}; make them agree, or "
                            f"let a site take seats: fill.")
        elif fills and listed > total:
            problems.append(f"sites: the sites with a number hold {listed} seats, more than the course's seats: {total}, "
                            f"which the fill sites share with them; lower their seats or raise the course's.")
    return problems


class FillError(ValueError):
    """The fill sites cannot take the seats: ``detail`` says why, ``fix`` what to do."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(f"{detail}: {fix}")
        self.detail, self.fix = detail, fix


def fill_counts(total: int, sites: list[dict[str, Any]], room: dict[str, int | None],
                current: dict[str, int] | None = None) -> dict[str, int]:
    """Seats per site: fixed sites keep theirs, ``fill`` sites keep the seats they hold already
    (``current``: site -> seats placed there by an earlier run, so that no seat moves) and share the
    seats still unplaced in proportion to their ``room`` (site -> how many more seats its free quota
    holds, as its preflight measured; None when no limit applies), never beyond it.

    Raises FillError, with what to do, when the fill sites together cannot hold what is left."""
    counts = {s["name"]: s["seats"] for s in sites if s["seats"] != FILL}
    fills = [s["name"] for s in sites if s["seats"] == FILL]
    current = {name: int((current or {}).get(name, 0)) for name in fills}
    left = total - sum(counts.values()) - sum(current.values())
    if total - sum(counts.values()) < 0:
        raise FillError(f"The fixed sites hold {sum(counts.values())} seats, more than the course's {total}",
                        "lower their seats or raise the course's seats.")
    if not fills:
        return counts
    if left < 0:
        raise FillError(f"The fill sites hold {sum(current.values())} seats already, more than the "
                        f"{total - sum(counts.values())} the fixed sites leave",
                        "lower the fixed sites' seats or raise the course's seats.")
    shares = dict.fromkeys(fills, 0)
    if left:
        # A site without a measure (skipped, failed) has no room; None measured: no limit applies.
        space = {name: 0 if name not in room else left if room[name] is None else max(0, int(room[name])) for name in fills}
        whole = sum(space.values())
        if whole < left:
            have = ", ".join(f"{name} {space[name]}" for name in fills)
            raise FillError(f"The fill sites have room for {whole} more seats ({have}), but {left} are left to place",
                            "add a site, ask the sites for more quota, or lower the course's seats.")
        # Largest remainder: each site's share of `left` by its room, rounded so that the shares add up.
        shares = {name: left * space[name] // whole for name in fills}
        order = sorted(fills, key=lambda n: (-(left * space[n] % whole), fills.index(n)))
        spare = left - sum(shares.values())
        while spare:
            for name in order:
                if spare and shares[name] < space[name]:
                    shares[name] += 1
                    spare -= 1
    counts.update({name: current[name] + shares[name] for name in fills})
    return counts


def placed_counts(total: int, sites: list[dict[str, Any]], placed: dict[str, str] | None = None) -> dict[str, int]:
    """Seats per site before the fill sites' room is measured: fixed sites their seats, ``fill`` sites
    the seats an earlier run placed on them (``placed``: seat -> site), within what the fixed sites
    leave. The course's other seats are on no site yet."""
    counts = {s["name"]: s["seats"] for s in sites if s["seats"] != FILL}
    left = max(0, total - sum(counts.values()))
    held = list((placed or {}).values())
    for name in (s["name"] for s in sites if s["seats"] == FILL):
        counts[name] = min(held.count(name), left)
        left -= counts[name]
    return {s["name"]: counts[s["name"]] for s in sites}


def assign_seats(seat_names: list[str], counts: dict[str, int], placed: dict[str, str] | None = None,
                 partial: bool = False) -> dict[str, list[str]]:
    """The seats of each site, in course order. ``counts``: site -> seats, in the course file's order;
    ``placed``: seat -> site from an earlier run. A seat stays on its earlier site while that site
    wants it (the lowest-numbered first); the other seats go, in course order, to the sites that
    still have room, in the order the sites are listed. ``partial``: the sites may hold fewer seats
    than the course names (fill sites before their share is known); the last seats are left over."""
    if sum(counts.values()) > len(seat_names) or sum(counts.values()) < len(seat_names) and not partial:
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


def merge_results(results: list[dict[str, Any]], course: dict[str, Any], skipped: list[str] | None = None,
                  placement: dict[str, str] | None = None) -> dict[str, Any]:
    """The provider contract's names for the whole course, from each site's results of one step.

    ``results``: per site ``{site, seat_names, failure, seats, key_file, checks, leftovers, shortfall,
    foreign, unrecorded}`` (the names a provider step publishes, plus the site's seats and its error).
    Seats, missing seats and foreign machines carry their ``site``; a site whose step failed makes
    each of its seats that does not exist a missing seat, a failed check (the plan refuses) and a
    leftover (teardown fails), each naming the site and its error; seats of a skipped site
    (``skipped``) are missing, saying so, with their site from ``placement`` (seat -> site)."""
    order = {name: index for index, name in enumerate(course["seat_names"])}
    merged: dict[str, Any] = {"seats": [], "checks": [], "leftovers": [], "shortfall": [], "foreign": [], "failures": []}
    unrecorded, keys, placed = [], [], set()
    for result in results:
        site = result["site"]
        placed.update(result["seat_names"])
        merged["seats"] += [dict(seat, site=site, key_file=result["key_file"]) for seat in result["seats"]]
        merged["foreign"] += [dict(machine, site=site) for machine in result["foreign"]]
        merged["checks"] += [dict(check, name=f"{site}: {check['name']}") for check in result["checks"]]
        merged["leftovers"] += [f"{site}: {leftover}" for leftover in result["leftovers"]]
        if result["key_file"] and result["key_file"] not in keys:
            keys.append(result["key_file"])
        if result["unrecorded"]:
            unrecorded.append(f"{site}: {result['unrecorded']}")
        failure = result["failure"]
        if not failure:
            merged["shortfall"] += [dict(seat, site=site, reason=f"{seat['reason']} (site {site})") for seat in result["shortfall"]]
            continue
        merged["failures"].append({"site": site, "message": failure})
        hint = f"run again when site {site} answers, or leave it out with -e course_skip_sites={site}"
        have = {seat["name"] for seat in result["seats"]}
        merged["shortfall"] += [{"name": name, "site": site, "reason": f"site {site} failed: {failure}", "hint": hint}
                                for name in result["seat_names"] if name not in have]
        merged["checks"].append({"name": f"{site}: the site answers", "ok": False, "detail": failure, "fix": hint})
        merged["leftovers"].append(f"{site}: not torn down or audited, its step failed: {failure}")
    placement = placement or {}
    for name in course["seat_names"]:
        if name in placed:
            continue
        if not placement.get(name) and not skipped:
            # A seat that no fill site has taken yet: provision.yml shares such seats by the sites' room.
            merged["shortfall"].append({"name": name, "site": "", "reason": "no site holds it yet (a fill site takes it when "
                                        "provision.yml measures the sites' room)", "hint": "run provision.yml"})
            continue
        merged["shortfall"].append({"name": name, "site": placement.get(name, ""),
                                    "reason": (f"site {placement[name]} is left out" if placement.get(name) else "its site is left out")
                                    + f" (-e course_skip_sites={','.join(skipped or [])})",
                                    "hint": "run again without course_skip_sites once the site is back"})
    merged["seats"].sort(key=lambda seat: order.get(seat["name"], len(order)))
    merged["shortfall"].sort(key=lambda seat: order.get(seat["name"], len(order)))
    merged["unrecorded"] = " ".join(unrecorded)
    # One key for the sheet when every site used the same one; else each seat names its own (key_file).
    merged["key_file"] = keys[0] if len(keys) == 1 else ""
    return merged
