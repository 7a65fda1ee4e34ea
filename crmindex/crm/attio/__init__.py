"""Attio: the REST v2 client, its models, attribute values and the adapters behind crmindex's protocols."""
