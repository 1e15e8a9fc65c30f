"""Path-template routing (homeserver/http/router.py): matching, decoding, 404 vs 405."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeserver.errors import MatrixError
from homeserver.http import Request, Response, Router


async def ok(request: Request) -> Response:
    return Response.json({})


def make_router() -> Router:
    router = Router()
    router.add("GET", "/_matrix/client/versions", ok)
    router.add("PUT", "/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}", ok)
    router.add("GET", "/_matrix/client/v3/rooms/{roomId}/state", ok)
    router.add("GET", "/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}", ok)
    router.add("GET", "/_matrix/client/v3/rooms/{roomId}/state/{eventType}", ok)
    router.add("GET", "/_matrix/client/v3/profile/{userId}/displayname", ok)
    router.add("GET", "/_matrix/client/v3/profile/me/special", ok)
    router.add("GET", "/_matrix/media/v3/download/{serverName}/{mediaId}/{fileName:path}", ok)
    return router


def test_static_and_templated_paths_resolve_with_decoded_params() -> None:
    router = make_router()
    route, params = router.resolve("GET", "/_matrix/client/versions")
    assert route.template == "/_matrix/client/versions" and params == {}
    route, params = router.resolve(
        "PUT", "/_matrix/client/v3/rooms/%21abc%3Aexample.org/send/m.room.message/t%2F1"
    )
    assert params == {"roomId": "!abc:example.org", "eventType": "m.room.message", "txnId": "t/1"}


def test_empty_state_key_binds_as_a_trailing_slash_only() -> None:
    router = make_router()
    _, params = router.resolve("GET", "/_matrix/client/v3/rooms/!r:s/state/m.room.name")
    assert params == {"roomId": "!r:s", "eventType": "m.room.name"}
    _, params = router.resolve("GET", "/_matrix/client/v3/rooms/!r:s/state/m.room.name/")
    assert params == {"roomId": "!r:s", "eventType": "m.room.name", "stateKey": ""}
    with pytest.raises(MatrixError):
        router.resolve("GET", "/_matrix/client/v3/rooms//state")


def test_static_segment_preferred_over_parameter_with_backtracking() -> None:
    router = make_router()
    route, _ = router.resolve("GET", "/_matrix/client/v3/profile/me/special")
    assert route.template.endswith("/me/special")
    route, params = router.resolve("GET", "/_matrix/client/v3/profile/me/displayname")
    assert route.template.endswith("{userId}/displayname") and params == {"userId": "me"}


def test_path_parameter_swallows_the_rest() -> None:
    _, params = make_router().resolve("GET", "/_matrix/media/v3/download/s/m/dir/cat%20pic.png")
    assert params == {"serverName": "s", "mediaId": "m", "fileName": "dir/cat pic.png"}


def test_head_falls_back_to_get() -> None:
    route, _ = make_router().resolve("HEAD", "/_matrix/client/versions")
    assert route.method == "GET"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("GET", "/_matrix/client/v3/rooms/!r:s/send/m.room.message", 404),
        ("POST", "/_matrix/client/versions", 405),
        ("GET", "/_matrix/client/v3/rooms/!r:s/send/m.room.message/1", 405),
    ],
)
def test_unknown_path_is_404_and_wrong_method_is_405(method: str, path: str, status: int) -> None:
    with pytest.raises(MatrixError) as info:
        make_router().resolve(method, path)
    assert info.value.status == status
    assert info.value.errcode == "M_UNRECOGNIZED"


def test_duplicate_and_conflicting_routes_are_refused() -> None:
    router = make_router()
    with pytest.raises(ValueError, match="duplicate"):
        router.add("GET", "/_matrix/client/versions", ok)
    with pytest.raises(ValueError, match="conflicts"):
        router.add("GET", "/_matrix/client/v3/rooms/{other}/x", ok)


@given(st.lists(st.text(alphabet="abc%/:!{}", max_size=8), max_size=6))
def test_arbitrary_paths_only_ever_resolve_or_raise_matrix_errors(segments: list[str]) -> None:
    router = make_router()
    path = "/" + "/".join(segments)
    for method in ("GET", "PUT", "DELETE"):
        try:
            router.resolve(method, path)
        except MatrixError as e:
            assert e.status in (404, 405)
