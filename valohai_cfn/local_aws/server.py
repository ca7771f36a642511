"""The local AWS as a server: moto's, on 127.0.0.1, with this package's CloudFormation; and a demo network
in it to deploy the template to."""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from . import api

LOCAL_HOST = "127.0.0.1"


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
        server.app = refusing_unknown_regions(server.app)  # type: ignore[union-attr]
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


def _error_body(service: str, json_protocol: bool, message: str) -> tuple[bytes, str]:
    """A signature error in the shape the service's protocol answers errors in (what botocore parses)."""
    code = "InvalidSignatureException" if json_protocol else "SignatureDoesNotMatch"
    if json_protocol:
        return json.dumps({"__type": code, "message": message}).encode(), "application/x-amz-json-1.1"
    if service == "ec2":
        body = f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors></Response>"
    elif service == "s3":
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    else:
        error = f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
        body = f"<ErrorResponse><Error>{error}</Error></ErrorResponse>"
    return body.encode(), "text/xml"


def refusing_unknown_regions(app: Callable) -> Callable:
    """moto's WSGI app, refusing a request signed for a region that is not AWS's as AWS does (a signature
    error, HTTP 403) where moto answered an HTTP 500 page (KeyError on its backends)."""
    from valohai_cfn.publish import PublishError, check_region

    def refusing(environ: dict, start_response: Callable) -> Iterable[bytes]:
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if scope:
            region, service = scope.groups()
            try:
                check_region(region)
            except PublishError:
                json_protocol = "json" in environ.get("CONTENT_TYPE", "")
                message = f"Credential should be scoped to a valid region, not '{region}'."
                body, content_type = _error_body(service, json_protocol, message)
                start_response("403 Forbidden", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
                return [body]
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
