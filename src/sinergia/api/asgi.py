"""Entry point for ASGI servers: ``uvicorn --factory sinergia.api.asgi:app_factory``.
Settings come from ``SINERGIA_*`` environment variables, so every worker process agrees."""

from __future__ import annotations

from starlette.applications import Starlette

from sinergia.api.app import create_app
from sinergia.settings import load_settings


def app_factory() -> Starlette:
    return create_app(load_settings())
