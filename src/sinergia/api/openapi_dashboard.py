"""The dashboard part of the OpenAPI description: the pages under ``/dashboard`` (HTML for
people, described so the description stays the complete list of what the server answers), the
server-sent event stream any client may follow, and the endpoint where the broker delivers the
dashboard subscription's notifications. Served by :mod:`sinergia.web.routes`."""

from __future__ import annotations

from typing import Any, Final

from sinergia.api.http import JSON
from sinergia.api.openapi_builders import (
    NO_CONTENT,
    body,
    errors,
    operation,
    ref,
    response,
)
from sinergia.ngsild.errors import AccessDenied
from sinergia.web.live import NOTIFY_PATH, SUBSCRIPTION_ID, TOKEN_HEADER

TAG: Final = "Dashboard"
HTML: Final = "text/html"
EVENT_STREAM: Final = "text/event-stream"


def components() -> dict[str, dict[str, Any]]:
    return {"parameters": {"DashboardToken": {
        "name": TOKEN_HEADER, "in": "header", "required": True,
        "description": ("The secret the dashboard's subscription carries in its "
                        "`receiverInfo`; the broker sends it with every notification."),
        "schema": {"type": "string"}, "example": "mB1l6kQ0r1x9cN3T0Z8yWb7vE2pJ4sHa"}}}


def _page(op_id: str, summary: str, description: str, title: str) -> dict[str, Any]:
    return {"get": operation(op_id, TAG, summary, description, responses={
        "200": response("The page; it reads its data from the NGSI-LD API in the browser.",
                        {HTML: {"schema": {"type": "string"},
                                "example": f"<!doctype html><title>{title} · Sinergia</title>"}})})}


_STREAM_EXAMPLE: Final = (
    "event: ready\n"
    'data: {"listeners": 1, "subscribed": true, "changesPerSecond": 0.0}\n\n'
    "event: change\n"
    'data: {"entities": [{"id": "urn:ngsi-ld:Streetlight:MI-0001", "type": "Streetlight", '
    '"powerState": "off"}]}\n\n'
    "event: stats\n"
    'data: {"listeners": 1, "subscribed": true, "changesPerSecond": 0.017}\n\n')

_NOTIFICATION_EXAMPLE: Final = {
    "id": "urn:ngsi-ld:Notification:0f9c4d2e-5b1a-4e2b-9b8e-3d7c1a2b4c5d",
    "type": "Notification", "subscriptionId": SUBSCRIPTION_ID,
    "notifiedAt": "2026-11-21T22:10:04.120Z",
    "data": [{"id": "urn:ngsi-ld:Streetlight:MI-0001", "type": "Streetlight",
              "powerState": "off"}],
}


def paths() -> dict[str, Any]:
    refused = AccessDenied("only the broker, with the Sinergia-Dashboard-Token header of the "
                           "dashboard's subscription, may notify the dashboard")
    return {
        "/dashboard": _page(
            "getDashboardMap", "Dashboard: city map",
            "The map of the city: a layer per vertical, coloured by state, with a list of "
            "the same entities for keyboard users, details and history charts of the one "
            "chosen, and live updates. Works offline.", "City map"),
        "/dashboard/lighting": _page(
            "getDashboardLighting", "Dashboard: lighting energy",
            "Energy the adaptive public lighting used against the full-power baseline: kWh "
            "and % saved and CO₂ avoided, city-wide and per control cabinet, over time.",
            "Public lighting: energy"),
        "/dashboard/status": _page(
            "getDashboardStatus", "Dashboard: platform status",
            "Entities per type, changes per second, and every subscription with its "
            "notification health.", "Platform status"),
        "/dashboard/events": {"get": operation(
            "streamDashboardEvents", TAG, "Live changes (server-sent events)",
            "An endless `text/event-stream`: `ready` once the server's subscription is "
            "active, then `change` with the entities of each notification (keyValues, as the "
            "broker's core @context names them) and `stats` every few seconds. While someone "
            "listens, the server holds the subscription "
            f"`{SUBSCRIPTION_ID}` to every entity type; it is paused when the last "
            "listener leaves.",
            responses={"200": response("The stream.", {EVENT_STREAM: {
                "schema": {"type": "string"}, "example": _STREAM_EXAMPLE}})})},
        NOTIFY_PATH: {"post": operation(
            "receiveDashboardNotification", TAG, "Notifications for the dashboard",
            "Where the broker delivers the notifications of the dashboard's own "
            "subscription; they are passed on to the pages listening to "
            "`/dashboard/events`. Without listeners, notifications are accepted and dropped.",
            params=("DashboardToken",),
            body=body({JSON: {"schema": ref("Notification"), "example": _NOTIFICATION_EXAMPLE}},
                      "A notification of the dashboard's subscription (keyValues)."),
            responses={**NO_CONTENT, **errors(400), "403": response(
                "The token is missing or wrong.", {JSON: {
                    "schema": ref("ProblemDetails"), "example": refused.problem()}})})},
    }
