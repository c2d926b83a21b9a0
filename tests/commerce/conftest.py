"""Payments fixtures: the fake Stripe reset for each test, an API pointed at it, accounts without
passwords, and shortcuts through the checkout flow."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_api.app import create_app
from momentum_api.identity.service import Identity
from momentum_dev.fakes.stripe import FakeStripe
from momentum_dev.fakes.stripe_wire import API_KEY
from momentum_domain.commerce.models import Payment
from momentum_domain.config import Settings
from momentum_domain.users.models import Role, User
from tests.fixtures.app import Account, MakeAccount, serve
from tests.fixtures.commerce import (
    FRONTEND,
    WEBHOOK_SECRET,
    Buy,
    Client,
    Purchase,
    Subscribe,
    Subscribed,
    deliver,
)


@pytest.fixture
def fake_stripe(stripe_server: FakeStripe) -> FakeStripe:
    stripe_server.reset()
    return stripe_server


@pytest.fixture(scope="session")
def commerce_settings(settings: Settings, stripe_server: FakeStripe) -> Settings:
    return settings.model_copy(
        update={
            "stripe_api_base": stripe_server.base_url,
            "stripe_api_key": API_KEY,
            "stripe_webhook_secret": WEBHOOK_SECRET,
            "frontend_url": FRONTEND,
        }
    )


@pytest.fixture(scope="session")
async def shop_client(commerce_settings: Settings) -> AsyncIterator[Client]:
    """The API, talking to the fake Stripe."""
    async with serve(create_app(commerce_settings)) as client:
        yield client


@pytest.fixture
def shop(shop_client: Client, fake_stripe: FakeStripe, reference_rows: object) -> Client:
    return shop_client


@pytest.fixture
def make_account(
    shop_client: Client, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> MakeAccount:
    """Users without a password (payments never sign in with one), with an access token from
    the API's identity provider: hashing passwords would be most of this suite's time."""
    identity: Identity = shop_client.app.state.identity

    async def make(role: Role = Role.FREE, email: str | None = None) -> Account:
        user_id = uuid.uuid4()
        async with sessions() as session, session.begin():
            user = User(
                id=user_id,
                email=email or f"{role.value.lower()}-{user_id.hex[:12]}@example.com",
                name=f"{role.value.title()} learner",
                role=role,
                identity_provider="local",
                subject=str(user_id),
                preferences={},
                demographics={},
            )
            session.add(user)
        return Account(user=user, password="", token=identity.issue_access_token(user))

    return make


@pytest.fixture
def buy(shop: Client, fake_stripe: FakeStripe, sessions: async_sessionmaker[AsyncSession]) -> Buy:
    """Checkout through the API, payment at the fake Stripe, then the signed webhook."""

    async def run(account: Account, course: Any) -> Purchase:
        started = await shop.post(f"/checkout/course/{course.id}", headers=account.headers)
        assert started.status_code == 200, started.text
        session_id = started.json()["session_id"]
        completed = fake_stripe.complete_checkout(session_id)
        response = await deliver(shop, fake_stripe.event("checkout.session.completed", completed))
        assert response.status_code == 200, response.text
        async with sessions() as session:
            payment_id = await session.scalar(
                select(Payment.id).where(Payment.stripe_checkout_session_id == session_id)
            )
        assert payment_id is not None
        return Purchase(session_id, completed["payment_intent"], payment_id)

    return run


@pytest.fixture
def subscribe(shop: Client, fake_stripe: FakeStripe) -> Subscribe:
    """A monthly subscription through the API, paid at the fake Stripe, with the events Stripe
    sends: checkout.session.completed, customer.subscription.created and invoice.paid."""

    async def run(account: Account) -> Subscribed:
        started = await shop.post(
            "/checkout/subscription", json={"interval": "month"}, headers=account.headers
        )
        assert started.status_code == 200, started.text
        completed = fake_stripe.complete_checkout(started.json()["session_id"])
        subscription = fake_stripe.subscriptions[completed["subscription"]]
        invoice = fake_stripe.invoices[completed["invoice"]]
        for event in (
            fake_stripe.event("checkout.session.completed", completed),
            fake_stripe.event("customer.subscription.created", subscription),
            fake_stripe.event("invoice.paid", invoice),
        ):
            response = await deliver(shop, event)
            assert response.status_code == 200, response.text
        return Subscribed(completed["id"], completed["subscription"], completed["invoice"])

    return run
