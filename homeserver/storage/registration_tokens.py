"""Registration tokens (spec: ``m.login.registration_token``, MSC3231).

A token is usable while ``pending + completed < uses_allowed`` (or uses_allowed
is NULL) and it has not expired. A UIA stage *reserves* a use (pending + 1) with
one conditional UPDATE, so two clients racing for the last use cannot both win;
finishing the registration turns the reservation into a completion in the same
transaction that creates the user, and an abandoned UIA session releases it.
"""

from __future__ import annotations

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from homeserver.storage.metadata import metadata

registration_tokens = sa.Table(
    "registration_tokens",
    metadata,
    sa.Column("token", sa.Text, primary_key=True),
    sa.Column("uses_allowed", sa.Integer, nullable=True),
    sa.Column("pending", sa.Integer, nullable=False, default=0),
    sa.Column("completed", sa.Integer, nullable=False, default=0),
    # Milliseconds since the epoch; NULL: never expires.
    sa.Column("expiry_time", sa.BigInteger, nullable=True),
)
t = registration_tokens.c


@attrs.frozen
class RegistrationTokenRow:
    token: str
    uses_allowed: int | None
    pending: int
    completed: int
    expiry_time: int | None

    def is_valid(self, now_ms: int) -> bool:
        if self.expiry_time is not None and self.expiry_time <= now_ms:
            return False
        return self.uses_allowed is None or self.pending + self.completed < self.uses_allowed


class TokenExists(Exception):
    pass


def _usable(now_ms: int) -> sa.ColumnElement[bool]:
    return sa.and_(
        sa.or_(t.uses_allowed.is_(None), t.pending + t.completed < t.uses_allowed),
        sa.or_(t.expiry_time.is_(None), t.expiry_time > now_ms),
    )


def _row(row: sa.Row[tuple[object, ...]]) -> RegistrationTokenRow:
    m = row._mapping
    return RegistrationTokenRow(
        token=m["token"],
        uses_allowed=m["uses_allowed"],
        pending=m["pending"],
        completed=m["completed"],
        expiry_time=m["expiry_time"],
    )


def create_token(
    conn: Connection, token: str, *, uses_allowed: int | None, expiry_time: int | None
) -> RegistrationTokenRow:
    try:
        with conn.begin_nested():
            conn.execute(
                registration_tokens.insert().values(
                    token=token,
                    uses_allowed=uses_allowed,
                    pending=0,
                    completed=0,
                    expiry_time=expiry_time,
                )
            )
    except IntegrityError:
        raise TokenExists(token) from None
    return RegistrationTokenRow(token, uses_allowed, 0, 0, expiry_time)


def get_token(conn: Connection, token: str) -> RegistrationTokenRow | None:
    row = conn.execute(sa.select(registration_tokens).where(t.token == token)).first()
    return None if row is None else _row(row)


def list_tokens(conn: Connection) -> list[RegistrationTokenRow]:
    return [_row(r) for r in conn.execute(sa.select(registration_tokens).order_by(t.token))]


def update_token(
    conn: Connection, token: str, values: dict[str, int | None]
) -> RegistrationTokenRow | None:
    """Set ``uses_allowed`` and/or ``expiry_time``; None if there is no such token."""
    if values:
        conn.execute(registration_tokens.update().where(t.token == token).values(**values))
    return get_token(conn, token)


def delete_token(conn: Connection, token: str) -> bool:
    return conn.execute(registration_tokens.delete().where(t.token == token)).rowcount > 0


def is_token_valid(conn: Connection, token: str, now_ms: int) -> bool:
    row = get_token(conn, token)
    return row is not None and row.is_valid(now_ms)


def reserve_use(conn: Connection, token: str, now_ms: int) -> bool:
    """Atomically take one pending use of a valid token; False if there is none left."""
    result = conn.execute(
        registration_tokens.update()
        .where(t.token == token, _usable(now_ms))
        .values(pending=t.pending + 1)
    )
    return result.rowcount == 1


def release_use(conn: Connection, token: str) -> None:
    conn.execute(
        registration_tokens.update()
        .where(t.token == token, t.pending > 0)
        .values(pending=t.pending - 1)
    )


def complete_use(conn: Connection, token: str) -> None:
    """Turn a reservation into a completed registration (same transaction as the new user)."""
    conn.execute(
        registration_tokens.update()
        .where(t.token == token)
        .values(pending=sa.case((t.pending > 0, t.pending - 1), else_=0), completed=t.completed + 1)
    )
