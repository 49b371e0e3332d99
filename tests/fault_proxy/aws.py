"""What the fault proxy reads from an AWS request, and the errors it answers with, in AWS's formats.

The formats are the ones botocore parses: EC2's Query error document
(``<Response><Errors><Error><Code>...``), the other Query services' ``<ErrorResponse>``,
and the JSON protocol's ``{"__type": ...}``. Status codes are the ones AWS sends:
EC2 ``RequestLimitExceeded`` comes with HTTP 503 and ``InsufficientInstanceCapacity``
with HTTP 500 (both retried by botocore as server errors before the caller sees them);
``Throttling`` of the other Query services and ``ThrottlingException`` of the JSON
services come with HTTP 400.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

CREDENTIAL_RE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


@dataclass
class AwsRequest:
    """One API call: service and region (from the signature), action, and its form parameters."""

    method: str
    path: str
    service: str
    region: str
    action: str
    protocol: str  # query, json or rest
    params: dict[str, str] = field(default_factory=dict)

    @property
    def zone(self) -> str:
        return self.params.get("Placement.AvailabilityZone", "")

    @property
    def subnet_id(self) -> str:
        return self.params.get("SubnetId") or self.params.get("NetworkInterface.1.SubnetId", "")

    @property
    def instance_type(self) -> str:
        return self.params.get("InstanceType", "")

    @property
    def client_token(self) -> str:
        return self.params.get("ClientToken", "")


def parse_request(method: str, path: str, headers: dict[str, str], body: bytes) -> AwsRequest:
    """Read the service, region and action of a signed AWS request (Query, JSON or REST protocol)."""
    lower = {k.lower(): v for k, v in headers.items()}
    found = CREDENTIAL_RE.search(lower.get("authorization", ""))
    region, service = found.groups() if found else ("", "")
    url = urlsplit(path)
    target = lower.get("x-amz-target", "")
    if target:
        return AwsRequest(method, path, service, region, target.rsplit(".", 1)[-1], "json")
    params = dict(parse_qsl(url.query, keep_blank_values=True))
    if "x-www-form-urlencoded" in lower.get("content-type", "") and body:
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if "Action" in params:
        return AwsRequest(method, path, service, region, params["Action"], "query", params)
    return AwsRequest(method, path, service, region, f"{method} {url.path}", "rest")


@dataclass
class Answer:
    """An HTTP answer made by the proxy itself."""

    status: int
    body: bytes
    content_type: str
    code: str

    def headers(self) -> dict[str, str]:
        return {"Content-Type": self.content_type, "x-amzn-RequestId": str(uuid.uuid4())}


def error_answer(request: AwsRequest, status: int, code: str, message: str) -> Answer:
    """An error in the format the request's service uses."""
    request_id = str(uuid.uuid4())
    if request.protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        return Answer(status, body, "application/x-amz-json-1.1", code)
    if request.service == "ec2":
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{escape(code)}</Code>'
               f"<Message>{escape(message)}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
    elif request.protocol == "query":
        xml = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
               f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    else:
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>'
               f"<RequestId>{request_id}</RequestId></Error>")
    return Answer(status, xml.encode(), "text/xml;charset=UTF-8", code)


def throttling_answer(request: AwsRequest) -> Answer:
    """What AWS answers to a call over the account's request rate."""
    if request.service == "ec2":
        message = (f"Request limit exceeded. Account 123456789012 has been throttled on ec2:{request.action} "
                   "because it exceeded its request rate limit.")
        return error_answer(request, 503, "RequestLimitExceeded", message)
    if request.protocol == "json":
        return error_answer(request, 400, "ThrottlingException", "Rate exceeded")
    if request.protocol == "query":
        return error_answer(request, 400, "Throttling", "Rate exceeded")
    return error_answer(request, 503, "SlowDown", "Please reduce your request rate.")


def capacity_answer(request: AwsRequest, zone: str, other_zones: list[str]) -> Answer:
    """EC2's answer to a RunInstances it has no capacity for (the message AWS writes, with the zones left)."""
    itype = request.instance_type or "m1.small"
    where = f" in the Availability Zone you requested ({zone})" if zone else ""
    message = (f"We currently do not have sufficient {itype} capacity{where}. "
               "Our system will be working on provisioning additional capacity.")
    if zone and other_zones:
        message += (f" You can currently get {itype} capacity by not specifying an Availability Zone in your request "
                    f"or choosing {', '.join(other_zones)}.")
    return error_answer(request, 500, "InsufficientInstanceCapacity", message)


def idempotency_mismatch_answer(request: AwsRequest) -> Answer:
    message = ("Arguments on this idempotent request are inconsistent with arguments used in previous request(s) "
               f"(token {request.client_token}).")
    return error_answer(request, 400, "IdempotentParameterMismatch", message)


def idempotency_terminated_answer(request: AwsRequest) -> Answer:
    message = ("The client token you have provided is associated with a resource that is already deleted. "
               "Please use a different client token.")
    return error_answer(request, 400, "IdempotentInstanceTerminated", message)
