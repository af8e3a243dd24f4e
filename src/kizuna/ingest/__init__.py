"""Ingestion: Segment-spec messages and file imports into the store."""
