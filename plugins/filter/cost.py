"""Cost estimate and budget guard of a course, as Ansible filters.

The model lives in plugins/module_utils/cost.py (Decimal, unit-tested); these filters
pick the price table, run the model and render the table that plan.yml prints.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import cost, gpu_support


def pick_price_table(course: dict[str, Any], tables: dict[str, Any]) -> dict[str, Any]:
    """The course's ``price_table``, else the newest table (by date) of its provider."""
    wanted = course.get("price_table")
    if wanted:
        if wanted not in tables:
            known = ", ".join(sorted(tables)) or "none"
            raise cost.PriceError(
                f"price_table '{wanted}' is unknown; the tables in inventories/prices are: {known}."
            )
        return dict(tables[wanted], name=tables[wanted].get("name", wanted))
    provider = course.get("provider")
    candidates = [dict(t, name=t.get("name", n)) for n, t in tables.items() if t.get("provider") == provider]
    if not candidates:
        raise cost.PriceError(
            f"No price table for provider {provider} in inventories/prices; add one "
            "(see aws-2026-08.yml for the format) or set price_table in the course file."
        )
    return max(candidates, key=lambda t: (str(t.get("date", "")), t["name"]))


def render_lines(result: dict[str, Any]) -> list[str]:
    """Printable lines of an estimate: one per item, then per seat and total."""
    rows = []
    for line in result["lines"]:
        quantity = f"{line['quantity']} {line['unit']} x {line['rate']} {line['rate_unit']}"
        rows.append(
            f"{line['item']:<48} {quantity:<34} {cost.money(line['per_seat']):>10} $/seat"
            f" {cost.money(line['total']):>11} $"
        )
    total_label = f"per seat / total for {result['seats']} seats"
    if not result["free"]:
        total_label += f", {cost.EXCLUDING_TAX}"
    rows.append(
        f"{total_label:<83} {cost.money(result['per_seat']):>10} $/seat"
        f" {cost.money(result['total']):>11} $"
    )
    if result["spot_estimate"]:
        rows.append("Instance hours are a SPOT ESTIMATE: spot prices change and spot machines can be reclaimed.")
    if result["free"]:
        rows.append(f"Price table {result['table']}: free at the point of use.")
    return rows


def fallback_lines(fallbacks: list[dict[str, Any]], main_type: str) -> list[str]:
    """One line per fallback type: the course's cost if every seat landed on it, or why it has no price."""
    lines = []
    for fallback in fallbacks:
        name, result = fallback["instance_type"], fallback["result"]
        if result is None:
            lines.append(f"Fallback {name}: no estimate: {fallback['error']}")
            continue
        hour = result["lines"][0]
        lines.append(
            f"If every seat landed on fallback {name} instead of {main_type}: {cost.money(result['per_seat'])} $/seat, "
            f"{cost.money(result['total'])} $ in total (instance hours at {hour['rate']} {hour['rate_unit']})."
        )
    return lines


def course_cost_plan(course: dict[str, Any], tables: dict[str, Any], accept_cost: Any = False,
                     allowed_types: list[str] | None = None) -> dict[str, Any]:
    """Estimate, printable table and budget verdict of a course; ``error`` says what is missing.

    The table prices the course's own instance type; each fallback type of
    ``aws.instance_types`` gets a line with the cost if every seat landed on it
    (``choices``), and the budget verdict uses the most expensive of them.
    """
    try:
        table = pick_price_table(course, tables)
        result = cost.estimate(course, table)
        fallbacks = cost.fallback_estimates(course, table) if course.get("provider") == "aws" else []
        verdict = cost.budget_verdict(course, table, result, _truthy(accept_cost), allowed_types, fallbacks)
    except cost.PriceError as exc:
        return {"error": str(exc), "estimate": None, "budget": None, "choices": [], "table_lines": []}
    currency = result["currency"] if result["free"] else f"{result['currency']} {cost.EXCLUDING_TAX}"
    header = (
        f"Cost estimate, price table {cost.table_label(table)}, {currency}: {result['seats']} seats, "
        f"up {result['hours_up']} h, existing {result['hours_existing']} h"
    )
    main_type = (course.get("aws") or {}).get("instance_type", "")
    choices = [{"instance_type": f["instance_type"], "error": f["error"],
                "per_seat": f["result"]["per_seat"] if f["result"] else None,
                "total": f["result"]["total"] if f["result"] else None} for f in fallbacks]
    return {
        "error": None,
        "estimate": cost.as_plain(result),
        "budget": cost.as_plain(verdict),
        "choices": cost.as_plain(choices),
        "table_lines": [header, *render_lines(result), *fallback_lines(fallbacks, main_type), verdict["message"]],
        "source": table.get("source"),
    }


def course_hourly_prices(course: dict[str, Any], tables: dict[str, Any]) -> dict[str, Any]:
    """On-demand price per hour of each instance type in the course's region, from the table the estimate uses.

    {} when no table prices the region (the access sheet then shows no price, it never fails for it).
    """
    try:
        table = pick_price_table(course, tables)
    except cost.PriceError:
        return {}
    region = (course.get("aws") or {}).get("region", "")
    return dict(((table.get("regions") or {}).get(region) or {}).get("instances") or {})


def course_gpu_working_types(gpu_table: dict[str, Any], branch: Any, candidates: list[str] | None = None) -> list[str]:
    """Instance types whose GPU the driver branch drives (all candidates when no branch is set)."""
    types = candidates if candidates is not None else list(gpu_table.get("instance_types", []))
    if branch in (None, ""):
        return list(types)
    number = gpu_support.parse_branch(branch)
    if number is None:
        return []
    return gpu_support.working_types(gpu_table, number, types)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class FilterModule:
    """Cost filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "course_cost_plan": course_cost_plan,
            "course_hourly_prices": course_hourly_prices,
            "course_gpu_working_types": course_gpu_working_types,
        }
