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
    assert course_sites.site_problems([site("a", seats=5), site("b", seats="fill")], 4) == [
        "sites: the sites with a number hold 5 seats, more than the course's seats: 4, which the fill sites share with "
        "them; lower their seats or raise the course's."]
    assert course_sites.site_problems([site("a", seats=4), site("b", seats="fill")], 4) == []


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


def test_fill_sites_keep_the_seats_they_hold_and_share_only_the_unplaced_ones():
    sites = [site("aws-eu", "aws", 3), site("cesga", seats="fill"), site("ifca", seats="fill")]
    # cesga holds 2 already and has room for 1 more, ifca holds none: the 2 unplaced seats go 1 and 1 by room.
    assert course_sites.fill_counts(7, sites, {"cesga": 1, "ifca": 1}, {"cesga": 2}) == {"aws-eu": 3, "cesga": 3, "ifca": 1}
    # Everything placed: nothing to share, whatever the room.
    assert course_sites.fill_counts(7, sites, {"cesga": 0, "ifca": 0}, {"cesga": 2, "ifca": 2}) == {
        "aws-eu": 3, "cesga": 2, "ifca": 2}
    # A site whose preflight found no limit (room None) can take what is left; a site not measured takes nothing.
    assert course_sites.fill_counts(7, sites, {"cesga": None}) == {"aws-eu": 3, "cesga": 4, "ifca": 0}
    with pytest.raises(course_sites.FillError) as refused:
        course_sites.fill_counts(7, sites, {"cesga": 1}, {"cesga": 1})
    assert (refused.value.detail, refused.value.fix) == (
        "The fill sites have room for 1 more seats (cesga 1, ifca 0), but 3 are left to place",
        "add a site, ask the sites for more quota, or lower the course's seats.")


def test_before_the_room_is_measured_fill_sites_hold_the_seats_placed_on_them():
    sites = [site("cesga", seats="fill"), site("aws-eu", "aws", 3), site("ifca", seats="fill")]
    placed = {SEATS[0]: "cesga", SEATS[1]: "ifca", SEATS[2]: "ifca", SEATS[3]: "aws-eu"}
    assert course_sites.placed_counts(7, sites, placed) == {"cesga": 1, "aws-eu": 3, "ifca": 2}
    assert course_sites.placed_counts(7, sites) == {"cesga": 0, "aws-eu": 3, "ifca": 0}
    # The fixed sites grew: the fill sites keep at most what the fixed ones leave.
    assert course_sites.placed_counts(4, sites, placed) == {"cesga": 1, "aws-eu": 3, "ifca": 0}
    # Placing them: the placed seats stay, aws-eu takes the first unplaced ones, the rest is on no site yet.
    assert course_sites.assign_seats(SEATS, {"cesga": 1, "aws-eu": 3, "ifca": 2}, placed, partial=True) == {
        "cesga": [SEATS[0]], "aws-eu": [SEATS[3], SEATS[4], SEATS[5]], "ifca": [SEATS[1], SEATS[2]]}
    with pytest.raises(ValueError, match="The sites hold 6 seats but the course names 7"):
        course_sites.assign_seats(SEATS, {"cesga": 1, "aws-eu": 3, "ifca": 2}, placed)


def test_a_seat_that_no_fill_site_holds_yet_is_missing_until_provision_places_it():
    merged = course_sites.merge_results([site_result("cesga", SEATS[0:2], SEATS[0:2])], {"seat_names": SEATS[0:3]},
                                        [], {SEATS[0]: "cesga", SEATS[1]: "cesga"})
    assert merged["shortfall"] == [{"name": SEATS[2], "site": "", "hint": "run provision.yml", "reason":
                                    "no site holds it yet (a fill site takes it when provision.yml measures the sites' room)"}]


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


# merge_results: each site's results of one provider step, under the contract's names for the whole course.
COURSE = {"seat_names": SEATS}
KEY = "/out/madrid/sites/cesga/madrid-key.pem"


def site_result(name, seat_names, seats=(), key_file=KEY, failure="", **published):
    """One site's course_site_result: the names a provider step publishes, its seats and its error."""
    result = {"site": name, "seat_names": list(seat_names), "failure": failure, "key_file": key_file,
              "seats": [{"name": seat, "state": "running"} for seat in seats],
              "checks": [], "leftovers": [], "shortfall": [], "foreign": [], "unrecorded": ""}
    result.update(published)
    return result


def test_merged_seats_carry_their_site_and_key_and_come_back_in_course_order():
    # The sites answer in any order; a seat comes back at its place in the course.
    merged = course_sites.merge_results([
        site_result("ifca", SEATS[2:4], SEATS[2:4], key_file="/out/madrid/sites/ifca/madrid-key.pem"),
        site_result("cesga", SEATS[0:2], SEATS[0:2]),
    ], {"seat_names": SEATS[:4]})
    assert merged["seats"] == [
        {"name": SEATS[0], "state": "running", "site": "cesga", "key_file": KEY},
        {"name": SEATS[1], "state": "running", "site": "cesga", "key_file": KEY},
        {"name": SEATS[2], "state": "running", "site": "ifca", "key_file": "/out/madrid/sites/ifca/madrid-key.pem"},
        {"name": SEATS[3], "state": "running", "site": "ifca", "key_file": "/out/madrid/sites/ifca/madrid-key.pem"},
    ]
    assert (merged["shortfall"], merged["checks"], merged["leftovers"], merged["failures"], merged["unrecorded"]) == \
           ([], [], [], [], "")
    # Two keys: the sheet has no single one, each seat names its own.
    assert merged["key_file"] == ""


def test_merged_checks_leftovers_foreign_shortfall_and_unrecorded_name_their_site():
    merged = course_sites.merge_results([
        site_result("cesga", SEATS[0:2], SEATS[0:1],
                    checks=[{"name": "flavour g1 exists", "ok": True, "detail": "", "fix": ""}],
                    leftovers=["volume madrid-training-02-root"],
                    shortfall=[{"name": SEATS[1], "reason": "quota of instances reached", "hint": "ask for quota"}],
                    foreign=[{"name": "madrid-training-09", "id": "abc"}],
                    unrecorded="1 machine without a record"),
        site_result("aws-eu", SEATS[2:7], SEATS[2:7]),
    ], COURSE)
    assert merged["checks"] == [{"name": "cesga: flavour g1 exists", "ok": True, "detail": "", "fix": ""}]
    assert merged["leftovers"] == ["cesga: volume madrid-training-02-root"]
    assert merged["foreign"] == [{"name": "madrid-training-09", "id": "abc", "site": "cesga"}]
    assert merged["shortfall"] == [{"name": SEATS[1], "site": "cesga", "reason": "quota of instances reached (site cesga)",
                                    "hint": "ask for quota"}]
    assert merged["unrecorded"] == "cesga: 1 machine without a record"
    assert [seat["name"] for seat in merged["seats"]] == [SEATS[0], *SEATS[2:7]]
    assert merged["failures"] == []


def test_a_failed_sites_missing_seats_are_shortfall_a_failed_check_and_a_leftover():
    hint = "run again when site ifca answers, or leave it out with -e course_skip_sites=ifca"
    # ifca's step failed after its first seat existed: that seat stays, the other is missing.
    merged = course_sites.merge_results([
        site_result("cesga", SEATS[0:2], SEATS[0:2]),
        site_result("ifca", SEATS[2:4], SEATS[2:3], failure="Keystone did not answer in 30 s"),
        site_result("aws-eu", SEATS[4:7], SEATS[4:7]),
    ], COURSE)
    assert [(seat["name"], seat["site"]) for seat in merged["seats"]] == [
        (SEATS[0], "cesga"), (SEATS[1], "cesga"), (SEATS[2], "ifca"), (SEATS[4], "aws-eu"), (SEATS[5], "aws-eu"),
        (SEATS[6], "aws-eu")]
    assert merged["shortfall"] == [{"name": SEATS[3], "site": "ifca",
                                    "reason": "site ifca failed: Keystone did not answer in 30 s", "hint": hint}]
    assert merged["checks"] == [{"name": "ifca: the site answers", "ok": False,
                                 "detail": "Keystone did not answer in 30 s", "fix": hint}]
    assert merged["leftovers"] == ["ifca: not torn down or audited, its step failed: Keystone did not answer in 30 s"]
    assert merged["failures"] == [{"site": "ifca", "message": "Keystone did not answer in 30 s"}]
    # Every site used the same key: the sheet names it once.
    assert merged["key_file"] == KEY


def test_a_failed_sites_own_shortfall_is_replaced_by_its_missing_seats():
    # A failed step's shortfall list is not trusted: every seat of the site that does not exist is missing.
    merged = course_sites.merge_results([
        site_result("cesga", SEATS[0:2], failure="token expired",
                    shortfall=[{"name": SEATS[0], "reason": "stale", "hint": ""}]),
    ], {"seat_names": SEATS[:2]})
    assert [(seat["name"], seat["site"], seat["reason"]) for seat in merged["shortfall"]] == [
        (SEATS[0], "cesga", "site cesga failed: token expired"), (SEATS[1], "cesga", "site cesga failed: token expired")]


def test_a_skipped_sites_seats_are_missing_saying_the_site_is_left_out():
    merged = course_sites.merge_results([
        site_result("cesga", SEATS[0:2], SEATS[0:2]),
        site_result("ifca", SEATS[2:4], SEATS[2:4]),
    ], COURSE, ["aws-eu"], {seat: "aws-eu" for seat in SEATS[4:7]})
    assert merged["shortfall"] == [
        {"name": seat, "site": "aws-eu", "reason": "site aws-eu is left out (-e course_skip_sites=aws-eu)",
         "hint": "run again without course_skip_sites once the site is back"}
        for seat in SEATS[4:7]]
    assert [seat["name"] for seat in merged["seats"]] == SEATS[0:4]
    assert (merged["checks"], merged["leftovers"], merged["failures"]) == ([], [], [])
    assert merged["key_file"] == KEY


def test_shortfall_of_failed_and_skipped_sites_comes_back_in_course_order():
    merged = course_sites.merge_results([
        site_result("aws-eu", SEATS[4:7], SEATS[4:6], failure="RequestLimitExceeded"),
        site_result("cesga", SEATS[0:2], SEATS[0:2]),
    ], COURSE, ["ifca", "extra"])
    assert [(seat["name"], seat["site"]) for seat in merged["shortfall"]] == [
        (SEATS[2], ""), (SEATS[3], ""), (SEATS[6], "aws-eu")]
    assert merged["shortfall"][0]["reason"] == "its site is left out (-e course_skip_sites=ifca,extra)"


def test_key_file_is_the_one_key_all_sites_share_else_empty():
    shared = [site_result("cesga", SEATS[0:2], SEATS[0:2]), site_result("ifca", SEATS[2:4], SEATS[2:4])]
    assert course_sites.merge_results(shared, {"seat_names": SEATS[:4]})["key_file"] == KEY
    # A site without a key of its own (a reused key pair) does not count as another key.
    reused = [site_result("cesga", SEATS[0:2], SEATS[0:2]), site_result("ifca", SEATS[2:4], SEATS[2:4], key_file="")]
    assert course_sites.merge_results(reused, {"seat_names": SEATS[:4]})["key_file"] == KEY
    two = [site_result("cesga", SEATS[0:2], SEATS[0:2]), site_result("ifca", SEATS[2:4], SEATS[2:4], key_file="/k/ifca.pem")]
    assert course_sites.merge_results(two, {"seat_names": SEATS[:4]})["key_file"] == ""
    none = [site_result("cesga", SEATS[0:2], SEATS[0:2], key_file="")]
    assert course_sites.merge_results(none, {"seat_names": SEATS[:2]})["key_file"] == ""
