"""HubSpot: the CRM v3/v4 client, its models, the property table and the adapters behind crmindex's protocols."""
