"""Properties of refresh-token rotation under arbitrary sequences of client actions.

Whatever a client (or a thief) does, in any order: a token that has been
superseded and confirmed never works again, presenting a spent token revokes
the session for good, and at most two refresh tokens (the newest and the one in
its grace period) are usable at any moment.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeserver.storage import accounts as accounts_db
from homeserver.storage import sessions as sessions_db
from homeserver.storage.database import Database
from homeserver.storage.migrate import upgrade_engine
from homeserver.storage.sessions import RefreshResult

_ids = itertools.count()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    path: Path = tmp_path_factory.mktemp("refresh") / "props.db"
    database = Database(f"sqlite:///{path}")
    upgrade_engine(database.engine)
    with database.engine.begin() as conn:
        accounts_db.insert_user(
            conn, user_id="@u:t", password_hash=None, created_ts=0, displayname=None
        )
    yield database.engine
    database.engine.dispose()


# An action: ("refresh", index into the tokens issued so far) or ("use_newest_access", 0).
actions = st.lists(
    st.tuples(st.sampled_from(["refresh", "use_newest_access"]), st.integers(0, 30)),
    max_size=25,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=actions)
def test_rotation_invariants(engine: sa.Engine, steps: list[tuple[str, int]]) -> None:
    n = next(_ids)
    session_id = f"s{n}"
    issued = [f"{session_id}-t0"]
    with engine.begin() as conn:
        sessions_db.create_session(
            conn,
            session_id=session_id,
            user_id="@u:t",
            device_id=f"D{n}",
            now_ms=0,
            refresh_token_hash=issued[0],
            refresh_expiry_ts=None,
        )
    # The model (spec, "Refreshing access tokens"): the newest token, the one in its
    # grace period (valid until the client uses what replaced it), and spent ones.
    current: str | None = issued[0]
    grace: str | None = None
    spent: set[str] = set()
    newest_generation = 0
    revoked = False
    for action, index in steps:
        if action == "use_newest_access":
            with engine.begin() as conn:
                sessions_db.confirm_rotation(conn, session_id, newest_generation)
            if grace is not None and not revoked:
                spent.add(grace)
                grace = None
            continue
        presented = issued[index % len(issued)]
        new = f"{session_id}-t{len(issued)}"
        with engine.begin() as conn:
            result, row = sessions_db.refresh_session(
                conn, presented_hash=presented, new_hash=new, new_expiry_ts=None, now_ms=0
            )
        if revoked:
            # Revocation is permanent.
            assert result is not RefreshResult.ROTATED
            continue
        if presented in spent:
            # A spent token is theft: the session dies.
            assert result is RefreshResult.REUSED
            assert row is not None and row.revoked
            revoked = True
            continue
        assert presented in (current, grace)
        assert result is RefreshResult.ROTATED and row is not None
        assert current is not None
        if presented == current:
            if grace is not None:
                spent.add(grace)
            grace = current
        else:
            # Retrying with the grace token: the token sent last time was never seen.
            spent.add(current)
        current = new
        issued.append(new)
        newest_generation = row.generation
        assert set(issued) == {current, grace} - {None} | spent
        with engine.connect() as conn:
            stored = conn.execute(
                sa.select(
                    sessions_db.sessions.c.refresh_token_hash,
                    sessions_db.sessions.c.previous_refresh_hash,
                ).where(sessions_db.sessions.c.session_id == session_id)
            ).one()
            used = set(
                conn.execute(
                    sa.select(sessions_db.used_refresh_tokens.c.token_hash).where(
                        sessions_db.used_refresh_tokens.c.session_id == session_id
                    )
                ).scalars()
            )
        # The table holds exactly the model's live and spent tokens: at most two live.
        assert (stored.refresh_token_hash, stored.previous_refresh_hash) == (current, grace)
        assert used == spent
