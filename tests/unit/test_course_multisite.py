"""A course over several sites: the course file's sites: checked against the real argument spec, each
site's single-site course, the seats placed on the sites, and the sites' results and estimates gathered."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import yaml

from ansible.errors import AnsibleFilterError

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible_collections.i2pc.scipion_cloud.plugins.filter import course, sites  # noqa: E402

SPEC = yaml.safe_load((PROJECT / "roles/course/meta/argument_specs.yml").read_text())[
    "argument_specs"]["course_file"]["options"]
PROFILES = {p.stem: yaml.safe_load(p.read_text()) for p in (PROJECT / "inventories/profiles").glob("*.yml")}
SEATS = [f"madrid-training-{n:02d}" for n in range(1, 8)]
OPENSTACK_FIELDS = ("auth_url, cloud, flavor, floating_ip_pool, floating_ips, image, key_pair, network, project_id, "
                    "region, security_group, site, vo")

MULTI_SITE = {
    "description": "Cryo-EM course, Madrid",
    "profile": "scipion-1.1",
    "seats": 7,
    "budget_usd": 900,
    "access": {"ssh_cidrs": ["198.51.100.0/24"]},
    "schedule": {"days": 2, "hours_up_per_day": 8},
    "sites": [
        {"name": "cesga", "provider": "openstack", "seats": 2,
         "openstack": {"cloud": "cesga", "image": "scipion-1.1", "flavor": "g1.gpu"}},
        {"name": "ifca", "provider": "openstack", "seats": 2,
         "openstack": {"cloud": "ifca", "image": "scipion-1.1", "flavor": "gpu.small"}},
        {"name": "aws-eu", "provider": "aws", "seats": 3,
         "aws": {"region": "eu-west-1", "instance_type": "g4dn.xlarge", "image_id": "ami-12345678"}},
    ],
}


def multi_site(**changes) -> dict:
    """MULTI_SITE with top-level changes (None deletes a field)."""
    result = copy.deepcopy(MULTI_SITE)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def normalised(file: dict) -> dict:
    return course.course_normalise(file, "madrid", SPEC)


def problems(file: dict) -> list[str]:
    return course.course_problems(normalised(file), "madrid", PROFILES)


def test_a_course_over_three_sites_normalises_each_site_into_its_own_course():
    spec = normalised(MULTI_SITE)
    assert spec["provider"] is None
    assert spec["seat_names"] == SEATS
    assert [site["name"] for site in spec["sites"]] == ["cesga", "ifca", "aws-eu"]
    assert all("error" not in site for site in spec["sites"])
    cesga, ifca, aws = (site["course"] for site in spec["sites"])
    # The site's provider and section, the section's defaults applied; no other provider's section.
    assert (cesga["site"], cesga["provider"], cesga["aws"], cesga["local"], cesga["sites"]) == ("cesga", "openstack", None, None, [])
    assert cesga["openstack"] == {"cloud": "cesga", "image": "scipion-1.1", "flavor": "g1.gpu", "floating_ips": True,
                                  "site": None, "vo": None, "auth_url": None, "project_id": None, "region": None,
                                  "network": None, "floating_ip_pool": None, "key_pair": None, "security_group": None}
    assert (ifca["site"], ifca["provider"], ifca["openstack"]["cloud"], ifca["openstack"]["flavor"]) == \
           ("ifca", "openstack", "ifca", "gpu.small")
    assert (aws["site"], aws["provider"], aws["openstack"]) == ("aws-eu", "aws", None)
    assert aws["aws"]["region"] == "eu-west-1"
    assert aws["aws"]["instance_types"] == ["g4dn.xlarge"]
    assert aws["aws"]["placements"] == [{"subnet_id": "", "availability_zone": ""}]
    # The course's own fields, the same on every site; the whole course's seats until course_site_specs places them.
    for site_course in (cesga, ifca, aws):
        assert site_course["name"] == "madrid"
        assert site_course["description"] == "Cryo-EM course, Madrid"
        assert site_course["profile"] == "scipion-1.1"
        assert site_course["seats"] == 7
        assert site_course["seat_names"] == SEATS
        assert site_course["budget_usd"] == 900.0
        assert site_course["access"] == {"ssh_cidrs": ["198.51.100.0/24"], "web_cidrs": ["0.0.0.0/0"],
                                         "allow_world_ssh": False, "ssh_user": "ubuntu"}
        assert site_course["schedule"] == {"days": 2, "hours_up_per_day": 8.0, "hours_existing": 48.0, "start_date": None}
    assert course.course_problems(spec, "madrid", PROFILES) == []


def test_a_course_gives_either_provider_or_sites():
    assert problems(multi_site(provider="aws")) == [
        "provider: give either provider (a course on one site) or sites (a course over several), not both; "
        "move provider aws and its section into an entry of sites."]
    neither = multi_site(sites=None)
    assert normalised(neither)["provider"] is None
    assert normalised(neither)["sites"] == []
    assert problems(neither) == [
        "provider: say where the seats run: provider (aws, openstack or local) with its section, or sites: "
        "a list of sites, each with name, provider, seats and that provider's section."]


def test_a_bad_sites_list_gets_no_site_courses_and_is_named():
    file = multi_site()
    file["sites"][0]["seats"] = 5
    spec = normalised(file)
    assert all("course" not in site for site in spec["sites"])
    assert course.course_problems(spec, "madrid", PROFILES) == [
        "sites: the sites hold 10 seats but the course has seats: 7; make them agree, or let a site take seats: fill."]


def test_an_unknown_field_of_a_sites_section_names_the_site_and_the_fields():
    file = multi_site()
    file["sites"][1]["openstack"]["bogus"] = "x"
    spec = normalised(file)
    assert "course" not in spec["sites"][1]
    expected = f"unknown field openstack.bogus (a typo?); the fields are {OPENSTACK_FIELDS}"
    assert spec["sites"][1]["error"] == expected
    assert course.course_problems(spec, "madrid", PROFILES) == [f"sites (ifca): {expected}"]


def test_a_bad_aws_region_of_a_site_names_the_site():
    file = multi_site()
    file["sites"][2]["aws"]["region"] = "Ireland"
    assert problems(file) == [
        "sites (aws-eu): aws.region 'Ireland' is not an AWS region name; write it like eu-west-1 or us-east-1."]


def test_a_problem_of_the_courses_own_fields_is_named_once_without_a_site():
    file = multi_site(seat_names=[*SEATS[:6], "Madrid_07"], budget_usd=-5)
    file["sites"][2]["aws"]["region"] = "Ireland"
    assert problems(file) == [
        "seat_names: 'Madrid_07' is not a valid seat name: use only lower-case letters, digits and '-', starting with "
        "a letter or digit, at most 63 characters.",
        "budget_usd must be positive (got -5); leave it out for no budget.",
        "sites (aws-eu): aws.region 'Ireland' is not an AWS region name; write it like eu-west-1 or us-east-1.",
    ]


def test_the_same_problem_on_two_sites_names_each_site():
    file = multi_site()
    file["sites"][0] = {"name": "aws-us", "provider": "aws", "seats": 2,
                        "aws": {"region": "Ireland", "instance_type": "g4dn.xlarge", "image_id": "ami-12345678"}}
    file["sites"][2]["aws"]["region"] = "Ireland"
    bad_region = "aws.region 'Ireland' is not an AWS region name; write it like eu-west-1 or us-east-1."
    assert problems(file) == [f"sites (aws-us): {bad_region}", f"sites (aws-eu): {bad_region}"]


def test_site_specs_split_the_course_seats_in_site_order_and_keep_course_numbers():
    spec = normalised(MULTI_SITE)
    specs = course.course_site_specs(spec, {"cesga": 2, "ifca": 2, "aws-eu": 3}, {}, "/out/madrid")
    assert [(s["site"], s["provider"], s["seats"], s["seat_names"]) for s in specs] == [
        ("cesga", "openstack", 2, SEATS[0:2]), ("ifca", "openstack", 2, SEATS[2:4]), ("aws-eu", "aws", 3, SEATS[4:7])]
    assert [s["seat_numbers"] for s in specs] == [
        {SEATS[0]: 1, SEATS[1]: 2}, {SEATS[2]: 3, SEATS[3]: 4}, {SEATS[4]: 5, SEATS[5]: 6, SEATS[6]: 7}]
    assert [s["output_dir"] for s in specs] == ["/out/madrid/sites/cesga", "/out/madrid/sites/ifca", "/out/madrid/sites/aws-eu"]
    # The budget is the whole course's, judged on the sites' sum: no site judges its share on its own.
    assert [s["budget_usd"] for s in specs] == [None, None, None]
    # The site's course is left as it was (the specs are copies).
    assert spec["sites"][0]["course"]["seat_names"] == SEATS
    assert spec["sites"][0]["course"]["budget_usd"] == 900.0


def test_site_specs_take_the_output_dir_of_the_course_when_none_is_given():
    spec = dict(normalised(MULTI_SITE), output_dir="/srv/output/madrid")
    specs = course.course_site_specs(spec, {"cesga": 2, "ifca": 2, "aws-eu": 3})
    assert [s["output_dir"] for s in specs] == [
        "/srv/output/madrid/sites/cesga", "/srv/output/madrid/sites/ifca", "/srv/output/madrid/sites/aws-eu"]


def test_a_placed_seat_keeps_its_earlier_site():
    spec = normalised(MULTI_SITE)
    placed = {SEATS[0]: "aws-eu", SEATS[6]: "cesga"}
    specs = course.course_site_specs(spec, {"cesga": 2, "ifca": 2, "aws-eu": 3}, placed, "/out/madrid")
    assert {s["site"]: s["seat_names"] for s in specs} == {
        "cesga": [SEATS[1], SEATS[6]], "ifca": SEATS[2:4], "aws-eu": [SEATS[0], SEATS[4], SEATS[5]]}
    assert {s["site"]: s["seat_numbers"] for s in specs}["cesga"] == {SEATS[1]: 2, SEATS[6]: 7}


def test_site_specs_refuse_counts_that_do_not_add_up_to_the_course():
    spec = normalised(MULTI_SITE)
    with pytest.raises(AnsibleFilterError) as refused:
        course.course_site_specs(spec, {"cesga": 2, "ifca": 2, "aws-eu": 2}, {}, "/out/madrid")
    assert refused.value.message == "The sites hold 6 seats but the course names 7."


def test_site_placement_maps_each_seat_to_its_site():
    specs = course.course_site_specs(normalised(MULTI_SITE), {"cesga": 2, "ifca": 2, "aws-eu": 3}, {}, "/out/madrid")
    assert sites.course_site_placement(specs) == {
        SEATS[0]: "cesga", SEATS[1]: "cesga", SEATS[2]: "ifca", SEATS[3]: "ifca",
        SEATS[4]: "aws-eu", SEATS[5]: "aws-eu", SEATS[6]: "aws-eu"}
    assert sites.course_site_placement([]) == {}


def test_sites_merge_filter_gathers_the_sites_results():
    result = {"site": "cesga", "seat_names": SEATS[0:1], "failure": "", "key_file": "/k.pem",
              "seats": [{"name": SEATS[0], "state": "running"}], "checks": [], "leftovers": [], "shortfall": [],
              "foreign": [], "unrecorded": ""}
    merged = sites.course_sites_merge((result,), {"seat_names": SEATS[0:2]}, ("ifca",))
    assert merged["seats"] == [{"name": SEATS[0], "state": "running", "site": "cesga", "key_file": "/k.pem"}]
    assert merged["shortfall"] == [{"name": SEATS[1], "site": "", "reason": "its site is left out (-e course_skip_sites=ifca)",
                                    "hint": "run again without course_skip_sites once the site is back"}]


ESTIMATES = [{"total": 120.5, "currency": "USD", "seats": 2}, {"total": 80, "currency": "USD", "seats": 2},
             {"total": 300.25, "currency": "USD", "seats": 3}]
SITE_NAMES = ["cesga", "ifca", "aws-eu"]
SITE_LINES = ["Site cesga: 2 seats, 120.50 USD", "Site ifca: 2 seats, 80.00 USD", "Site aws-eu: 3 seats, 300.25 USD",
              "Course total: 500.75 USD"]


def test_sites_estimate_adds_the_sites_up_without_a_budget():
    assert sites.course_sites_estimate(ESTIMATES, SITE_NAMES) == {
        "error": None, "budget": {"ok": True, "message": "No budget set (budget_usd)."},
        "totals": {"USD": 500.75}, "lines": [*SITE_LINES, "No budget set (budget_usd)."]}


def test_sites_estimate_sums_per_currency():
    estimates = [{"total": 120.5, "currency": "EUR", "seats": 2}, {"total": 80, "currency": "EUR", "seats": 2},
                 {"total": 300.25, "currency": "USD", "seats": 3}]
    estimate = sites.course_sites_estimate(estimates, SITE_NAMES)
    assert estimate["totals"] == {"EUR": 200.5, "USD": 300.25}
    assert estimate["lines"][:4] == ["Site cesga: 2 seats, 120.50 EUR", "Site ifca: 2 seats, 80.00 EUR",
                                     "Site aws-eu: 3 seats, 300.25 USD", "Course total: 200.50 EUR, 300.25 USD"]
    # Only the USD total is judged against a budget in USD.
    assert sites.course_sites_estimate(estimates, SITE_NAMES, 301)["budget"] == {
        "ok": True, "over": False, "message": "the sites' total 300.25 USD is within the budget of 301 USD."}


def test_sites_estimate_names_each_site_it_cannot_price():
    estimates = [ESTIMATES[0], {"error": "price table openstack-2026-01 has no flavour gpu.small"}, None]
    estimate = sites.course_sites_estimate(estimates, SITE_NAMES)
    assert estimate["error"] == "site ifca: price table openstack-2026-01 has no flavour gpu.small; site aws-eu: no estimate"
    assert estimate["lines"] == ["Site cesga: 2 seats, 120.50 USD", "Course total: 120.50 USD", "No budget set (budget_usd)."]
    assert sites.course_sites_estimate([None], ["cesga"])["lines"] == [
        "Course total: none", "No budget set (budget_usd)."]


def test_sites_estimate_judges_the_total_against_the_budget():
    within = sites.course_sites_estimate(ESTIMATES, SITE_NAMES, 600.0)
    assert within["budget"] == {"ok": True, "over": False,
                                "message": "the sites' total 500.75 USD is within the budget of 600.0 USD."}
    assert within["lines"] == [*SITE_LINES, within["budget"]["message"]]
    over = sites.course_sites_estimate(ESTIMATES, SITE_NAMES, 500.0)
    assert over["budget"] == {"ok": False, "over": True,
                              "message": "the sites' total 500.75 USD is over the budget of 500.0 USD; raise budget_usd, "
                                         "lower seats, or accept with -e course_accept_cost=true"}
    # Each site under the budget on its own does not make the course's sum pass.
    assert all(estimate["total"] < 500 for estimate in ESTIMATES)
    for accepted in (True, "true", "yes", "1"):
        assert sites.course_sites_estimate(ESTIMATES, SITE_NAMES, 500.0, accepted)["budget"] == {
            "ok": True, "over": True, "message": "the sites' total 500.75 USD is over the budget of 500.0 USD."}
    for refused in (False, "false", "no", None):
        assert sites.course_sites_estimate(ESTIMATES, SITE_NAMES, 500.0, refused)["budget"]["ok"] is False


def test_sites_estimate_keeps_one_total_per_currency_and_adds_none_across_them():
    estimate = sites.course_sites_estimate(ESTIMATES, SITE_NAMES)
    assert set(estimate) == {"totals", "budget", "error", "lines"}


def test_fill_sites_hold_their_placed_seats_until_their_room_shares_out_the_others():
    file = multi_site()
    file["sites"][0]["seats"] = "fill"
    file["sites"][1]["seats"] = "fill"
    assert problems(file) == []
    spec = normalised(file)
    placed = {SEATS[0]: "ifca"}
    counts = sites.course_site_counts(spec, {}, placed)
    assert counts == {"cesga": 0, "ifca": 1, "aws-eu": 3}
    specs = course.course_site_specs(spec, counts, placed, "/out/madrid")
    assert [(s["site"], s["seat_names"]) for s in specs] == [
        ("cesga", []), ("ifca", [SEATS[0]]), ("aws-eu", SEATS[1:4])]
    assert sites.course_site_fills(spec) == ["cesga", "ifca"]
    assert sites.course_site_fills(spec, {"cesga": 1}, ["ifca"]) == []
    # cesga measured room for 1 more, ifca for 5: the 3 seats no site holds go 1 and 2 by largest remainder.
    fill = sites.course_site_fill(spec, specs, {"cesga": 1, "ifca": 5})
    assert fill == {"counts": {"aws-eu": 3, "cesga": 1, "ifca": 3}, "grown": ["cesga", "ifca"], "error": "", "fix": ""}
    after = course.course_site_specs(spec, fill["counts"], sites.course_site_placement(specs), "/out/madrid")
    assert [(s["site"], s["seat_names"]) for s in after] == [
        ("cesga", [SEATS[4]]), ("ifca", [SEATS[0], SEATS[5], SEATS[6]]), ("aws-eu", SEATS[1:4])]
    assert after[1]["seat_numbers"] == {SEATS[0]: 1, SEATS[5]: 6, SEATS[6]: 7}
    # Not enough room: nothing moves, and the error says what to do.
    assert sites.course_site_fill(spec, specs, {"cesga": 1, "ifca": 1}) == {
        "counts": {"cesga": 0, "ifca": 1, "aws-eu": 3}, "grown": [],
        "error": "The fill sites have room for 2 more seats (cesga 1, ifca 1), but 3 are left to place.",
        "fix": "Add a site, ask the sites for more quota, or lower the course's seats."}
    # Counts for the run make a fill site a fixed one; with fill sites left, only the fixed ones must fit.
    assert sites.course_site_seats_problems({"cesga": 2}, spec) == []
    assert sites.course_site_seats_problems({"cesga": 5}, spec) == [
        "with it the sites given a count hold 8 seats, more than the course's 7; lower their counts."]


def test_seat_counts_given_for_a_run_must_name_sites_of_the_course_and_add_up():
    spec = normalised(MULTI_SITE)
    assert sites.course_site_seats_problems({}, spec) == []
    assert sites.course_site_seats_problems({"cesga": 0, "ifca": 4}, spec) == []
    assert sites.course_site_seats_problems({"cesga": 0}, spec) == [
        "with it the sites hold 5 seats (cesga 0, ifca 2, aws-eu 3) but the course has 7; give every site's count so "
        "that they add up."]
    assert sites.course_site_seats_problems({"lyon": 1, "ifca": -1}, spec) == [
        "'lyon' is not a site of course madrid (its sites: cesga, ifca, aws-eu).",
        "ifca: -1 is not a number of seats (0 or more)."]
    assert sites.course_site_seats_problems(["cesga"], spec) == [
        "give a mapping of site name to seats, like {\"cesga\": 2}, not ['cesga']."]
