"""The platform under every flow: database access and org binding, the migrator, secrets, the one queue core
and the shared rate limiter."""
