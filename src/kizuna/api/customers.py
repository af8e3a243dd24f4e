"""Read API: customer profiles and timelines."""

from fastapi import APIRouter

router = APIRouter()
