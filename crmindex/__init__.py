"""crmindex: a Postgres-native index of whole CRMs (HubSpot, Attio) for an AI sales copilot."""

__version__ = "0.1.0"
