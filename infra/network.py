"""Network: a VPC over 2-3 zones, public and private subnets, NAT, VPC endpoints, and one
security group per workload.

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


@dataclass(frozen=True)
class NetworkArgs:
    prefix: str
    region: str
    cidr_block: str
    az_count: int
    nat_gateway_per_az: bool
    workloads: Sequence[str]


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
        nat_gateways = []
        for index in range(nat_count):
            zone = zones[index]
            eip = aws.ec2.Eip(
                f"nat-{zone}", domain="vpc", tags={"Name": f"{args.prefix}-nat-{zone}"}, opts=child
            )
            nat_gateways.append(
                aws.ec2.NatGateway(
                    f"nat-{zone}",
                    allocation_id=eip.id,
                    subnet_id=public_subnets[index].id,
                    tags={"Name": f"{args.prefix}-nat-{zone}"},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
            )

        private_route_tables = []
        for index, zone in enumerate(zones):
            # With a single NAT every zone shares it; with one per zone traffic stays in its zone.
            nat = nat_gateways[index % nat_count]
            table = aws.ec2.RouteTable(
                f"private-{zone}",
                vpc_id=vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
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

        self.security_group_ids = {}
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
            self.security_group_ids[workload] = group.id

        aws.ec2.VpcEndpoint(
            "s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in private_route_tables],
            tags={"Name": f"{args.prefix}-s3"},
            opts=child,
        )
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
