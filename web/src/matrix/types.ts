// The slices of the Client-Server API this client reads.

export interface MatrixEvent {
  event_id: string;
  type: string;
  sender: string;
  origin_server_ts: number;
  content: Record<string, unknown>;
  state_key?: string;
  redacts?: string;
  unsigned?: { transaction_id?: string; redacted_because?: unknown; [k: string]: unknown };
}

export interface SyncRoom {
  timeline?: { events?: MatrixEvent[]; limited?: boolean; prev_batch?: string };
  state?: { events?: MatrixEvent[] };
  ephemeral?: { events?: { type: string; content: Record<string, unknown> }[] };
  account_data?: { events?: { type: string; content: Record<string, unknown> }[] };
  summary?: { "m.heroes"?: string[]; "m.joined_member_count"?: number };
  unread_notifications?: { notification_count?: number };
  invite_state?: { events?: MatrixEvent[] };
}

export interface SyncResponse {
  next_batch: string;
  rooms?: {
    join?: Record<string, SyncRoom>;
    invite?: Record<string, SyncRoom>;
    leave?: Record<string, SyncRoom>;
  };
  account_data?: { events?: { type: string; content: Record<string, unknown> }[] };
}

export type SendStatus = "sending" | "failed" | "sent";

/** A timeline item: a server event, or a local echo waiting for one. */
export interface TimelineItem {
  /** Event id, or `~txnId` while it is a local echo. */
  id: string;
  event: MatrixEvent;
  txnId?: string;
  status?: SendStatus;
  /** Upload progress 0..1 for an image being sent. */
  progress?: number;
  /** Object URL of the local file for an image echo. */
  localUrl?: string;
}

export interface Member {
  userId: string;
  displayName?: string | undefined;
  membership: string;
}

export interface Room {
  roomId: string;
  membership: "join" | "invite" | "leave";
  name?: string | undefined;
  topic?: string | undefined;
  canonicalAlias?: string | undefined;
  encrypted: boolean;
  members: Record<string, Member>;
  heroes: string[];
  timeline: TimelineItem[];
  prevBatch?: string | undefined;
  /** False once /messages has reached the room's creation. */
  moreHistory: boolean;
  lastActivity: number;
  unread: number;
  typing: string[];
  /** userId -> eventId of their latest m.read receipt. */
  receipts: Record<string, string>;
  inviter?: string | undefined;
  isDirect: boolean;
}

export function emptyRoom(roomId: string): Room {
  return {
    roomId,
    membership: "join",
    encrypted: false,
    members: {},
    heroes: [],
    timeline: [],
    moreHistory: true,
    lastActivity: 0,
    unread: 0,
    typing: [],
    receipts: {},
    isDirect: false,
  };
}
