"""The local AWS as a server: moto's, on 127.0.0.1, with this package's CloudFormation; and a demo network
in it to deploy the template to."""

from __future__ import annotations

import logging
import socket
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


NOT_APPLIED = {
    "VpcId": "changing it on a deployed stack: alone it is a change AWS refuses too (the subnets stay in the "
    "old VPC), but the local AWS does not check that a resource's subnets and security groups share a VPC",
}
"""The template's parameters whose change the local AWS does not apply as AWS would, and why (the truth
test skips them; `local-aws --demo-params` names them)."""


def create_demo_network(ec2: Any, region: str, *, network: int = 20) -> dict[str, str]:
    """A VPC as a real installation would have it, in the local AWS: public subnets (a route to an
    internet gateway) and private ones, in two Availability Zones, and stand-in roi and worker images.
    `network` is the second octet of its 10.x.0.0/16 (VPCs to be peered must not overlap). Returns the
    template parameters that point at them."""
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
