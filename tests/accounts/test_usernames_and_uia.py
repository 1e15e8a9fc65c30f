"""Username rules for new accounts, login identifiers, and the pure UIA pieces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeserver.accounts import uia
from homeserver.accounts.auth import login_user_id
from homeserver.accounts.registration import check_localpart, is_valid_registration_token
from homeserver.errors import MatrixError

SERVER = "test.example"


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._=-/+", min_size=1, max_size=100))
def test_allowed_localparts(localpart: str) -> None:
    assert check_localpart(localpart, SERVER) == f"@{localpart}:{SERVER}"


@given(
    st.text(min_size=1, max_size=30).filter(
        lambda s: any(c not in "abcdefghijklmnopqrstuvwxyz0123456789._=-/+" for c in s)
    )
)
def test_other_characters_are_refused(localpart: str) -> None:
    with pytest.raises(MatrixError) as info:
        check_localpart(localpart, SERVER)
    assert (info.value.status, info.value.errcode) == (400, "M_INVALID_USERNAME")


def test_full_user_id_is_at_most_255_bytes() -> None:
    room = 255 - len(f"@:{SERVER}")
    assert check_localpart("a" * room, SERVER)
    with pytest.raises(MatrixError):
        check_localpart("a" * (room + 1), SERVER)
    with pytest.raises(MatrixError):
        check_localpart("", SERVER)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"identifier": {"type": "m.id.user", "user": "alice"}}, "@alice:test.example"),
        ({"identifier": {"type": "m.id.user", "user": "Alice"}}, "@alice:test.example"),
        (
            {"identifier": {"type": "m.id.user", "user": "@alice:test.example"}},
            "@alice:test.example",
        ),
        ({"identifier": {"type": "m.id.user", "user": "@alice:other.example"}}, None),
        ({"identifier": {"type": "m.id.user", "user": "@bad"}}, None),
        ({"user": "bob"}, "@bob:test.example"),
        ({"user": "x" * 300}, None),
    ],
)
def test_login_identifiers(body: dict[str, object], expected: str | None) -> None:
    assert login_user_id(body, SERVER) == expected


@pytest.mark.parametrize(
    "body",
    [{}, {"user": 1}, {"identifier": "alice"}, {"identifier": {"type": "m.id.user"}}],
)
def test_malformed_identifiers(body: dict[str, object]) -> None:
    with pytest.raises(MatrixError) as info:
        login_user_id(body, SERVER)
    assert info.value.errcode == "M_BAD_JSON"


def test_registration_token_grammar() -> None:
    assert is_valid_registration_token("fBVFdqVE")
    assert is_valid_registration_token("a.b_c~d-e" + "x" * 55)
    assert not is_valid_registration_token("x" * 65)
    assert not is_valid_registration_token("")
    assert not is_valid_registration_token("has space")


def test_flows_and_stages() -> None:
    flows = [["m.login.password"], ["m.login.registration_token", "m.login.dummy"]]
    assert uia.stage_allowed("m.login.password", [], flows)
    assert uia.stage_allowed("m.login.registration_token", [], flows)
    assert not uia.stage_allowed("m.login.dummy", [], flows)
    assert uia.stage_allowed("m.login.dummy", ["m.login.registration_token"], flows)
    assert not uia.flow_complete(["m.login.registration_token"], flows)
    assert uia.flow_complete(["m.login.registration_token", "m.login.dummy"], flows)
    assert uia.flow_complete(["m.login.password"], flows)


def test_uia_401_body() -> None:
    session = uia.UiaSession("sess", "register", None, 0.0, completed=["m.login.dummy"])
    first = uia.uia_required(uia.UiaSession("s0", "register", None, 0.0), [["m.login.dummy"]])
    assert first.status == 401
    assert first.to_json() == {
        "flows": [{"stages": ["m.login.dummy"]}],
        "params": {},
        "session": "s0",
    }
    failed = uia.uia_required(session, [["m.login.dummy", "x"]], errcode="M_FORBIDDEN", error="no")
    assert failed.to_json() == {
        "flows": [{"stages": ["m.login.dummy", "x"]}],
        "params": {},
        "session": "sess",
        "completed": ["m.login.dummy"],
        "errcode": "M_FORBIDDEN",
        "error": "no",
    }


def test_session_store_expires_and_caps() -> None:
    store = uia.UiaSessionStore(lifetime_s=10, max_sessions=3)
    a = store.create("register", None, 0.0)
    assert store.get(a.session_id, 5.0) is a
    assert store.get(a.session_id, 10.0) is None
    assert store.expire(10.0) == [a]
    sessions = [store.create("register", None, 20.0) for _ in range(5)]
    dropped = store.expire(21.0)
    assert dropped == sessions[:2] and len(store) == 3
