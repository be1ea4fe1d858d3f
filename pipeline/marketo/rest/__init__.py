"""Marketo's REST API: Sync Leads / Opportunities / Roles, programs, requests, replies, error codes (orjson)."""
