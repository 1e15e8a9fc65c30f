"""Users and their profiles."""

from __future__ import annotations

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from homeserver.storage.metadata import metadata

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    # argon2id PHC string; NULL: the account has no password and cannot log in with one.
    sa.Column("password_hash", sa.Text, nullable=True),
    sa.Column("created_ts", sa.BigInteger, nullable=False),
    sa.Column("deactivated", sa.Boolean, nullable=False, default=False),
    sa.Column("admin", sa.Boolean, nullable=False, default=False),
)

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column(
        "user_id", sa.Text, sa.ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("displayname", sa.Text, nullable=True),
    sa.Column("avatar_url", sa.Text, nullable=True),
)


@attrs.frozen
class UserRow:
    user_id: str
    password_hash: str | None
    created_ts: int
    deactivated: bool
    admin: bool


@attrs.frozen
class ProfileRow:
    displayname: str | None
    avatar_url: str | None


class UserExists(Exception):
    """The user ID is already taken (possibly by a concurrent registration)."""


def insert_user(
    conn: Connection,
    *,
    user_id: str,
    password_hash: str | None,
    created_ts: int,
    displayname: str | None,
    admin: bool = False,
) -> None:
    """Create the user and its profile row; raise :class:`UserExists` if the ID is taken."""
    try:
        with conn.begin_nested():
            conn.execute(
                users.insert().values(
                    user_id=user_id,
                    password_hash=password_hash,
                    created_ts=created_ts,
                    deactivated=False,
                    admin=admin,
                )
            )
    except IntegrityError:
        raise UserExists(user_id) from None
    conn.execute(profiles.insert().values(user_id=user_id, displayname=displayname))


def get_user(conn: Connection, user_id: str) -> UserRow | None:
    row = conn.execute(sa.select(users).where(users.c.user_id == user_id)).first()
    if row is None:
        return None
    return UserRow(
        user_id=row.user_id,
        password_hash=row.password_hash,
        created_ts=row.created_ts,
        deactivated=bool(row.deactivated),
        admin=bool(row.admin),
    )


def user_exists(conn: Connection, user_id: str) -> bool:
    return (
        conn.execute(sa.select(users.c.user_id).where(users.c.user_id == user_id)).first()
        is not None
    )


def set_password_hash(conn: Connection, user_id: str, password_hash: str | None) -> None:
    conn.execute(
        users.update().where(users.c.user_id == user_id).values(password_hash=password_hash)
    )


def set_admin(conn: Connection, user_id: str, admin: bool) -> None:
    conn.execute(users.update().where(users.c.user_id == user_id).values(admin=admin))


def mark_deactivated(conn: Connection, user_id: str) -> None:
    """Deactivate for good: no password, no profile; the ID stays reserved (spec: never reused)."""
    conn.execute(
        users.update()
        .where(users.c.user_id == user_id)
        .values(deactivated=True, password_hash=None)
    )
    conn.execute(
        profiles.update()
        .where(profiles.c.user_id == user_id)
        .values(displayname=None, avatar_url=None)
    )


def get_profile(conn: Connection, user_id: str) -> ProfileRow | None:
    row = conn.execute(
        sa.select(profiles.c.displayname, profiles.c.avatar_url).where(
            profiles.c.user_id == user_id
        )
    ).first()
    if row is None:
        return None
    return ProfileRow(displayname=row.displayname, avatar_url=row.avatar_url)


def set_displayname(conn: Connection, user_id: str, displayname: str | None) -> None:
    conn.execute(
        profiles.update().where(profiles.c.user_id == user_id).values(displayname=displayname)
    )


def set_avatar_url(conn: Connection, user_id: str, avatar_url: str | None) -> None:
    conn.execute(
        profiles.update().where(profiles.c.user_id == user_id).values(avatar_url=avatar_url)
    )
