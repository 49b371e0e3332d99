#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconcile the EC2 instances of one course in a single module process."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_course_fleet
short_description: Reconcile the EC2 instances of a course (one instance per seat)
version_added: 0.1.0
description:
  - Finds the course's instances by their tags (C(Course=<course>), C(ManagedBy=scipion_cloud)), ignoring
    terminated and shutting-down ones, and brings them to the wanted O(state) with as few API calls as possible.
    Instances without both tags are never touched.
  - With O(record) (the course's record of what it created, C(output/<course>/resources.json)), tags alone do not
    make an instance the course's; only instances the record names (or adopted with O(adopt)) are seats, started,
    stopped, rebooted or terminated. Every instance launched is added to the record as soon as its launch returns,
    so an interrupted run still knows it. Tagged instances the record does not name are left alone and named in
    RV(foreign) and a warning. When the record file does not exist at all (a course provisioned before records were
    kept) and tagged instances exist, every O(state) but V(status) refuses, naming them, until they are adopted.
  - Without O(record) every instance carrying both tags is the course's.
  - Each seat is one instance, identified by its C(Name) tag (the seat name). Missing seats are launched, one
    RunInstances call per seat because each seat carries its own user data, in parallel.
  - Each launch carries a C(ClientToken) derived from O(course), O(edition), the seat name, the instance type and the
    placement, so a retried call (after a throttled or failed request, or a re-run after the controller died) cannot
    launch a second machine for the seat (AWS answers with the machine the token already launched). When that
    machine has been terminated (the seat was removed and added again in one edition), the next token generation
    (the same digest with a C(-1) ... C(-4) suffix) is used; after 5 generations the seat tries its next choice.
    C(IdempotentParameterMismatch) (the token was used with other settings) puts the seat in RV(shortfall).
  - Launch choices are tried in order for every missing seat - every placement of O(instance_types[0]), then every
    placement of the next type, so seats stay in the first (cheapest) type as long as any placement has room. A
    choice answered with C(InsufficientInstanceCapacity), C(InsufficientCapacity) or C(Unsupported) is skipped by
    the later seats of the run; C(InstanceLimitExceeded) or C(VcpuLimitExceeded) (an account quota) skips the type in
    every placement. Any other error ends the seat's attempts. A seat no choice could launch is listed in
    RV(shortfall) with each choice tried and its error code, and what to add to the course file.
  - A launched machine that goes to C(shutting-down) or C(terminated) while starting is reported in RV(shortfall)
    at once with its state reason, and the wait goes on for the others.
  - Every call is retried with jittered backoff (at most 10 tries, at most 60 s apart) when AWS throttles
    (C(RequestLimitExceeded), C(Throttling), C(ThrottlingException)) or fails on its side (C(InternalError),
    C(ServiceUnavailable), C(Unavailable)); paginated reads are retried as a whole. A machine not yet visible just
    after its launch (C(InvalidInstanceID.NotFound)) is looked up again the same way.
  - Seats that could not be launched do not stop the run - the launched seats are tagged, waited for and returned -
    but with O(fail_on_shortfall=true) the module then fails, naming each missing seat and its reason.
  - Launched instances require IMDSv2 (C(HttpTokens=required)), have an encrypted gp3 root volume of O(disk_gb)
    on the image's root device, stop (never terminate) when shut down from inside, and carry the tags C(Name),
    C(Course), C(ManagedBy), C(Seat) and O(tags) on the instance and its volumes.
  - Machines of the course beyond O(seat_names) (the course shrank, or a seat was launched twice) are terminated
    only when O(allow_shrink=true); otherwise the module fails, naming them, before it changes anything.
  - Supports check mode; in check mode seats that would be launched are returned with an empty C(id) and state
    C(pending), and the record is not written.
options:
  course:
    description: Course name; the value of the C(Course) tag.
    type: str
    required: true
  state:
    description:
      - V(present) launches missing seats (and waits for them to run) and leaves existing ones as they are.
      - V(running) also starts stopped seats and waits until every seat runs.
      - V(stopped) stops running seats and waits until they are stopped. Missing seats are not launched.
      - V(rebooted) reboots the running seats (RebootInstances); stopped seats are left stopped.
      - V(absent) terminates every instance of the course and waits until they are terminated.
      - V(status) changes nothing and reports the seats.
    type: str
    choices: [present, running, stopped, rebooted, absent, status]
    default: running
  seat_names:
    description: The course's seat (machine) names in seat order; seat N is element N (1-based).
    type: list
    elements: str
    default: []
  seat_numbers:
    description:
      - Seat name -> its number in the whole course, when O(seat_names) are only some of the course's seats (a course
        over several sites, each launching its own). A seat not named here keeps its position in O(seat_names).
    type: dict
    default: {}
  launch_missing:
    description:
      - With O(state=running), launch seats that have no instance. V(false) only starts existing ones
        (what a lifecycle C(start) wants); missing seats are then listed in RV(missing).
    type: bool
    default: true
  allow_shrink:
    description: Terminate the course's machines that are not in O(seat_names) (with O(state=present) or V(running)).
    type: bool
    default: false
  image_id:
    description: AMI to launch missing seats from. Required when a seat has to be launched.
    type: str
  instance_type:
    description:
      - Instance type of launched seats, when O(instance_types) is empty. One of them is required when a seat has
        to be launched.
    type: str
  instance_types:
    description:
      - Instance types to launch seats with, in order of preference (the first is tried in every placement before
        the next). Empty means O(instance_type).
    type: list
    elements: str
    default: []
  placements:
    description:
      - Where to launch seats, in order of preference, tried for each type of O(instance_types). Each item has a
        C(subnet_id) or an C(availability_zone) (a subnet fixes its zone, so C(availability_zone) is ignored when
        C(subnet_id) is set); an item with neither lets the region pick.
      - Empty means one placement, O(subnet_id) (or the region's choice without it). When set, O(subnet_id) is ignored.
    type: list
    elements: dict
    default: []
    suboptions:
      subnet_id:
        description: Subnet to launch in.
        type: str
      availability_zone:
        description: Availability zone to launch in (in the region's default VPC).
        type: str
  edition:
    description:
      - The course's edition (made with its passwords). Part of each seat's launch C(ClientToken), so a later edition
        of the course launches with fresh tokens.
    type: str
    default: ''
  fail_on_shortfall:
    description:
      - Fail when some seats could not be launched (RV(shortfall) is not empty), after waiting for the launched ones.
      - V(false) returns normally with RV(shortfall) filled, so that the caller can record what exists (the access
        sheet) before it fails.
    type: bool
    default: true
  key_name:
    description: Key pair of launched seats.
    type: str
  security_group_ids:
    description: Security groups of launched seats.
    type: list
    elements: str
    default: []
  subnet_id:
    description: Subnet to launch in, when O(placements) is empty. Without it the region's default VPC picks one.
    type: str
  assign_public_ip:
    description: In a subnet (O(subnet_id) or a placement's C(subnet_id)), give launched seats a public IPv4 address.
    type: bool
    default: true
  disk_gb:
    description: Size of the encrypted gp3 root volume of launched seats, in GB.
    type: int
    default: 30
  tags:
    description: Extra tags of the instances and their volumes. C(Name), C(Course), C(ManagedBy) and C(Seat) win over these.
    type: dict
    default: {}
  user_data:
    description: User data (for example a C(#cloud-config) document) per seat name, passed to the seat when it is launched.
    type: dict
    default: {}
  elastic_ips:
    description:
      - Report whether the account's Elastic IP limit leaves room for one address per seat (RV(elastic_ips)), and with
        O(state=present) or V(running) refuse to launch anything when it does not.
      - With O(state=present) or V(running), give every seat without one an Elastic IP, tagged at allocation
        (C(Course), C(ManagedBy), C(Name), C(Seat) and O(tags)) and added to O(record) before it is associated; an
        address the record names that is on no machine (a run interrupted after allocating) is used first. Addresses
        already on the seats get missing tags and are recorded.
    type: bool
    default: false
  record:
    description:
      - The course's record file (JSON, on the controller). Its region entry (O(region)) names the instances and
        addresses the course created; this module adds what it launches and allocates and removes what it terminates
        and releases. The folder is created (0700) when missing.
      - With O(state=absent), the recorded addresses and those on the course's instances (tagged or not) are released
        after the instances are terminated.
    type: path
  adopt:
    description:
      - Ids of instances (C(i-...)) or Elastic IP allocations (C(eipalloc-...)) carrying the course's tags to add to
        O(record) before acting, or V(all) for every one in the region. Other ids are ignored. Needs O(record).
    type: list
    elements: str
    default: []
  warn_foreign:
    description:
      - Warn, naming them, about live instances tagged with the course that O(record) does not name (RV(foreign)).
        V(false) when the caller reports them itself or is about to recover them (a provision's first read).
    type: bool
    default: true
  require_adopted:
    description:
      - Fail, before changing anything, when an instance id of O(adopt) is not a live instance tagged with the course in
        this region. V(false) when the caller looks in several regions and checks the ids itself (RV(adopted)).
    type: bool
    default: true
  wait:
    description: Wait until the instances reach the wanted state.
    type: bool
    default: true
  wait_timeout:
    description: How long to wait, in seconds.
    type: int
    default: 900
  wait_delay:
    description: Seconds between two polls while waiting.
    type: int
    default: 5
  max_parallel_launches:
    description: How many RunInstances calls run at the same time.
    type: int
    default: 8
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - O(user_data) is a no_log parameter; it carries the seats' passwords.
author:
  - I2PC scipion_cloud maintainers (@I2PC)
"""

EXAMPLES = r"""
- name: Launch the missing seats of a course and start the stopped ones
  i2pc.scipion_cloud.ec2_course_fleet:
    course: madrid
    region: eu-west-1
    state: running
    seat_names: [madrid-training-01, madrid-training-02]
    image_id: ami-0123456789abcdef0
    instance_type: g4dn.xlarge
    key_name: madrid-key
    security_group_ids: [sg-0123456789abcdef0]
    disk_gb: 30
    tags:
      UserName: i2pc-training
    user_data: "{{ course_user_data }}"
  register: fleet

- name: Stop every machine of the course
  i2pc.scipion_cloud.ec2_course_fleet:
    course: madrid
    region: eu-west-1
    state: stopped

- name: Shrink the course to one seat (terminates madrid-training-02)
  i2pc.scipion_cloud.ec2_course_fleet:
    course: madrid
    region: eu-west-1
    state: present
    seat_names: [madrid-training-01]
    allow_shrink: true

- name: Terminate the recorded machines of the course and release their addresses, adopting one tagged by hand
  i2pc.scipion_cloud.ec2_course_fleet:
    course: madrid
    region: eu-west-1
    state: absent
    record: output/madrid/resources.json
    adopt: [i-0123456789abcdef0]
"""

RETURN = r"""
seats:
  description: The course's seats that exist (or would be launched, in check mode), in seat order.
  returned: always
  type: list
  elements: dict
  contains:
    seat: {description: "Seat number, 1-based.", type: int, sample: 1}
    name: {description: Seat (machine) name., type: str, sample: madrid-training-01}
    id: {description: Instance id; empty for a seat that check mode would launch., type: str, sample: i-0123456789abcdef0}
    state: {description: Instance state., type: str, sample: running}
    public_ip: {description: "Public IPv4 address, or null.", type: str, sample: 203.0.113.10}
    private_ip: {description: "Private IPv4 address, or null.", type: str, sample: 172.31.0.10}
    url: {description: "Desktop URL C(https://<public ip>/vnc.html); empty without a public address.", type: str}
    provider: {description: Always C(aws)., type: str, sample: aws}
    instance_type: {description: Instance type of the machine (empty when check mode would launch it)., type: str, sample: g4dn.xlarge}
    availability_zone: {description: Availability zone of the machine; empty when unknown., type: str, sample: eu-west-1b}
    subnet_id: {description: Subnet of the machine; empty when unknown., type: str, sample: subnet-0123456789abcdef0}
shortfall:
  description:
    - Seats that could not be launched by this run (every choice failed, or the machine died while starting), in
      seat order; empty when every seat exists. They are also in RV(missing).
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Seat name., type: str, sample: madrid-training-02}
    reason:
      description: One line; each choice tried and the AWS error code it got, or the state reason of a machine that died.
      type: str
      sample: "tried g4dn.xlarge in eu-west-1a (InsufficientInstanceCapacity), g4dn.xlarge in eu-west-1b (InsufficientInstanceCapacity)"
    hint:
      description: What to change (in the course file) or do so that the seat can be launched.
      type: str
launched:
  description: Seat names launched by this run (a launched machine that died while starting stays listed).
  returned: always
  type: list
  elements: str
started:
  description: Seat names started by this run.
  returned: always
  type: list
  elements: str
stopped:
  description: Seat names stopped by this run.
  returned: always
  type: list
  elements: str
rebooted:
  description: Seat names rebooted by this run.
  returned: always
  type: list
  elements: str
terminated:
  description: Names (or ids) of the instances terminated by this run.
  returned: always
  type: list
  elements: str
missing:
  description: Seat names without an instance after this run (those of RV(shortfall) included).
  returned: always
  type: list
  elements: str
extra:
  description: Machines of the course that are not seats of O(seat_names), before this run.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Name tag., type: str}
    id: {description: Instance id., type: str}
    state: {description: Instance state., type: str}
foreign:
  description: Live instances tagged with the course that O(record) does not name; left alone.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Name tag., type: str}
    id: {description: Instance id., type: str}
    state: {description: Instance state., type: str}
adopted:
  description: Ids of O(adopt) that are the course's in this region (added to the record now, or already in it).
  returned: always
  type: list
  elements: str
record_exists:
  description: Whether the O(record) file existed when the module started (always V(true) without O(record)).
  returned: always
  type: bool
unrecorded:
  description:
    - When the record file does not exist and instances carry the course's tags, the refusal that every O(state)
      but V(status) fails with (what to adopt); empty otherwise.
  returned: always
  type: str
allocated:
  description: Seat names given an Elastic IP by this run.
  returned: always
  type: list
  elements: str
released:
  description: Public IPs of the Elastic IPs released by this run.
  returned: always
  type: list
  elements: str
elastic_ips:
  description: Elastic IP room, when O(elastic_ips=true).
  returned: when O(elastic_ips=true)
  type: dict
  contains:
    limit: {description: The account's C(vpc-max-elastic-ips)., type: int, sample: 5}
    in_use: {description: Addresses allocated in the region., type: int}
    course: {description: Addresses tagged with this course., type: int}
    needed: {description: Addresses still to allocate for the seats., type: int}
    fits: {description: Whether the needed addresses fit under the limit., type: bool}
"""

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

try:  # noqa: SIM105  (amazon.aws's idiom for an optional import)
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import course_record as rec
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils.aws_client import tag_dict
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils.course_names import MANAGED_BY

LIVE_STATES = ["pending", "running", "stopping", "stopped"]
SHRINK_HINT = ("run again with -e course_aws_allow_shrink=true (the course_aws role's variable; this module's option "
               "allow_shrink); to keep them, raise seats (or list them in seat_names) in the course file")
DEAD_STATES = ("shutting-down", "terminated")
# Launch errors after which the seat tries its next choice: the (type, placement) pair has no room now...
CAPACITY_CODES = frozenset({"InsufficientInstanceCapacity", "InsufficientCapacity", "Unsupported"})
# ... or the account's quota for the type is used up (in every placement).
QUOTA_CODES = frozenset({"InstanceLimitExceeded", "VcpuLimitExceeded"})
TOKEN_TERMINATED = "IdempotentInstanceTerminated"
TOKEN_MISMATCH = "IdempotentParameterMismatch"
TOKEN_GENERATIONS = 5
# The seat tries its next choice after these; any other error ends its attempts.
FALLBACK_CODES = CAPACITY_CODES | QUOTA_CODES | {TOKEN_TERMINATED}
NOT_FOUND = "InvalidInstanceID.NotFound"
# AWSRetry already retries RequestLimitExceeded, Throttling, InternalError, InternalFailure, ServiceUnavailable,
# Unavailable and TooManyRequestsException.
THROTTLING_CODES = ["ThrottlingException"]
RETRY = {"retries": 10, "delay": 3, "max_delay": 60}
RUN_AGAIN = "run again: only the missing seats are launched"


class FleetError(Exception):
    """A failure with a message for the operator."""


def retry_decorator(extra_codes: list[str] | None = None) -> Callable:
    """Jittered backoff on throttling and AWS-side errors (and extra_codes), bounded by RETRY."""
    return AWSRetry.jittered_backoff(**RETRY, catch_extra_error_codes=THROTTLING_CODES + (extra_codes or []))


def described_instances(ec2: Any, extra_codes: list[str] | None = None, **query: Any) -> list[dict[str, Any]]:
    """Every instance of a paginated DescribeInstances, the whole read retried (paginators bypass the client's retry)."""
    paginator = ec2.get_paginator("describe_instances")
    pages = retry_decorator(extra_codes)(lambda: list(paginator.paginate(**query)))()
    return [instance for page in pages for reservation in page["Reservations"] for instance in reservation["Instances"]]


def describe_course_instances(ec2: Any, course: str) -> list[dict[str, Any]]:
    """Every live instance tagged with the course and ManagedBy, oldest first."""
    filters = [
        {"Name": "tag:Course", "Values": [course]},
        {"Name": "tag:ManagedBy", "Values": [MANAGED_BY]},
        {"Name": "instance-state-name", "Values": LIVE_STATES},
    ]
    instances = described_instances(ec2, Filters=filters)
    return sorted(instances, key=lambda i: (i.get("LaunchTime") or 0, i["InstanceId"]))


def split_fleet(instances: list[dict[str, Any]], seat_names: list[str]) -> tuple[dict[str, dict], list[dict]]:
    """Map seat name -> instance; everything else (unknown names, duplicates) is extra."""
    wanted = set(seat_names)
    by_seat: dict[str, dict[str, Any]] = {}
    extra = []
    for instance in instances:
        name = tag_dict(instance).get("Name", "")
        if name in wanted and name not in by_seat:
            by_seat[name] = instance
        else:
            extra.append(instance)
    return by_seat, extra


def instance_state(instance: dict[str, Any]) -> str:
    return instance["State"]["Name"]


def seat_record(number: int, name: str, instance: dict[str, Any] | None) -> dict[str, Any]:
    """The normalised seat of the provider contract."""
    if instance is None:
        return {"seat": number, "name": name, "id": "", "state": "pending", "public_ip": None,
                "private_ip": None, "url": "", "provider": "aws", "instance_type": "", "availability_zone": "",
                "subnet_id": ""}
    public_ip = instance.get("PublicIpAddress")
    return {
        "seat": number,
        "name": name,
        "id": instance["InstanceId"],
        "state": instance_state(instance),
        "public_ip": public_ip,
        "private_ip": instance.get("PrivateIpAddress"),
        "url": f"https://{public_ip}/vnc.html" if public_ip else "",
        "provider": "aws",
        "instance_type": instance.get("InstanceType") or "",
        "availability_zone": (instance.get("Placement") or {}).get("AvailabilityZone") or "",
        "subnet_id": instance.get("SubnetId") or "",
    }


def extra_record(instance: dict[str, Any]) -> dict[str, str]:
    return {"name": tag_dict(instance).get("Name", ""), "id": instance["InstanceId"], "state": instance_state(instance)}


def label(instance: dict[str, Any]) -> str:
    return tag_dict(instance).get("Name") or instance["InstanceId"]


def root_device_name(ec2: Any, image_id: str) -> str:
    try:
        images = ec2.describe_images(ImageIds=[image_id], aws_retry=True)["Images"]
    except botocore.exceptions.ClientError as exc:
        if "NotFound" in exc.response["Error"]["Code"] or "Malformed" in exc.response["Error"]["Code"]:
            images = []
        else:
            raise
    if not images:
        raise FleetError(f"image {image_id} does not exist in this region; check aws.image_id or aws.image_name.")
    return images[0]["RootDeviceName"]


def seat_tags(params: dict[str, Any], seat_number: int, name: str) -> dict[str, str]:
    """The tags of a seat's instance, volume and Elastic IP."""
    tags = {k: str(v) for k, v in params["tags"].items()}
    tags.update(Name=name, Course=params["course"], ManagedBy=MANAGED_BY, Seat=str(seat_number))
    return tags


def aws_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


@dataclass(frozen=True)
class Choice:
    """One way to launch a seat: an instance type in a placement (a subnet, a zone, or the region's pick)."""

    instance_type: str
    subnet_id: str = ""
    availability_zone: str = ""

    def label(self) -> str:
        where = self.subnet_id or self.availability_zone or "the region's default subnet"
        return f"{self.instance_type} in {where}"


def launch_choices(params: dict[str, Any]) -> list[Choice]:
    """Every placement of the first instance type, then every placement of the next one, and so on."""
    types = list(dict.fromkeys(t for t in (params.get("instance_types") or [params.get("instance_type")]) if t))
    placements = params.get("placements") or [{"subnet_id": params.get("subnet_id")}]
    wheres = list(dict.fromkeys(
        (p.get("subnet_id") or "", "" if p.get("subnet_id") else p.get("availability_zone") or "") for p in placements))
    return [Choice(t, subnet, zone) for t in types for subnet, zone in wheres]


def client_token(params: dict[str, Any], name: str, choice: Choice, generation: int = 0) -> str:
    """The seat's RunInstances idempotency token (48 hex digits, then -<generation> after the first)."""
    identity = "\n".join([params["course"], params.get("edition") or "", name, choice.instance_type, choice.subnet_id,
                          choice.availability_zone])
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:48]
    return digest if generation == 0 else f"{digest}-{generation}"


def launch_request(params: dict[str, Any], seat_number: int, name: str, root_device: str, choice: Choice) -> dict[str, Any]:
    """The RunInstances arguments of one seat in one choice (without its ClientToken)."""
    tag_list = aws_tags(seat_tags(params, seat_number, name))
    request: dict[str, Any] = {
        "ImageId": params["image_id"],
        "InstanceType": choice.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "InstanceInitiatedShutdownBehavior": "stop",
        "BlockDeviceMappings": [{
            "DeviceName": root_device,
            "Ebs": {"VolumeSize": params["disk_gb"], "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True},
        }],
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tag_list},
            {"ResourceType": "volume", "Tags": tag_list},
        ],
    }
    if params["key_name"]:
        request["KeyName"] = params["key_name"]
    groups = [g for g in params["security_group_ids"] if g]
    if choice.subnet_id:
        interface: dict[str, Any] = {"DeviceIndex": 0, "SubnetId": choice.subnet_id,
                                     "AssociatePublicIpAddress": params["assign_public_ip"]}
        if groups:
            interface["Groups"] = groups
        request["NetworkInterfaces"] = [interface]
    elif groups:
        request["SecurityGroupIds"] = groups
    if choice.availability_zone and not choice.subnet_id:
        request["Placement"] = {"AvailabilityZone": choice.availability_zone}
    user_data = params["user_data"].get(name)
    if user_data:
        request["UserData"] = user_data
    return request


def error_message(exc: Exception) -> str:
    message = getattr(exc, "response", {}).get("Error", {}).get("Message", "")
    return message or str(exc)


def capacity_hint(params: dict[str, Any]) -> str:
    """What the course file can add when the choices ran out of capacity (placements of the kind already in use)."""
    placements = params.get("placements") or [{"subnet_id": params.get("subnet_id")}]
    if any(p.get("subnet_id") for p in placements):
        where = "subnets (aws.subnet_ids)"
    elif any(p.get("availability_zone") for p in placements):
        where = "availability zones (aws.availability_zones)"
    else:
        where = "availability zones (aws.availability_zones) or subnets (aws.subnet_ids)"
    return f"add {where} or fallback instance types (aws.fallback_instance_types) to the course file, or run again later"


def quota_hint(types: list[str]) -> str:
    return (f"ask AWS for a higher EC2 quota for {', '.join(types)} in the course's region (Service Quotas, Amazon EC2: "
            "'Running On-Demand <family> instances', counted in vCPUs), or add fallback instance types of another "
            "family (aws.fallback_instance_types) to the course file")


def token_mismatch_hint(params: dict[str, Any]) -> str:
    return ("an earlier launch of this seat in this edition (same ClientToken) used other settings (image, disk, key "
            "pair, groups, tags or user data); if that machine still exists it is among the machines left alone: adopt "
            f"it (-e course_adopt=<id>) or terminate it, then {RUN_AGAIN}")


def token_exhausted_hint(params: dict[str, Any]) -> str:
    return (f"the seat was launched and terminated {TOKEN_GENERATIONS} times in edition '{params.get('edition') or ''}' "
            "of the course; launch tokens depend on the course's edition (output/<course>/credentials.yml), so a new "
            "edition launches with fresh tokens")


class LaunchPlan:
    """The ordered launch choices of a run and what the run learnt about them (shared by the parallel launches)."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.choices = launch_choices(params)
        self.lock = threading.Lock()
        self.out_of_capacity: dict[Choice, str] = {}
        self.over_quota: dict[str, str] = {}

    def known_failure(self, choice: Choice) -> str:
        """The error code an earlier seat got for this choice (or its type's quota), or ''."""
        with self.lock:
            return self.over_quota.get(choice.instance_type) or self.out_of_capacity.get(choice, "")

    def learn(self, choice: Choice, code: str) -> None:
        with self.lock:
            if code in QUOTA_CODES:
                self.over_quota[choice.instance_type] = code
            elif code in CAPACITY_CODES:
                self.out_of_capacity[choice] = code


@dataclass
class Attempt:
    """One choice tried for a seat: the instance it launched, or the error code (and message) it got."""

    choice: Choice
    instance: dict[str, Any] | None = None
    code: str = ""
    message: str = ""
    earlier: bool = False

    def describe(self) -> str:
        if self.earlier:
            return f"{self.choice.label()} ({self.code}, met earlier in this run)"
        if self.code in CAPACITY_CODES or self.code in QUOTA_CODES:
            return f"{self.choice.label()} ({self.code})"
        return f"{self.choice.label()} ({self.code}: {self.message})"


def run_instance(ec2: Any, params: dict[str, Any], request: dict[str, Any], name: str, choice: Choice) -> Attempt:
    """RunInstances with the seat's ClientToken; a token whose machine was terminated gives way to the next one."""
    for generation in range(TOKEN_GENERATIONS):
        token = client_token(params, name, choice, generation)
        try:
            response = ec2.run_instances(**request, ClientToken=token, aws_retry=True)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == TOKEN_TERMINATED:
                continue
            return Attempt(choice, code=error_code(exc), message=error_message(exc))
        except botocore.exceptions.BotoCoreError as exc:
            return Attempt(choice, code=type(exc).__name__, message=str(exc))
        return Attempt(choice, instance=response["Instances"][0])
    return Attempt(choice, code=TOKEN_TERMINATED,
                   message=f"the machines of all {TOKEN_GENERATIONS} launch tokens of the seat were terminated")


def launch_seat(ec2: Any, plan: LaunchPlan, root_device: str, number: int, name: str) -> tuple[dict | None, dict | None]:
    """Try the choices in order; returns the instance, or the seat's shortfall entry."""
    attempts: list[Attempt] = []
    for choice in plan.choices:
        known = plan.known_failure(choice)
        if known:
            attempts.append(Attempt(choice, code=known, earlier=True))
            continue
        attempt = run_instance(ec2, plan.params, launch_request(plan.params, number, name, root_device, choice), name, choice)
        if attempt.instance is not None:
            return attempt.instance, None
        attempts.append(attempt)
        plan.learn(choice, attempt.code)
        if attempt.code not in FALLBACK_CODES:
            break
    return None, launch_shortfall(plan.params, name, attempts)


def launch_shortfall(params: dict[str, Any], name: str, attempts: list[Attempt]) -> dict[str, str]:
    """The seat's shortfall entry: each choice tried with its error code, and the hints that apply."""
    codes = {a.code for a in attempts}
    hints = []
    if codes & CAPACITY_CODES:
        hints.append(capacity_hint(params))
    if codes & QUOTA_CODES:
        hints.append(quota_hint(list(dict.fromkeys(a.choice.instance_type for a in attempts if a.code in QUOTA_CODES))))
    if TOKEN_MISMATCH in codes:
        hints.append(token_mismatch_hint(params))
    if TOKEN_TERMINATED in codes:
        hints.append(token_exhausted_hint(params))
    if codes - CAPACITY_CODES - QUOTA_CODES - {TOKEN_MISMATCH, TOKEN_TERMINATED}:
        hints.append(f"fix the cause, then {RUN_AGAIN}")
    return {"name": name, "reason": "tried " + ", ".join(a.describe() for a in attempts), "hint": "; ".join(hints)}


def dead_seat_shortfall(params: dict[str, Any], name: str, instance: dict[str, Any]) -> dict[str, str]:
    """The shortfall entry of a seat whose machine went shutting-down or terminated while it was waited for."""
    reason = instance.get("StateReason") or {}
    where = Choice(instance.get("InstanceType") or "?", instance.get("SubnetId") or "",
                   (instance.get("Placement") or {}).get("AvailabilityZone") or "").label()
    message = reason.get("Message") or reason.get("Code") or "no reason given"
    hint = (capacity_hint(params) if "Capacity" in (reason.get("Code") or message)
            else f"check the state reason, then {RUN_AGAIN}")
    return {"name": name, "reason": f"{instance['InstanceId']} ({where}) went {instance_state(instance)} while starting: "
                                    f"{message}", "hint": hint}


def launch_seats(ec2: Any, params: dict[str, Any], seats: list[tuple[int, str]],
                 on_launch: Callable[[dict[str, Any]], None] | None = None
                 ) -> tuple[dict[str, dict], list[dict[str, str]], list[str]]:
    """Launch one instance per seat in parallel, each trying the launch choices in order.

    Returns the launched instances by seat name, the shortfall entries of the seats no choice could launch, and
    errors of launched instances that could not be recorded. on_launch is called with each instance as soon as its
    RunInstances returns (to record it)."""
    missing_settings = [k for k, v in (("image_id", params["image_id"]), ("instance_type", launch_choices(params))) if not v]
    if missing_settings:
        raise FleetError(f"seats {', '.join(name for _seat, name in seats)} must be launched but {' and '.join(missing_settings)} "
                         "is not set.")
    root_device = root_device_name(ec2, params["image_id"])
    plan = LaunchPlan(params)

    def launch(seat: tuple[int, str]) -> tuple[str, dict[str, Any] | None, dict[str, str] | None, str]:
        number, name = seat
        instance, shortfall = launch_seat(ec2, plan, root_device, number, name)
        if instance is None:
            return name, None, shortfall, ""
        try:
            if on_launch is not None:
                on_launch(instance)
        except (rec.RecordError, OSError) as exc:
            return name, instance, None, (f"{name}: launched as {instance['InstanceId']} but not recorded ({exc}); once "
                                          f"the record can be written, adopt it with -e course_adopt={instance['InstanceId']}")
        return name, instance, None, ""

    launched: dict[str, dict[str, Any]] = {}
    shortfall: list[dict[str, str]] = []
    unrecorded: list[str] = []
    workers = max(1, min(params["max_parallel_launches"], len(seats)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for name, instance, missing, error in pool.map(launch, seats):
            if instance is not None:
                launched[name] = instance
            if missing:
                shortfall.append(missing)
            if error:
                unrecorded.append(error)
    return launched, shortfall, unrecorded


def settled(instance: dict[str, Any], wanted: str) -> bool:
    """Whether the wait for this instance is over: it is in the wanted state, or dead (unless dead is wanted)."""
    state = instance_state(instance)
    return state == wanted or (wanted != "terminated" and state in DEAD_STATES)


def wait_for_state(ec2: Any, params: dict[str, Any], ids: list[str], wanted: str) -> dict[str, dict[str, Any]]:
    """Poll DescribeInstances until every id is in the wanted state; returns the last descriptions.

    An instance that goes shutting-down or terminated (when that is not wanted) is no longer waited for: the caller
    finds it dead in the descriptions."""
    deadline = time.monotonic() + params["wait_timeout"]
    current: dict[str, dict[str, Any]] = {}
    waiting = list(ids)
    while True:
        current.update(describe_by_ids(ec2, waiting))
        waiting = [i for i in waiting if i in current and not settled(current[i], wanted)]
        if not waiting or not params["wait"]:
            return current
        if time.monotonic() > deadline:
            raise FleetError(f"timed out after {params['wait_timeout']} s waiting for {', '.join(waiting)} to be {wanted}; "
                             "run the same command again to finish.")
        time.sleep(params["wait_delay"])


def describe_by_ids(ec2: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The instances by id; an id AWS does not know yet (just launched) is asked for again with backoff."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 200):
        for instance in described_instances(ec2, [NOT_FOUND], InstanceIds=ids[start:start + 200]):
            found[instance["InstanceId"]] = instance
    return found


def describe_where(ec2: Any, filter_name: str, values: list[str]) -> list[dict[str, Any]]:
    """Instances (any state) whose filter_name is one of values; unknown ids are simply not found."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(values), 200):
        found.extend(described_instances(ec2, Filters=[{"Name": filter_name, "Values": values[start:start + 200]}]))
    return found


def addresses_where(ec2: Any, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Elastic IPs matching every filter (at most 200 values per filter and call)."""
    name, values = next(iter(filters.items()))
    rest = [{"Name": k, "Values": v} for k, v in filters.items() if k != name]
    found: list[dict[str, Any]] = []
    for start in range(0, len(values), 200):
        chunk = [{"Name": name, "Values": values[start:start + 200]}] + rest
        found.extend(ec2.describe_addresses(Filters=chunk, aws_retry=True)["Addresses"])
    return found


def error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


class FleetRecord:
    """The course's record for one region; without a record path, tags alone decide (enabled is false)."""

    def __init__(self, path: str | None, course: str, region: str, check: bool) -> None:
        self.path = path
        self.course = course
        self.region = region
        self.check = check
        self.lock = threading.Lock()
        record = rec.read_record(path, course) if path else None
        self.exists = path is None or record is not None
        self.entry: dict[str, Any] = dict(((record or {}).get("aws") or {}).get(region) or {})

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def ids(self, key: str) -> list[str]:
        return list(self.entry.get(key, []))

    def change(self, add: dict[str, list[str]] | None = None, remove: dict[str, list[str]] | None = None) -> None:
        """Add or remove ids and write the record at once (in check mode only the view changes)."""
        if not self.path:
            return
        with self.lock:
            if self.check:
                rec.apply_change(self.entry, add, remove)
                return
            record, _changed = rec.update_record(self.path, self.course, "aws", self.region,
                                                 lambda entry: rec.apply_change(entry, add, remove))
            self.entry = dict(record.get("aws", {}).get(self.region) or {})


def elastic_ip_room(ec2: Any, course: str, seats: int) -> dict[str, Any]:
    attributes = ec2.describe_account_attributes(AttributeNames=["vpc-max-elastic-ips"], aws_retry=True)
    limit = int(attributes["AccountAttributes"][0]["AttributeValues"][0]["AttributeValue"])
    addresses = ec2.describe_addresses(aws_retry=True)["Addresses"]
    course_count = sum(1 for a in addresses if tag_dict(a).get("Course") == course)
    needed = max(0, seats - course_count)
    return {"limit": limit, "in_use": len(addresses), "course": course_count, "needed": needed,
            "fits": len(addresses) + needed <= limit}


class Fleet:
    """One reconciliation run."""

    def __init__(self, module: AnsibleAWSModule, ec2: Any) -> None:
        self.module = module
        self.ec2 = ec2
        self.params = module.params
        self.seat_names: list[str] = module.params["seat_names"]
        given = module.params["seat_numbers"] or {}
        self.numbers = {name: int(given.get(name, n)) for n, name in enumerate(self.seat_names, 1)}
        self.check = module.check_mode
        self.result: dict[str, Any] = {"changed": False, "launched": [], "started": [], "stopped": [],
                                       "rebooted": [], "terminated": [], "missing": [], "extra": [], "foreign": [],
                                       "adopted": [], "record_exists": True, "unrecorded": "", "allocated": [],
                                       "released": [], "shortfall": []}
        self.by_seat: dict[str, dict[str, Any]] = {}
        self.extra: list[dict[str, Any]] = []
        self.shortfall: list[dict[str, str]] = []
        self.foreign: list[dict[str, str]] = []
        self.region = module.region or ""
        self.record = FleetRecord(module.params["record"], module.params["course"], self.region, module.check_mode)
        self.result["record_exists"] = self.record.exists

    def load(self) -> None:
        tagged = describe_course_instances(self.ec2, self.params["course"])
        owned = self.sort_by_record(tagged) if self.record.enabled else tagged
        self.by_seat, self.extra = split_fleet(owned, self.seat_names)
        self.result["extra"] = [extra_record(i) for i in self.extra]
        if self.record.enabled:
            self.adopt_addresses()

    def sort_by_record(self, tagged: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The course's own live instances: recorded, or adopted now; the other tagged ones are left alone."""
        recorded_ids = self.record.ids("instances")
        recorded = describe_where(self.ec2, "instance-id", recorded_ids) if recorded_ids else []
        gone = [i["InstanceId"] for i in recorded if instance_state(i) == "terminated"]
        if gone:
            self.record.change(remove={"instances": gone})
        live = {i["InstanceId"]: i for i in recorded if instance_state(i) in LIVE_STATES}
        unrecorded = [i for i in tagged if i["InstanceId"] not in recorded_ids]
        adopt = self.params["adopt"]
        adopted = [i for i in unrecorded if rec.ADOPT_ALL in adopt or i["InstanceId"] in adopt]
        foreign = [i for i in unrecorded if i not in adopted]
        self.check_adopt_ids(set(live) | {i["InstanceId"] for i in adopted})
        self.result["adopted"] += [i["InstanceId"] for i in adopted] + sorted(set(live) & set(adopt))
        self.result["foreign"] = [extra_record(i) for i in foreign]
        self.refuse_or_report(foreign)
        if adopted:
            self.result["changed"] = True
            self.record.change(add={"instances": [i["InstanceId"] for i in adopted]})
        owned = list(live.values()) + adopted
        return sorted(owned, key=lambda i: (i.get("LaunchTime") or 0, i["InstanceId"]))

    def check_adopt_ids(self, course_ids: set[str]) -> None:
        unknown = [i for i in self.params["adopt"] if i.startswith("i-") and i not in course_ids]
        if unknown and self.params["require_adopted"]:
            raise FleetError(
                f"course_adopt names {', '.join(unknown)}, not a live machine tagged with course {self.params['course']} "
                f"(tags Course={self.params['course']}, ManagedBy={MANAGED_BY}) in {self.region}. Nothing was "
                "changed. Check the ids and the course's aws.region; a machine must carry both tags to be adopted.")

    def refuse_or_report(self, foreign: list[dict[str, Any]]) -> None:
        """Without any record file, tagged machines stop everything but status; with one, they are named."""
        if not foreign:
            return
        items = [{"id": i["InstanceId"], "name": tag_dict(i).get("Name", "")} for i in foreign]
        where = f"region {self.region}"
        if not self.record.exists:
            self.result["unrecorded"] = rec.unrecorded_refusal(self.params["course"], self.record.path, where, "machine", items)
            if self.params["state"] != "status":
                raise FleetError(self.result["unrecorded"])
        self.foreign = items

    def warn_foreign(self) -> None:
        """Name the machines left alone (at the end: a launch may have recovered one by its ClientToken)."""
        if self.foreign and self.params["warn_foreign"]:
            self.module.warn(rec.foreign_notice(self.params["course"], self.record.path, f"region {self.region}",
                                                "machine", self.foreign))

    def recover_foreign(self, instances: list[dict[str, Any]]) -> None:
        """Launched instances that were left alone: a launch the record missed (the run died), returned by its token."""
        ids = {i["InstanceId"] for i in instances}
        self.foreign = [i for i in self.foreign if i["id"] not in ids]
        self.result["foreign"] = [i for i in self.result["foreign"] if i["id"] not in ids]

    def adopt_addresses(self) -> None:
        """Record the Elastic IPs named in adopt (or all) that carry the course's tags."""
        adopt = self.params["adopt"]
        wanted = [a for a in adopt if a.startswith("eipalloc-")]
        if rec.ADOPT_ALL not in adopt and not wanted:
            return
        tagged = addresses_where(self.ec2, {"tag:Course": [self.params["course"]], "tag:ManagedBy": [MANAGED_BY]})
        ids = [a["AllocationId"] for a in tagged if rec.ADOPT_ALL in adopt or a["AllocationId"] in wanted]
        self.result["adopted"] += [a for a in wanted if a in ids]
        new = [a for a in ids if a not in self.record.ids("addresses")]
        if new:
            self.result["changed"] = True
            self.record.change(add={"addresses": new})

    def refuse_unconfirmed_shrink(self) -> None:
        if self.extra and not self.params["allow_shrink"]:
            listed = ", ".join(f"{label(i)} ({i['InstanceId']})" for i in self.extra)
            raise FleetError(
                f"course {self.params['course']} now has {len(self.seat_names)} seats, but {len(self.extra)} more machine(s) "
                f"are the course's: {listed}. Converging would terminate them and their disks. Nothing was changed. "
                f"To terminate them, {SHRINK_HINT}."
            )

    def refuse_without_elastic_ip_room(self) -> None:
        room = elastic_ip_room(self.ec2, self.params["course"], len(self.seat_names))
        self.result["elastic_ips"] = room
        if self.params["state"] in ("present", "running") and not room["fits"]:
            raise FleetError(
                f"the course needs {room['needed']} more Elastic IP(s) but the account allows {room['limit']} in this region "
                f"and {room['in_use']} are allocated; nothing was changed. Ask AWS for a higher 'EC2-VPC Elastic IPs' "
                "quota, release unused addresses, or set aws.elastic_ips: false."
            )

    def terminate(self, instances: list[dict[str, Any]], with_recorded_addresses: bool = False) -> None:
        """Terminate the instances, then release their Elastic IPs (and the recorded ones, when asked)."""
        live = [i for i in instances if instance_state(i) != "terminated"]
        addresses = self.addresses_of(live, with_recorded_addresses) if self.record.enabled else []
        if live:
            self.result["changed"] = True
            self.result["terminated"].extend(label(i) for i in live)
        if live and not self.check:
            ids = [i["InstanceId"] for i in live]
            self.ec2.terminate_instances(InstanceIds=ids, aws_retry=True)
            after = wait_for_state(self.ec2, self.params, ids, "terminated")
            self.record.change(remove={"instances": [i for i in ids if i in after and instance_state(after[i]) == "terminated"]})
        self.release(addresses)

    def addresses_of(self, instances: list[dict[str, Any]], with_recorded: bool) -> list[dict[str, Any]]:
        """Elastic IPs on the instances (tagged or not), and the recorded ones of the region when asked."""
        found: dict[str, dict[str, Any]] = {}
        ids = [i["InstanceId"] for i in instances]
        for address in addresses_where(self.ec2, {"instance-id": ids}) if ids else []:
            found[address["AllocationId"]] = address
        recorded = self.record.ids("addresses") if with_recorded else []
        for address in addresses_where(self.ec2, {"allocation-id": recorded}) if recorded else []:
            found[address["AllocationId"]] = address
        gone = [a for a in recorded if a not in found]
        if gone:
            self.record.change(remove={"addresses": gone})
        return list(found.values())

    def release(self, addresses: list[dict[str, Any]]) -> None:
        for address in addresses:
            self.result["changed"] = True
            self.result["released"].append(address.get("PublicIp") or address["AllocationId"])
            if self.check:
                continue
            if address.get("AssociationId"):
                try:
                    self.ec2.disassociate_address(AssociationId=address["AssociationId"], aws_retry=True)
                except botocore.exceptions.ClientError as exc:
                    if "NotFound" not in error_code(exc):
                        raise
            try:
                self.ec2.release_address(AllocationId=address["AllocationId"], aws_retry=True)
            except botocore.exceptions.ClientError as exc:
                if "NotFound" not in error_code(exc):
                    raise
            self.record.change(remove={"addresses": [address["AllocationId"]]})

    def ensure_addresses(self) -> None:
        """One Elastic IP per seat, tagged at allocation and recorded before it is associated."""
        seats = [(self.numbers[name], name, self.by_seat[name]) for name in self.seat_names if name in self.by_seat]
        if not seats:
            return
        instance_ids = [instance["InstanceId"] for _seat, _name, instance in seats]
        on_seats = {a["InstanceId"]: a for a in addresses_where(self.ec2, {"instance-id": instance_ids})}
        recorded = self.record.ids("addresses")
        spare = [a for a in (addresses_where(self.ec2, {"allocation-id": recorded}) if recorded else [])
                 if not a.get("AssociationId") and not a.get("InstanceId")]
        for number, name, instance in seats:
            tags = seat_tags(self.params, number, name)
            address = on_seats.get(instance["InstanceId"])
            if address is None:
                self.result["changed"] = True
                self.result["allocated"].append(name)
                if self.check:
                    continue
                address = spare.pop(0) if spare else self.allocate(tags)
                self.ec2.associate_address(AllocationId=address["AllocationId"], InstanceId=instance["InstanceId"],
                                           aws_retry=True)
            self.converge_address(address, tags)
        if self.result["allocated"] and not self.check:
            self.refresh()

    def allocate(self, tags: dict[str, str]) -> dict[str, Any]:
        address = self.ec2.allocate_address(
            Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": aws_tags(tags)}], aws_retry=True)
        self.record.change(add={"addresses": [address["AllocationId"]]})
        return dict(address, Tags=aws_tags(tags))

    def converge_address(self, address: dict[str, Any], tags: dict[str, str]) -> None:
        """A seat's address carries the seat's tags and is in the record."""
        missing = {k: v for k, v in tags.items() if tag_dict(address).get(k) != v}
        if missing:
            self.result["changed"] = True
            if not self.check:
                self.ec2.create_tags(Resources=[address["AllocationId"]], Tags=aws_tags(missing), aws_retry=True)
        if self.record.enabled and address["AllocationId"] not in self.record.ids("addresses"):
            self.result["changed"] = True
            self.record.change(add={"addresses": [address["AllocationId"]]})

    def launch_missing(self) -> None:
        missing = [(self.numbers[name], name) for name in self.seat_names if name not in self.by_seat]
        if not missing:
            return
        self.result["changed"] = True
        self.result["launched"] = [name for _seat, name in missing]
        if self.check:
            return
        on_launch = (lambda instance: self.record.change(add={"instances": [instance["InstanceId"]]})) \
            if self.record.enabled else None
        launched, shortfall, unrecorded = launch_seats(self.ec2, self.params, missing, on_launch)
        self.by_seat.update(launched)
        self.result["launched"] = [name for _seat, name in missing if name in launched]
        self.shortfall.extend(shortfall)
        self.recover_foreign(list(launched.values()))
        if unrecorded:
            raise FleetError(f"{len(unrecorded)} seat(s) could not be recorded ({'; '.join(unrecorded)}); "
                             f"{len(launched)} were launched. Fix the cause and {RUN_AGAIN}.")

    def start_stopped(self) -> None:
        stopping = [i["InstanceId"] for i in self.by_seat.values() if instance_state(i) == "stopping"]
        if stopping and not self.check:
            self.refresh(wait_for_state(self.ec2, self.params, stopping, "stopped"))
        to_start = [i for i in self.by_seat.values() if instance_state(i) in ("stopped", "stopping")]
        if not to_start:
            return
        self.result["changed"] = True
        self.result["started"] = sorted(label(i) for i in to_start)
        if not self.check:
            self.ec2.start_instances(InstanceIds=[i["InstanceId"] for i in to_start], aws_retry=True)

    def stop_running(self) -> None:
        everything = list(self.by_seat.values()) + self.extra
        to_stop = [i for i in everything if instance_state(i) in ("pending", "running")]
        if to_stop:
            self.result["changed"] = True
            self.result["stopped"] = sorted(label(i) for i in to_stop)
            if not self.check:
                self.ec2.stop_instances(InstanceIds=[i["InstanceId"] for i in to_stop], aws_retry=True)
        if not self.check:
            ids = [i["InstanceId"] for i in everything if instance_state(i) != "stopped"]
            if ids:
                self.refresh(wait_for_state(self.ec2, self.params, ids, "stopped"))

    def reboot_running(self) -> None:
        to_reboot = [i for i in self.by_seat.values() if instance_state(i) == "running"]
        if not to_reboot:
            return
        self.result["changed"] = True
        self.result["rebooted"] = sorted(label(i) for i in to_reboot)
        if not self.check:
            self.ec2.reboot_instances(InstanceIds=[i["InstanceId"] for i in to_reboot], aws_retry=True)

    def wait_running(self) -> None:
        if self.check:
            return
        ids = [i["InstanceId"] for i in self.by_seat.values()]
        if ids:
            self.refresh(wait_for_state(self.ec2, self.params, ids, "running"))
            self.drop_dead_seats()

    def drop_dead_seats(self) -> None:
        """Seats whose machine died while starting are missing: in the shortfall, with the machine's state reason."""
        for name in self.seat_names:
            instance = self.by_seat.get(name)
            if instance is not None and instance_state(instance) in DEAD_STATES:
                del self.by_seat[name]
                self.shortfall.append(dead_seat_shortfall(self.params, name, instance))

    def refresh(self, described: dict[str, dict[str, Any]] | None = None) -> None:
        """Re-read the seats (states and addresses change after launch, start and stop)."""
        if described is None:
            ids = [i["InstanceId"] for i in self.by_seat.values()]
            described = describe_by_ids(self.ec2, ids) if ids else {}
        for name, instance in list(self.by_seat.items()):
            if instance["InstanceId"] in described:
                self.by_seat[name] = described[instance["InstanceId"]]

    def seats(self) -> list[dict[str, Any]]:
        records = []
        for name in self.seat_names:
            number = self.numbers[name]
            if name in self.by_seat:
                records.append(seat_record(number, name, self.by_seat[name]))
            elif self.check and name in self.result["launched"]:
                records.append(seat_record(number, name, None))
        return records

    def summarise(self) -> None:
        """The seats, the missing ones and the shortfall (in seat order) into the result."""
        order = {name: n for n, name in enumerate(self.seat_names)}
        self.result["shortfall"] = sorted(self.shortfall, key=lambda s: order.get(s["name"], len(order)))
        pending = self.result["launched"] if self.check else []
        self.result["missing"] = [n for n in self.seat_names if n not in self.by_seat and n not in pending]
        self.result["seats"] = self.seats()

    def shortfall_message(self) -> str:
        shortfall = self.result["shortfall"]
        items = "; ".join(f"{s['name']}: {s['reason']}" for s in shortfall)
        hints = [h[0].upper() + h[1:] for h in dict.fromkeys(s["hint"] for s in shortfall) if h]
        return (f"{len(shortfall)} of {len(self.seat_names)} seats could not be launched: {items}. "
                + "".join(f"{h}. " for h in hints)).rstrip()

    def run(self) -> dict[str, Any]:
        try:
            return self.converge()
        finally:
            self.warn_foreign()

    def converge(self) -> dict[str, Any]:
        state = self.params["state"]
        self.load()
        if state in ("present", "running"):
            self.refuse_unconfirmed_shrink()
        if self.params["elastic_ips"]:
            self.refuse_without_elastic_ip_room()
        if state in ("present", "running"):
            self.terminate(self.extra)
            if state == "present" or self.params["launch_missing"]:
                self.launch_missing()
            if state == "running":
                self.start_stopped()
            if state == "running":
                self.wait_running()
            else:
                self.wait_launched()
            if self.params["elastic_ips"]:
                self.ensure_addresses()
        elif state == "stopped":
            self.stop_running()
        elif state == "rebooted":
            self.reboot_running()
        elif state == "absent":
            self.terminate(list(self.by_seat.values()) + self.extra, with_recorded_addresses=True)
            if not self.check:
                self.by_seat = {}
        if not self.check and state in ("stopped", "rebooted"):
            self.refresh()
        self.summarise()
        if self.result["shortfall"] and self.params.get("fail_on_shortfall", True):
            raise FleetError(self.shortfall_message())
        return self.result

    def wait_launched(self) -> None:
        """With state=present, wait only for the seats launched now."""
        if self.check or not self.result["launched"]:
            return
        ids = [self.by_seat[n]["InstanceId"] for n in self.result["launched"] if n in self.by_seat]
        self.refresh(wait_for_state(self.ec2, self.params, ids, "running"))
        self.drop_dead_seats()


ARGUMENT_SPEC = dict(
    course=dict(type="str", required=True),
    state=dict(type="str", default="running", choices=["present", "running", "stopped", "rebooted", "absent", "status"]),
    seat_names=dict(type="list", elements="str", default=[]),
    seat_numbers=dict(type="dict", default={}),
    launch_missing=dict(type="bool", default=True),
    allow_shrink=dict(type="bool", default=False),
    image_id=dict(type="str"),
    instance_type=dict(type="str"),
    instance_types=dict(type="list", elements="str", default=[]),
    placements=dict(type="list", elements="dict", default=[],
                    options=dict(subnet_id=dict(type="str"), availability_zone=dict(type="str"))),
    edition=dict(type="str", default=""),
    fail_on_shortfall=dict(type="bool", default=True),
    key_name=dict(type="str", no_log=False),
    security_group_ids=dict(type="list", elements="str", default=[]),
    subnet_id=dict(type="str"),
    assign_public_ip=dict(type="bool", default=True),
    disk_gb=dict(type="int", default=30),
    tags=dict(type="dict", default={}),
    user_data=dict(type="dict", default={}, no_log=True),
    elastic_ips=dict(type="bool", default=False),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=900),
    wait_delay=dict(type="int", default=5),
    max_parallel_launches=dict(type="int", default=8),
    record=dict(type="path"),
    adopt=dict(type="list", elements="str", default=[]),
    require_adopted=dict(type="bool", default=True),
    warn_foreign=dict(type="bool", default=True),
)


def main() -> None:
    module = AnsibleAWSModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if len(set(module.params["seat_names"])) != len(module.params["seat_names"]):
        module.fail_json(msg="seat_names must be unique.")
    if module.params["adopt"] and not module.params["record"]:
        module.fail_json(msg="adopt needs record: adopting means adding to the course's record.")
    ec2 = module.client("ec2", retry_decorator=retry_decorator())
    try:
        fleet = Fleet(module, ec2)
    except (rec.RecordError, OSError) as exc:
        module.fail_json(msg=f"cannot read the course's record: {exc}")
    try:
        result = fleet.run()
    except FleetError as exc:
        module.fail_json(msg=str(exc), **fleet.result)
    except (rec.RecordError, OSError) as exc:
        module.fail_json(msg=f"cannot write the course's record: {exc}. Fix the cause (disk full? permissions of "
                             f"{module.params['record']}?) and run again.", **fleet.result)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"AWS refused a call for course {module.params['course']}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
