"""Registry: one ECR repository per service image.

A component of its own, outside Compute, so a new stack can create its repositories first
(`pulumi up --target`), receive its first images, and only then start services that pull them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# Enough history to roll back a few deployments; older images expire.
IMAGES_KEPT = 30


@dataclass(frozen=True)
class RegistryArgs:
    prefix: str
    repositories: Sequence[str]
    protect: bool


class Registry(pulumi.ComponentResource):
    repository_urls: dict[str, pulumi.Output[str]]
    repository_arns: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("momentum:infra:Registry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repository_urls = {}
        self.repository_arns = {}
        for repository_name in args.repositories:
            repository = aws.ecr.Repository(
                repository_name,
                name=f"{args.prefix}-{repository_name}",
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration={"scan_on_push": True},
                force_delete=not args.protect,
                opts=child,
            )
            aws.ecr.LifecyclePolicy(
                repository_name,
                repository=repository.name,
                policy=json.dumps(
                    {
                        "rules": [
                            {
                                "rulePriority": 1,
                                "description": f"keep the last {IMAGES_KEPT} images",
                                "selection": {
                                    "tagStatus": "any",
                                    "countType": "imageCountMoreThan",
                                    "countNumber": IMAGES_KEPT,
                                },
                                "action": {"type": "expire"},
                            }
                        ]
                    }
                ),
                opts=child,
            )
            self.repository_urls[repository_name] = repository.repository_url
            self.repository_arns[repository_name] = repository.arn
        self.register_outputs({"repository_urls": self.repository_urls})
