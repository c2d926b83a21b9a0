"""Network: a VPC over 2-3 zones, public and private subnets, NAT (managed gateways or
NAT instances), VPC endpoints, and one security group per workload.

Workload groups start with HTTPS egress only; whoever a workload talks to (database, cache,
load balancer) adds the matching pair of rules, so every open port is declared next to its
reason.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

HTTPS = 443
# Interface endpoints that keep image pulls, secrets and logs off the NAT gateways.
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "secretsmanager", "logs")
# A NAT instance: the smallest Graviton instance, booted from the current Amazon Linux 2023.
NAT_INSTANCE_TYPE = "t4g.nano"
NAT_INSTANCE_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
NAT_INSTANCE_ROOT_GB = 8
# Forward and masquerade everything leaving the default interface, and keep it across reboots.
NAT_INSTANCE_USER_DATA = """#!/bin/bash
set -euo pipefail
# The Elastic IP may be associated after boot: retry until the repository is reachable.
until dnf install -y iptables-services; do sleep 10; done
echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-nat.conf
sysctl --system
interface=$(ip route show default | awk '{print $5; exit}')
iptables -t nat -A POSTROUTING -o "$interface" -j MASQUERADE
iptables -F FORWARD
service iptables save
systemctl enable --now iptables
"""


@dataclass(frozen=True)
class NetworkArgs:
    prefix: str
    region: str
    cidr_block: str
    az_count: int
    nat_gateway_per_az: bool
    workloads: Sequence[str]
    nat_mode: str = "gateway"
    interface_endpoints: bool = True


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    security_group_ids: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("momentum:infra:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        zones = aws.get_availability_zones(
            state="available", opts=pulumi.InvokeOptions(parent=self)
        ).names[: args.az_count]
        # The first /20 of a /16 holds the small public subnets; each private subnet gets a /20.
        blocks = list(ipaddress.ip_network(args.cidr_block).subnets(prefixlen_diff=4))
        public_cidrs = list(blocks[0].subnets(prefixlen_diff=4))

        vpc = aws.ec2.Vpc(
            "vpc",
            cidr_block=args.cidr_block,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": args.prefix},
            opts=child,
        )
        igw = aws.ec2.InternetGateway("igw", vpc_id=vpc.id, tags={"Name": args.prefix}, opts=child)
        public_routes = aws.ec2.RouteTable(
            "public",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags={"Name": f"{args.prefix}-public"},
            opts=child,
        )

        public_subnets = []
        private_subnets = []
        for index, zone in enumerate(zones):
            public = aws.ec2.Subnet(
                f"public-{zone}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=str(public_cidrs[index]),
                # Only the load balancer and NAT live here, and they get their addresses explicitly.
                map_public_ip_on_launch=False,
                tags={"Name": f"{args.prefix}-public-{zone}", "Tier": "public"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"public-{zone}", subnet_id=public.id, route_table_id=public_routes.id, opts=child
            )
            private = aws.ec2.Subnet(
                f"private-{zone}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=str(blocks[1 + index]),
                map_public_ip_on_launch=False,
                tags={"Name": f"{args.prefix}-private-{zone}", "Tier": "private"},
                opts=child,
            )
            public_subnets.append(public)
            private_subnets.append(private)

        nat_count = len(zones) if args.nat_gateway_per_az else 1
        self.security_group_ids = self._workload_groups(args, vpc)
        if args.nat_mode == "instance":
            nat_routes = self._nat_instances(args, vpc, igw, zones[:nat_count], public_subnets)
        else:
            nat_routes = []
            for index in range(nat_count):
                zone = zones[index]
                eip = aws.ec2.Eip(
                    f"nat-{zone}",
                    domain="vpc",
                    tags={"Name": f"{args.prefix}-nat-{zone}"},
                    opts=child,
                )
                gateway = aws.ec2.NatGateway(
                    f"nat-{zone}",
                    allocation_id=eip.id,
                    subnet_id=public_subnets[index].id,
                    tags={"Name": f"{args.prefix}-nat-{zone}"},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
                nat_routes.append({"cidr_block": "0.0.0.0/0", "nat_gateway_id": gateway.id})

        private_route_tables = []
        for index, zone in enumerate(zones):
            # With a single NAT every zone shares it; with one per zone traffic stays in its zone.
            table = aws.ec2.RouteTable(
                f"private-{zone}",
                vpc_id=vpc.id,
                routes=[nat_routes[index % nat_count]],
                tags={"Name": f"{args.prefix}-private-{zone}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"private-{zone}",
                subnet_id=private_subnets[index].id,
                route_table_id=table.id,
                opts=child,
            )
            private_route_tables.append(table)

        aws.ec2.VpcEndpoint(
            "s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in private_route_tables],
            tags={"Name": f"{args.prefix}-s3"},
            opts=child,
        )
        if args.interface_endpoints:
            self._interface_endpoints(args, vpc, private_subnets)

        self.vpc_id = vpc.id
        self.public_subnet_ids = [subnet.id for subnet in public_subnets]
        self.private_subnet_ids = [subnet.id for subnet in private_subnets]
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "security_group_ids": self.security_group_ids,
            }
        )

    def _interface_endpoints(
        self, args: NetworkArgs, vpc: aws.ec2.Vpc, private_subnets: list[aws.ec2.Subnet]
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        endpoint_group = aws.ec2.SecurityGroup(
            "endpoints-sg",
            name=f"{args.prefix}-endpoints",
            description="VPC interface endpoints",
            vpc_id=vpc.id,
            tags={"Name": f"{args.prefix}-endpoints"},
            opts=child,
        )
        for workload, group_id in self.security_group_ids.items():
            aws.vpc.SecurityGroupIngressRule(
                f"endpoints-from-{workload}",
                security_group_id=endpoint_group.id,
                description=f"HTTPS from {workload} tasks",
                ip_protocol="tcp",
                from_port=HTTPS,
                to_port=HTTPS,
                referenced_security_group_id=group_id,
                opts=child,
            )
        for service in INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                service.replace(".", "-"),
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[subnet.id for subnet in private_subnets],
                security_group_ids=[endpoint_group.id],
                tags={"Name": f"{args.prefix}-{service}"},
                opts=child,
            )

    def _workload_groups(
        self, args: NetworkArgs, vpc: aws.ec2.Vpc
    ) -> dict[str, pulumi.Output[str]]:
        child = pulumi.ResourceOptions(parent=self)
        groups: dict[str, pulumi.Output[str]] = {}
        for workload in args.workloads:
            group = aws.ec2.SecurityGroup(
                f"{workload}-sg",
                name=f"{args.prefix}-{workload}",
                description=f"{workload} tasks",
                vpc_id=vpc.id,
                tags={"Name": f"{args.prefix}-{workload}"},
                opts=child,
            )
            aws.vpc.SecurityGroupEgressRule(
                f"{workload}-https-out",
                security_group_id=group.id,
                description="HTTPS to AWS APIs and third-party providers",
                ip_protocol="tcp",
                from_port=HTTPS,
                to_port=HTTPS,
                cidr_ipv4="0.0.0.0/0",
                opts=child,
            )
            groups[workload] = group.id

        return groups

    def _nat_instances(
        self,
        args: NetworkArgs,
        vpc: aws.ec2.Vpc,
        igw: aws.ec2.InternetGateway,
        zones: Sequence[str],
        public_subnets: list[aws.ec2.Subnet],
    ) -> list[dict[str, pulumi.Input[str]]]:
        """A NAT instance per zone in ``zones``, in place of NAT gateways: a twelfth of the
        hourly price and no per-GB processing charge, for an instance we keep (EC2's automatic
        recovery restarts it on host failure).
        The workloads send only HTTPS out, so that is all it accepts, and only from them."""
        child = pulumi.ResourceOptions(parent=self)
        ami = aws.ssm.get_parameter_output(
            name=NAT_INSTANCE_AMI_PARAMETER, opts=pulumi.InvokeOutputOptions(parent=self)
        ).value
        group = aws.ec2.SecurityGroup(
            "nat-sg",
            name=f"{args.prefix}-nat",
            description="NAT instances",
            vpc_id=vpc.id,
            tags={"Name": f"{args.prefix}-nat"},
            opts=child,
        )
        for workload, group_id in self.security_group_ids.items():
            aws.vpc.SecurityGroupIngressRule(
                f"nat-from-{workload}",
                security_group_id=group.id,
                description=f"HTTPS from {workload} tasks, to the internet",
                ip_protocol="tcp",
                from_port=HTTPS,
                to_port=HTTPS,
                referenced_security_group_id=group_id,
                opts=child,
            )
        aws.vpc.SecurityGroupEgressRule(
            "nat-https-out",
            security_group_id=group.id,
            description="HTTPS forwarded for the workloads, and package installs",
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            cidr_ipv4="0.0.0.0/0",
            opts=child,
        )
        routes: list[dict[str, pulumi.Input[str]]] = []
        for zone, subnet in zip(zones, public_subnets, strict=False):
            instance = aws.ec2.Instance(
                f"nat-{zone}",
                ami=ami,
                instance_type=NAT_INSTANCE_TYPE,
                subnet_id=subnet.id,
                vpc_security_group_ids=[group.id],
                # It forwards packets that are neither from nor to itself.
                source_dest_check=False,
                user_data=NAT_INSTANCE_USER_DATA,
                user_data_replace_on_change=True,
                metadata_options={"http_tokens": "required"},
                root_block_device={
                    "volume_size": NAT_INSTANCE_ROOT_GB,
                    "volume_type": "gp3",
                    "encrypted": True,
                },
                tags={"Name": f"{args.prefix}-nat-{zone}"},
                # The AMI is the newest when the instance is created; a newer one later must
                # not replace it (and cut the zone's outbound traffic) on an unrelated update.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["ami"]),
            )
            aws.ec2.Eip(
                f"nat-{zone}",
                domain="vpc",
                instance=instance.id,
                tags={"Name": f"{args.prefix}-nat-{zone}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            routes.append(
                {
                    "cidr_block": "0.0.0.0/0",
                    "network_interface_id": instance.primary_network_interface_id,
                }
            )
        return routes


def allow_clients(
    target: str,
    group: aws.ec2.SecurityGroup,
    clients: Mapping[str, pulumi.Input[str]],
    *,
    ports: tuple[int, int],
    protocol: str,
    destination: str,
    opts: pulumi.ResourceOptions,
) -> None:
    """Open ``group`` to each client security group on ``ports``, and each client's egress to
    it: ``{target}-from-{workload}`` and ``{workload}-to-{target}`` rules, nothing wider."""
    low, high = ports
    for workload, client_group_id in clients.items():
        aws.vpc.SecurityGroupIngressRule(
            f"{target}-from-{workload}",
            security_group_id=group.id,
            description=f"{protocol} from {workload} tasks",
            ip_protocol="tcp",
            from_port=low,
            to_port=high,
            referenced_security_group_id=client_group_id,
            opts=opts,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{workload}-to-{target}",
            security_group_id=client_group_id,
            description=f"{protocol} to {destination}",
            ip_protocol="tcp",
            from_port=low,
            to_port=high,
            referenced_security_group_id=group.id,
            opts=opts,
        )
