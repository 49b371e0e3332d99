# Copyright: (c) 2026, i2pc.scipion_cloud authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of a course over several sites: each site's results of a step gathered for the whole course."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import course_sites


def course_sites_merge(results: list[dict[str, Any]], course: dict[str, Any], skipped: list[str] | None = None,
                       placement: dict[str, str] | None = None) -> dict[str, Any]:
    """See course_sites.merge_results."""
    return course_sites.merge_results(list(results), course, list(skipped or []), dict(placement or {}))


def course_site_placement(specs: list[dict[str, Any]]) -> dict[str, str]:
    """Seat -> site, from the sites' courses (course_site_specs), for <output_dir>/sites.json."""
    return {seat: spec["site"] for spec in specs for seat in spec["seat_names"]}


def course_sites_estimate(estimates: list[dict[str, Any]], sites: list[str], budget_usd: Any = None,
                          accept_cost: Any = False) -> dict[str, Any]:
    """The course's estimate from its sites' (each site's course_estimate, in ``sites`` order): the total
    per currency, one line per site, and the budget verdict on the total (USD); ``error`` names a site
    its price table cannot price. Returns {totals (currency -> sum), budget, error, lines}: sites may
    price in different currencies, so there is no single total."""
    lines, totals, errors = [], {}, []
    for site, estimate in zip(sites, estimates, strict=True):
        if not estimate or estimate.get("error"):
            errors.append(f"site {site}: {(estimate or {}).get('error') or 'no estimate'}")
            continue
        currency, total = estimate.get("currency", "USD"), Decimal(str(estimate.get("total", 0)))
        totals[currency] = totals.get(currency, Decimal(0)) + total
        lines.append(f"Site {site}: {estimate.get('seats', '?')} seats, {total:.2f} {currency}")
    lines.append("Course total: " + (", ".join(f"{total:.2f} {currency}" for currency, total in totals.items()) or "none"))
    budget: dict[str, Any] = {"ok": True, "message": "No budget set (budget_usd)."}
    if budget_usd is not None:
        spent = totals.get("USD", Decimal(0))
        over = spent > Decimal(str(budget_usd))
        accepted = str(accept_cost).lower() in ("true", "yes", "1")
        budget = {"ok": not over or accepted, "over": over,
                  "message": (f"the sites' total {spent:.2f} USD is {'over' if over else 'within'} the budget of {budget_usd} USD"
                              + ("; raise budget_usd, lower seats, or accept with -e course_accept_cost=true" if over and not accepted
                                 else "."))}
    lines.append(budget["message"])
    return {"error": "; ".join(errors) or None, "budget": budget, "totals": {c: float(t) for c, t in totals.items()}, "lines": lines}


def _sites_for_run(course: dict[str, Any], overrides: dict[str, int] | None) -> list[dict[str, Any]]:
    """The course's sites with this run's seat counts (-e course_site_seats): a count given there
    makes a fill site a fixed one for the run."""
    overrides = overrides or {}
    return [dict(site, seats=overrides.get(site["name"], site["seats"])) for site in course["sites"]]


def course_site_counts(course: dict[str, Any], overrides: dict[str, int] | None = None,
                       placed: dict[str, str] | None = None) -> dict[str, int]:
    """Seats per site for this run, before the fill sites' share is known: fixed sites their seats
    (or this run's count), fill sites the seats placed on them before (``placed``: seat -> site)."""
    return course_sites.placed_counts(len(course["seat_names"]), _sites_for_run(course, overrides), placed)


def course_site_fills(course: dict[str, Any], overrides: dict[str, int] | None = None,
                      skipped: list[str] | None = None) -> list[str]:
    """The sites that take seats: fill in this run (not given a count, not left out)."""
    return [site["name"] for site in _sites_for_run(course, overrides)
            if site["seats"] == course_sites.FILL and site["name"] not in (skipped or [])]


def course_site_fill(course: dict[str, Any], specs: list[dict[str, Any]], rooms: dict[str, Any],
                     overrides: dict[str, int] | None = None) -> dict[str, Any]:
    """Seats per site once the fill sites' room is measured: ``specs`` the sites' courses as placed so
    far (course_site_specs), ``rooms`` fill site -> how many more seats its free quota holds (its
    preflight's course_room; None: no limit; a site left out or failed is not given, and takes no more).
    Returns {counts, grown (the sites whose seats grow), error and fix ('' when they fit)}."""
    current = {spec["site"]: len(spec["seat_names"]) for spec in specs}
    try:
        counts = course_sites.fill_counts(len(course["seat_names"]), _sites_for_run(course, overrides), dict(rooms), current)
    except course_sites.FillError as error:
        return {"counts": current, "grown": [], "error": error.detail + ".", "fix": error.fix[:1].upper() + error.fix[1:]}
    return {"counts": counts, "grown": [name for name, count in counts.items() if count != current.get(name)],
            "error": "", "fix": ""}


def course_site_seats_problems(counts: Any, course: dict[str, Any]) -> list[str]:
    """What is wrong with -e course_site_seats (site -> seats, for this run), each saying what to do."""
    if not isinstance(counts, dict):
        return [f"give a mapping of site name to seats, like {{\"{course['sites'][0]['name']}\": 2}}, not {counts!r}."]
    if not counts:
        return []
    names = [site["name"] for site in course["sites"]]
    problems = [f"{name!r} is not a site of course {course['name']} (its sites: {', '.join(names)})."
                for name in counts if name not in names]
    problems += [f"{name}: {seats!r} is not a number of seats (0 or more)." for name, seats in counts.items()
                 if isinstance(seats, bool) or not isinstance(seats, int) or seats < 0]
    if not problems:
        merged = {site["name"]: counts.get(site["name"], site["seats"]) for site in course["sites"]}
        fixed = sum(seats for seats in merged.values() if seats != course_sites.FILL)
        if course_sites.FILL in merged.values():
            if fixed > len(course["seat_names"]):
                problems.append(f"with it the sites given a count hold {fixed} seats, more than the course's "
                                f"{len(course['seat_names'])}; lower their counts.")
        elif fixed != len(course["seat_names"]):
            listed = ", ".join(f"{name} {seats}" for name, seats in merged.items())
            problems.append(f"with it the sites hold {sum(merged.values())} seats ({listed}) but the course has "
                            f"{len(course['seat_names'])}; give every site's count so that they add up.")
    return problems


class FilterModule:
    """Course site filters."""

    def filters(self) -> dict[str, Any]:
        return {"course_sites_merge": course_sites_merge, "course_site_placement": course_site_placement,
                "course_sites_estimate": course_sites_estimate, "course_site_seats_problems": course_site_seats_problems,
                "course_site_counts": course_site_counts, "course_site_fills": course_site_fills,
                "course_site_fill": course_site_fill}
