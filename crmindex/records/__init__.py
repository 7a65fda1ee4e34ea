"""Tier 2, materialized records: full CRM records fetched on demand when a contact becomes active."""
