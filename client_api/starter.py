"""What Element calls while starting that has no fuller home yet.

js-sdk's sync loop begins with ``GET /pushrules/`` and retries it forever on
failure (matrix_brief.md §1.2, pitfall 1: "Unable to connect to Homeserver.
Retrying..."), so the server-default rule set is served here. The rest are
best-effort calls whose spec-valid empty answers keep clients' logs and
settings pages clean:

* ``GET /pushrules/`` (and without the slash), ``GET /pushrules/global/``,
  ``GET /pushrules/global/{kind}/{ruleId}`` with ``/enabled`` and ``/actions``
  (read-only: changing rules comes with the push issue);
* ``GET /voip/turnServer``: no TURN server is configured, so the answer has
  the fields the spec's schema requires with no ``uris`` (Synapse answers
  ``{}``; both leave js-sdk calling without relays, but only this one is
  schema-valid);
* ``GET /thirdparty/protocols``: ``{}`` (no bridges);
* ``GET /account/3pid``: ``{"threepids": []}`` (Plait holds no third-party IDs);
* ``GET /pushers``: ``{"pushers": []}`` (no push gateway client yet).

(``GET /room_keys/version`` lives in ``client_api/room_keys.py``, key backup.)
"""

from __future__ import annotations

from typing import Any

from homeserver.accounts.auth import require_user
from homeserver.errors import invalid_param, not_found
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.push.default_rules import KINDS, default_rule_set, push_rules_response

# voip.yaml requires username, password, uris and ttl; ttl: ask again in a day.
NO_TURN_SERVER: dict[str, Any] = {"username": "", "password": "", "uris": [], "ttl": 86400}


def add_routes(router: Router, hs: HomeServer) -> None:
    async def get_push_rules(request: Request) -> Response:
        requester = await require_user(hs, request)
        return Response.json(push_rules_response(requester.user_id))

    async def get_global_rules(request: Request) -> Response:
        requester = await require_user(hs, request)
        return Response.json(default_rule_set(requester.user_id))

    async def find_rule(request: Request) -> dict[str, Any]:
        requester = await require_user(hs, request)
        if request.path_params["scope"] != "global":
            raise invalid_param("The only push rule scope is 'global'")
        kind = request.path_params["kind"]
        if kind not in KINDS:
            raise invalid_param(f"Push rule kind must be one of {', '.join(KINDS)}")
        rule_id = request.path_params["ruleId"]
        for rule in default_rule_set(requester.user_id)[kind]:
            if rule["rule_id"] == rule_id:
                return rule
        raise not_found("Unknown push rule")

    async def get_rule(request: Request) -> Response:
        return Response.json(await find_rule(request))

    async def get_rule_enabled(request: Request) -> Response:
        return Response.json({"enabled": (await find_rule(request))["enabled"]})

    async def get_rule_actions(request: Request) -> Response:
        return Response.json({"actions": (await find_rule(request))["actions"]})

    async def turn_server(request: Request) -> Response:
        await require_user(hs, request)
        return Response.json(NO_TURN_SERVER)

    async def protocols(request: Request) -> Response:
        await require_user(hs, request)
        return Response.json({})

    async def threepids(request: Request) -> Response:
        await require_user(hs, request)
        return Response.json({"threepids": []})

    async def pushers(request: Request) -> Response:
        await require_user(hs, request)
        return Response.json({"pushers": []})

    for prefix in ("v3", "r0"):
        base = f"/_matrix/client/{prefix}"
        router.add("GET", f"{base}/pushrules/", get_push_rules)
        router.add("GET", f"{base}/pushrules", get_push_rules)
        router.add("GET", f"{base}/pushrules/global/", get_global_rules)
        rule = f"{base}/pushrules/{{scope}}/{{kind}}/{{ruleId}}"
        router.add("GET", rule, get_rule)
        router.add("GET", f"{rule}/enabled", get_rule_enabled)
        router.add("GET", f"{rule}/actions", get_rule_actions)
        router.add("GET", f"{base}/voip/turnServer", turn_server)
        router.add("GET", f"{base}/thirdparty/protocols", protocols)
        router.add("GET", f"{base}/account/3pid", threepids)
        router.add("GET", f"{base}/pushers", pushers)
