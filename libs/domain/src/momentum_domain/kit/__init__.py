"""The adapters every service needs, apart from the domains: the database and its credentials,
Redis, the task queue, object storage, telemetry and logging, resilience (breakers, heartbeats),
pagination, the unit of work (effects after a commit), webhook dedup."""
