"""The desk's feedback: pages and API routes (not yet written)."""

from __future__ import annotations

from fastapi import APIRouter


def pages() -> APIRouter:
    return APIRouter(include_in_schema=False)


def api() -> APIRouter:
    return APIRouter()
