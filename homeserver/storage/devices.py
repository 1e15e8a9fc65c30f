"""Devices: one per login, named by the client or by us."""

from __future__ import annotations

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.metadata import metadata

devices = sa.Table(
    "devices",
    metadata,
    sa.Column(
        "user_id",
        sa.Text,
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("device_id", sa.Text, primary_key=True),
    sa.Column("display_name", sa.Text, nullable=True),
    sa.Column("created_ts", sa.BigInteger, nullable=False),
    sa.Column("last_seen_ts", sa.BigInteger, nullable=True),
    sa.Column("last_seen_ip", sa.Text, nullable=True),
)


@attrs.frozen
class DeviceRow:
    user_id: str
    device_id: str
    display_name: str | None
    last_seen_ts: int | None
    last_seen_ip: str | None


def _row(row: sa.Row[tuple[object, ...]]) -> DeviceRow:
    m = row._mapping
    return DeviceRow(
        user_id=m["user_id"],
        device_id=m["device_id"],
        display_name=m["display_name"],
        last_seen_ts=m["last_seen_ts"],
        last_seen_ip=m["last_seen_ip"],
    )


def upsert_device(
    conn: Connection,
    *,
    user_id: str,
    device_id: str,
    display_name: str | None,
    now_ms: int,
    ip: str | None,
) -> bool:
    """Create the device or, if it exists, mark it seen (and rename it if a name was given).

    Returns whether the device is new.
    """
    existing = get_device(conn, user_id, device_id)
    if existing is None:
        conn.execute(
            devices.insert().values(
                user_id=user_id,
                device_id=device_id,
                display_name=display_name,
                created_ts=now_ms,
                last_seen_ts=now_ms,
                last_seen_ip=ip,
            )
        )
        return True
    values: dict[str, object] = {"last_seen_ts": now_ms, "last_seen_ip": ip}
    if display_name is not None:
        values["display_name"] = display_name
    conn.execute(
        devices.update()
        .where(devices.c.user_id == user_id, devices.c.device_id == device_id)
        .values(**values)
    )
    return False


def get_device(conn: Connection, user_id: str, device_id: str) -> DeviceRow | None:
    row = conn.execute(
        sa.select(devices).where(devices.c.user_id == user_id, devices.c.device_id == device_id)
    ).first()
    return None if row is None else _row(row)


def list_devices(conn: Connection, user_id: str) -> list[DeviceRow]:
    rows = conn.execute(
        sa.select(devices).where(devices.c.user_id == user_id).order_by(devices.c.device_id)
    )
    return [_row(r) for r in rows]


def set_display_name(
    conn: Connection, user_id: str, device_id: str, display_name: str | None
) -> bool:
    result = conn.execute(
        devices.update()
        .where(devices.c.user_id == user_id, devices.c.device_id == device_id)
        .values(display_name=display_name)
    )
    return result.rowcount > 0


def touch(conn: Connection, user_id: str, device_id: str, now_ms: int, ip: str | None) -> None:
    conn.execute(
        devices.update()
        .where(devices.c.user_id == user_id, devices.c.device_id == device_id)
        .values(last_seen_ts=now_ms, last_seen_ip=ip)
    )


def delete_devices(conn: Connection, user_id: str, device_ids: list[str]) -> int:
    if not device_ids:
        return 0
    result = conn.execute(
        devices.delete().where(devices.c.user_id == user_id, devices.c.device_id.in_(device_ids))
    )
    return int(result.rowcount)


def delete_all_devices(
    conn: Connection, user_id: str, *, except_device: str | None = None
) -> list[str]:
    """Delete every device of the user (but ``except_device``); return the IDs deleted."""
    query = sa.select(devices.c.device_id).where(devices.c.user_id == user_id)
    if except_device is not None:
        query = query.where(devices.c.device_id != except_device)
    ids = [r.device_id for r in conn.execute(query)]
    delete_devices(conn, user_id, ids)
    return ids
