"""The embedded local stack: moto's server, a pip-installed PostgreSQL, and
an event-source poller that plays Lambda for the status queues."""
