"""Segment-compatible ingestion routes (/v1/*)."""

from fastapi import APIRouter

router = APIRouter()
