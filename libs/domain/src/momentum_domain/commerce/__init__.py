"""Payments through Stripe, one module per job: ``checkout`` (a course or the premium
subscription), ``stripe_events`` (the webhook's events, applied once each), ``subscriptions``
(our mirror of Stripe's and the role that follows), ``refunds``, ``payments`` (the listings),
and ``entitlements`` (who may open which course, from purchases and subscriptions). Every call
to Stripe carries an idempotency key made from our own ids and the state it acts on; each
module says its keys."""
