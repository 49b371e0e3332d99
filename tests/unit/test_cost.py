"""Cost model, price tables, budget guard and GPU/driver table: exact figures."""

from __future__ import annotations

import copy
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible_collections.i2pc.scipion_cloud.plugins.filter import cost as cost_filter  # noqa: E402
from ansible_collections.i2pc.scipion_cloud.plugins.filter import plan as plan_filter  # noqa: E402
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import cost, gpu_support  # noqa: E402

PRICES = PROJECT / "inventories" / "prices"


def table(name: str) -> dict[str, Any]:
    return yaml.safe_load((PRICES / f"{name}.yml").read_text())


def all_tables() -> dict[str, Any]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in PRICES.glob("*.yml")}


# The table the course_aws role passes: the provider-neutral one with AWS's instance families.
GPU_TABLE = {
    **yaml.safe_load((PROJECT / "roles/course_aws/vars/instance_types.yml").read_text())["__course_aws_instance_types"],
    **yaml.safe_load((PROJECT / "roles/course/vars/gpu_support.yml").read_text())["__course_gpu_support"],
}


def course(**changes: Any) -> dict[str, Any]:
    """A normalised AWS course like the 2018 routine's: 2 days, up 16 h, existing 48 h, 30 GB."""
    base = {
        "name": "routine", "provider": "aws", "profile": "scipion-1.1", "seats": 1, "disk_gb": 30,
        "expected_download_gb_per_seat": 0, "budget_usd": None, "profile_vars": {},
        "schedule": {"days": 2, "hours_up_per_day": 8, "hours_existing": 48},
        "aws": {"region": "eu-west-1", "instance_type": "p2.xlarge", "elastic_ips": False, "spot": False},
    }
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key].update(value)
        else:
            result[key] = value
    return result


def amounts(result: dict[str, Any]) -> list[tuple[str, Decimal]]:
    return [(line["item"], line["per_seat"]) for line in result["lines"]]


# --- the 2018 worked example -------------------------------------------------

def test_2018_routine_gives_17_44_plus_0_266_per_machine() -> None:
    result = cost.estimate(course(), table("aws-2018-01"))
    assert amounts(result) == [
        ("instance hours (on-demand)", Decimal("17.44")),
        ("gp2 volume, 30 GB for 48 h", Decimal("0.266")),
    ]
    assert result["per_seat"] == Decimal("17.706")
    assert result["total"] == Decimal("17.706")
    assert result["lines"][1]["quantity"] == "2"  # 30 GB * 48 h / 720 h = 2 GB-months


def test_2018_routine_twenty_seats_and_downloads() -> None:
    result = cost.estimate(course(seats=20, expected_download_gb_per_seat=2), table("aws-2018-01"))
    assert amounts(result)[-1] == ("data transfer out (downloads)", Decimal("0.22"))
    assert result["per_seat"] == Decimal("17.926")
    assert result["total"] == Decimal("358.52")
    assert [cost.money(line["total"]) for line in result["lines"]] == ["348.80", "5.32", "4.40"]


def test_2018_routine_as_plain_text_for_ansible() -> None:
    plain = cost.as_plain(cost.estimate(course(), table("aws-2018-01")))
    assert (plain["per_seat"], plain["lines"][0]["per_seat"], plain["lines"][1]["per_seat"]) == ("17.706", "17.44", "0.266")


# --- the current table --------------------------------------------------------

def test_madrid_on_g4dn_in_eu_west_1() -> None:
    madrid = course(seats=20, expected_download_gb_per_seat=1, aws={"instance_type": "g4dn.xlarge"})
    result = cost.estimate(madrid, table("aws-2026-08"))
    assert amounts(result) == [
        ("instance hours (on-demand)", Decimal("9.392")),
        ("gp3 volume, 30 GB for 48 h", Decimal("0.176")),
        ("public IPv4 address while up", Decimal("0.08")),
        ("data transfer out (downloads)", Decimal("0.09")),
    ]
    assert (result["per_seat"], result["total"]) == (Decimal("9.738"), Decimal("194.76"))


def test_elastic_ips_are_charged_while_stopped() -> None:
    result = cost.estimate(course(aws={"instance_type": "g4dn.xlarge", "elastic_ips": True}), table("aws-2026-08"))
    idle = [line for line in result["lines"] if line["item"] == "idle Elastic IP while stopped"]
    assert idle[0]["quantity"] == "32" and idle[0]["per_seat"] == Decimal("0.16")  # 48 h - 16 h up
    assert result["per_seat"] == Decimal("9.392") + Decimal("0.176") + Decimal("0.08") + Decimal("0.16")


def test_elastic_ips_in_2018_cost_only_while_idle() -> None:
    """2018: an attached address was free, an idle Elastic IP cost 0.006 $/h (the routine's figure)."""
    result = cost.estimate(course(aws={"elastic_ips": True}), table("aws-2018-01"))
    assert amounts(result) == [
        ("instance hours (on-demand)", Decimal("17.44")),
        ("gp2 volume, 30 GB for 48 h", Decimal("0.266")),
        ("idle Elastic IP while stopped", Decimal("0.192")),  # (48 h - 16 h up) x 0.006
    ]
    idle = result["lines"][-1]
    assert (idle["quantity"], idle["rate"]) == ("32", "0.006")
    assert result["per_seat"] == Decimal("17.898")


def test_elastic_ips_in_2018_follow_the_schedule() -> None:
    """Stopped hours are hours_existing minus the hours up; none stopped, nothing charged."""
    week = course(seats=20, schedule={"days": 5, "hours_up_per_day": 10, "hours_existing": None},
                  aws={"elastic_ips": True})
    idle = cost.estimate(week, table("aws-2018-01"))["lines"][-1]
    assert (idle["item"], idle["quantity"], idle["per_seat"]) == ("idle Elastic IP while stopped", "70",
                                                                  Decimal("0.42"))  # 120 h - 50 h up
    assert cost.money(idle["total"]) == "8.40"
    always_up = course(aws={"elastic_ips": True}, schedule={"hours_up_per_day": 24})
    assert cost.estimate(always_up, table("aws-2018-01"))["lines"][-1]["per_seat"] == Decimal(0)


def test_elastic_ips_off_in_2018_add_no_address_line() -> None:
    items = [line["item"] for line in cost.estimate(course(), table("aws-2018-01"))["lines"]]
    assert not [item for item in items if "IP" in item]


def test_2026_public_ipv4_while_up_and_idle_elastic_ip_while_stopped() -> None:
    """Since 2024 every public IPv4 address costs while up; an Elastic IP costs while stopped too."""
    with_eip = cost.estimate(course(aws={"instance_type": "g4dn.xlarge", "elastic_ips": True}), table("aws-2026-08"))
    lines = {line["item"]: (line["quantity"], line["per_seat"]) for line in with_eip["lines"]}
    assert lines["public IPv4 address while up"] == ("16", Decimal("0.08"))
    assert lines["idle Elastic IP while stopped"] == ("32", Decimal("0.16"))
    without = cost.estimate(course(aws={"instance_type": "g4dn.xlarge"}), table("aws-2026-08"))
    assert [line["item"] for line in without["lines"]].count("public IPv4 address while up") == 1
    assert "idle Elastic IP while stopped" not in [line["item"] for line in without["lines"]]


def test_spot_is_marked_as_an_estimate() -> None:
    result = cost.estimate(course(aws={"instance_type": "g4dn.xlarge", "spot": True}), table("aws-2026-08"))
    line = result["lines"][0]
    assert line["item"] == "instance hours, SPOT ESTIMATE (not a quote)"
    assert line["estimate"] is True and result["spot_estimate"] is True
    assert line["rate"] == "0.2348"  # 0.4 x 0.587
    assert line["per_seat"] == Decimal("3.7568")
    rendered = cost_filter.render_lines(result)
    assert rendered[-1] == "Instance hours are a SPOT ESTIMATE: spot prices change and spot machines can be reclaimed."


def test_spot_estimate_per_type_wins_over_the_fraction() -> None:
    prices = table("aws-2026-08")
    prices["regions"]["eu-west-1"]["spot_estimate"] = {"g4dn.xlarge": 0.21}
    result = cost.estimate(course(aws={"instance_type": "g4dn.xlarge", "spot": True}), prices)
    assert result["lines"][0]["per_seat"] == Decimal("3.36")


def test_zero_day_schedule_costs_nothing() -> None:
    result = cost.estimate(course(schedule={"days": 0, "hours_up_per_day": 8, "hours_existing": None}),
                           table("aws-2018-01"))
    assert amounts(result) == [("instance hours (on-demand)", Decimal(0)), ("gp2 volume, 30 GB for 0 h", Decimal(0))]
    assert result["total"] == Decimal(0)
    assert cost.money(result["total"]) == "0.00"


def test_multi_week_schedule_on_g5_in_us_east_1() -> None:
    two_weeks = course(seats=12, schedule={"days": 10, "hours_up_per_day": 8, "hours_existing": 336},
                       aws={"region": "us-east-1", "instance_type": "g5.xlarge"})
    result = cost.estimate(two_weeks, table("aws-2026-08"))
    assert amounts(result) == [
        ("instance hours (on-demand)", Decimal("80.48")),   # 80 h x 1.006
        ("gp3 volume, 30 GB for 336 h", Decimal("1.12")),     # 30 x 0.08 x 336 / 720
        ("public IPv4 address while up", Decimal("0.40")),
    ]
    assert (result["per_seat"], result["total"]) == (Decimal("82.00"), Decimal("984.00"))


def test_hours_override_gives_the_cost_so_far() -> None:
    so_far = cost.estimate(course(), table("aws-2018-01"), up_hours=3, existing_hours=5)
    assert amounts(so_far) == [("instance hours (on-demand)", Decimal("3.27")),
                               ("gp2 volume, 30 GB for 5 h", Decimal("0.0277"))]  # 0.0277083.. kept to 1/10000 $


def test_schedule_default_existing_is_days_times_24() -> None:
    assert cost.schedule_hours({"days": 3, "hours_up_per_day": 7.5}) == (Decimal("22.5"), Decimal(72))


# --- errors: what is missing and how to add it --------------------------------

def test_unknown_region_names_the_table_date_and_the_fix() -> None:
    with pytest.raises(cost.PriceError) as error:
        cost.estimate(course(aws={"region": "ap-south-1", "instance_type": "g4dn.xlarge"}), table("aws-2026-08"))
    assert str(error.value) == (
        "Price table aws-2026-08 (2026-08-26) has no prices for region ap-south-1 (it has: eu-central-1, eu-west-1, "
        "us-east-1). Add it under regions.ap-south-1 in inventories/prices/aws-2026-08.yml (with its source and date), "
        "or choose another table with price_table in the course file."
    )


def test_unknown_type_names_the_table_date_and_the_fix() -> None:
    with pytest.raises(cost.PriceError) as error:
        cost.estimate(course(aws={"instance_type": "g4dn.xlarge"}), table("aws-2018-01"))
    assert str(error.value) == (
        "Price table aws-2018-01 (2018-01) has no on-demand price for g4dn.xlarge in eu-west-1 (it has: p2.xlarge). "
        "Add it under regions.eu-west-1.instances.g4dn.xlarge in inventories/prices/aws-2018-01.yml (with its source "
        "and date), or choose another table with price_table in the course file."
    )


def test_g6_has_no_price_in_eu_west_1() -> None:
    with pytest.raises(cost.PriceError, match="no on-demand price for g6.xlarge in eu-west-1"):
        cost.estimate(course(aws={"instance_type": "g6.xlarge"}), table("aws-2026-08"))


def test_spot_without_any_estimate_is_refused() -> None:
    with pytest.raises(cost.PriceError, match="has no spot estimate for p2.xlarge in eu-west-1"):
        cost.estimate(course(aws={"spot": True}), table("aws-2018-01"))


def test_table_of_another_provider_is_refused() -> None:
    with pytest.raises(cost.PriceError) as error:
        cost.estimate(course(), table("egi-fedcloud") | {"free_at_point_of_use": False})
    assert str(error.value) == ("Price table egi-fedcloud (2026-08-26) prices provider openstack, but the course runs "
                                "on aws; choose a aws table with price_table.")


def test_existing_shorter_than_up_is_refused() -> None:
    with pytest.raises(cost.PriceError, match=r"cannot exist for fewer hours \(10\) than they are up \(16\)"):
        cost.estimate(course(schedule={"hours_existing": 10}), table("aws-2018-01"))


def test_free_tables_cost_nothing() -> None:
    openstack = {"name": "fed", "provider": "openstack", "seats": 4, "disk_gb": 30,
                 "schedule": {"days": 2, "hours_up_per_day": 8, "hours_existing": 48}}
    result = cost.estimate(openstack, table("egi-fedcloud"))
    assert result["free"] and result["total"] == Decimal(0)
    assert [line["item"] for line in result["lines"]] == ["instance hours (free at the point of use)",
                                                          "root disk, 30 GB for 48 h"]


# --- budget guard -------------------------------------------------------------

def madrid_on(instance_type: str, budget: float | None) -> dict[str, Any]:
    return course(seats=20, expected_download_gb_per_seat=1, budget_usd=budget, aws={"instance_type": instance_type})


def test_budget_exceeded_says_by_how_much_and_how_to_proceed() -> None:
    prices = table("aws-2026-08")
    plan = madrid_on("g5.xlarge", 300)
    result = cost.estimate(plan, prices)
    verdict = cost.budget_verdict(plan, prices, result, False, ["g4dn.xlarge", "g5.xlarge"])
    assert verdict["ok"] is False and verdict["overage"] == Decimal("66.28")
    assert verdict["message"] == (
        "The estimated total of 366.28 $ excluding tax (VAT) for 20 seats exceeds the course budget of 300.00 $ by "
        "66.28 $ (price table aws-2026-08 (2026-08-26)). To proceed: lower seats to 16 or fewer (18.314 $ per seat); or choose a cheaper "
        "instance type that fits the budget: g4dn.xlarge (194.76 $ in total); or shorten the schedule or raise "
        "budget_usd in the course file; or accept the cost with -e course_accept_cost=true."
    )


def test_budget_guard_lists_only_allowed_types() -> None:
    prices = table("aws-2026-08")
    plan = madrid_on("g5.xlarge", 300)
    result = cost.estimate(plan, prices)
    unrestricted = cost.cheaper_types(plan, prices, Decimal(300))
    # Without the preflight's list, the retired g3s (261.64 $) would be proposed too.
    assert unrestricted == [("g4dn.xlarge", Decimal("194.76")), ("g3s.xlarge", Decimal("261.64"))]
    assert cost.cheaper_types(plan, prices, Decimal(300), ["p3.2xlarge"]) == []
    verdict = cost.budget_verdict(plan, prices, result, False, [])
    assert "cheaper instance type" not in verdict["message"]


def test_budget_exceeded_with_accept_cost_goes_ahead() -> None:
    prices = table("aws-2026-08")
    plan = madrid_on("g5.xlarge", 300)
    verdict = cost.budget_verdict(plan, prices, cost.estimate(plan, prices), True)
    assert verdict["ok"] is True and verdict["over"] is True
    assert verdict["message"].endswith("by 66.28 $ (price table aws-2026-08 (2026-08-26)). "
                                       "Going ahead because course_accept_cost=true was given.")


def test_budget_too_small_for_one_seat_does_not_offer_fewer_seats() -> None:
    prices = table("aws-2018-01")
    plan = course(budget_usd=10)
    verdict = cost.budget_verdict(plan, prices, cost.estimate(plan, prices), False)
    assert verdict["message"] == (
        "The estimated total of 17.706 $ excluding tax (VAT) for 1 seats exceeds the course budget of 10.00 $ by "
        "7.706 $ (price table aws-2018-01 (2018-01)). To proceed: shorten the schedule or raise budget_usd in the course file; or accept "
        "the cost with -e course_accept_cost=true."
    )


def test_budget_within_and_absent() -> None:
    prices = table("aws-2018-01")
    within = cost.budget_verdict(course(budget_usd=18), prices, cost.estimate(course(), prices), False)
    assert within == {"ok": True, "over": False, "overage": Decimal(0), "choice": "p2.xlarge", "over_types": [],
                      "unpriced": [],
                      "message": "Estimated total 17.706 $ excluding tax (VAT) is within the budget of 18.00 $ "
                                 "(0.294 $ to spare)."}
    exact = cost.budget_verdict(course(budget_usd=17.706), prices, cost.estimate(course(), prices), False)
    assert exact["ok"] is True
    absent = cost.budget_verdict(course(), prices, cost.estimate(course(), prices), False)
    assert absent["ok"] is True
    assert absent["message"] == "No budget set (budget_usd); estimated total 17.706 $ excluding tax (VAT)."


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("17.44"), "17.44"), (Decimal("0.266"), "0.266"), (Decimal("194.7600"), "194.76"),
    (Decimal("0"), "0.00"), (Decimal("100"), "100.00"), (Decimal("0.02770833"), "0.0277"), (Decimal("3.75"), "3.75"),
])
def test_money_text(value: Decimal, text: str) -> None:
    assert cost.money(value) == text


# --- filters: table choice and the plan ----------------------------------------

def test_newest_table_of_the_provider_is_the_default() -> None:
    tables = all_tables()
    assert cost_filter.pick_price_table(course(), tables)["name"] == "aws-2026-08"
    assert cost_filter.pick_price_table(course(price_table="aws-2018-01"), tables)["name"] == "aws-2018-01"
    assert cost_filter.pick_price_table({"provider": "local"}, tables)["name"] == "local"
    assert cost_filter.pick_price_table({"provider": "openstack"}, tables)["name"] == "egi-fedcloud"


def test_unknown_price_table_lists_the_known_ones() -> None:
    plan = cost_filter.course_cost_plan(course(price_table="aws-1999"), all_tables())
    assert plan["error"] == ("price_table 'aws-1999' is unknown; the tables in inventories/prices are: "
                             "aws-2018-01, aws-2026-08, egi-fedcloud, local.")


def test_cost_plan_of_the_2018_course() -> None:
    plan = cost_filter.course_cost_plan(course(price_table="aws-2018-01", budget_usd=20), all_tables(), "false")
    assert plan["error"] is None
    assert plan["estimate"]["per_seat"] == "17.706"
    assert plan["table_lines"][0] == ("Cost estimate, price table aws-2018-01 (2018-01), USD excluding tax (VAT): "
                                      "1 seats, up 16 h, existing 48 h")
    assert plan["table_lines"][1].split() == ["instance", "hours", "(on-demand)", "16", "h", "x", "1.09", "$/h",
                                              "17.44", "$/seat", "17.44", "$"]
    assert plan["table_lines"][2].split()[-4:] == ["0.266", "$/seat", "0.266", "$"]
    assert plan["budget"]["ok"] is True


def test_every_total_says_it_excludes_tax() -> None:
    """Header, total row and budget verdict all say the amounts exclude tax (VAT)."""
    plan = cost_filter.course_cost_plan(course(price_table="aws-2018-01", seats=20, aws={"elastic_ips": True}),
                                        all_tables())
    header, *rows, verdict = plan["table_lines"]
    assert "USD excluding tax (VAT):" in header
    assert rows[-1].startswith("per seat / total for 20 seats, excluding tax (VAT)")
    assert rows[-1].split()[-4:] == ["17.898", "$/seat", "357.96", "$"]
    assert rows[-2].split()[-4:] == ["0.192", "$/seat", "3.84", "$"]  # idle Elastic IP, 20 seats
    assert verdict == "No budget set (budget_usd); estimated total 357.96 $ excluding tax (VAT)."


def test_free_tables_say_nothing_about_tax() -> None:
    fed = {"name": "fed", "provider": "openstack", "seats": 4, "disk_gb": 30, "budget_usd": None,
           "schedule": {"days": 2, "hours_up_per_day": 8, "hours_existing": 48}}
    header, *rows = cost_filter.course_cost_plan(fed, all_tables())["table_lines"][:-1]
    assert header.startswith("Cost estimate, price table egi-fedcloud (2026-08-26), USD: 4 seats")
    assert rows[-2].startswith("per seat / total for 4 seats ")
    assert rows[-1] == "Price table egi-fedcloud: free at the point of use."
    verdict = cost_filter.course_cost_plan(fed, all_tables())["budget"]["message"]
    assert verdict == "No budget set (budget_usd); estimated total 0.00 $."
    assert not [row for row in [header, *rows] if "tax" in row]


def test_accept_cost_text_from_the_command_line() -> None:
    over = course(price_table="aws-2018-01", budget_usd=10)
    assert cost_filter.course_cost_plan(over, all_tables(), "true")["budget"]["ok"] is True
    assert cost_filter.course_cost_plan(over, all_tables(), "false")["budget"]["ok"] is False


def test_every_price_table_has_source_date_and_currency() -> None:
    for name, prices in all_tables().items():
        assert prices["name"] == name
        assert prices["source"] and prices["date"] and prices["currency"] == "USD"
        assert prices["hours_per_month"] == 720
    current = table("aws-2026-08")
    for region in ("eu-west-1", "eu-central-1", "us-east-1"):
        entry = current["regions"][region]
        assert {"g4dn.xlarge", "g5.xlarge", "p2.xlarge", "p3.2xlarge", "g3s.xlarge"} <= set(entry["instances"])
        assert set(entry["ebs_gb_month"]) == {"gp2", "gp3"}
        assert entry["elastic_ip_idle_hour"] > 0 and entry["data_transfer_out_gb"] > 0
    assert "g6.xlarge" not in current["regions"]["eu-west-1"]["instances"]
    assert current["spot_estimate"]["fraction_of_on_demand"] == 0.4


# --- GPU and driver table -------------------------------------------------------

@pytest.mark.parametrize(("branch", "drives", "cannot"), [
    (384, ["p2.xlarge", "g3s.xlarge", "p3.2xlarge"], ["g4dn.xlarge", "g5.xlarge", "g6.xlarge", "p4d.24xlarge"]),
    (470, ["p2.xlarge", "g3s.xlarge", "p3.2xlarge", "g4dn.xlarge", "g5.xlarge", "p4d.24xlarge"], ["g6.xlarge", "p5.48xlarge"]),
    (550, ["g3s.xlarge", "p3.2xlarge", "g4dn.xlarge", "g5.xlarge", "g6.xlarge", "p4d.24xlarge", "p5.48xlarge"], ["p2.xlarge"]),
    (590, ["g4dn.xlarge", "g5.xlarge", "g6.xlarge", "p4d.24xlarge", "p5.48xlarge"], ["p2.xlarge", "g3s.xlarge", "p3.2xlarge"]),
])
def test_driver_branches_and_instance_types(branch: int, drives: list[str], cannot: list[str]) -> None:
    working = gpu_support.working_types(GPU_TABLE, branch)
    assert working == [t for t in GPU_TABLE["instance_types"] if t in drives]
    assert not set(cannot) & set(working)


def test_branches_that_drive_each_gpu() -> None:
    assert gpu_support.working_branches(GPU_TABLE, "T4") == [410, 418, 440, 450, 460, 470, 510, 525, 535, 550, 570, 580]
    assert gpu_support.working_branches(GPU_TABLE, "K80") == [384, 390, 410, 418, 440, 450, 460, 470]
    assert gpu_support.working_branches(GPU_TABLE, "L4") == [525, 535, 550, 570, 580]
    assert gpu_support.support_range(GPU_TABLE, "V100") == "branches 384 to 580"
    assert gpu_support.support_range(GPU_TABLE, "K80") == "branch 470 or earlier"


@pytest.mark.parametrize(("text", "number"), [("470", 470), (384, 384), ("550.127.05", 550), ("abc", None), ("", None)])
def test_parse_branch(text: Any, number: int | None) -> None:
    assert gpu_support.parse_branch(text) == number


def test_gpu_working_types_filter() -> None:
    assert cost_filter.course_gpu_working_types(GPU_TABLE, "384", ["g4dn.xlarge", "p3.2xlarge"]) == ["p3.2xlarge"]
    assert cost_filter.course_gpu_working_types(GPU_TABLE, None, ["g4dn.xlarge"]) == ["g4dn.xlarge"]
    assert cost_filter.course_gpu_working_types(GPU_TABLE, "x", ["g4dn.xlarge"]) == []


# --- fallback instance types: the budget uses the most expensive allowed choice -----------

def with_fallbacks(main: str, *fallbacks: str, budget: float | None = 300) -> dict[str, Any]:
    plan = madrid_on(main, budget)
    plan["aws"]["instance_types"] = [main, *fallbacks]
    return plan


def verdict_of(plan: dict[str, Any], accept: bool = False, allowed: list[str] | None = None) -> dict[str, Any]:
    prices = table("aws-2026-08")
    result = cost.estimate(plan, prices)
    return cost.budget_verdict(plan, prices, result, accept, allowed, cost.fallback_estimates(plan, prices))


def test_instance_choices_keep_order_and_default_to_the_main_type() -> None:
    assert cost.instance_choices(madrid_on("g4dn.xlarge", None)) == ["g4dn.xlarge"]
    plan = with_fallbacks("g4dn.xlarge", "g5.xlarge", "g4dn.xlarge", "p2.xlarge")
    assert cost.instance_choices(plan) == ["g4dn.xlarge", "g5.xlarge", "p2.xlarge"]


def test_fallback_estimates_price_every_seat_on_each_fallback() -> None:
    plan = with_fallbacks("g4dn.xlarge", "g5.xlarge", "g6.xlarge")
    g5, g6 = cost.fallback_estimates(plan, table("aws-2026-08"))
    assert (g5["instance_type"], g5["result"]["per_seat"], g5["result"]["total"], g5["error"]) == (
        "g5.xlarge", Decimal("18.314"), Decimal("366.28"), "")
    assert g6["result"] is None and g6["error"].startswith(
        "Price table aws-2026-08 (2026-08-26) has no on-demand price for g6.xlarge in eu-west-1")


def test_a_fallback_over_the_budget_is_named_and_the_check_says_it_uses_the_costliest() -> None:
    verdict = verdict_of(with_fallbacks("g4dn.xlarge", "g5.xlarge"))
    assert (verdict["ok"], verdict["choice"], verdict["over_types"], verdict["overage"]) == (
        False, "g5.xlarge", ["g5.xlarge"], Decimal("66.28"))
    assert verdict["message"] == (
        "The budget check uses the most expensive allowed choice, every seat on g5.xlarge (a fallback type): the "
        "estimated total of 366.28 $ excluding tax (VAT) for 20 seats exceeds the course budget of 300.00 $ by 66.28 $ "
        "(price table aws-2026-08 (2026-08-26)). Over the budget: g5.xlarge (366.28 $). To proceed: remove g5.xlarge "
        "from aws.fallback_instance_types; or lower seats to 16 or fewer (18.314 $ per seat); or choose a cheaper "
        "instance type that fits the budget: g3s.xlarge (261.64 $ in total); or shorten the schedule or raise "
        "budget_usd in the course file; or accept the cost with -e course_accept_cost=true."
    )
    accepted = verdict_of(with_fallbacks("g4dn.xlarge", "g5.xlarge"), accept=True)
    assert accepted["ok"] is True and accepted["message"].endswith("Going ahead because course_accept_cost=true was given.")


def test_fallbacks_within_the_budget_say_which_choice_was_checked() -> None:
    cheaper = verdict_of(with_fallbacks("g5.xlarge", "g4dn.xlarge", budget=400))
    assert cheaper["ok"] is True and cheaper["message"] == (
        "The budget check uses the most expensive allowed choice, every seat on g5.xlarge (the main type): "
        "estimated total 366.28 $ excluding tax (VAT) is within the budget of 400.00 $ (33.72 $ to spare).")
    unbudgeted = verdict_of(with_fallbacks("g4dn.xlarge", "g5.xlarge", budget=None))
    assert unbudgeted["message"] == ("No budget set (budget_usd); estimated total 194.76 $ excluding tax (VAT). "
                                     "With every seat on the most expensive allowed choice, g5.xlarge: 366.28 $.")


def test_a_fallback_without_a_price_fails_a_set_budget() -> None:
    verdict = verdict_of(with_fallbacks("g4dn.xlarge", "g6.xlarge", budget=600))
    assert (verdict["ok"], verdict["unpriced"], verdict["over_types"]) == (False, ["g6.xlarge"], [])
    assert verdict["message"] == (
        "The budget check uses the most expensive allowed choice, every seat on g4dn.xlarge (the main type): "
        "estimated total 194.76 $ excluding tax (VAT) is within the budget of 600.00 $. The price table aws-2026-08 "
        "(2026-08-26) cannot price the fallback type(s) g6.xlarge, so the budget check cannot cover them. To proceed: "
        "add the price of g6.xlarge to inventories/prices/aws-2026-08.yml or remove it from "
        "aws.fallback_instance_types; or accept the cost with -e course_accept_cost=true.")
    assert verdict_of(with_fallbacks("g4dn.xlarge", "g6.xlarge", budget=None))["ok"] is True


def test_cost_plan_prints_a_line_per_fallback() -> None:
    plan = with_fallbacks("g4dn.xlarge", "g5.xlarge", "g6.xlarge", budget=None)
    result = cost_filter.course_cost_plan(plan, all_tables())
    assert result["table_lines"][-3:] == [
        "If every seat landed on fallback g5.xlarge instead of g4dn.xlarge: 18.314 $/seat, 366.28 $ in total "
        "(instance hours at 1.123 $/h).",
        "Fallback g6.xlarge: no estimate: Price table aws-2026-08 (2026-08-26) has no on-demand price for g6.xlarge in "
        "eu-west-1 (it has: g3s.xlarge, g4dn.xlarge, g5.xlarge, p2.xlarge, p3.2xlarge). Add it under "
        "regions.eu-west-1.instances.g6.xlarge in inventories/prices/aws-2026-08.yml (with its source and date), or "
        "choose another table with price_table in the course file.",
        "No budget set (budget_usd); estimated total 194.76 $ excluding tax (VAT). With every seat on the most "
        "expensive allowed choice, g5.xlarge: 366.28 $.",
    ]
    assert result["choices"] == [
        {"instance_type": "g5.xlarge", "error": "", "per_seat": "18.314", "total": "366.28"},
        {"instance_type": "g6.xlarge", "error": result["choices"][1]["error"], "per_seat": None, "total": None}]


def test_shipped_madrid_course_fits_its_gpu() -> None:
    madrid = yaml.safe_load((PROJECT / "inventories/courses/madrid.yml").read_text())
    branch = gpu_support.parse_branch(madrid["profile_vars"]["nvidia_driver_branch"])
    gpu = gpu_support.gpu_of_type(GPU_TABLE, madrid["aws"]["instance_type"])
    assert (branch, gpu) == (470, "T4") and gpu_support.branch_drives(GPU_TABLE, branch, gpu)


# --- plan rendering ---------------------------------------------------------------

def test_preflight_lines_and_refusal() -> None:
    checks = [{"name": "credentials", "ok": True, "detail": "account 1", "fix": ""},
              {"name": "Elastic IPs", "ok": False, "detail": "1 too many.", "fix": "Set aws.elastic_ips: false."}]
    assert plan_filter.course_preflight_lines(checks) == [
        "[ok]   credentials: account 1",
        "[FAIL] Elastic IPs: 1 too many. Fix: Set aws.elastic_ips: false.",
    ]
    assert plan_filter.course_preflight_refusal(checks, "madrid") == (
        "Preflight refused course madrid before creating anything. Elastic IPs: 1 too many. Fix: Set aws.elastic_ips: false.")
    assert plan_filter.course_preflight_refusal(checks[:1], "madrid") == ""


# --- prices on the access sheet ----------------------------------------------

def test_hourly_prices_come_from_the_table_the_estimate_uses() -> None:
    newest = cost_filter.course_hourly_prices(course(), all_tables())
    assert newest["g4dn.xlarge"] == table("aws-2026-08")["regions"]["eu-west-1"]["instances"]["g4dn.xlarge"]
    pinned = cost_filter.course_hourly_prices(course(price_table="aws-2018-01"), all_tables())
    assert pinned == table("aws-2018-01")["regions"]["eu-west-1"]["instances"]
    assert "g4dn.xlarge" not in pinned


def test_hourly_prices_of_an_unpriced_course_are_empty_not_an_error() -> None:
    assert cost_filter.course_hourly_prices(course(price_table="no-such-table"), all_tables()) == {}
    assert cost_filter.course_hourly_prices(course(aws={"region": "ap-south-2"}), all_tables()) == {}
