"""Identity: a Cognito user pool with ADMIN and PREMIUM groups and the frontend's app client.

The API verifies Cognito JWTs through the pool's JWKS; the issuer, JWKS URL and client id
(the audience) are outputs wired into the API's task definition, with the userInfo URL on the
pool's domain, where the API learns a new user's email (access tokens carry none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from config import SocialProvider

# Lower precedence wins when a user is in both groups.
GROUPS = {"ADMIN": 0, "PREMIUM": 10}


@dataclass(frozen=True)
class IdentityArgs:
    prefix: str
    region: str
    domain_prefix: str
    frontend_origin: str
    mfa: str
    social_providers: Sequence[SocialProvider]
    protect: bool


class Identity(pulumi.ComponentResource):
    user_pool_id: pulumi.Output[str]
    user_pool_arn: pulumi.Output[str]
    client_id: pulumi.Output[str]
    issuer: pulumi.Output[str]
    jwks_url: pulumi.Output[str]
    userinfo_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("momentum:infra:Identity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        mfa_enabled = args.mfa != "OFF"

        pool = aws.cognito.UserPool(
            "users",
            name=f"{args.prefix}-users",
            # LITE covers sign-up, sign-in, groups, TOTP MFA and social providers at the lowest
            # per-user price.
            user_pool_tier="LITE",
            username_attributes=["email"],
            auto_verified_attributes=["email"],
            password_policy={
                "minimum_length": 12,
                "require_lowercase": True,
                "require_uppercase": True,
                "require_numbers": True,
                "require_symbols": False,
                "temporary_password_validity_days": 3,
            },
            mfa_configuration=args.mfa,
            software_token_mfa_configuration={"enabled": True} if mfa_enabled else None,
            account_recovery_setting={
                "recovery_mechanisms": [{"name": "verified_email", "priority": 1}]
            },
            deletion_protection="ACTIVE" if args.protect else "INACTIVE",
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        for group_name, precedence in GROUPS.items():
            aws.cognito.UserGroup(
                f"group-{group_name.lower()}",
                name=group_name,
                user_pool_id=pool.id,
                precedence=precedence,
                opts=child,
            )
        providers = [
            aws.cognito.IdentityProvider(
                f"idp-{provider.provider_type.lower()}",
                user_pool_id=pool.id,
                provider_name=provider.provider_type,
                provider_type=provider.provider_type,
                provider_details={
                    "client_id": provider.client_id,
                    "client_secret": provider.client_secret,
                    "authorize_scopes": provider.scopes,
                },
                attribute_mapping={"email": "email", "username": "sub"},
                opts=child,
            )
            for provider in args.social_providers
        ]
        domain = aws.cognito.UserPoolDomain(
            "hosted-ui", domain=args.domain_prefix, user_pool_id=pool.id, opts=child
        )
        client = aws.cognito.UserPoolClient(
            "frontend",
            name=f"{args.prefix}-frontend",
            user_pool_id=pool.id,
            # A browser app cannot keep a secret: it uses the authorization code flow with PKCE.
            generate_secret=False,
            explicit_auth_flows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            allowed_oauth_flows_user_pool_client=True,
            allowed_oauth_flows=["code"],
            # openid lets the token call userInfo; email makes userInfo answer the email.
            allowed_oauth_scopes=["openid", "email", "profile"],
            callback_urls=[f"{args.frontend_origin}/auth/callback"],
            logout_urls=[args.frontend_origin],
            supported_identity_providers=["COGNITO"]
            + [provider.provider_type for provider in args.social_providers],
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
            access_token_validity=15,
            id_token_validity=15,
            refresh_token_validity=30,
            token_validity_units={
                "access_token": "minutes",
                "id_token": "minutes",
                "refresh_token": "days",
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=providers),
        )

        self.user_pool_id = pool.id
        self.user_pool_arn = pool.arn
        self.client_id = client.id
        self.issuer = pool.id.apply(
            lambda pool_id: f"https://cognito-idp.{args.region}.amazonaws.com/{pool_id}"
        )
        self.jwks_url = self.issuer.apply(lambda issuer: f"{issuer}/.well-known/jwks.json")
        self.userinfo_url = domain.domain.apply(
            lambda prefix: f"https://{prefix}.auth.{args.region}.amazoncognito.com/oauth2/userInfo"
        )
        self.register_outputs(
            {
                "user_pool_id": self.user_pool_id,
                "client_id": self.client_id,
                "issuer": self.issuer,
                "jwks_url": self.jwks_url,
                "userinfo_url": self.userinfo_url,
            }
        )
