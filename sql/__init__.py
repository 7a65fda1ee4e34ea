"""The SQL of crmindex, shipped as package data: migrations/ and the current area files (see README.md)."""
