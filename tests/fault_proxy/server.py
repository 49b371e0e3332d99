"""The fault proxy: a reverse HTTP proxy on 127.0.0.1 that forwards AWS calls to moto, with faults.

Give its URL as the AWS endpoint (AWS_ENDPOINT_URL) to boto3 and Ansible; it forwards
every request to the upstream (a moto server) unless a rule of the rule file answers it
first (see rules.py). The rule file is read again whenever it changes, so a test can
switch faults mid-run. Every request is logged when it arrives (event ``request``), when
the cloud has answered it (``forwarded``) and when its answer is sent, dropped or
abandoned (``answer``), in memory for ``wait_for`` and, when asked, as JSON lines in a
file that another process can follow.

What it adds to moto beyond faults: RunInstances is idempotent by ClientToken, as in EC2
(moto launches again): a repeated token with the same parameters gets the first answer
back, with other parameters ``IdempotentParameterMismatch``, and once the machine it
launched is terminated ``IdempotentInstanceTerminated``. The tokens live as long as the
proxy.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import re
import select
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit

from .aws import (
    Answer,
    AwsRequest,
    capacity_answer,
    idempotency_mismatch_answer,
    idempotency_terminated_answer,
    parse_request,
    throttling_answer,
)
from .rules import Rule, RuleError, RuleSet, load_rules, write_rules

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length", "server", "date"}
UPSTREAM_TIMEOUT = 300


@dataclass
class Reply:
    """An upstream answer, kept for a repeated ClientToken."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class FaultProxy:
    """Start with ``start()``, stop with ``stop()``; ``url`` is the endpoint to give to AWS clients."""

    def __init__(self, upstream: str, rules_path: Path, log_path: Path | None = None, port: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.rules_path = Path(rules_path)
        self.log_path = Path(log_path) if log_path else None
        self.events: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self._seq = itertools.count(1)
        self._rules = RuleSet(rules=[])
        self._rules_stamp: tuple[int, int, int] | None = None
        self._rules_lock = threading.Lock()
        self._zones: dict[str, list[str]] = {}
        self._subnet_zones: dict[tuple[str, str], str] = {}
        self._tokens: dict[tuple[str, str], tuple[str, Reply]] = {}
        self._token_locks: dict[tuple[str, str], threading.Lock] = {}
        self._tokens_lock = threading.Lock()
        self.httpd = ProxyHTTPServer(("127.0.0.1", port), self)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="fault-proxy", daemon=True)

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FaultProxy":
        self.rules()  # a broken rule file fails here, not in a request
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ rules
    def set_rules(self, rules: list[dict[str, Any]], seed: int = 0) -> None:
        """Write the rule file (the proxy reads it before its next request)."""
        write_rules(self.rules_path, rules, seed)

    def rules(self) -> RuleSet:
        """The current rules, read again when the file changed (its counters start again)."""
        try:
            stat = self.rules_path.stat()
            stamp: tuple[int, int, int] | None = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._rules_lock:
            if stamp != self._rules_stamp:
                self._rules = load_rules(self.rules_path)
                self._rules_stamp = stamp
            return self._rules

    # ------------------------------------------------------------------ log
    def log(self, event: str, request: AwsRequest, seq: int, **details: Any) -> None:
        entry = {"seq": seq, "time": time.time(), "event": event, "service": request.service,
                 "action": request.action, **details}
        with self.changed:
            self.events.append(entry)
            if self.log_path:
                with self.log_path.open("a") as stream:
                    stream.write(json.dumps(entry) + "\n")
            self.changed.notify_all()

    def forget(self) -> None:
        """Empty the in-memory log (the log file keeps everything)."""
        with self.changed:
            self.events.clear()

    def find(self, action: str | None = None, event: str = "answer", **details: Any) -> list[dict[str, Any]]:
        """The logged events of an action (any when None) and kind, with the given details."""
        with self.changed:
            return [e for e in self.events if e["event"] == event and (action is None or e["action"] == action)
                    and all(e.get(k) == v for k, v in details.items())]

    def wait_for(self, action: str | None = None, event: str = "answer", count: int = 1, timeout: float = 300,
                 **details: Any) -> list[dict[str, Any]]:
        """Block until `count` events of the action have been logged; they are returned."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = self.find(action, event, **details)
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the fault proxy saw {len(found)} of {count} {event} events of {action or 'any action'}"
                                       f" in {timeout:g} s")
                self.changed.wait(min(left, 1.0))

    def wait_until(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 300) -> None:
        """Block until predicate(events) holds."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate(list(self.events)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the fault proxy's log did not reach the awaited point in {timeout:g} s")
                self.changed.wait(min(left, 1.0))

    def counts(self, event: str = "answer") -> dict[str, int]:
        """How many events of each action were logged."""
        totals: dict[str, int] = {}
        for entry in self.find(None, event):
            totals[entry["action"]] = totals.get(entry["action"], 0) + 1
        return totals

    # ------------------------------------------------------------------ what moto knows
    def _ec2_call(self, region: str, action: str, params: dict[str, str]) -> str:
        """One unsigned-enough EC2 Query call to the upstream (moto checks no signature)."""
        body = urlencode({"Action": action, "Version": "2016-11-15", **params})
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                   "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20240101/{region}/ec2/aws4_request, "
                                    "SignedHeaders=host, Signature=0"}
        status, _, data = self._send_upstream("POST", "/", headers, body.encode())
        if status != 200:
            raise RuntimeError(f"upstream {action} answered {status}: {data[:300]!r}")
        return data.decode()

    def zones(self, region: str) -> list[str]:
        if region not in self._zones:
            text = self._ec2_call(region, "DescribeAvailabilityZones", {})
            self._zones[region] = sorted(set(re.findall(r"<zoneName>([^<]+)</zoneName>", text)))
        return self._zones[region]

    def subnet_zone(self, region: str, subnet_id: str) -> str:
        key = (region, subnet_id)
        if key not in self._subnet_zones:
            text = self._ec2_call(region, "DescribeSubnets", {"SubnetId.1": subnet_id})
            found = re.search(r"<availabilityZone>([^<]+)</availabilityZone>", text)
            if not found:
                return ""  # moto will refuse the unknown subnet itself
            self._subnet_zones[key] = found.group(1)
        return self._subnet_zones[key]

    def zone_of(self, request: AwsRequest) -> str:
        if request.zone:
            return request.zone
        return self.subnet_zone(request.region, request.subnet_id) if request.subnet_id else ""

    # ------------------------------------------------------------------ deciding
    @staticmethod
    def capacity_matches(rule: Rule, zone: str, instance_type: str) -> bool:
        if rule.zone and rule.zone != zone:
            return False
        return not rule.instance_type or rule.instance_type == instance_type

    def decide(self, request: AwsRequest) -> tuple[list[Rule], Rule | None]:
        """The delays to wait, then the rule that answers (None: forward)."""
        ruleset = self.rules()
        delays: list[Rule] = []
        zone = self.zone_of(request) if request.action == "RunInstances" and any(
            r.kind == "capacity" for r in ruleset.rules) else ""
        with ruleset.lock:
            for rule in ruleset.rules:
                if not rule.concerns(request.action):
                    continue
                if rule.kind == "capacity" and not self.capacity_matches(rule, zone, request.instance_type):
                    continue
                if not rule.draw(request.action):
                    continue
                if rule.kind == "delay":
                    delays.append(rule)
                    continue
                return delays, rule
        return delays, None

    def capacity_error(self, request: AwsRequest) -> Answer:
        zone = self.zone_of(request)
        ruleset = self.rules()
        others = [z for z in self.zones(request.region) if z != zone and not any(
            r.kind == "capacity" and self.capacity_matches(r, z, request.instance_type) for r in ruleset.rules)]
        return capacity_answer(request, zone, others)

    # ------------------------------------------------------------------ forwarding
    def _send_upstream(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        target = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=UPSTREAM_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            return response.status, kept, data
        finally:
            conn.close()

    def forward(self, request: AwsRequest, headers: dict[str, str], body: bytes) -> Reply:
        """Send to moto; a RunInstances with a ClientToken seen before gets the first answer (EC2's idempotency)."""
        if request.action != "RunInstances" or not request.client_token:
            return Reply(*self._send_upstream(request.method, request.path, headers, body))
        key = (request.region, request.client_token)
        fingerprint = json.dumps(sorted((k, v) for k, v in request.params.items() if k != "ClientToken"))
        with self._tokens_lock:
            lock = self._token_locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._tokens:
                seen, reply = self._tokens[key]
                if seen != fingerprint:
                    answer = idempotency_mismatch_answer(request)
                elif self.launched_terminated(request.region, reply.body):
                    answer = idempotency_terminated_answer(request)
                else:
                    return reply
                return Reply(answer.status, list(answer.headers().items()), answer.body)
            reply = Reply(*self._send_upstream(request.method, request.path, headers, body))
            if reply.status == 200:
                self._tokens[key] = (fingerprint, reply)
            return reply

    def launched_terminated(self, region: str, run_reply: bytes) -> bool:
        """Whether every instance a RunInstances answer names is terminated (EC2 then refuses its token)."""
        ids = re.findall(r"<instanceId>([^<]+)</instanceId>", run_reply.decode())
        if not ids:
            return False
        text = self._ec2_call(region, "DescribeInstances", {f"InstanceId.{n}": i for n, i in enumerate(ids, 1)})
        states = re.findall(r"<instanceState>\s*<code>\d+</code>\s*<name>([^<]+)</name>", text)
        return bool(states) and all(state in ("shutting-down", "terminated") for state in states)

    def pause(self, seconds: float) -> None:
        self.stopping.wait(seconds)


class ProxyHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], proxy: FaultProxy) -> None:
        self.proxy = proxy
        super().__init__(address, ProxyHandler)


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: botocore reuses its connections
    server: ProxyHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
        pass

    def handle_one(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        request = parse_request(self.command, self.path, dict(self.headers.items()), body)
        seq = next(proxy._seq)
        proxy.log("request", request, seq)
        try:
            delays, rule = proxy.decide(request)
        except RuleError as exc:  # a broken rule file written mid-run: say so to the caller and the log
            proxy.log("answer", request, seq, status=500, rule="", error=str(exc))
            self.reply(500, [("Content-Type", "text/plain")], f"fault proxy rule file: {exc}".encode())
            return
        waits = [d for d in delays if d.at == "request"]
        if sum(d.seconds for d in waits) and not self.wait_for_caller(sum(d.seconds for d in waits)):
            proxy.log("answer", request, seq, status="abandoned", rule="", delays=[d.describe() for d in waits])
            self.close_connection = True
            return
        applied = [d.describe() for d in delays]
        if rule is not None and rule.kind == "drop":
            if rule.processed:
                try:
                    proxy.forward(request, headers, body)
                    proxy.log("forwarded", request, seq)
                except (OSError, http.client.HTTPException) as exc:
                    proxy.log("forwarded", request, seq, error=str(exc))
            proxy.log("answer", request, seq, status="dropped", rule=rule.describe(), delays=applied)
            self.drop()
            return
        if rule is not None:
            answer = throttling_answer(request) if rule.kind == "throttle" else proxy.capacity_error(request)
            status, reply_headers, data, code = answer.status, list(answer.headers().items()), answer.body, answer.code
        else:
            try:
                reply = proxy.forward(request, headers, body)
            except (OSError, http.client.HTTPException) as exc:
                proxy.log("answer", request, seq, status=502, rule="", delays=applied, error=str(exc))
                self.reply(502, [("Content-Type", "text/plain")], f"fault proxy: upstream failed: {exc}".encode())
                return
            proxy.log("forwarded", request, seq, status=reply.status)
            status, reply_headers, data, code = reply.status, reply.headers, reply.body, ""
        proxy.pause(sum(d.seconds for d in delays if d.at == "answer"))
        sent = self.reply(status, reply_headers, data)
        proxy.log("answer", request, seq, status=status, rule=rule.describe() if rule else "", code=code,
                  delays=applied, delivered=sent)

    def wait_for_caller(self, seconds: float) -> bool:
        """Hold the request; False as soon as its caller hangs up (then it never reaches the cloud)."""
        deadline = time.monotonic() + seconds
        while not self.server.proxy.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.2))
            if readable:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        return False
                except OSError:
                    return False
        return True

    def reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> bool:
        """Send an answer; False when the caller is gone (killed while it waited)."""
        try:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            return True
        except OSError:
            self.close_connection = True
            return False

    def drop(self) -> None:
        """Close the connection without a byte of answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_one
