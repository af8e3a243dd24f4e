"""Scenarios (journeys): durable one-to-one automation over triggers, waits, branches and sends."""
