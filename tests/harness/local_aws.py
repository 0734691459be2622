#!/usr/bin/env python3
"""local_aws.py: the local AWS endpoint that skiff's integration tests run against.

It is the moto server (pip package `moto[server]`, 5.2.x) on 127.0.0.1 behind a
small WSGI middleware that makes it behave more like the real AWS in the ways
skiff depends on, and lets tests measure what the `skiff` binary did:

* Port without races: `--port 0` (the default) lets the OS pick a free port;
  once the socket is listening, exactly one line `LISTENING <port>` goes to
  stdout. Everything else goes to stderr.
* Atomic S3 conditional writes: moto checks `If-Match` / `If-None-Match: *` and
  then writes in a separate step, so two concurrent conditional PUTs of the same
  key can both succeed. Real S3 lets exactly one win, and skiff's state store
  relies on that, so every mutating S3 request (PUT/POST/DELETE) is served under
  one global lock. A request is S3 when its SigV4 credential scope
  (`Credential=AKID/<date>/<region>/s3/aws4_request` in the Authorization
  header, or `X-Amz-Credential` in a presigned query) names `s3`, or when it is
  unsigned and carries no `Action=` (moto routes such requests to S3 as well:
  plain path-style bucket URLs like `PUT /my-bucket/key`).
* Latency (`--latency-ms N`): every counted request sleeps N ms first, to model
  the round trip to a real region.
* Throttling (`--throttle-rate R --seed S`): that share of *mutating* calls
  (Create*, Delete*, Put*, Run*, ...) is answered with the throttling error the
  real service sends, in its wire format (EC2 `RequestLimitExceeded` 503, S3
  `SlowDown` 503, AutoScaling/ELB/IAM/STS/Route53 `Throttling` 400), so the
  SDK's retry logic sees exactly what it would see in production.
* Accounting: every call is counted as `service:Action` (service = SigV4 signing
  name: ec2, autoscaling, elasticloadbalancing, iam, route53, s3, sts).
  `GET /_harness/stats` -> {"total", "throttled", "harness", "calls",
  "mutating_calls", "throttled_calls"}; `POST /_harness/reset-stats` clears
  the counters. `calls` counts every request that reached the endpoint,
  throttled or not (that is what the client sent); `mutating_calls` is the
  subset that changes something (the MUTATING verbs below) and
  `throttled_calls` the subset answered with a throttling error. (`_harness` can never be an S3 bucket name.)
* Harness traffic: a request whose User-Agent mentions `skiff-harness` (the
  Rust harness tags its own setup and verification requests that way) is
  passed to moto without latency, throttling or accounting, so that checking
  the endpoint never disturbs what a test measures about skiff. Such requests
  are only tallied in "harness".
* `/moto-api/...` and instance metadata (IMDS: `Host: 169.254.169.254`, or a
  `/latest/meta-data/` or `/latest/api/` path, which moto routes to IMDS
  whatever the host) pass through untouched and uncounted.
* Endpoint CPU: stats also carry "cpu_ms", the CPU time this process
  (moto and the harness, every thread) used since the last reset. moto serves
  requests under Python's global interpreter lock, so that time is spent one
  request after another: no client can finish faster than it.
* Warm-up (`--warm-up`): moto imports each service's code and builds each
  region's backend on its first request (up to 0.4 s of CPU for EC2 and its
  AMI catalogue). With this flag the harness makes those first requests itself
  before it reports LISTENING, uncounted, so that a benchmark's first timed
  run does not pay moto's start-up: read-only calls in the test region, and
  one of each resource kind skiff creates in a scratch region (eu-west-3)
  that tests never use.
* `--amis FILE` sets MOTO_AMIS_PATH before moto is imported, so DescribeImages
  knows the images in FILE (moto's amis.json format) instead of its defaults.
* Lifetime: exits cleanly on SIGTERM/SIGINT, and also when `--parent-pid` dies
  or (with `--watch-stdin`) when stdin reaches EOF, so a crashed test run never
  leaves a server behind.

Realistic AWS
-------------
moto answers at once and is consistent at once; AWS is neither. Each of these
behaviours is switched on by its own flag (`--realistic` switches on all of
them at AWS's typical durations), is a no-op when its flag is off, never
touches harness traffic, and takes its durations in AWS time, multiplied by
`--time-scale` (`scaled(args, ms)`). Answers the model gives itself are
counted in stats as "modelled_calls" (`service:Action CODE`), and resources it
leaves out of listings as "left_out" (`service:Action`).

* Eventual consistency (`--consistency-ms`), after the EC2 API reference's
  "Eventual consistency in the Amazon EC2 API" and what Terraform's AWS
  provider retries for its `PropagationTimeout`: for that long after a create
  returns a new ID (EC2 VPCs, subnets, security groups, route tables,
  internet and NAT gateways, elastic IPs, launch templates by ID and name,
  instances, network interfaces; load balancer, target group and listener
  ARNs; not auto scaling groups, which auto scaling reads back at once), a
  call naming it in a parameter is answered with the service's NotFound error in its wire format (EC2
  `InvalidVpcID.NotFound`, `InvalidSubnetID.NotFound`,
  `InvalidGroup.NotFound`, `InvalidRouteTableID.NotFound`,
  `NatGatewayNotFound`, `InvalidAllocationID.NotFound`, ...; load balancing
  `LoadBalancerNotFound`, `TargetGroupNotFound`, and `SubnetNotFound` /
  `InvalidSecurityGroup` / `ValidationError` for EC2 resources it names;
  auto scaling `ValidationError` "You must use a valid fully-formed launch
  template. ..."), and describe answers
  leave it out of their lists. Filters and tags never fail a call (EC2 just
  answers fewer items), and a launch template's data is not checked until a
  launch.
* IAM propagation (`--iam-propagation-ms`): an instance profile just created,
  or just given a role, cannot be launched with for that long (IAM is
  eventually consistent, and EC2 sees its changes seconds later): auto
  scaling `CreateAutoScalingGroup` / `UpdateAutoScalingGroup` naming a launch
  template whose data names such a profile answer `ValidationError` "You must
  use a valid fully-formed launch template. Value (NAME) for parameter
  iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name", and
  EC2 `RunInstances` naming it (directly or through its template)
  `InvalidParameterValue` with the same sentence; Terraform's
  `aws_autoscaling_group` retries exactly these.
* Throttling by token buckets (`--token-buckets`): EC2 requests take a token
  from their action's bucket, sized by the action's category in the EC2 API
  reference's "Request throttling for the Amazon EC2 API" (non-mutating 100
  tokens refilled at 20 a second; the seven listed Describe actions without a
  filter or pagination 50 at 10; mutating 50 at 5; uncategorized actions
  their own, e.g. `CreateTags` 100 at 10, `CreateNatGateway` 10 at 1; and the
  resource buckets of `RunInstances` and `TerminateInstances`, a token per
  instance). An empty bucket answers `RequestLimitExceeded` (503) in EC2's
  wire format. Deterministic, no dice; the rates are wall time (they meter
  how fast a client calls), not scaled. `POST /_harness/drain-buckets?seconds=S`
  empties every bucket and holds it empty for S seconds, as another client of
  the same account spending its budget would.
* Slow NAT gateways (`--nat-ready-ms`): a new NAT gateway is `pending`, then
  `available` (EC2 API reference, NatGateway.State; terraform-provider-aws
  `waitNATGatewayCreated`; kubernetes/kops#944). `model_nat_readiness`.
* Slow load balancers (`--lb-ready-ms`): a new load balancer's State.Code is
  `provisioning`, then `active` (ELBv2 API reference, LoadBalancerState;
  terraform-provider-aws `waitLoadBalancerActive`). `model_lb_readiness`.
* Slow target health (`--target-healthy-ms`, or at run time `POST
  /_harness/target-health?seconds=S` in wall time, for targets registered
  from then on): a target registered with a target group (directly or by its
  auto scaling group) is `initial` that long, then `healthy`. moto reports it
  `healthy` at once. AWS: "The load balancer starts routing requests to a
  newly registered target as soon as the registration process completes and
  the targets pass the initial health checks. It can take a few minutes"
  (ELB guide, "Health checks for Network Load Balancer target groups"); until
  then DescribeTargetHealth answers State `initial` with Reason
  `Elb.RegistrationInProgress`, then `Elb.InitialHealthChecking` (ELBv2 API
  reference, TargetHealth). Not part of `--realistic`. `model_target_health`.
* Slow NAT gateway deletes (`--nat-delete-ms`): a deleted NAT gateway stays
  `deleting`, then `deleted`; until then it holds its elastic IP
  (ReleaseAddress/DisassociateAddress: `AuthFailure`, kubernetes/kops#938),
  its network interface in its subnet (DeleteSubnet: `DependencyViolation`)
  and the VPC's internet gateway (DetachInternetGateway:
  `DependencyViolation` "... has some mapped public address(es) ...").
  `model_nat_deletes`.
* Lingering load balancer interfaces (`--lb-eni-linger-ms`): a load balancer
  has one requester-managed interface per subnet (`ELB net/NAME/ID`); after
  its deletion they stay that long in their subnets and security groups
  (DeleteSecurityGroup: `DependencyViolation` "resource sg-... has a
  dependent object", kubernetes/kops#3245). `model_lb_eni_linger`.
* Slow terminations (`--terminate-ms`): a terminated instance (also one an
  auto scaling group terminates) is `shutting-down` that long, holding its
  network interfaces, then `terminated` (EC2 user guide, "Instance
  lifecycle"). `model_terminate_time`.
Subnets and security groups refuse deletion while an interface one of these
behaviours holds is in them (`model_dependency_checks`); the transitions
happen lazily, at the first request after they are due (`Settlements`).
"""

import argparse
import contextlib
import io
import json
import os
import random
import re
import signal
import sys
import threading
import time
import uuid
from urllib.parse import parse_qs

# Exit code when moto is not importable; the Rust harness turns it into an
# install hint.
EXIT_MOTO_MISSING = 3

# The marker the Rust harness puts in the User-Agent of its own requests.
HARNESS_MARKER = "skiff-harness"

# Calls that change something. Only these are ever throttled: AWS throttles
# reads too, but skiff's retry handling is what matters for writes, and
# throttling Describe* calls would only slow every test down.
MUTATING = re.compile(
    r"^(Create|Delete|Modify|Put|Update|Attach|Detach|Associate|Disassociate|"
    r"Authorize|Revoke|Run|Terminate|Set|Register|Deregister|Change|Add|Remove|"
    r"Allocate|Release|Replace|Start|Stop|Reboot|Enable|Disable|Import|Copy|"
    r"Complete|Upload|Abort|Tag|Untag|Suspend|Resume|Cancel|Enter|Exit|Apply|"
    r"Reset|Restore|Execute|Upgrade)"
)

# Real throttling answers, per SigV4 signing name: (HTTP status, error code,
# message, XML namespace of the query-protocol error document).
THROTTLE = {
    "ec2": (503, "RequestLimitExceeded", "Request limit exceeded.", None),
    "s3": (503, "SlowDown", "Please reduce your request rate.", None),
    "autoscaling": (400, "Throttling", "Rate exceeded", "http://autoscaling.amazonaws.com/doc/2011-01-01/"),
    "elasticloadbalancing": (400, "Throttling", "Rate exceeded", "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"),
    "iam": (400, "Throttling", "Rate exceeded", "https://iam.amazonaws.com/doc/2010-05-08/"),
    "sts": (400, "Throttling", "Rate exceeded", "https://sts.amazonaws.com/doc/2011-06-15/"),
    "route53": (400, "Throttling", "Rate exceeded", "https://route53.amazonaws.com/doc/2013-04-01/"),
}

# S3 sub-resources (query keys) and the operation name suffix they select.
S3_BUCKET_SUBRESOURCES = {
    "versioning": "BucketVersioning",
    "policy": "BucketPolicy",
    "policyStatus": "BucketPolicyStatus",
    "tagging": "BucketTagging",
    "encryption": "BucketEncryption",
    "lifecycle": "BucketLifecycleConfiguration",
    "acl": "BucketAcl",
    "cors": "BucketCors",
    "publicAccessBlock": "PublicAccessBlock",
    "ownershipControls": "BucketOwnershipControls",
    "logging": "BucketLogging",
    "notification": "BucketNotificationConfiguration",
    "website": "BucketWebsite",
    "replication": "BucketReplication",
    "object-lock": "ObjectLockConfiguration",
    "accelerate": "BucketAccelerateConfiguration",
    "requestPayment": "BucketRequestPayment",
    "location": "BucketLocation",
}
S3_OBJECT_SUBRESOURCES = {
    "tagging": "ObjectTagging",
    "acl": "ObjectAcl",
    "retention": "ObjectRetention",
    "legal-hold": "ObjectLegalHold",
    "attributes": "ObjectAttributes",
}

CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/[^/]+/([^/]+)/([^/]+)/")


def signing_service(environ):
    """The SigV4 signing name of a request, or None when it is unsigned."""
    match = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(2).lower()
    credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential")
    if credential:
        parts = credential[0].split("/")
        if len(parts) >= 4:
            return parts[3].lower()
    return None


def s3_action(method, path, query, environ):
    """Name the S3 operation of a path-style request (`/bucket/key?sub`)."""
    parts = path.lstrip("/").split("/", 1)
    bucket = parts[0]
    key = parts[1] if len(parts) > 1 else ""
    if not bucket:
        return "ListBuckets" if method == "GET" else method + " /"
    verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method)
    if not key:
        for name, suffix in S3_BUCKET_SUBRESOURCES.items():
            if name in query and verb:
                if name == "lifecycle" and method == "DELETE":
                    return "DeleteBucketLifecycle"
                return verb + suffix
        if method == "GET":
            if query.get("list-type") == ["2"]:
                return "ListObjectsV2"
            if "versions" in query:
                return "ListObjectVersions"
            if "uploads" in query:
                return "ListMultipartUploads"
            return "ListObjects"
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        return {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}.get(method, method + "Bucket")
    copy = "HTTP_X_AMZ_COPY_SOURCE" in environ
    if method == "PUT" and "uploadId" in query:
        return "UploadPartCopy" if copy else "UploadPart"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        if "restore" in query:
            return "RestoreObject"
        return "PostObject"
    if method == "GET" and "uploadId" in query:
        return "ListParts"
    if method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload"
    for name, suffix in S3_OBJECT_SUBRESOURCES.items():
        if name in query and verb:
            return verb + suffix
    if method == "PUT" and copy:
        return "CopyObject"
    return {"GET": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject", "HEAD": "HeadObject"}.get(
        method, method + "Object"
    )


def route53_action(method, path):
    """Name the Route53 (rest-xml) operation of a request."""
    p = re.sub(r"^/2013-04-01", "", path).rstrip("/")
    if p == "/hostedzone":
        return "CreateHostedZone" if method == "POST" else "ListHostedZones"
    if p == "/hostedzonesbyname":
        return "ListHostedZonesByName"
    if p == "/hostedzonecount":
        return "GetHostedZoneCount"
    if re.fullmatch(r"/hostedzone/[^/]+", p):
        return {"GET": "GetHostedZone", "DELETE": "DeleteHostedZone", "POST": "UpdateHostedZoneComment"}.get(
            method, method
        )
    if re.fullmatch(r"/hostedzone/[^/]+/rrset", p):
        return "ChangeResourceRecordSets" if method == "POST" else "ListResourceRecordSets"
    if re.fullmatch(r"/hostedzone/[^/]+/(associatevpc|disassociatevpc)", p):
        return "AssociateVPCWithHostedZone" if p.endswith("/associatevpc") else "DisassociateVPCFromHostedZone"
    if re.fullmatch(r"/change/[^/]+", p):
        return "GetChange"
    if p.startswith("/tags/"):
        return "ChangeTagsForResource" if method == "POST" else "ListTagsForResource"
    if p == "/healthcheck":
        return "CreateHealthCheck" if method == "POST" else "ListHealthChecks"
    if re.fullmatch(r"/healthcheck/[^/]+", p):
        return {"GET": "GetHealthCheck", "DELETE": "DeleteHealthCheck", "POST": "UpdateHealthCheck"}.get(
            method, method
        )
    return generic_rest_action(method, path)


def generic_rest_action(method, path):
    """Fallback name for REST calls we do not map: `METHOD /path/{id}`."""
    return method + " " + re.sub(r"/[A-Za-z0-9_.-]{8,}(?=/|$)", "/{id}", path)


def classify(environ, body):
    """Return (service, action) for a request, with its body already buffered."""
    service = signing_service(environ)
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    form = {}
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded") and body:
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    action = (form.get("Action") or query.get("Action") or [None])[0]
    target = environ.get("HTTP_X_AMZ_TARGET")
    if not action and target:
        action = target.split(".")[-1]
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "/")
    if service is None:
        # Unsigned. Without an Action moto routes the request to S3, and so do we.
        service = "s3" if not action and not target else "unsigned"
    if not action:
        if service == "s3":
            action = s3_action(method, path, query, environ)
        elif service == "route53":
            action = route53_action(method, path)
        else:
            action = generic_rest_action(method, path)
    return service, action


# Services whose requests the realistic model looks at (query protocols).
MODELLED_SERVICES = ("ec2", "elasticloadbalancing", "autoscaling", "iam")


def request_parameters(environ, body):
    """The query-string and form parameters of a request, `name -> [values]`."""
    params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded") and body:
        for name, values in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items():
            params.setdefault(name, []).extend(values)
    return params


def throttle_response(service, environ, start_response):
    """Answer like the real service does when it throttles a call."""
    request_id = str(uuid.uuid4())
    if environ.get("HTTP_X_AMZ_TARGET"):
        # JSON protocols (none of skiff's services today, but be correct anyway).
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        start_response(
            "400 Bad Request",
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("x-amzn-RequestId", request_id),
                ("x-amzn-ErrorType", "ThrottlingException"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]
    status, code, message, namespace = THROTTLE.get(
        service, (400, "Throttling", "Rate exceeded", "https://" + service + ".amazonaws.com/doc/")
    )
    if service == "ec2":
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
    elif service == "s3":
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>local-aws</HostId></Error>"
        )
    else:
        xml = (
            f'<?xml version="1.0"?>\n<ErrorResponse xmlns="{namespace}">'
            f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    body = xml.encode()
    reason = "Service Unavailable" if status == 503 else "Bad Request"
    start_response(
        f"{status} {reason}",
        [
            ("Content-Type", "text/xml" if service != "s3" else "application/xml"),
            ("x-amzn-RequestId", request_id),
            ("x-amz-request-id", request_id),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


def json_response(start_response, payload):
    body = json.dumps(payload, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class Harness:
    """The WSGI middleware in front of moto (see the module doc)."""

    def __init__(self, app, latency_ms, throttle_rate, seed, s3_write_lock=True, models=()):
        self.app = app
        # Hooks of the realistic model (see "Realistic AWS"), in order.
        self.models = list(models)
        self.latency = latency_ms / 1000.0
        self.throttle_rate = throttle_rate
        self.random = random.Random(seed)
        self.stats_lock = threading.Lock()
        # One lock for every mutating S3 request: see "Atomic S3 conditional writes".
        self.s3_write_lock = threading.Lock() if s3_write_lock else contextlib.nullcontext()
        self.reset_stats()

    def reset_stats(self):
        with self.stats_lock:
            self.cpu_at_reset = time.process_time()
            self.calls = {}
            self.mutating_calls = {}
            self.throttled_calls = {}
            self.modelled_calls = {}
            self.harness_calls = 0
        for model in getattr(self, "models", ()):
            model.left_out = {}

    def stats(self):
        with self.stats_lock:
            return {
                "total": sum(self.calls.values()),
                "cpu_ms": int((time.process_time() - self.cpu_at_reset) * 1000),
                "throttled": sum(self.throttled_calls.values()),
                "harness": self.harness_calls,
                "calls": dict(sorted(self.calls.items())),
                "mutating_calls": dict(sorted(self.mutating_calls.items())),
                "throttled_calls": dict(sorted(self.throttled_calls.items())),
                "modelled_calls": dict(sorted(self.modelled_calls.items())),
                "left_out": dict(
                    sorted((key, count) for model in self.models for key, count in model.left_out.items())
                ),
            }

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_harness/"):
            return self.control(environ, start_response, path)
        host = environ.get("HTTP_HOST", "").split(":")[0]
        # moto's own routing sends /latest/meta-data/ and /latest/api/ to IMDS
        # whatever the host; other /latest/... paths are an S3 bucket "latest".
        imds = host == "169.254.169.254" or path.startswith(("/latest/meta-data/", "/latest/api/"))
        if path.startswith("/moto-api") or imds:
            if path.startswith("/moto-api/reset") and SETTLEMENTS is not None:
                SETTLEMENTS.reset()
            return self.app(environ, start_response)

        body = self.buffer_body(environ)
        service, action = classify(environ, body)
        mutating_s3 = service == "s3" and environ.get("REQUEST_METHOD") in ("PUT", "POST", "DELETE")
        agent = environ.get("HTTP_USER_AGENT", "") + " " + environ.get("HTTP_X_AMZ_USER_AGENT", "")
        REQUEST.harness = HARNESS_MARKER in agent
        if REQUEST.harness:
            with self.stats_lock:
                self.harness_calls += 1
            return self.forward(environ, start_response, mutating_s3)

        key = f"{service}:{action}"
        mutating = MUTATING.match(action) is not None
        call = None
        answer = None
        if self.models and service in MODELLED_SERVICES:
            call = Call(service, action, request_parameters(environ, body))
            for model in self.models:
                answer = model.before(call)
                if answer is not None:
                    break
        with self.stats_lock:
            self.calls[key] = self.calls.get(key, 0) + 1
            if mutating:
                self.mutating_calls[key] = self.mutating_calls.get(key, 0) + 1
            throttle = mutating and self.throttle_rate > 0 and self.random.random() < self.throttle_rate
            if throttle or (answer is not None and answer[0].startswith("503")):
                self.throttled_calls[key] = self.throttled_calls.get(key, 0) + 1
        if self.latency:
            time.sleep(self.latency)
        if throttle:
            return throttle_response(service, environ, start_response)
        if answer is not None:
            status, headers, answer_body, code = answer
            with self.stats_lock:
                detail = f"{key} {code}"
                self.modelled_calls[detail] = self.modelled_calls.get(detail, 0) + 1
            start_response(status, headers)
            return [answer_body]
        if call is not None:
            return self.forward_to_models(environ, start_response, call)
        return self.forward(environ, start_response, mutating_s3)

    def forward_to_models(self, environ, start_response, call):
        """Lets moto answer, then shows the answer to every model (which may
        rewrite it: a describe leaving out what is not visible yet)."""
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = status
            captured["headers"] = headers
            return lambda data: None

        def answer():
            result = self.app(environ, capture)
            try:
                return b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()

        if SETTLEMENTS is not None:
            # What the slow behaviours have due happens first, as in `forward`.
            SETTLEMENTS.settle()
            with SETTLEMENTS.lock.reading():
                body = answer()
        else:
            body = answer()
        status = captured.get("status", "500 Internal Server Error")
        original = body
        for model in self.models:
            body = model.after(call, status, body)
        headers = captured.get("headers", [])
        if body is not original:
            headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    def forward(self, environ, start_response, mutating_s3):
        if SETTLEMENTS is not None:
            # Slow readiness and deletes: first what is due, then the request
            # (see "Realistic AWS: slow readiness and slow deletes").
            SETTLEMENTS.settle()
            with SETTLEMENTS.lock.reading():
                return self.forward_to_moto(environ, start_response, mutating_s3)
        return self.forward_to_moto(environ, start_response, mutating_s3)

    def forward_to_moto(self, environ, start_response, mutating_s3):
        if not mutating_s3:
            return self.app(environ, start_response)
        # Run moto's check-then-write and produce the whole response while
        # holding the lock, so no other write to S3 interleaves.
        with self.s3_write_lock:
            result = self.app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                if hasattr(result, "close"):
                    result.close()

    @staticmethod
    def buffer_body(environ):
        """Read the request body once (outside any lock) and hand moto a copy."""
        length = environ.get("CONTENT_LENGTH")
        if length:
            body = environ["wsgi.input"].read(int(length))
        elif environ.get("wsgi.input_terminated"):
            body = environ["wsgi.input"].read()
            environ["CONTENT_LENGTH"] = str(len(body))
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        return body

    def control(self, environ, start_response, path):
        method = environ.get("REQUEST_METHOD")
        if path == "/_harness/stats" and method == "GET":
            return json_response(start_response, self.stats())
        if path == "/_harness/reset-stats" and method == "POST":
            self.reset_stats()
            return json_response(start_response, {"ok": True})
        if path == "/_harness/drain-buckets" and method == "POST":
            drained = [model for model in self.models if hasattr(model, "drain")]
            seconds = float(parse_qs(environ.get("QUERY_STRING", "")).get("seconds", ["0"])[0])
            for model in drained:
                model.drain(seconds)
            return json_response(start_response, {"ok": bool(drained)})
        if path == "/_harness/target-health" and method == "POST":
            seconds = float(parse_qs(environ.get("QUERY_STRING", "")).get("seconds", ["0"])[0])
            TARGET_HEALTH_DELAY["seconds"] = max(seconds, 0.0)
            return json_response(start_response, {"ok": True})
        if path == "/_harness/health":
            return json_response(start_response, {"ok": True})
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"unknown harness endpoint\n"]


def fix_moto_module_listing():
    """moto's dispatcher asks whether a request's Host names one of its
    services by listing its own package folder (`os.listdir` and an `isdir`
    per entry, about 180) on every request (moto/moto_server/werkzeug_app.py
    `get_backend_for_host`, moto/backends.py `list_of_moto_modules`): a
    quarter of the endpoint's CPU per S3 read, spent one request after
    another under Python's lock. AWS has no such cost, and the folder does
    not change while the server runs, so it is listed once."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def exit_when_parent_dies(parent_pid):
    """Poll the parent; the test process may die without running destructors."""

    def watch():
        while True:
            time.sleep(0.5)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                break
            except PermissionError:
                pass  # exists, owned by someone else
            if os.getppid() != parent_pid:
                break
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def exit_on_stdin_eof():
    """The Rust harness keeps our stdin open; EOF means it is gone."""

    def watch():
        while sys.stdin.buffer.read(4096):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port (default)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--throttle-rate", type=float, default=0.0, help="share of mutating calls to throttle, 0..1")
    parser.add_argument("--seed", type=int, default=1, help="seed for the throttling dice")
    parser.add_argument(
        "--boot-ms",
        type=float,
        default=None,
        help="auto scaling instances report Pending this long after launch before InService "
        "(models boot time for benchmarks; default 0: in service at once, as moto does; --realistic: 60000)",
    )
    # A model of how production AWS is slower and less consistent than moto
    # (see "Realistic AWS" in the module doc). Each behaviour is switched on
    # by its own flag; durations are in AWS's own time and multiplied by
    # --time-scale, so a test can run the model at a fiftieth of real time.
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply every modelled duration (boot, readiness, deletes, consistency) by this (default 1)",
    )
    parser.add_argument(
        "--realistic",
        action="store_true",
        help="switch on every behaviour of the model at AWS's typical durations "
        "(explicit duration flags override them): " + ", ".join(f"{k}={v}" for k, v in REALISTIC.items()),
    )
    parser.add_argument(
        "--consistency-ms",
        type=float,
        default=None,
        help="eventual consistency: a resource an EC2, load balancing or auto scaling create returns stays "
        "unknown (NotFound in the service's wire format) to calls that name it for this long",
    )
    parser.add_argument(
        "--iam-propagation-ms",
        type=float,
        default=None,
        help="a new IAM role or instance profile cannot be used by EC2 or auto scaling launches for this long",
    )
    parser.add_argument(
        "--token-buckets",
        action="store_true",
        default=None,
        help="throttle EC2 calls by its documented token buckets per action category (instead of, or beside, "
        "--throttle-rate's dice)",
    )
    parser.add_argument("--nat-ready-ms", type=float, default=None, help="a new NAT gateway stays pending this long")
    parser.add_argument(
        "--lb-ready-ms", type=float, default=None, help="a new load balancer stays provisioning this long"
    )
    parser.add_argument(
        "--target-healthy-ms",
        type=float,
        default=0.0,
        help="a target registered with a target group stays initial this long before it is healthy",
    )
    parser.add_argument(
        "--nat-delete-ms",
        type=float,
        default=None,
        help="a deleted NAT gateway stays deleting this long, holding its elastic IP, network interface and subnet",
    )
    parser.add_argument(
        "--lb-eni-linger-ms",
        type=float,
        default=None,
        help="a deleted load balancer's network interfaces stay in its subnets and security groups this long",
    )
    parser.add_argument(
        "--terminate-ms",
        type=float,
        default=None,
        help="a terminated instance stays shutting-down this long, holding its network interface",
    )
    parser.add_argument("--amis", help="JSON file of AMIs in moto's amis.json format (sets MOTO_AMIS_PATH)")
    parser.add_argument(
        "--warm-up",
        action="store_true",
        help="make moto's first (slow) request of every service before reporting LISTENING, uncounted",
    )
    parser.add_argument("--parent-pid", type=int, help="exit when this process exits")
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin reaches EOF")
    # For the harness's own tests: prove the S3 write lock is what makes
    # conditional writes atomic, by widening moto's check-then-write window.
    parser.add_argument("--s3-race-window-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--no-s3-write-lock", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0.0 <= args.throttle_rate <= 1.0:
        parser.error("--throttle-rate must be between 0 and 1")
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    for name, value in REALISTIC.items():
        if getattr(args, name) is None:
            setattr(args, name, value if args.realistic else (False if name == "token_buckets" else 0.0))
    return args


# The durations --realistic models (milliseconds of AWS time, before
# --time-scale), from what AWS documents and operators measure: see
# "Realistic AWS" in the module doc for the source of each.
REALISTIC = {
    "consistency_ms": 2000.0,
    "iam_propagation_ms": 8000.0,
    "token_buckets": True,
    "boot_ms": 60000.0,
    "nat_ready_ms": 90000.0,
    "lb_ready_ms": 150000.0,
    "nat_delete_ms": 60000.0,
    "lb_eni_linger_ms": 120000.0,
    "terminate_ms": 30000.0,
}


def scaled(args, milliseconds):
    """Seconds of wall time for `milliseconds` of AWS time under --time-scale."""
    return milliseconds * args.time_scale / 1000.0


def main():
    args = parse_args()
    # SIGTERM/SIGINT unwind serve_forever() (or the slow moto import) in the
    # main thread; request threads are daemons and die with the process. The
    # watches start before the import so an abandoned start-up ends early too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    if args.parent_pid:
        exit_when_parent_dies(args.parent_pid)
    if args.watch_stdin:
        exit_on_stdin_eof()
    if args.amis:
        # moto reads MOTO_AMIS_PATH once, when moto.ec2 is imported.
        os.environ["MOTO_AMIS_PATH"] = os.path.abspath(args.amis)
    try:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server
    except ImportError as error:
        print(
            f"MOTO_MISSING: cannot import the moto server ({error}); "
            "install it with: pip install 'moto[server]>=5.2.1,<6'",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_MOTO_MISSING
    if args.amis:
        fix_ami_reloading()
    fix_launch_template_version_user_data()
    if args.boot_ms:
        model_boot_time(scaled(args, args.boot_ms))
    # Realistic AWS behaviours (each a no-op unless its flag is set).
    # Eventual consistency, IAM propagation and token buckets are hooks of
    # the middleware (token buckets first: a throttled request never reaches
    # the service).
    models = [
        model
        for model in (model_token_buckets(args), model_eventual_consistency(args), model_iam_propagation(args))
        if model is not None
    ]
    # Slow readiness and slow deletes patch moto's models.
    if args.nat_ready_ms:
        model_nat_readiness(scaled(args, args.nat_ready_ms))
    if args.lb_ready_ms:
        model_lb_readiness(scaled(args, args.lb_ready_ms))
    # Always patched (a no-op at zero), so a test can slow it at run time.
    model_target_health(scaled(args, args.target_healthy_ms))
    if args.nat_delete_ms:
        model_nat_deletes(scaled(args, args.nat_delete_ms))
    if args.lb_eni_linger_ms:
        model_lb_eni_linger(scaled(args, args.lb_eni_linger_ms))
    if args.terminate_ms:
        model_terminate_time(scaled(args, args.terminate_ms))
    fix_launch_template_lookup_by_id()
    fix_launch_template_own_tags()
    fix_security_group_rules_without_ports()
    fix_load_balancer_default_scheme()
    fix_private_zone_by_vpc()
    fix_zone_soa_value()
    fix_lifecycle_hooks_belong_to_their_group()
    fix_auto_scaling_launch_template_versions()
    fix_bucket_versioning_root()
    fix_moto_module_listing()
    model_requests_over_tls()
    if args.s3_race_window_ms:
        widen_s3_race_window(args.s3_race_window_ms / 1000.0)

    app = Harness(
        DomainDispatcherApplication(create_backend_app),
        args.latency_ms,
        args.throttle_rate,
        args.seed,
        s3_write_lock=not args.no_s3_write_lock,
        models=models,
    )
    # make_server rather than run_simple: we need the bound port of --port 0.
    server = make_server(args.host, args.port, app, threaded=True)
    port = server.socket.getsockname()[1]
    serving = None
    if args.warm_up:
        # Served from a thread from the start (werkzeug's serve_forever closes
        # the socket when it stops, so it cannot be stopped and restarted).
        serving = threading.Thread(target=server.serve_forever, name="serve", daemon=True)
        serving.start()
        warm_up(f"http://{args.host}:{port}")
    print(f"LISTENING {port}", flush=True)
    # Nothing else may reach stdout (moto prints a few warnings there).
    sys.stdout = sys.stderr
    try:
        if serving is None:
            server.serve_forever()
        else:
            while serving.is_alive():
                serving.join(0.5)
    except SystemExit:
        pass
    finally:
        server.server_close()
    return 0


WARM_UP_REGION = "eu-west-3"
TEST_REGION = "us-east-1"


def warm_up(endpoint):
    """Make moto's expensive first requests (see "Warm-up"), as harness traffic."""
    import boto3
    import botocore.config

    config = botocore.config.Config(user_agent_extra=HARNESS_MARKER, retries={"max_attempts": 1})

    def client(service, region):
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id="warm-up",
            aws_secret_access_key="warm-up",
            config=config,
        )

    # Read-only in the test region: builds its backends (and loads the AMIs).
    ec2 = client("ec2", TEST_REGION)
    ec2.describe_images(Owners=["self"])
    ec2.describe_vpcs()
    client("elbv2", TEST_REGION).describe_load_balancers()
    client("autoscaling", TEST_REGION).describe_auto_scaling_groups()
    client("iam", TEST_REGION).list_roles()
    client("sts", TEST_REGION).get_caller_identity()
    client("route53", TEST_REGION).list_hosted_zones()
    client("s3", TEST_REGION).list_buckets()
    # One of each kind skiff creates, in a region tests never use: loads the
    # code of every create and describe path.
    ec2 = client("ec2", WARM_UP_REGION)
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.99.1.0/24", AvailabilityZone=f"{WARM_UP_REGION}a")["Subnet"][
        "SubnetId"
    ]
    group = ec2.create_security_group(VpcId=vpc, GroupName="warm-up", Description="warm-up")["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}],
    )
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName="warm-up", LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"}
    )
    elb = client("elbv2", WARM_UP_REGION)
    balancer = elb.create_load_balancer(Name="warm-up", Subnets=[subnet], Type="network", Scheme="internal")[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    target = elb.create_target_group(Name="warm-up", Protocol="TCP", Port=443, VpcId=vpc, TargetType="instance")[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    elb.create_listener(
        LoadBalancerArn=balancer,
        Protocol="TCP",
        Port=443,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": target}],
    )
    elb.describe_target_groups()
    scaling = client("autoscaling", WARM_UP_REGION)
    scaling.create_auto_scaling_group(
        AutoScalingGroupName="warm-up",
        LaunchTemplate={"LaunchTemplateName": "warm-up"},
        MinSize=1,
        MaxSize=1,
        VPCZoneIdentifier=subnet,
        TargetGroupARNs=[target],
    )
    scaling.describe_auto_scaling_groups()
    client("iam", WARM_UP_REGION).list_instance_profiles()


def fix_ami_reloading():
    """Work around moto re-parsing its own parsed AMI list.

    With MOTO_AMIS_PATH, moto turns each entry's `creation_date` string into a
    datetime in place, in the module-level list. The backend of the second
    region (or of the same region after /moto-api/reset) then tries to parse
    that datetime again and fails. Give every backend a fresh copy instead.
    """
    import copy

    from moto.ec2.models import amis

    pristine = copy.deepcopy(amis.AMIS)
    original = amis.AmiBackend._load_amis
    lock = threading.Lock()  # backends of two regions may be created at once

    def load_amis(self):
        with lock:
            amis.AMIS = copy.deepcopy(pristine)
            original(self)

    amis.AmiBackend._load_amis = load_amis


def fix_launch_template_version_user_data():
    """Work around moto keeping a new launch-template version's user-data raw.

    CreateLaunchTemplate wraps `UserData` in moto's Base64EncodedString, but
    CreateLaunchTemplateVersion stores the request's text as it is. Launching
    an instance from such a version (an auto scaling group scaling out, or
    replacing a terminated instance: what a rolling update does) then fails
    an assertion inside moto with HTTP 500. Wrap it the way the first
    version's is.
    """
    from moto.core.types import Base64EncodedString
    from moto.ec2.models.launch_templates import LaunchTemplate
    from moto.ec2.utils import parse_user_data

    original = LaunchTemplate.create_version

    def create_version(self, data, description):
        user_data = data.get("UserData") if data else None
        if user_data is not None and not isinstance(user_data, Base64EncodedString):
            data = dict(data)
            data["UserData"] = parse_user_data(user_data)
        return original(self, data, description)

    LaunchTemplate.create_version = create_version


def fix_auto_scaling_launch_template_versions():
    """Record the launch-template version an auto scaling instance came from.

    moto's auto scaling group launches from the version it is set to (image,
    type and user-data are right), but names only the template when it does,
    so EC2 tags the instance `aws:ec2launchtemplate:version` with the
    template's *default* version, and the group's own instance list reports
    the default version too. Real AWS reports the version actually used,
    which is how a rolling update tells out-of-date instances apart. Retag
    new instances with the group's resolved version and report that.
    """
    from moto.autoscaling.models import FakeAutoScalingGroup, InstanceState

    version_tag = "aws:ec2launchtemplate:version"
    original_replace = FakeAutoScalingGroup.replace_autoscaling_group_instances
    original_launch_template = InstanceState.launch_template

    def replace_autoscaling_group_instances(self, count_needed, propagated_tags):
        before = {id(state) for state in self.instance_states}
        original_replace(self, count_needed, propagated_tags)
        template = self.ec2_launch_template
        if template is None:
            return
        number = str(template.get_version(self.launch_template_version).number)
        for state in self.instance_states:
            if id(state) not in before:
                state.instance.add_tags({version_tag: number})

    def launch_template(self):
        specification = original_launch_template.fget(self)
        if specification:
            for tag in self.instance.get_tags():
                if tag.get("key") == version_tag or tag.get("Key") == version_tag:
                    specification["Version"] = tag.get("value", tag.get("Value"))
        return specification

    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances
    InstanceState.launch_template = property(launch_template)


def fix_bucket_versioning_root():
    """Work around moto's answer to GetBucketVersioning.

    moto (`moto/s3/responses.py`, `get_bucket_versioning`) wraps the answer
    in `<GetBucketVersioningResponse>`, empty when versioning was never set;
    S3 answers `<VersioningConfiguration>` (with `<Status>` once set), the
    only root the SDKs parse (the Rust SDK fails with "expected
    VersioningConfiguration"). Answer as S3 does, from moto's own state.
    """
    from moto.s3.responses import S3Response

    def get_bucket_versioning(self):
        status = self.backend.get_bucket_versioning(self.bucket_name)
        self.data["Action"] = "GetBucketVersioning"
        inner = f"<Status>{status}</Status>" if status else ""
        return 200, {"Content-Type": "application/xml"}, (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"{inner}</VersioningConfiguration>"
        )

    S3Response.get_bucket_versioning = get_bucket_versioning


def model_requests_over_tls():
    """Evaluate bucket policies as S3 does for a request made over TLS.

    The endpoint is plain HTTP, standing in for S3, which skiff and its
    nodes always reach over HTTPS. moto evaluates a bucket policy without
    its conditions (`moto/s3/models.py`, `FakeBucket.get_permission`, and
    `put_bucket_policy`'s docstring: "Conditions are not taken into
    account"), so the TLS-only statement `skiff state init` adds (Deny
    everything when `aws:SecureTransport` is false) would deny every
    request. Such a statement never matches a TLS request: leave it out of
    the evaluation, keep every other statement as moto evaluates it.
    """
    import json as json_module

    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def only_insecure_transport(statement):
        condition = statement.get("Condition")
        if statement.get("Effect") != "Deny" or not isinstance(condition, dict) or not condition:
            return False
        for operator, keys in condition.items():
            if operator not in ("Bool", "BoolIfExists") or not isinstance(keys, dict):
                return False
            for key, value in keys.items():
                values = value if isinstance(value, list) else [value]
                if key.lower() != "aws:securetransport" or [str(v).lower() for v in values] != ["false"]:
                    return False
        return True

    def get_permission(self, action, resource):
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json_module.loads(self.policy.decode())
        statements = document.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        kept = [statement for statement in statements if not only_insecure_transport(statement)]
        if not kept:
            return PermissionResult.NEUTRAL
        document["Statement"] = kept
        return IAMPolicy(json_module.dumps(document)).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission


def fix_launch_template_lookup_by_id():
    """Work around moto cutting a lookup of named launch templates short.

    DescribeLaunchTemplates with LaunchTemplateIds (or Names) returns every
    template asked for on AWS, which refuses MaxResults together with IDs.
    moto applies its default page size of 15 anyway, without a NextToken, so
    a rolling update or validation of more than 15 groups would lose
    templates. Asked by ID or name, answer in full.
    """
    from moto.ec2.responses.launch_templates import LaunchTemplates

    original = LaunchTemplates.describe_launch_templates

    def describe_launch_templates(self):
        by_id_or_name = self._get_param("LaunchTemplateIds") or self._get_param(
            "LaunchTemplateNames"
        )
        if by_id_or_name and self._get_param("MaxResults") is None:
            get_int_param = self._get_int_param

            def unlimited(name, *args, **kwargs):
                if name == "MaxResults":
                    return 1_000_000
                return get_int_param(name, *args, **kwargs)

            self._get_int_param = unlimited
        return original(self)

    LaunchTemplates.describe_launch_templates = describe_launch_templates


def fix_launch_template_own_tags():
    """Work around moto copying a launch template's own tags into its data.

    CreateLaunchTemplate's top-level TagSpecifications (resource type
    `launch-template`) tag the template itself; AWS keeps them out of the
    version's LaunchTemplateData, whose TagSpecifications only name what an
    instance launch tags (instance, volume, ...; `launch-template` is not
    even allowed there). moto appends them to the data, so every
    DescribeLaunchTemplateVersions reports an extra `launch-template` tag
    specification, and Terraform's aws_launch_template sees drift on every
    plan. Drop that entry from the stored data.
    """
    from moto.ec2.models.launch_templates import LaunchTemplateBackend

    original = LaunchTemplateBackend.create_launch_template

    def create_launch_template(self, name, description, template_data, tag_spec):
        specifications = template_data.get("TagSpecifications") if template_data else None
        if specifications:
            template_data = dict(template_data)
            template_data["TagSpecifications"] = [
                specification
                for specification in specifications
                if specification.get("ResourceType") != "launch-template"
            ]
        return original(self, name, description, template_data, tag_spec)

    LaunchTemplateBackend.create_launch_template = create_launch_template


def fix_security_group_rules_without_ports():
    """Work around moto failing a rule of a protocol that has no ports.

    A rule for a protocol other than TCP, UDP and ICMP (IP-in-IP, protocol
    4, which Calico needs; GRE; ...) has no ports: AWS accepts it without
    FromPort/ToPort and describes it with -1 for both. moto converts the
    missing ports with int(None) and answers HTTP 500, which clients retry
    until they give up (Terraform's aws_vpc_security_group_ingress_rule waits
    for the rule forever). Record such rules with -1 ports, as AWS does.
    """
    from moto.ec2.models.security_groups import SecurityGroupRule

    original = SecurityGroupRule.__init__

    def init(self, ec2_backend, ip_protocol, group_id, from_port, to_port, *args, **kwargs):
        if ip_protocol and str(ip_protocol) != "-1":
            from_port = -1 if from_port is None else from_port
            to_port = -1 if to_port is None else to_port
        original(self, ec2_backend, ip_protocol, group_id, from_port, to_port, *args, **kwargs)

    SecurityGroupRule.__init__ = init


def fix_lifecycle_hooks_belong_to_their_group():
    """Make lifecycle hooks live and die with their auto scaling group.

    A lifecycle hook is part of its group, not a resource of its own: AWS
    names it by group and hook name (PutLifecycleHook, DescribeLifecycleHooks
    and DeleteLifecycleHook all take AutoScalingGroupName), answers a call
    naming a group that does not exist with ValidationError "AutoScalingGroup
    name not found", and deleting the group deletes its hooks (Amazon EC2
    Auto Scaling User Guide, "Amazon EC2 Auto Scaling lifecycle hooks"; API
    reference, DeleteAutoScalingGroup: ForceDelete "also deletes any
    outstanding lifecycle actions associated with the group"). moto 5.2 keeps
    hooks in a backend-wide dictionary: a hook outlives its group, a hook can
    be put on a group that never existed, and describing a missing group's
    hooks answers an empty list. moto also describes every hook with a
    made-up notification target and role (`my-queue`, `my-auto-scaling-role`),
    where AWS describes a hook put without them (its events go to
    EventBridge) with neither. Do what AWS does.
    """
    from moto.autoscaling.exceptions import ValidationError
    from moto.autoscaling.models import AutoScalingBackend

    def require_group(backend, name):
        if name not in backend.autoscaling_groups:
            raise ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup '{name}' not found")

    create = AutoScalingBackend.create_lifecycle_hook
    describe = AutoScalingBackend.describe_lifecycle_hooks
    delete_hook = AutoScalingBackend.delete_lifecycle_hook
    delete_group = AutoScalingBackend.delete_auto_scaling_group

    def create_lifecycle_hook(self, name, as_name, *args, **kwargs):
        require_group(self, as_name)
        hook = create(self, name, as_name, *args, **kwargs)
        # Neither skiff nor Terraform's aws_autoscaling_lifecycle_hook (as
        # skiff writes it) sends NotificationTargetARN or RoleARN.
        hook.role_arn = None
        hook.notification_target_arn = None
        return hook

    def describe_lifecycle_hooks(self, as_name, *args, **kwargs):
        require_group(self, as_name)
        return describe(self, as_name, *args, **kwargs)

    def delete_lifecycle_hook(self, as_name, name):
        require_group(self, as_name)
        if f"{as_name}_{name}" not in self.lifecycle_hooks:
            raise ValidationError(f"No Lifecycle Hook found with name {name} for group {as_name}")
        return delete_hook(self, as_name, name)

    def delete_auto_scaling_group(self, group_name):
        delete_group(self, group_name)
        for key in [key for key, hook in self.lifecycle_hooks.items() if hook.auto_scaling_group_name == group_name]:
            self.lifecycle_hooks.pop(key, None)

    AutoScalingBackend.create_lifecycle_hook = create_lifecycle_hook
    AutoScalingBackend.describe_lifecycle_hooks = describe_lifecycle_hooks
    AutoScalingBackend.delete_lifecycle_hook = delete_lifecycle_hook
    AutoScalingBackend.delete_auto_scaling_group = delete_auto_scaling_group


def fix_load_balancer_default_scheme():
    """Work around moto leaving a load balancer created without Scheme schemeless.

    AWS makes a load balancer `internet-facing` unless CreateLoadBalancer
    says `Scheme=internal`; Terraform's aws_lb (internal = false) sends no
    Scheme at all. moto stores None and describes the balancer without a
    scheme. Default it the way AWS does.
    """
    from moto.elbv2.models import ELBv2Backend

    original = ELBv2Backend.create_load_balancer

    def create_load_balancer(self, *args, **kwargs):
        if kwargs.get("scheme") is None:
            kwargs["scheme"] = "internet-facing"
        return original(self, *args, **kwargs)

    ELBv2Backend.create_load_balancer = create_load_balancer


def fix_private_zone_by_vpc():
    """Work around moto making a zone created with a VPC public.

    In AWS a hosted zone created with a `VPC` is a private zone associated
    with that VPC: `VPC` is the "(Private hosted zones only)" parameter of
    CreateHostedZone (Amazon Route 53 API Reference), and a public zone has
    no VPC. Terraform's aws_route53_zone with a `vpc` block sends the VPC
    and no `HostedZoneConfig.PrivateZone`; moto reads the VPC only when that
    flag is true, so it makes a public zone without the VPC, and Terraform
    plans to add the VPC again after every apply. Treat a create naming a
    VPC as private, as AWS does (skiff itself sends both).
    """
    from moto.route53.responses import Route53

    original = Route53.create_hosted_zone

    def create_hosted_zone(self):
        if self._get_param("VPC.VPCId"):
            get_bool = self._get_bool_param

            def private(name, *args, **kwargs):
                if name == "HostedZoneConfig.PrivateZone":
                    return True
                return get_bool(name, *args, **kwargs)

            self._get_bool_param = private
        return original(self)

    Route53.create_hosted_zone = create_hosted_zone


def fix_zone_soa_value():
    """Work around moto describing a new zone's SOA as a Python dict.

    AWS answers ListResourceRecordSets with the SOA's value as DNS text
    (`ns-1.awsdns-1.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600
    86400`: "NS and SOA records that Amazon Route 53 creates for a public
    hosted zone", Amazon Route 53 Developer Guide; private zones alike).
    moto stores the SOA it makes with a zone as `{"Value": text}` where its
    record sets hold plain text, and answers `{'Value': '...'}`, which no
    client can read or write back. Store the text, as AWS does.
    """
    from moto.route53.models import Route53Backend

    original = Route53Backend.create_hosted_zone

    def create_hosted_zone(self, *args, **kwargs):
        zone = original(self, *args, **kwargs)
        for record_set in zone.rrsets:
            record_set.records = [
                record["Value"] if isinstance(record, dict) and "Value" in record else record
                for record in record_set.records
            ]
        return zone

    Route53Backend.create_hosted_zone = create_hosted_zone


# --- Realistic AWS: eventual consistency, IAM propagation, token buckets ---
#
# These behaviours look at the request before moto answers (and some at the
# answer), so they are hooks of the middleware rather than patches of moto:
# each `model_...` function returns a hook (or None when its flag is off),
# and `Harness` runs every hook on every request that is not harness
# traffic. A hook's `before(call)` may answer the request itself (an error
# in the service's wire format); its `after(call, status, body)` sees moto's
# answer and may rewrite it.


class Call:
    """A request as the models see it: service, action, and its parameters
    (query string and form body, `name -> [values]`)."""

    def __init__(self, service, action, params):
        self.service = service
        self.action = action
        self.params = params

    def values(self):
        """(name, value) pairs, comma-separated lists split (auto scaling's
        VPCZoneIdentifier)."""
        for name, values in self.params.items():
            for value in values:
                for part in value.split(","):
                    part = part.strip()
                    if part:
                        yield name, part

    def param(self, name):
        values = self.params.get(name)
        return values[0] if values else None


def error_answer(service, status, code, message):
    """An error document as `service` sends it: (status line, headers, body)."""
    request_id = str(uuid.uuid4())
    message = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if service == "ec2":
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
    else:
        namespace = THROTTLE.get(service, (0, "", "", "https://" + service + ".amazonaws.com/doc/"))[3]
        xml = (
            f'<?xml version="1.0"?>\n<ErrorResponse xmlns="{namespace}">'
            f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    body = xml.encode()
    reason = {400: "Bad Request", 503: "Service Unavailable"}.get(status, "Error")
    headers = [
        ("Content-Type", "text/xml"),
        ("x-amzn-RequestId", request_id),
        ("Content-Length", str(len(body))),
    ]
    return f"{status} {reason}", headers, body, code


# The EC2 error for an ID it does not know (yet), by the ID's prefix, as the
# EC2 API reference's "Error codes" page lists them.
EC2_NOT_FOUND = {
    "vpc": ("InvalidVpcID.NotFound", "The vpc ID '{id}' does not exist"),
    "subnet": ("InvalidSubnetID.NotFound", "The subnet ID '{id}' does not exist"),
    "sg": ("InvalidGroup.NotFound", "The security group '{id}' does not exist"),
    "rtb": ("InvalidRouteTableID.NotFound", "The routeTable ID '{id}' does not exist"),
    "igw": ("InvalidInternetGatewayID.NotFound", "The internetGateway ID '{id}' does not exist"),
    "nat": ("NatGatewayNotFound", "The Nat Gateway {id} was not found"),
    "eipalloc": ("InvalidAllocationID.NotFound", "The allocation ID '{id}' does not exist"),
    "lt": (
        "InvalidLaunchTemplateId.NotFound",
        "The specified launch template, with template ID {id}, does not exist.",
    ),
    "lt-name": (
        "InvalidLaunchTemplateName.NotFoundException",
        "The specified launch template, with template name {id}, does not exist.",
    ),
    "i": ("InvalidInstanceID.NotFound", "The instance ID '{id}' does not exist"),
    "eni": ("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '{id}' does not exist"),
}

# What each create returns as the new resource's ID: the first element of
# that name in the answer (all of them for RunInstances), and its kind.
CREATED = {
    ("ec2", "CreateVpc"): [("vpcId", "vpc")],
    ("ec2", "CreateSubnet"): [("subnetId", "subnet")],
    ("ec2", "CreateSecurityGroup"): [("groupId", "sg")],
    ("ec2", "CreateRouteTable"): [("routeTableId", "rtb")],
    ("ec2", "CreateInternetGateway"): [("internetGatewayId", "igw")],
    ("ec2", "CreateNatGateway"): [("natGatewayId", "nat")],
    ("ec2", "AllocateAddress"): [("allocationId", "eipalloc")],
    ("ec2", "CreateLaunchTemplate"): [("launchTemplateId", "lt"), ("launchTemplateName", "lt-name")],
    ("ec2", "RunInstances"): [("instanceId", "i*")],
    ("ec2", "CreateNetworkInterface"): [("networkInterfaceId", "eni")],
    ("elasticloadbalancing", "CreateLoadBalancer"): [("LoadBalancerArn", "loadbalancer")],
    ("elasticloadbalancing", "CreateTargetGroup"): [("TargetGroupArn", "targetgroup")],
    ("elasticloadbalancing", "CreateListener"): [("ListenerArn", "listener")],
}

# Describe calls whose answer lists resources: the element naming each
# listed resource. A resource not visible yet is left out of such a list
# (asked for by filter or not at all), as EC2's and the other services'
# eventually consistent reads leave it out.
LISTED_BY = {
    "DescribeVpcs": "vpcId",
    "DescribeSubnets": "subnetId",
    "DescribeSecurityGroups": "groupId",
    "DescribeRouteTables": "routeTableId",
    "DescribeInternetGateways": "internetGatewayId",
    "DescribeNatGateways": "natGatewayId",
    "DescribeAddresses": "allocationId",
    "DescribeLaunchTemplates": "launchTemplateId",
    "DescribeInstances": "instanceId",
    "DescribeNetworkInterfaces": "networkInterfaceId",
    "DescribeLoadBalancers": "LoadBalancerArn",
    "DescribeTargetGroups": "TargetGroupArn",
    "DescribeListeners": "ListenerArn",
    "DescribeAutoScalingGroups": "AutoScalingGroupName",
}


def ignored_parameter(name):
    """Parameters that never make a call fail on an unknown ID: filters
    (EC2 answers fewer items), tags (values, not references), and a launch
    template's data (checked only when something launches from it)."""
    return (
        name.startswith("Filter.")
        or name.startswith("LaunchTemplateData.")
        or ("Tag" in name and not name.endswith("ResourceId"))
        or name in ("Action", "Version", "ClientToken", "Description", "GroupDescription")
        or name.startswith("AutoScalingGroupNames.")
        or name.startswith("Names.")
    )


class EventualConsistency:
    """See "Eventual consistency" in the module doc."""

    def __init__(self, window):
        self.window = window
        self.lock = threading.Lock()
        self.left_out = {}  # describe call -> resources left out of its answers
        self.created = {}  # ID or name -> (kind, monotonic time of the create)

    def fresh(self, value):
        """The kind of `value` while it is not visible yet, else None."""
        with self.lock:
            entry = self.created.get(value)
            if entry is None:
                return None
            kind, at = entry
            if time.monotonic() - at >= self.window:
                del self.created[value]
                return None
            return kind

    def remember(self, value, kind):
        with self.lock:
            # A create retried with its idempotency token answers the first
            # one's resource: it is not newer for that.
            if value not in self.created:
                self.created[value] = (kind, time.monotonic())

    def before(self, call):
        for name, value in call.values():
            if ignored_parameter(name):
                continue
            kind = self.fresh(value)
            if kind is not None:
                answer = self.not_found(call, name, value, kind)
                if answer is not None:
                    return answer
        return None

    def not_found(self, call, name, value, kind):
        """The error the service gives a call that names a resource it does
        not know yet; None where the service accepts the call anyway."""
        if call.service == "ec2":
            if kind in ("loadbalancer", "targetgroup", "listener", "asg"):
                return None
            code, message = EC2_NOT_FOUND[kind.rstrip("*")]
            return error_answer("ec2", 400, code, message.format(id=value))
        if call.service == "elasticloadbalancing":
            if kind == "loadbalancer":
                return error_answer(call.service, 400, "LoadBalancerNotFound", "One or more load balancers not found")
            if kind == "targetgroup":
                return error_answer(call.service, 400, "TargetGroupNotFound", "One or more target groups not found")
            if kind == "listener":
                return error_answer(call.service, 400, "ListenerNotFound", "One or more listeners not found")
            if kind == "subnet":
                return error_answer(call.service, 400, "SubnetNotFound", f"The subnet ID '{value}' is not valid")
            if kind == "sg":
                return error_answer(
                    call.service, 400, "InvalidSecurityGroup", f"The security group '{value}' does not exist"
                )
            if kind == "vpc":
                return error_answer(call.service, 400, "ValidationError", f"The VPC ID '{value}' is not found")
            if kind.startswith("i"):
                return error_answer(
                    call.service, 400, "InvalidTarget", f"The following targets are not in a running state: {value}"
                )
            return None
        if call.service == "autoscaling":
            if kind == "asg":
                return error_answer(
                    call.service, 400, "ValidationError", f"AutoScalingGroup name not found - AutoScalingGroup {value} not found"
                )
            if kind in ("lt", "lt-name"):
                what = "ID" if kind == "lt" else "name"
                return error_answer(
                    call.service,
                    400,
                    "ValidationError",
                    "You must use a valid fully-formed launch template. The specified launch template, "
                    f"with template {what} {value}, does not exist.",
                )
            if kind == "subnet":
                return error_answer(
                    call.service, 400, "ValidationError", f"The subnet ID '{value}' does not exist"
                )
            if kind == "targetgroup":
                return error_answer(
                    call.service,
                    400,
                    "ValidationError",
                    "Provided Target Groups may not be valid. Please ensure they exist and try again.",
                )
            return None
        return None

    def after(self, call, status, body):
        if not status.startswith("200"):
            return body
        if call.service == "autoscaling" and call.action == "CreateAutoScalingGroup":
            # Auto scaling reads its own new groups back at once: Terraform's
            # aws_autoscaling_group describes the group right after creating
            # it and fails ("reading Auto Scaling Group ...: empty result")
            # if it is not listed, which AWS users do not see. (Its launch
            # template shares the name, so remembering the group would also
            # refuse the template's name for the window.)
            return body
        created = CREATED.get((call.service, call.action))
        if created:
            text = body.decode("utf-8", "replace")
            for element, kind in created:
                found = re.findall(f"<{element}>([^<]+)</{element}>", text)
                for value in found if kind.endswith("*") else found[:1]:
                    self.remember(value, kind)
            return body
        listed = LISTED_BY.get(call.action)
        if listed and call.service in ("ec2", "elasticloadbalancing", "autoscaling"):
            return self.leave_out(body, listed, f"{call.service}:{call.action}")
        return body

    def leave_out(self, body, element, listing):
        """Removes from a describe answer the resources not visible yet:
        the `<item>` (EC2) or `<member>` (query protocols) elements whose
        direct child `element` names one. Nested lists (a route table's
        associations, a group's rules) are items of items, never removed
        for their own children."""
        with self.lock:
            if not self.created:
                return body
        text = body.decode("utf-8", "replace")
        stack = []  # [tag, start, named ID]
        removed = []
        for match in re.finditer(r"<(/?)([A-Za-z][\w:.-]*)[^>]*?(/?)>", text):
            closing, tag, empty = match.group(1), match.group(2), match.group(3)
            if empty:
                continue
            if not closing:
                if tag == element and stack and stack[-1][0] in ("item", "member"):
                    close = text.find(f"</{element}>", match.end())
                    if close >= 0:
                        stack[-1][2] = text[match.end() : close].strip()
                stack.append([tag, match.start(), None])
                continue
            while stack:
                open_tag, start, named = stack.pop()
                if open_tag == tag:
                    break
            else:
                continue
            if tag in ("item", "member") and named and self.fresh(named) is not None:
                # An outer element closes after the inner ones it holds.
                removed = [span for span in removed if not (start <= span[0] and span[1] <= match.end())]
                removed.append((start, match.end()))
        for start, end in sorted(removed, reverse=True):
            text = text[:start] + text[end:]
        if removed:
            with self.lock:
                self.left_out[listing] = self.left_out.get(listing, 0) + len(removed)
        return text.encode()


def model_eventual_consistency(args):
    """Switch on eventual consistency (`--consistency-ms`): a hook, or None."""
    if not args.consistency_ms:
        return None
    return EventualConsistency(scaled(args, args.consistency_ms))


IAM_PROFILE_INVALID = "Value ({name}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"


class IamPropagation:
    """See "IAM propagation" in the module doc."""

    def __init__(self, window):
        self.window = window
        self.lock = threading.Lock()
        self.left_out = {}  # describe call -> resources left out of its answers
        self.changed = {}  # instance profile name -> monotonic time it was created or given a role
        self.template_profiles = {}  # launch template ID and name -> instance profile names

    @staticmethod
    def profile_name(value):
        # `arn:aws:iam::123456789012:instance-profile/path/name` or a name.
        return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value

    def fresh_profile(self, names):
        with self.lock:
            for name in names:
                at = self.changed.get(name)
                if at is not None and time.monotonic() - at < self.window:
                    return name
        return None

    def template_profile(self, call, prefix):
        template = call.param(prefix + "LaunchTemplateId") or call.param(prefix + "LaunchTemplateName")
        with self.lock:
            return set(self.template_profiles.get(template, ()))

    def before(self, call):
        if call.service == "autoscaling" and call.action in ("CreateAutoScalingGroup", "UpdateAutoScalingGroup"):
            names = self.template_profile(call, "LaunchTemplate.")
            names |= self.template_profile(call, "MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification.")
            fresh = self.fresh_profile(names)
            if fresh:
                return error_answer(
                    "autoscaling",
                    400,
                    "ValidationError",
                    "You must use a valid fully-formed launch template. " + IAM_PROFILE_INVALID.format(name=fresh),
                )
        if call.service == "ec2" and call.action == "RunInstances":
            names = {
                self.profile_name(value)
                for value in (call.param("IamInstanceProfile.Name"), call.param("IamInstanceProfile.Arn"))
                if value
            }
            names |= self.template_profile(call, "LaunchTemplate.")
            fresh = self.fresh_profile(names)
            if fresh:
                return error_answer(
                    "ec2", 400, "InvalidParameterValue", IAM_PROFILE_INVALID.format(name=fresh)
                )
        return None

    def after(self, call, status, body):
        if not status.startswith("200"):
            return body
        if call.service == "iam" and call.action in ("CreateInstanceProfile", "AddRoleToInstanceProfile"):
            name = call.param("InstanceProfileName")
            if name:
                with self.lock:
                    self.changed[name] = time.monotonic()
        elif call.service == "ec2" and call.action in ("CreateLaunchTemplate", "CreateLaunchTemplateVersion"):
            profile = call.param("LaunchTemplateData.IamInstanceProfile.Name") or call.param(
                "LaunchTemplateData.IamInstanceProfile.Arn"
            )
            if profile:
                text = body.decode("utf-8", "replace")
                keys = set(re.findall(r"<launchTemplateId>([^<]+)</launchTemplateId>", text)[:1])
                keys |= set(re.findall(r"<launchTemplateName>([^<]+)</launchTemplateName>", text)[:1])
                keys |= {v for v in (call.param("LaunchTemplateId"), call.param("LaunchTemplateName")) if v}
                with self.lock:
                    for key in keys:
                        self.template_profiles.setdefault(key, set()).add(self.profile_name(profile))
        return body


def model_iam_propagation(args):
    """Switch on IAM propagation (`--iam-propagation-ms`): a hook, or None."""
    if not args.iam_propagation_ms:
        return None
    return IamPropagation(scaled(args, args.iam_propagation_ms))


# EC2's request token buckets, from the EC2 API reference, "Request
# throttling for the Amazon EC2 API" (sections "Request token bucket sizes
# and refill rates" and "Resource token bucket sizes and refill rates";
# https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html).
# Each API action has a bucket of its own (requests are "evaluated
# individually ... on a per-API basis"), of its category's size:
# (maximum capacity, refill per second).
EC2_NON_MUTATING = (100, 20)  # Describe*, List*, Search*, Get*
EC2_UNFILTERED = (50, 10)  # the actions below without a filter or pagination
EC2_MUTATING = (50, 5)  # every other action, resource-intensive ones alike
EC2_UNFILTERED_ACTIONS = {
    "DescribeInstances",
    "DescribeInstanceStatus",
    "DescribeNetworkInterfaces",
    "DescribeSecurityGroups",
    "DescribeSnapshots",
    "DescribeSpotInstanceRequests",
    "DescribeVolumes",
}
# "Uncategorized actions" (their own sizes), those a cluster tool calls.
EC2_UNCATEGORIZED = {
    "CreateTags": (100, 10),
    "DeleteTags": (100, 10),
    "CreateNatGateway": (10, 1),
    "DeleteNatGateway": (10, 1),
    "CreateLaunchTemplateVersion": (100, 5),
    "ModifyLaunchTemplate": (100, 5),
    "CreateNetworkInterface": (100, 5),
    "DeleteNetworkInterface": (100, 5),
    "ModifyNetworkInterfaceAttribute": (100, 5),
    "AssociateIamInstanceProfile": (100, 5),
    "DisassociateIamInstanceProfile": (100, 5),
    "DescribeSecurityGroupReferences": (20, 5),
    "DescribeStaleSecurityGroups": (20, 5),
}
# Resource token buckets: one token per instance (same page).
EC2_RESOURCE_BUCKETS = {
    "RunInstances": (1000, 2),
    "TerminateInstances": (1000, 20),
    "StartInstances": (1000, 2),
    "StopInstances": (1000, 20),
}


def ec2_bucket(call):
    """The (bucket name, size) an EC2 request takes a token from."""
    action = call.action
    if action in EC2_UNCATEGORIZED:
        return action, EC2_UNCATEGORIZED[action]
    if action.startswith(("Describe", "List", "Search", "Get")):
        if action in EC2_UNFILTERED_ACTIONS and not any(
            name.startswith("Filter.") or name in ("MaxResults", "NextToken") for name in call.params
        ):
            return action + " (unfiltered)", EC2_UNFILTERED
        return action, EC2_NON_MUTATING
    return action, EC2_MUTATING


class TokenBuckets:
    """See "Throttling by token buckets" in the module doc. Time is wall
    time, not scaled: the buckets meter how fast a client calls."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.lock = threading.Lock()
        self.left_out = {}  # describe call -> resources left out of its answers
        self.buckets = {}  # name -> [tokens, last refill]

    def drain(self, seconds=0.0):
        """Empties every bucket and keeps it empty for `seconds` of wall
        time, as another client of the same account spending the account's
        budget would (`POST /_harness/drain-buckets?seconds=S`); then they
        refill at their rates."""
        until = self.clock() + seconds
        with self.lock:
            self.drained = until
            for bucket in self.buckets.values():
                bucket[0], bucket[1] = 0.0, until

    def take(self, name, size, tokens=1.0):
        capacity, rate = size
        now = self.clock()
        with self.lock:
            if name not in self.buckets:
                drained = getattr(self, "drained", None)
                self.buckets[name] = [float(capacity), now] if drained is None else [0.0, drained]
            bucket = self.buckets[name]
            if now > bucket[1]:
                bucket[0] = min(float(capacity), bucket[0] + (now - bucket[1]) * rate)
                bucket[1] = now
            if bucket[0] < tokens:
                return False
            bucket[0] -= tokens
            return True

    def before(self, call):
        if call.service != "ec2":
            return None
        name, size = ec2_bucket(call)
        if not self.take(name, size):
            return error_answer("ec2", 503, "RequestLimitExceeded", "Request limit exceeded.")
        if call.action in EC2_RESOURCE_BUCKETS:
            count = len([n for n in call.params if n.startswith("InstanceId.")]) or int(
                call.param("MaxCount") or call.param("MinCount") or 1
            )
            if not self.take(call.action + " (resources)", EC2_RESOURCE_BUCKETS[call.action], count):
                return error_answer("ec2", 503, "RequestLimitExceeded", "Request limit exceeded.")
        return None

    def after(self, call, status, body):
        return body


def model_token_buckets(args):
    """Switch on throttling by EC2's token buckets (`--token-buckets`): a hook, or None."""
    if not args.token_buckets:
        return None
    return TokenBuckets()


def model_boot_time(seconds):
    """Make auto scaling instances take `seconds` to come into service.

    moto puts every instance an auto scaling group launches InService at
    once; a real instance boots and joins for minutes first. Benchmarks of
    rolling updates need that wait to be there (it is what surge saves), so
    DescribeAutoScalingGroups reports an instance Pending until `seconds`
    after it was launched. Only the answer changes: moto's own scaling logic
    still counts the instance as in service, as AWS counts a booting one.
    """
    import time

    from moto.autoscaling.models import FakeAutoScalingGroup, InstanceState

    original_init = InstanceState.__init__

    def __init__(self, *args, **kwargs):
        self.launched_at = time.monotonic()
        original_init(self, *args, **kwargs)

    class Reported:
        """An instance state as answered: booting ones are Pending."""

        def __init__(self, state):
            self._state = state
            booting = time.monotonic() - getattr(state, "launched_at", 0.0) < seconds
            self.lifecycle_state = (
                "Pending" if state.lifecycle_state == "InService" and booting else state.lifecycle_state
            )

        def __getattr__(self, name):
            return getattr(self._state, name)

    def instances(self):
        return [Reported(state) for state in self.instance_states]

    InstanceState.__init__ = __init__
    FakeAutoScalingGroup.instances = property(instances)


# --- Realistic AWS: slow readiness and slow deletes -------------------------
#
# The behaviours below change what exists, not how a request is served: a
# NAT gateway is `pending` for everyone, a lingering network interface is in
# DescribeNetworkInterfaces for everyone. Only the errors they add (a
# dependency violation, an address still in use) are never answered to the
# harness's own requests (`HARNESS_MARKER`), so a test can always clean up
# and inspect. Timed transitions run lazily: every request first settles what
# is due (`Settlements.settle`), under a write lock that no request is inside
# moto for, so moto's dictionaries never change under a request iterating them.

# What the request being served is (set by `Harness.__call__`).
REQUEST = threading.local()


def harness_request():
    return getattr(REQUEST, "harness", False)


class ReadWriteLock:
    """Many readers (requests inside moto) or one writer (a settlement)."""

    def __init__(self):
        self.condition = threading.Condition()
        self.readers = 0
        self.writing = False

    @contextlib.contextmanager
    def reading(self):
        with self.condition:
            while self.writing:
                self.condition.wait()
            self.readers += 1
        try:
            yield
        finally:
            with self.condition:
                self.readers -= 1
                self.condition.notify_all()

    @contextlib.contextmanager
    def writing_lock(self):
        with self.condition:
            while self.writing or self.readers:
                self.condition.wait()
            self.writing = True
        try:
            yield
        finally:
            with self.condition:
                self.writing = False
                self.condition.notify_all()


class Settlements:
    """Timed transitions of the slow behaviours, and the network interfaces
    they keep in subnets and security groups meanwhile."""

    def __init__(self):
        self.lock = ReadWriteLock()
        self.mutex = threading.Lock()
        self.due = []  # (monotonic time, sequence, function)
        self.sequence = 0
        # Network interface ID -> what holds it there ("NAT gateway nat-…",
        # "load balancer …", "instance i-…"), for the dependency checks.
        self.held = {}

    def at(self, seconds, function):
        """Run `function` once `seconds` have passed (at the next request)."""
        with self.mutex:
            self.sequence += 1
            self.due.append((time.monotonic() + seconds, self.sequence, function))

    def settle(self):
        now = time.monotonic()
        with self.mutex:
            if not any(when <= now for when, _, _ in self.due):
                return
        with self.lock.writing_lock():
            with self.mutex:
                ready = sorted(entry for entry in self.due if entry[0] <= now)
                self.due = [entry for entry in self.due if entry[0] > now]
            for _, _, function in ready:
                try:
                    function()
                except Exception as error:  # a resource reset away meanwhile
                    print(f"settlement failed: {error!r}", file=sys.stderr, flush=True)

    def reset(self):
        with self.mutex:
            self.due = []
            self.held = {}

    def holders(self, backend, predicate):
        """Held network interfaces of `backend` that satisfy `predicate`."""
        found = []
        for eni_id in list(self.held):
            eni = backend.enis.get(eni_id)
            if eni is None:
                self.held.pop(eni_id, None)
            elif predicate(eni):
                found.append(eni)
        return found


SETTLEMENTS = None


def settlements():
    """The one `Settlements`, and the dependency checks every slow delete
    relies on, installed on first use."""
    global SETTLEMENTS
    if SETTLEMENTS is None:
        SETTLEMENTS = Settlements()
        model_dependency_checks(SETTLEMENTS)
    return SETTLEMENTS


def model_dependency_checks(held):
    """Refuse deletes that AWS refuses while a network interface is there.

    moto deletes a subnet or a security group whatever still uses it; AWS
    answers `DependencyViolation` (EC2 API reference, DeleteSubnet: "You must
    terminate all running instances in the subnet before you can delete the
    subnet"; DeleteSecurityGroup: "If you attempt to delete a security group
    that is associated with an instance or network interface ... the
    operation fails with DependencyViolation"), with the messages operators
    quote (kubernetes/kops#2452, "The subnet 'subnet-…' has dependencies and
    cannot be deleted."; kubernetes/kops#3245, "resource sg-… has a dependent
    object"). Only interfaces a slow behaviour holds (`Settlements.held`)
    count: moto itself leaks the interfaces of terminated instances and
    deleted NAT gateways forever, which AWS does not. (What moto 5.2 does
    enforce, and the model leaves to it: DeleteVpc with subnets or extra
    route tables, DeleteRouteTable with associations and
    DeleteInternetGateway while attached answer `DependencyViolation`;
    DetachInternetGateway, DeleteSubnet, DeleteSecurityGroup, ReleaseAddress
    and DisassociateAddress check nothing.)
    """
    from moto.ec2.exceptions import DependencyViolationError
    from moto.ec2.models.security_groups import SecurityGroupBackend
    from moto.ec2.models.subnets import SubnetBackend

    original_delete_subnet = SubnetBackend.delete_subnet
    original_delete_group = SecurityGroupBackend.delete_security_group

    def delete_subnet(self, subnet_id):
        if not harness_request() and held.holders(
            self, lambda eni: eni.subnet is not None and eni.subnet.id == subnet_id
        ):
            raise DependencyViolationError(f"The subnet '{subnet_id}' has dependencies and cannot be deleted.")
        return original_delete_subnet(self, subnet_id)

    def delete_security_group(self, name=None, group_id=None):
        if group_id and not harness_request():
            if held.holders(self, lambda eni: any(group.id == group_id for group in eni._group_set)):
                raise DependencyViolationError(f"resource {group_id} has a dependent object")
        return original_delete_group(self, name=name, group_id=group_id)

    SubnetBackend.delete_subnet = delete_subnet
    SecurityGroupBackend.delete_security_group = delete_security_group


def model_nat_readiness(seconds):
    """A new NAT gateway is `pending` for `seconds`, then `available`.

    moto makes it available at once. AWS: "pending: The NAT gateway is being
    created and is not ready to process traffic" (EC2 API reference,
    NatGateway.State); it takes one to a few minutes (terraform-provider-aws
    waits for it with `waitNATGatewayCreated`, a 10-minute timeout; kops
    waits before its routes, kubernetes/kops#944).
    """
    from moto.ec2.models.nat_gateways import NatGatewayBackend

    original = NatGatewayBackend.create_nat_gateway

    def create_nat_gateway(self, *args, **kwargs):
        gateway = original(self, *args, **kwargs)
        gateway.state = "pending"

        def ready():
            if gateway.state == "pending":
                gateway.state = "available"

        settlements().at(seconds, ready)
        return gateway

    NatGatewayBackend.create_nat_gateway = create_nat_gateway


def model_lb_readiness(seconds):
    """A new load balancer is `provisioning` for `seconds`, then `active`.

    moto makes it active on the first describe. AWS: State.Code
    `provisioning` until it is ready (ELBv2 API reference, LoadBalancerState;
    terraform-provider-aws's `waitLoadBalancerActive` polls for `active`,
    10-minute timeout; network load balancers take minutes).
    """
    from moto.elbv2.models import ELBv2Backend, FakeLoadBalancer

    original_create = ELBv2Backend.create_load_balancer
    original_activate = FakeLoadBalancer.activate

    def create_load_balancer(self, *args, **kwargs):
        balancer = original_create(self, *args, **kwargs)
        balancer.ready_at = time.monotonic() + seconds
        return balancer

    def activate(self):
        if time.monotonic() >= getattr(self, "ready_at", 0.0):
            original_activate(self)

    ELBv2Backend.create_load_balancer = create_load_balancer
    FakeLoadBalancer.activate = activate


# How long (wall seconds) a target registered from now on stays `initial`:
# `--target-healthy-ms`, scaled, or `POST /_harness/target-health`.
TARGET_HEALTH_DELAY = {"seconds": 0.0}


def model_target_health(seconds):
    """A target registered with a target group is `initial` for a while, then `healthy`.

    moto reports every registered target `healthy` at once. AWS routes to a
    new target only "as soon as the registration process completes and the
    targets pass the initial health checks. It can take a few minutes for
    the registration process to complete and health checks to start" (ELB
    guide, "Health checks for Network Load Balancer target groups",
    https://docs.aws.amazon.com/elasticloadbalancing/latest/network/target-group-health-checks.html);
    meanwhile DescribeTargetHealth answers State `initial`, Reason
    `Elb.RegistrationInProgress` ("The target is in the process of being
    registered with the load balancer"), then `Elb.InitialHealthChecking`
    ("The load balancer is still sending the target the minimum number of
    health checks required to determine its health status"; ELBv2 API
    reference, TargetHealth). Auto scaling registers a group's instances
    through the same `register` (moto's `update_attached_target_groups`),
    so they follow it too. The delay is the one in force when the target
    was registered; a target registered again starts over.
    """
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

    TARGET_HEALTH_DELAY["seconds"] = seconds
    original_register = FakeTargetGroup.register
    original_deregister = FakeTargetGroup.deregister
    original_health_for = FakeTargetGroup.health_for

    def register(self, targets):
        new = [target["Id"] for target in targets if target["Id"] not in self.targets]
        original_register(self, targets)
        registered = self.__dict__.setdefault("registered_at", {})
        for target_id in new:
            registered[target_id] = (time.monotonic(), TARGET_HEALTH_DELAY["seconds"])

    def deregister(self, targets):
        original_deregister(self, targets)
        for target in targets:
            self.__dict__.get("registered_at", {}).pop(target["Id"], None)

    def health_for(self, target, ec2_backend):
        status = original_health_for(self, target, ec2_backend)
        registered = self.__dict__.get("registered_at", {}).get(target["Id"])
        if status.status != "healthy" or registered is None:
            return status
        at, delay = registered
        elapsed = time.monotonic() - at
        if elapsed >= delay:
            return status
        if elapsed < delay / 2:
            reason, description = "Elb.RegistrationInProgress", "Target registration is in progress"
        else:
            reason, description = "Elb.InitialHealthChecking", "Initial health checks in progress"
        return FakeHealthStatus(
            status.instance_id, status.port, status.health_check_port, "initial", reason, description
        )

    FakeTargetGroup.register = register
    FakeTargetGroup.deregister = deregister
    FakeTargetGroup.health_for = health_for


def model_nat_deletes(seconds):
    """A deleted NAT gateway stays `deleting` for `seconds`, holding what it uses.

    moto marks it `deleted` at once. AWS keeps it `deleting` for about a
    minute ("deleting: The NAT gateway is in the process of being
    terminated and may still be processing traffic", EC2 API reference,
    NatGateway.State), and until it is `deleted`:
    * its elastic IP cannot be released or disassociated: `AuthFailure`
      "You do not have permission to access the specified resource."
      (kubernetes/kops#938 and #1604, genevieve/leftovers#33,
      eformat/sno-for-100#5; AWS answers so for any address a NAT gateway
      holds, `pending` and `available` ones too);
    * its network interface stays in its subnet (DeleteSubnet:
      `DependencyViolation`, see `model_dependency_checks`);
    * the VPC's internet gateway cannot be detached: `DependencyViolation`
      "Network vpc-… has some mapped public address(es). Please unmap those
      public address(es) before detaching the gateway."
      (hashicorp/terraform-provider-aws retries DetachInternetGateway on
      exactly this, `detachInternetGatewayFromVPC`; kubernetes/kops#1553).
    Once `deleted`, the address is disassociated (not released) and the
    interface is gone, as in AWS.
    """
    from moto.ec2.exceptions import DependencyViolationError, EC2ClientError
    from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend
    from moto.ec2.models.internet_gateways import InternetGatewayBackend
    from moto.ec2.models.nat_gateways import NatGatewayBackend

    held = settlements()
    original_create = NatGatewayBackend.create_nat_gateway
    original_delete = NatGatewayBackend.delete_nat_gateway
    original_release = ElasticAddressBackend.release_address
    original_disassociate = ElasticAddressBackend.disassociate_address
    original_detach = InternetGatewayBackend.detach_internet_gateway

    def create_nat_gateway(self, *args, **kwargs):
        gateway = original_create(self, *args, **kwargs)
        held.held[gateway._eni.id] = f"NAT gateway {gateway.id}"
        return gateway

    def delete_nat_gateway(self, nat_gateway_id):
        gateway = self.nat_gateways.get(nat_gateway_id)
        if gateway is None or gateway.state in ("deleting", "deleted"):
            return original_delete(self, nat_gateway_id) if gateway else gateway
        gateway.state = "deleting"
        backend = self

        def deleted():
            gateway.state = "deleted"
            eni = backend.enis.get(gateway._eni.id)
            if eni is None:
                return
            for address in list(backend.addresses):
                if address.eni is eni:
                    original_disassociate(backend, address=address.public_ip)
            held.held.pop(eni.id, None)
            eni.delete()

        held.at(seconds, deleted)
        return gateway

    def holding_gateway(backend, address):
        for gateway in backend.nat_gateways.values():
            if gateway.state != "deleted" and address.eni is not None and address.eni is gateway._eni:
                return gateway
        return None

    def find(backend, address=None, allocation_id=None, association_id=None):
        for candidate in backend.addresses:
            if (
                (address and candidate.public_ip == address)
                or (allocation_id and candidate.allocation_id == allocation_id)
                or (association_id and candidate.association_id == association_id)
            ):
                return candidate
        return None

    def refuse_if_held(backend, found):
        if found is not None and not harness_request() and holding_gateway(backend, found):
            raise EC2ClientError("AuthFailure", "You do not have permission to access the specified resource.")

    def release_address(self, address=None, allocation_id=None):
        refuse_if_held(self, find(self, address=address, allocation_id=allocation_id))
        return original_release(self, address=address, allocation_id=allocation_id)

    def disassociate_address(self, address=None, association_id=None):
        refuse_if_held(self, find(self, address=address, association_id=association_id))
        return original_disassociate(self, address=address, association_id=association_id)

    def detach_internet_gateway(self, internet_gateway_id, vpc_id):
        if not harness_request():
            for gateway in self.nat_gateways.values():
                if gateway.vpc_id == vpc_id and gateway.state != "deleted" and any(
                    entry.get("publicIp") for entry in gateway.address_set
                ):
                    raise DependencyViolationError(
                        f"Network {vpc_id} has some mapped public address(es). "
                        "Please unmap those public address(es) before detaching the gateway."
                    )
        return original_detach(self, internet_gateway_id, vpc_id)

    NatGatewayBackend.create_nat_gateway = create_nat_gateway
    NatGatewayBackend.delete_nat_gateway = delete_nat_gateway
    ElasticAddressBackend.release_address = release_address
    ElasticAddressBackend.disassociate_address = disassociate_address
    InternetGatewayBackend.detach_internet_gateway = detach_internet_gateway


def model_lb_eni_linger(seconds):
    """A deleted load balancer's network interfaces linger for `seconds`.

    A network load balancer has one requester-managed network interface per
    subnet (description `ELB net/NAME/ID`, ELB user guide, "Network
    interfaces for your load balancer"); moto makes none. After
    DeleteLoadBalancer they stay for minutes, in the subnets and security
    groups, so deleting those fails with `DependencyViolation` meanwhile
    (kubernetes/kops#3245 and #7045, `delete cluster` waiting on
    "resource sg-… has a dependent object"; kubernetes/kubernetes#51436).
    Here they are created with the balancer and removed `seconds` after it
    is deleted, so DescribeNetworkInterfaces shows them throughout.
    """
    from moto.elbv2.models import ELBv2Backend

    held = settlements()
    original_create = ELBv2Backend.create_load_balancer
    original_delete = ELBv2Backend.delete_load_balancer

    def create_load_balancer(self, *args, **kwargs):
        balancer = original_create(self, *args, **kwargs)
        ec2 = self.ec2_backend
        balancer.model_enis = []
        kind = "net" if balancer.type == "network" else "app"
        identifier = balancer.arn.rsplit("/", 1)[-1]
        for subnet in balancer.subnets:
            eni = ec2.create_network_interface(
                subnet,
                None,
                group_ids=list(balancer.security_groups or []) or None,
                description=f"ELB {kind}/{balancer.name}/{identifier}",
            )
            eni.requester_managed = True
            eni.requester_id = "amazon-elb"
            eni.interface_type = "network_load_balancer" if kind == "net" else "interface"
            eni.status = "in-use"
            held.held[eni.id] = f"load balancer {balancer.name}"
            balancer.model_enis.append(eni.id)
        return balancer

    def delete_load_balancer(self, arn):
        balancer = self.load_balancers.get(arn)
        original_delete(self, arn)
        if balancer is None:
            return
        ec2 = self.ec2_backend

        def gone():
            for eni_id in getattr(balancer, "model_enis", []):
                held.held.pop(eni_id, None)
                if eni_id in ec2.enis:
                    ec2.enis[eni_id].delete()

        held.at(seconds, gone)

    ELBv2Backend.create_load_balancer = create_load_balancer
    ELBv2Backend.delete_load_balancer = delete_load_balancer


def model_terminate_time(seconds):
    """A terminated instance is `shutting-down` for `seconds`, holding its interfaces.

    moto reports `terminated` at once (and keeps its primary network
    interface forever). AWS: `shutting-down` (code 32) first, then
    `terminated` (48) (EC2 user guide, "Instance lifecycle"); until then the
    instance's network interfaces stay in their subnets and security groups,
    so deleting those fails with `DependencyViolation` (kubernetes/kops
    `delete cluster` loops on it while instances terminate). Instances an
    auto scaling group terminates (DeleteAutoScalingGroup with ForceDelete,
    a rolling update's TerminateInstanceInAutoScalingGroup) go the same way.
    Once terminated, the primary interface (and any marked
    DeleteOnTermination) is deleted, as AWS does.
    """
    from moto.ec2.models.instances import Instance

    held = settlements()
    original = Instance.terminate

    def terminate(self):
        if self._state.name in ("shutting-down", "terminated"):
            return original(self)
        nics = list(self.nics.items())
        doomed = [nic for index, nic in nics if index == 0 or nic.delete_on_termination]
        flags = {nic.id: nic.delete_on_termination for _, nic in nics}
        for _, nic in nics:
            nic.delete_on_termination = False  # kept until the instance is gone
        previous = original(self)
        for _, nic in nics:
            nic.delete_on_termination = flags[nic.id]
            held.held[nic.id] = f"instance {self.id}"
        self._state.name = "shutting-down"
        self._state.code = 32
        backend = self.ec2_backend
        instance = self

        def terminated():
            instance._state.name = "terminated"
            instance._state.code = 48
            for _, nic in nics:
                held.held.pop(nic.id, None)
            for nic in doomed:
                if nic.id in backend.enis:
                    nic.delete()

        held.at(seconds, terminated)
        return previous

    Instance.terminate = terminate


def widen_s3_race_window(seconds):
    """Sleep between moto's S3 precondition checks and its writes.

    moto checks If-Match / If-None-Match in its response layer and writes in
    its backend; sleeping on entry to the backend write makes the window
    between the two wide enough that concurrent requests reliably hit it.
    """
    from moto.s3.models import S3Backend

    for name in ("put_object", "delete_object"):
        original = getattr(S3Backend, name)

        def slow(self, *args, _original=original, **kwargs):
            time.sleep(seconds)
            return _original(self, *args, **kwargs)

        setattr(S3Backend, name, slow)


if __name__ == "__main__":
    sys.exit(main())
