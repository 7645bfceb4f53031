"""Entry point for ASGI servers: ``uvicorn --factory sinergia.api.asgi:app_factory``.
Settings come from ``SINERGIA_*`` environment variables, so every worker process agrees."""

from __future__ import annotations

import gc

from starlette.applications import Starlette

from sinergia.api.app import create_app
from sinergia.settings import load_settings


def app_factory() -> Starlette:
    app = create_app(load_settings())
    # What start-up made (modules, grammars, the OpenAPI document...) lives as long as the
    # process: kept out of the collector's reach, full collections stop scanning it over and
    # over while requests parse and drop thousands of short-lived documents.
    gc.freeze()
    return app
