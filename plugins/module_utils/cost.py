"""Course cost model: what a course costs, per seat and in total, from a dated price table.

Items, per seat (a seat is one machine):
- instance hours while up: ``days * hours_up_per_day`` at the on-demand price (or a
  spot ESTIMATE when the course asks for spot);
- the root volume for the whole time the machine exists: ``disk_gb`` GB-months over
  ``hours_existing`` (a month is the table's ``hours_per_month``, 720 h);
- the public IPv4 address while up (charged by AWS since 2024; free in 2018);
- an idle Elastic IP while stopped, ``hours_existing - up hours``, when the course
  keeps Elastic IPs;
- the expected download volume at the data transfer out price.

Every amount excludes tax (VAT or sales tax): the price tables hold list prices, and
the provider adds tax to its bill where it applies; every text that gives a total says
so (``EXCLUDING_TAX``), and a budget is compared with the amount before tax.

Money is Decimal throughout. Each line is kept to 1/10000 $ (half up); the seat's
cost is the sum of its lines and the total is seats times that, so the figures add up
on paper. With the table aws-2018-01 and the 2018 routine's course the lines are
exactly 17.44 $ and 0.266 $.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

LINE_QUANTUM = Decimal("0.0001")
ZERO = Decimal(0)
EXCLUDING_TAX = "excluding tax (VAT)"


class PriceError(ValueError):
    """A price is missing from the table, or the input cannot be priced."""


def dec(value: Any) -> Decimal:
    """Exact Decimal of a YAML number (0.133 stays 0.133, not its binary float)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        raise PriceError(f"not a number: {value!r}")
    try:
        return Decimal(str(value))
    except ArithmeticError as exc:
        raise PriceError(f"not a number: {value!r}") from exc


def money(value: Decimal) -> str:
    """Text of an amount: at least two decimals, more only when they carry a digit (0.266, 17.44)."""
    text = format(value.quantize(LINE_QUANTUM, rounding=ROUND_HALF_UP).normalize(), "f")
    whole, _point, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def number(value: Decimal) -> str:
    """Text of a quantity without trailing zeros: 16, 0.0667, 1.5."""
    return format(value.normalize(), "f")


@dataclass(frozen=True)
class Rates:
    """Unit prices that apply to one course, from one table."""

    instance_hour: Decimal
    instance_basis: str  # "on-demand" or "spot estimate"
    volume_gb_month: Decimal
    volume_type: str  # the line's label: "gp3 volume", "root disk"
    public_ipv4_hour: Decimal
    elastic_ip_idle_hour: Decimal
    transfer_out_gb: Decimal
    hours_per_month: Decimal


def table_label(table: dict[str, Any]) -> str:
    """'aws-2026-08 (2026-08-26)' for messages."""
    return f"{table.get('name', 'unnamed')} ({table.get('date', 'undated')})"


def _how_to_add(table: dict[str, Any], where: str) -> str:
    name = table.get("name", "the table")
    return (
        f"Add it under {where} in inventories/prices/{name}.yml (with its source and date), "
        "or choose another table with price_table in the course file."
    )


def _price_entry(table: dict[str, Any], entries: dict[str, Any], key: str, what: str, path: str) -> Any:
    """entries[key], or a PriceError naming what the table has and how to add the missing price."""
    if key not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise PriceError(
            f"Price table {table_label(table)} has no {what} (it has: {known}). " + _how_to_add(table, path)
        )
    return entries[key]


def _region_prices(table: dict[str, Any], region: str) -> dict[str, Any]:
    return _price_entry(table, table.get("regions") or {}, region, f"prices for region {region}", f"regions.{region}")


def _instance_rate(table: dict[str, Any], region: str, prices: dict[str, Any], instance_type: str,
                   spot: bool) -> tuple[Decimal, str]:
    instances = prices.get("instances") or {}
    if instance_type not in instances:
        known = ", ".join(sorted(instances)) or "none"
        raise PriceError(
            f"Price table {table_label(table)} has no on-demand price for {instance_type} in {region} "
            f"(it has: {known}). " + _how_to_add(table, f"regions.{region}.instances.{instance_type}")
        )
    on_demand = dec(instances[instance_type])
    if not spot:
        return on_demand, "on-demand"
    per_type = (prices.get("spot_estimate") or {}).get(instance_type)
    if per_type is not None:
        return dec(per_type), "spot estimate"
    fraction = (table.get("spot_estimate") or {}).get("fraction_of_on_demand")
    if fraction is None:
        raise PriceError(
            f"Price table {table_label(table)} has no spot estimate for {instance_type} in {region}. "
            + _how_to_add(table, f"regions.{region}.spot_estimate.{instance_type}")
        )
    return (on_demand * dec(fraction)).quantize(LINE_QUANTUM, rounding=ROUND_HALF_UP), "spot estimate"


def _price(table: dict[str, Any], region: str, prices: dict[str, Any], key: str) -> Decimal:
    if prices.get(key) is None:
        raise PriceError(f"Price table {table_label(table)} has no {key} for {region}. "
                         + _how_to_add(table, f"regions.{region}.{key}"))
    return dec(prices[key])


def course_rates(table: dict[str, Any], course: dict[str, Any]) -> Rates:
    """The unit prices for a (normalised) course; raises PriceError naming the table and the fix."""
    hours_per_month = dec(table.get("hours_per_month", 720))
    if table.get("free_at_point_of_use"):
        return Rates(ZERO, "free at the point of use", ZERO, "root disk", ZERO, ZERO, ZERO, hours_per_month)
    provider = course.get("provider")
    if table.get("provider") != provider:
        raise PriceError(
            f"Price table {table_label(table)} prices provider {table.get('provider')}, "
            f"but the course runs on {provider}; choose a {provider} table with price_table."
        )
    aws = course.get("aws") or {}
    region, instance_type = aws.get("region"), aws.get("instance_type")
    prices = _region_prices(table, region)
    instance_rate, basis = _instance_rate(table, region, prices, instance_type, bool(aws.get("spot")))
    volume_type = aws.get("volume_type") or table.get("default_volume_type") or "gp3"
    volume_price = _price_entry(table, prices.get("ebs_gb_month") or {}, volume_type,
                                f"EBS {volume_type} price for {region}", f"regions.{region}.ebs_gb_month.{volume_type}")
    return Rates(
        instance_hour=instance_rate,
        instance_basis=basis,
        volume_gb_month=dec(volume_price),
        volume_type=f"{volume_type} volume",
        public_ipv4_hour=_price(table, region, prices, "public_ipv4_hour"),
        elastic_ip_idle_hour=_price(table, region, prices, "elastic_ip_idle_hour"),
        transfer_out_gb=_price(table, region, prices, "data_transfer_out_gb"),
        hours_per_month=hours_per_month,
    )


def schedule_hours(schedule: dict[str, Any]) -> tuple[Decimal, Decimal]:
    """(hours up, hours existing) of a schedule; existing defaults to days * 24."""
    days = dec(schedule.get("days", 0))
    per_day = dec(schedule.get("hours_up_per_day", 0))
    up = days * per_day
    existing = schedule.get("hours_existing")
    existing_hours = days * 24 if existing is None else dec(existing)
    return up, existing_hours


def _line(item: str, quantity: Decimal, unit: str, rate: Decimal, rate_unit: str, amount: Decimal,
          estimate: bool = False) -> dict[str, Any]:
    return {
        "item": item,
        "quantity": number(quantity),
        "unit": unit,
        "rate": number(rate),
        "rate_unit": rate_unit,
        "per_seat": amount.quantize(LINE_QUANTUM, rounding=ROUND_HALF_UP),
        "estimate": estimate,
    }


def cost_lines(rates: Rates, disk_gb: Any, up_hours: Decimal, existing_hours: Decimal, elastic_ips: bool,
               download_gb: Any) -> list[dict[str, Any]]:
    """The lines of one seat's cost (amounts as Decimal in ``per_seat``)."""
    disk = dec(disk_gb)
    download = dec(download_gb or 0)
    for label, value in (("disk_gb", disk), ("hours up", up_hours), ("hours existing", existing_hours),
                         ("download GB", download)):
        if value < 0:
            raise PriceError(f"{label} cannot be negative (got {value}).")
    if existing_hours < up_hours:
        raise PriceError(
            f"the machines cannot exist for fewer hours ({number(existing_hours)}) than they are up "
            f"({number(up_hours)}); raise schedule.hours_existing."
        )
    spot = rates.instance_basis == "spot estimate"
    item = "instance hours, SPOT ESTIMATE (not a quote)" if spot else f"instance hours ({rates.instance_basis})"
    lines = [
        _line(item, up_hours, "h", rates.instance_hour, "$/h", up_hours * rates.instance_hour, estimate=spot),
        _line(f"{rates.volume_type}, {number(disk)} GB for {number(existing_hours)} h",
              disk * existing_hours / rates.hours_per_month, "GB-month", rates.volume_gb_month, "$/GB-month",
              disk * rates.volume_gb_month * existing_hours / rates.hours_per_month),
    ]
    if rates.public_ipv4_hour:
        lines.append(_line("public IPv4 address while up", up_hours, "h", rates.public_ipv4_hour, "$/h",
                           up_hours * rates.public_ipv4_hour))
    if elastic_ips:
        idle = existing_hours - up_hours
        lines.append(_line("idle Elastic IP while stopped", idle, "h", rates.elastic_ip_idle_hour, "$/h",
                           idle * rates.elastic_ip_idle_hour))
    if download:
        lines.append(_line("data transfer out (downloads)", download, "GB", rates.transfer_out_gb, "$/GB",
                           download * rates.transfer_out_gb))
    for line in lines:
        line["quantity"] = number(dec(line["quantity"]).quantize(LINE_QUANTUM, rounding=ROUND_HALF_UP))
    return lines


def estimate(course: dict[str, Any], table: dict[str, Any], up_hours: Any = None,
             existing_hours: Any = None) -> dict[str, Any]:
    """Cost of a normalised course (``course_spec``) from a price table.

    ``up_hours``/``existing_hours`` replace the schedule's figures, for a cost so far
    from launch times. Amounts are Decimal; see ``as_plain`` for Ansible.
    """
    rates = course_rates(table, course)
    planned_up, planned_existing = schedule_hours(course.get("schedule") or {})
    up = planned_up if up_hours is None else dec(up_hours)
    existing = planned_existing if existing_hours is None else dec(existing_hours)
    aws = course.get("aws") or {}
    lines = cost_lines(rates, course.get("disk_gb", 0), up, existing,
                       bool(aws.get("elastic_ips")) and course.get("provider") == "aws",
                       course.get("expected_download_gb_per_seat", 0))
    seats = int(course.get("seats", 0))
    if seats < 0:
        raise PriceError(f"seats cannot be negative (got {seats}).")
    per_seat = sum((line["per_seat"] for line in lines), ZERO)
    for line in lines:
        line["total"] = line["per_seat"] * seats
    return {
        "table": table.get("name"),
        "table_date": str(table.get("date")),
        "currency": table.get("currency", "USD"),
        "free": bool(table.get("free_at_point_of_use")),
        "seats": seats,
        "hours_up": number(up),
        "hours_existing": number(existing),
        "spot_estimate": rates.instance_basis == "spot estimate",
        "lines": lines,
        "per_seat": per_seat,
        "total": per_seat * seats,
    }


def seats_within(budget: Decimal, per_seat: Decimal) -> int:
    """How many seats a budget pays for at ``per_seat`` each."""
    if per_seat <= 0:
        return 0
    return int(budget // per_seat)


def instance_choices(course: dict[str, Any]) -> list[str]:
    """The course's instance type, then its fallback types (``aws.instance_types``), in order, each once."""
    aws = course.get("aws") or {}
    ordered = [aws.get("instance_type"), *(aws.get("instance_types") or [])]
    return list(dict.fromkeys(t for t in ordered if t))


def fallback_estimates(course: dict[str, Any], table: dict[str, Any]) -> list[dict[str, Any]]:
    """The course's cost if every seat landed on each fallback type, in order.

    Each entry is {instance_type, result (as ``estimate``) or None, error ('' when priced)}.
    """
    aws = course.get("aws") or {}
    estimates = []
    for instance_type in instance_choices(course)[1:]:
        variant = dict(course, aws=dict(aws, instance_type=instance_type))
        try:
            estimates.append({"instance_type": instance_type, "result": estimate(variant, table), "error": ""})
        except PriceError as exc:
            estimates.append({"instance_type": instance_type, "result": None, "error": str(exc)})
    return estimates


def cheaper_types(course: dict[str, Any], table: dict[str, Any], budget: Decimal,
                  allowed: list[str] | None = None) -> list[tuple[str, Decimal]]:
    """Instance types of the course's region in the table whose course total fits the budget.

    ``allowed`` restricts the candidates (for example to types the profile's driver drives).
    Sorted by total, cheapest first; the course's own types (its fallbacks too) are left out.
    """
    aws = course.get("aws") or {}
    region = aws.get("region")
    instances = ((table.get("regions") or {}).get(region) or {}).get("instances") or {}
    own = instance_choices(course)
    fits = []
    for instance_type in instances:
        if instance_type in own or (allowed is not None and instance_type not in allowed):
            continue
        variant = dict(course, aws=dict(aws, instance_type=instance_type))
        try:
            total = estimate(variant, table)["total"]
        except PriceError:
            continue
        if total <= budget:
            fits.append((instance_type, total))
    return sorted(fits, key=lambda item: (item[1], item[0]))


def _costliest(course: dict[str, Any], result: dict[str, Any],
               fallbacks: list[dict[str, Any]]) -> tuple[str, dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """(type, estimate) of the most expensive priced choice, and every priced choice in order."""
    main_type = (course.get("aws") or {}).get("instance_type") or ""
    priced = [(main_type, result)] + [(f["instance_type"], f["result"]) for f in fallbacks if f["result"] is not None]
    costliest = max(priced, key=lambda item: item[1]["total"])
    return costliest[0], costliest[1], priced


def _basis(fallbacks: list[dict[str, Any]], costliest_type: str, main_type: str) -> str:
    """How the budget check chose its figure, when the course has fallback types ('' otherwise)."""
    if not fallbacks:
        return ""
    which = "the main type" if costliest_type == main_type else "a fallback type"
    return f"The budget check uses the most expensive allowed choice, every seat on {costliest_type} ({which}): "


def budget_verdict(course: dict[str, Any], table: dict[str, Any], result: dict[str, Any], accept_cost: bool,
                   allowed: list[str] | None = None, fallbacks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Whether the estimate fits ``course['budget_usd']``; the message says by how much and what to do.

    With fallback types (``fallback_estimates``) the check uses the most expensive allowed
    choice, as if every seat landed on it, and says so; ``over_types`` names the choices
    over the budget and ``unpriced`` the fallbacks the table cannot price.
    """
    fallbacks = fallbacks or []
    main_type = (course.get("aws") or {}).get("instance_type") or ""
    costliest_type, costliest, priced = _costliest(course, result, fallbacks)
    unpriced = [f["instance_type"] for f in fallbacks if f["result"] is None]
    basis = _basis(fallbacks, costliest_type, main_type)
    total = costliest["total"]
    untaxed = "" if result.get("free") else f" {EXCLUDING_TAX}"
    plain = {"choice": costliest_type, "over_types": [], "unpriced": unpriced}
    budget_value = course.get("budget_usd")
    if budget_value is None:
        extra = (f" With every seat on the most expensive allowed choice, {costliest_type}: {money(total)} $."
                 if fallbacks and costliest_type != main_type else "")
        return {"ok": True, "over": False, "overage": None, **plain,
                "message": f"No budget set (budget_usd); estimated total {money(result['total'])} ${untaxed}.{extra}"}
    budget = dec(budget_value)
    over_types = [name for name, item in priced if item["total"] > budget]
    plain["over_types"] = over_types
    unpriced_text = (f" The price table {table_label(table)} cannot price the fallback type(s) {', '.join(unpriced)}, "
                     "so the budget check cannot cover them." if unpriced else "")
    if total <= budget and not unpriced:
        within = "estimated total" if basis else "Estimated total"
        return {"ok": True, "over": False, "overage": ZERO, **plain,
                "message": f"{basis}{within} {money(total)} ${untaxed} is within the budget of "
                           f"{money(budget)} $ ({money(budget - total)} $ to spare)."}
    overage = max(total - budget, ZERO)
    if total > budget:
        the = "the" if basis else "The"
        head = (
            f"{basis}{the} estimated total of {money(total)} ${untaxed} for {result['seats']} seats exceeds the course "
            f"budget of {money(budget)} $ by {money(overage)} $ (price table {table_label(table)})."
        )
        if fallbacks:
            head += " Over the budget: " + ", ".join(
                f"{name} ({money(item['total'])} $)" for name, item in priced if name in over_types) + "."
    else:
        head = f"{basis}estimated total {money(total)} ${untaxed} is within the budget of {money(budget)} $."
    head += unpriced_text
    if accept_cost:
        return {"ok": True, "over": True, "overage": overage, **plain,
                "message": head + " Going ahead because course_accept_cost=true was given."}
    return {"ok": False, "over": True, "overage": overage, **plain,
            "message": head + " To proceed: " + "; or ".join(
                _budget_options(course, table, budget, costliest, allowed, over_types, unpriced, main_type)) + "."}


def _budget_options(course: dict[str, Any], table: dict[str, Any], budget: Decimal, costliest: dict[str, Any],
                    allowed: list[str] | None, over_types: list[str], unpriced: list[str], main_type: str) -> list[str]:
    """What the organiser can change to fit the budget."""
    options = []
    dropped = [name for name in over_types if name != main_type]
    if dropped and main_type not in over_types:
        options.append(f"remove {', '.join(dropped)} from aws.fallback_instance_types")
    if unpriced:
        options.append(f"add the price of {', '.join(unpriced)} to inventories/prices/{table.get('name', 'TABLE')}.yml "
                       "or remove it from aws.fallback_instance_types")
    if over_types:
        fit = seats_within(budget, costliest["per_seat"])
        if fit >= 1:
            options.append(f"lower seats to {fit} or fewer ({money(costliest['per_seat'])} $ per seat)")
        cheaper = cheaper_types(course, table, budget, allowed)
        if cheaper:
            named = ", ".join(f"{name} ({money(amount)} $ in total)" for name, amount in cheaper)
            options.append(f"choose a cheaper instance type that fits the budget: {named}")
        options.append("shorten the schedule or raise budget_usd in the course file")
    options.append("accept the cost with -e course_accept_cost=true")
    return options


def as_plain(value: Any) -> Any:
    """Decimal amounts as money text, recursively, so Ansible can store and print them."""
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, dict):
        return {key: as_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_plain(item) for item in value]
    return value
