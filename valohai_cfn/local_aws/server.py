"""The local AWS as a server: moto's, on 127.0.0.1, with this package's CloudFormation, answering in each
service's error shape what moto cannot (an unknown region, an operation or route it lacks, a body it cannot
take); and a demo network in it to deploy the template to."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape as xml_escape

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

from . import api

LOCAL_HOST = "127.0.0.1"
# The largest request body the local AWS reads: S3's largest single PUT (5 GiB), more than any other API takes.
LARGEST_REQUEST = 5 * 1024**3
_log = logging.getLogger(__name__)


class LocalAws:
    """moto's server on 127.0.0.1 with the local AWS's CloudFormation, in this process; a context manager."""

    def __init__(self, port: int = 0) -> None:
        api.install()
        self._port = port
        self._server = ThreadedMotoServer(ip_address=LOCAL_HOST, port=port, verbose=False)
        self.endpoint_url = ""

    def start(self) -> str:
        """Start serving; raises OSError when the port is taken (werkzeug would only print it, in its thread)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((LOCAL_HOST, self._port))
        # One line per request from werkzeug drowns the deploy's own progress.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        server = self._server._server  # werkzeug's, made in start(): the only place moto's app can be wrapped
        server.app = refusing_unknown_regions(answering_failures(server.app))  # type: ignore[union-attr]
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self.endpoint_url

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> LocalAws:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# The credential scope of a SigV4 Authorization header: key/date/REGION/SERVICE/aws4_request.
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")


# The services whose REST API answers in XML (botocore's rest-xml protocol), by signing name; the other REST APIs
# answer in JSON (rest-json), as do the services called with X-Amz-Target (json).
REST_XML_SERVICES = frozenset({"s3", "route53", "cloudfront"})


def _error_body(service: str, json_protocol: bool, code: str, message: str) -> tuple[bytes, str]:
    """An error in the shape the service's protocol answers errors in (what botocore parses)."""
    if json_protocol:
        return json.dumps({"__type": code, "message": message}).encode(), "application/x-amz-json-1.1"
    message = xml_escape(message)
    if service == "ec2":
        body = f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors></Response>"
    elif service == "s3":
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    else:
        error = f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
        body = f"<ErrorResponse><Error>{error}</Error></ErrorResponse>"
    return body.encode(), "text/xml"


def _refused(
    environ: dict, start_response: Callable, status: str, code: str, message: str, body: bytes = b""
) -> list[bytes]:
    """The answer `status` with the error `code` in the shape of the request's service (`body`: the request's, if
    read, to find its Action); none to HEAD, whose answer has no body."""
    service, _operation, json_protocol = _request_shape(environ, body)
    error, content_type = _error_body(service, json_protocol, code, message)
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(error)))])
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [error]


def _signed_for(environ: dict) -> tuple[str, str] | None:
    """(region, service) a request is signed for: its Authorization header's credential scope, or a presigned
    URL's X-Amz-Credential; None when it is not signed with SigV4."""
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if scope:
        return scope.group(1), scope.group(2)
    credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0].split("/")
    return (credential[2], credential[3]) if len(credential) == 5 else None


def _service(environ: dict) -> str:
    """The service a request is for, by its signature: one signed with SigV2 (only S3 still takes it) or not at
    all is S3's, as moto takes it."""
    signed = _signed_for(environ)
    return signed[1] if signed else "s3"


def _request_shape(environ: dict, body: bytes) -> tuple[str, str, bool]:
    """(service, operation, whether errors are JSON) of a request, as AWS names them: the service it is signed for,
    and the query protocol's Action, the JSON protocol's X-Amz-Target, or a REST API's method and path."""
    service = _service(environ)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rpartition(".")[2], True
    content_type = environ.get("CONTENT_TYPE", "")
    form = "x-www-form-urlencoded" in content_type  # a query API's body (another, an upload say, is not parsed)
    for fields in (environ.get("QUERY_STRING", ""), body.decode("utf-8", "replace") if form else ""):
        action = parse_qs(fields).get("Action")
        if action:
            return service, action[0], "json" in content_type
    operation = f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')}"
    query = form or service == "ec2"  # a query API's body not read
    return service, operation, not query and service not in REST_XML_SERVICES


# werkzeug's own HTML pages for a route moto lacks (404) and a method no route takes (405); a service's own 404 is
# XML or JSON, or has no body (NoSuchKey, HeadBucket of a free name).
_ROUTE_MISSES = ("404", "405")


def _failed(status: str, body: bytes) -> bool:
    """moto's answers that are not the service's: its 500 page, and werkzeug's HTML page of a route it lacks."""
    return status.startswith("500") or (
        status.startswith(_ROUTE_MISSES) and body.lstrip().lower().startswith(b"<!doctype")
    )


def answering_failures(app: Callable) -> Callable:
    """moto's WSGI app, answering a request moto fails on (an operation it has not implemented, a route it lacks,
    or a fault of its own: an HTML page, which botocore cannot parse, and for a 500 retries) with an error in the
    service's shape that says so: HTTP 501 NotImplemented, which botocore neither retries nor misreads. Never a
    500 (the local AWS's rule)."""

    def answering(environ: dict, start_response: Callable) -> Iterable[bytes]:
        # The body, read once to name the operation and handed to moto as it came: werkzeug's reading, as moto's
        # own (a chunked body to its end; a Content-Length it cannot read, or a negative one, as 0).
        try:
            body = get_input_stream(environ, max_content_length=LARGEST_REQUEST).read()
        except RequestEntityTooLarge:  # a length no AWS API takes (or a client's lie): not read, not waited for
            message = f"The request's Content-Length is over {LARGEST_REQUEST:,} bytes, the most S3 takes in one PUT."
            return _refused(environ, start_response, "413 Request Entity Too Large", "EntityTooLarge", message)
        except BadRequest:  # werkzeug's ClientDisconnected: the body ended before its length, or its chunking broke
            message = "The request's body ended before the length its Content-Length or chunks gave."
            return _refused(environ, start_response, "400 Bad Request", "IncompleteBody", message)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.input_terminated"] = True
        answered: list[tuple[str, list, Any]] = []
        written: list[bytes] = []

        def held(status: str, headers: list, exc_info: Any = None) -> Callable:
            answered.append((status, headers, exc_info))
            return written.append

        try:
            response: Iterable[bytes] = app(environ, held)
            if not answered or written:  # an app that answers as it is iterated, or writes: all of it, held
                response = [*written, *response]
        except NotImplementedError as e:  # what werkzeug would answer with its 500 page
            _log.warning("the local AWS (moto): %s", e)
        except Exception:
            _log.exception("the local AWS (moto) failed on a request")
        else:
            status, headers, exc_info = answered[-1] if answered else ("500 Internal Server Error", [], None)
            page = b""
            if status.startswith(_ROUTE_MISSES):  # read to tell werkzeug's page from the service's (small, either)
                page = b"".join(response)
                if hasattr(response, "close"):
                    response.close()
                response = [page]
            if not _failed(status, page):
                start_response(status, headers, exc_info)
                return response
            if hasattr(response, "close"):
                response.close()
            if page:
                _log.warning(
                    "the local AWS (moto) has no route for %s %s",
                    environ.get("REQUEST_METHOD"),
                    environ.get("PATH_INFO"),
                )
        service, operation, _json_protocol = _request_shape(environ, body)
        message = (
            f"The local AWS (moto) cannot answer {service} {operation}: it is not implemented there, or moto failed "
            "on it. AWS would answer it; test it with botocore's Stubber instead."
        )
        return _refused(environ, start_response, "501 Not Implemented", "NotImplemented", message, body)

    return answering


def refusing_unknown_regions(app: Callable) -> Callable:
    """moto's WSGI app, refusing a request signed for a region that is not AWS's as AWS does (a signature
    error, HTTP 403) where moto answered an HTTP 500 page (KeyError on its backends)."""
    from valohai_cfn.publish import PublishError, check_region

    def refusing(environ: dict, start_response: Callable) -> Iterable[bytes]:
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if scope:
            region = scope.group(1)
            try:
                check_region(region)
            except PublishError:
                # A signature error, as AWS answers a request signed for a region it does not have.
                code = "InvalidSignatureException" if _request_shape(environ, b"")[2] else "SignatureDoesNotMatch"
                message = f"Credential should be scoped to a valid region, not '{region}'."
                return _refused(environ, start_response, "403 Forbidden", code, message)
        return app(environ, start_response)

    return refusing


NOT_APPLIED = {
    "VpcId": "changing it on a deployed stack: alone it is a change AWS refuses too (the subnets stay in the "
    "old VPC), but the local AWS does not check that a resource's subnets and security groups share a VPC",
}
"""The template's parameters whose change the local AWS does not apply as AWS would, and why (the truth
test skips them; `local-aws --demo-params` names them)."""


def create_demo_network(ec2: Any, region: str, *, network: int = 20) -> dict[str, str]:
    """A VPC as a real installation would have it, in the local AWS: public subnets (a route to an
    internet gateway) and private ones (a route to a NAT gateway), in two Availability Zones, and stand-in roi
    and worker images. `network` is the second octet of its 10.x.0.0/16 (VPCs to be peered must not overlap).
    Returns the template parameters that point at them."""
    vpc = ec2.create_vpc(CidrBlock=f"10.{network}.0.0/16")["Vpc"]["VpcId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    public_routes = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_routes, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    subnets: dict[str, list[str]] = {"public": [], "private": []}
    for i, zone in enumerate((f"{region}a", f"{region}b")):
        for j, kind in enumerate(("public", "private")):
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{network}.{i * 2 + j}.0/24", AvailabilityZone=zone)
            subnets[kind].append(subnet["Subnet"]["SubnetId"])
    for subnet in subnets["public"]:
        ec2.associate_route_table(RouteTableId=public_routes, SubnetId=subnet)
    # The private subnets reach the internet through a NAT gateway, as the app and the workers need (they get
    # no public address).
    address = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnets["public"][0], AllocationId=address)["NatGateway"]["NatGatewayId"]
    private_routes = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=private_routes, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    for subnet in subnets["private"]:
        ec2.associate_route_table(RouteTableId=private_routes, SubnetId=subnet)
    image = ec2.register_image(Name="valohai-roi-demo", RootDeviceName="/dev/sda1", Architecture="x86_64")["ImageId"]
    worker_image = ec2.register_image(Name="valohai-peon-demo", RootDeviceName="/dev/sda1", Architecture="x86_64")[
        "ImageId"
    ]
    private = ",".join(subnets["private"])
    return {
        "VpcId": vpc,
        "LoadBalancerSubnetIds": ",".join(subnets["public"]),
        "RoiSubnetId": subnets["private"][0],
        "DatabaseSubnetIds": private,
        "CacheSubnetIds": private,
        "WorkerSubnetIds": private,
        "Domain": "valohai.demo.example.com",
        "OrganizationName": "demo",
        "RoiAmiId": image,
        "WorkerAmiId": worker_image,
    }
