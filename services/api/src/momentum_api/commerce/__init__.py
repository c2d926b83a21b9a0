"""Payments over HTTP: Stripe Checkout, Stripe's webhook, a learner's payments and subscription,
and the administrators' payment list and refunds."""
