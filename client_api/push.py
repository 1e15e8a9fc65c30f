"""Push rules, pushers and ``/notifications``.

Spec: ``pushrules.yaml`` (``GET /pushrules/``, ``/pushrules/global/``,
``GET/PUT/DELETE /pushrules/global/{kind}/{ruleId}`` with ``/enabled`` and
``/actions``), ``pusher.yaml`` (``GET /pushers``, ``POST /pushers/set``) and
``notifications.yaml`` (``GET /notifications``). js-sdk's start-up blocks on
``GET /pushrules/`` (matrix_brief.md §1.2), so it must always answer.
"""

from __future__ import annotations

from typing import Any

from homeserver.accounts.auth import require_user
from homeserver.errors import bad_json, invalid_param
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.push.rules import check_kind
from homeserver.storage.push import PushAction

MAX_BODY = 16 * 1024


def add_routes(router: Router, hs: HomeServer) -> None:
    async def get_push_rules(request: Request) -> Response:
        requester = await require_user(hs, request)
        return Response.json({"global": await hs.push_rules.rule_set(requester.user_id)})

    async def get_global_rules(request: Request) -> Response:
        requester = await require_user(hs, request)
        return Response.json(await hs.push_rules.rule_set(requester.user_id))

    async def rule_target(request: Request) -> tuple[str, str, str]:
        requester = await require_user(hs, request)
        kind = request.path_params["kind"]
        check_kind(request.path_params["scope"], kind)
        return requester.user_id, kind, request.path_params["ruleId"]

    async def get_rule(request: Request) -> Response:
        return Response.json(await hs.push_rules.get_rule(*await rule_target(request)))

    async def put_rule(request: Request) -> Response:
        user_id, kind, rule_id = await rule_target(request)
        body = request.json()
        before = request.query_one("before")
        after = request.query_one("after")
        await hs.push_rules.put_rule(user_id, kind, rule_id, body, before=before, after=after)
        return Response.json({})

    async def delete_rule(request: Request) -> Response:
        await hs.push_rules.delete_rule(*await rule_target(request))
        return Response.json({})

    async def get_enabled(request: Request) -> Response:
        rule = await hs.push_rules.get_rule(*await rule_target(request))
        return Response.json({"enabled": rule["enabled"]})

    async def put_enabled(request: Request) -> Response:
        target = await rule_target(request)
        enabled = request.json().get("enabled")
        if not isinstance(enabled, bool):
            raise bad_json("'enabled' must be a boolean")
        await hs.push_rules.set_enabled(*target, enabled)
        return Response.json({})

    async def get_actions(request: Request) -> Response:
        rule = await hs.push_rules.get_rule(*await rule_target(request))
        return Response.json({"actions": rule["actions"]})

    async def put_actions(request: Request) -> Response:
        target = await rule_target(request)
        await hs.push_rules.set_actions(*target, request.json().get("actions"))
        return Response.json({})

    async def get_pushers(request: Request) -> Response:
        requester = await require_user(hs, request)
        return Response.json({"pushers": await hs.pushers.get_pushers(requester.user_id)})

    async def set_pusher(request: Request) -> Response:
        requester = await require_user(hs, request)
        await hs.pushers.set_pusher(requester.user_id, requester.device_id, request.json())
        return Response.json({})

    async def notifications(request: Request) -> Response:
        requester = await require_user(hs, request)
        user_id = requester.user_id
        from_ = request.query_one("from")
        before: int | None = None
        if from_ is not None:
            if not from_.isdigit() or len(from_) > 18:
                raise invalid_param("Invalid 'from' token")
            before = int(from_)
        limit_param = request.query_one("limit", "20") or "20"
        if not limit_param.isdigit() or len(limit_param) > 6:
            raise invalid_param("'limit' must be a non-negative integer")
        only = request.query_one("only")
        if only not in (None, "highlight"):
            raise invalid_param("'only' may only be 'highlight'")
        limit = max(1, int(limit_param))
        actions = await hs.push.notifications(user_id, before, limit, only == "highlight")
        return Response.json(await render_notifications(hs, user_id, actions, limit))

    for prefix in ("v3", "r0"):
        base = f"/_matrix/client/{prefix}"
        router.add("GET", f"{base}/pushrules/", get_push_rules)
        router.add("GET", f"{base}/pushrules", get_push_rules)
        router.add("GET", f"{base}/pushrules/global/", get_global_rules)
        rule = f"{base}/pushrules/{{scope}}/{{kind}}/{{ruleId}}"
        router.add("GET", rule, get_rule)
        router.add("PUT", rule, put_rule, max_body=MAX_BODY)
        router.add("DELETE", rule, delete_rule)
        router.add("GET", f"{rule}/enabled", get_enabled)
        router.add("PUT", f"{rule}/enabled", put_enabled, max_body=MAX_BODY)
        router.add("GET", f"{rule}/actions", get_actions)
        router.add("PUT", f"{rule}/actions", put_actions, max_body=MAX_BODY)
        router.add("GET", f"{base}/pushers", get_pushers)
        router.add("POST", f"{base}/pushers/set", set_pusher, max_body=MAX_BODY)
        router.add("GET", f"{base}/notifications", notifications)


async def render_notifications(
    hs: HomeServer, user_id: str, actions: list[PushAction], limit: int
) -> dict[str, Any]:
    """notifications.yaml: newest first, each with its event, actions and ``read``."""
    found = await hs.event_store.get_events(a.event_id for a in actions)
    listed = [a for a in actions if a.event_id in found]
    events = await hs.messages.client_events.serialize(
        [found[a.event_id] for a in listed], user_id=user_id
    )
    marks = {
        room_id: await hs.push.read_marks(user_id, room_id)
        for room_id in {a.room_id for a in listed}
    }
    out: dict[str, Any] = {
        "notifications": [
            {
                "actions": a.actions,
                "event": event,
                "read": a.stream_ordering <= marks[a.room_id].position_for(a.thread_id),
                "room_id": a.room_id,
                "ts": a.ts,
            }
            for a, event in zip(listed, events, strict=True)
        ]
    }
    if len(actions) == limit and actions:
        out["next_token"] = str(actions[-1].stream_ordering)
    return out
