"""CRM API clients (HubSpot v3, Attio v2), their shared error model and rate-limit protocol."""
