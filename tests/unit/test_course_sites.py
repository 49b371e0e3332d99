"""A course over several sites: the sites list is checked, fill shares by free quota, seats keep their site."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import course_sites  # noqa: E402

SEATS = [f"madrid-training-{n:02d}" for n in range(1, 8)]


def site(name, provider="openstack", seats=2):
    return {"name": name, "provider": provider, "seats": seats, provider: {"cloud": name}}


def test_a_valid_list_of_sites_has_no_problem():
    sites = [site("cesga"), site("ifca"), site("aws-eu", "aws", 3)]
    assert course_sites.site_problems(sites, 7) == []
    assert course_sites.site_problems(sites) == []


def test_each_bad_site_is_named_with_what_to_change():
    sites = [site("cesga"), {"name": "Cesga!", "provider": "gcp", "seats": -1},
             {"name": "cesga", "provider": "aws", "seats": True}, "ifca"]
    problems = course_sites.site_problems(sites, 7)
    assert any(p.startswith("sites[2]: name 'Cesga!' must start with a letter") for p in problems), problems
    assert "sites[2]: provider 'gcp' is not one of aws, openstack (local containers make a course of their own" \
           ", with provider: local)." in problems
    assert "sites[2]: seats must be a number of seats (0 or more) or 'fill', not -1." in problems
    assert any(p.startswith("sites[3] (cesga): give the provider's settings in a 'aws:' section") for p in problems), problems
    assert "sites[3] (cesga): seats must be a number of seats (0 or more) or 'fill', not True." in problems
    assert "sites[4]: give a mapping with name, provider, seats and that provider's section." in problems
    assert "sites: names must be unique; repeated: cesga." in problems
    assert course_sites.site_problems([]) == [
        "sites: give a list of sites, each with name, provider, seats and that provider's section."]


def test_sites_and_course_seats_must_agree_and_fill_needs_the_class_size():
    assert course_sites.site_problems([site("a"), site("b")], 5) == [
        "sites: the sites hold 4 seats but the course has seats: 5; make them agree, or let a site take seats: fill."]
    assert course_sites.site_problems([site("a"), site("b", seats="fill")]) == [
        "sites: a site with seats: fill shares the course's seats, so give the course's seats: (the whole class)."]


def test_fill_shares_the_rest_by_free_quota_and_fixed_sites_keep_theirs():
    sites = [site("aws-eu", "aws", 3), site("cesga", seats="fill"), site("ifca", seats="fill")]
    assert course_sites.fill_counts(7, sites, {"cesga": 1, "ifca": 8}) == {"aws-eu": 3, "cesga": 0, "ifca": 4}
    # In proportion to the room, the shares adding up to what is left, never beyond a site's room.
    assert course_sites.fill_counts(10, [site("a", seats="fill"), site("b", seats="fill"), site("c", seats="fill")],
                                    {"a": 2, "b": 4, "c": 6}) == {"a": 2, "b": 3, "c": 5}
    assert course_sites.fill_counts(3, [site("a", seats="fill"), site("b", seats="fill")], {"a": 4, "b": 0}) == {"a": 3, "b": 0}


def test_fill_refuses_when_the_sites_together_cannot_hold_the_class():
    sites = [site("aws-eu", "aws", 3), site("cesga", seats="fill"), site("ifca", seats="fill")]
    with pytest.raises(ValueError) as refused:
        course_sites.fill_counts(20, sites, {"cesga": 2, "ifca": 4})
    assert str(refused.value) == ("The fill sites have room for 6 more seats (cesga 2, ifca 4), but 17 are left to place: "
                                  "add a site, ask the sites for more quota, or lower the course's seats.")
    with pytest.raises(ValueError, match="The fixed sites hold 4 seats, more than the course's 3"):
        course_sites.fill_counts(3, [site("a"), site("b")], {})


def test_first_placement_follows_the_order_of_the_sites():
    placed = course_sites.assign_seats(SEATS, {"cesga": 2, "ifca": 2, "aws-eu": 3})
    assert placed == {"cesga": SEATS[0:2], "ifca": SEATS[2:4], "aws-eu": SEATS[4:7]}


def test_seats_stay_on_their_site_when_a_site_is_added_or_grows():
    before = course_sites.assign_seats(SEATS[:4], {"cesga": 2, "ifca": 2})
    placed = {seat: name for name, seats in before.items() for seat in seats}
    # A new site listed first, and ifca grows: no seat of before moves.
    after = course_sites.assign_seats(SEATS, {"aws-eu": 2, "cesga": 2, "ifca": 3}, placed)
    assert after == {"aws-eu": SEATS[4:6], "cesga": SEATS[0:2], "ifca": [*SEATS[2:4], SEATS[6]]}


def test_a_shrunk_site_keeps_its_lowest_seats_and_the_others_move_to_room_elsewhere():
    placed = {SEATS[0]: "cesga", SEATS[1]: "cesga", SEATS[2]: "cesga", SEATS[3]: "ifca"}
    after = course_sites.assign_seats(SEATS[:4], {"cesga": 1, "ifca": 3}, placed)
    assert after == {"cesga": [SEATS[0]], "ifca": SEATS[1:4]}
    with pytest.raises(ValueError, match="The sites hold 3 seats but the course names 4"):
        course_sites.assign_seats(SEATS[:4], {"cesga": 1, "ifca": 2}, placed)
