// A scripted WebSocket for tests: the test plays the server.
import type { SocketFactory, SocketLike } from "./socket";

export type Frame = Record<string, unknown> & { type?: string; id?: string | number };

export class MockSocket implements SocketLike {
  readyState = 0;
  sent: Frame[] = [];
  closedWith: number | undefined;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;

  constructor(
    public readonly url: string,
    private readonly server: (frame: Frame, ws: MockSocket) => void,
  ) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("not open");
    const frame = JSON.parse(data) as Frame;
    this.sent.push(frame);
    queueMicrotask(() => this.server(frame, this));
  }

  close(code = 1000): void {
    if (this.readyState >= 2) return;
    this.closedWith = code;
    this.readyState = 3;
    const cb = this.onclose;
    queueMicrotask(() => cb?.({ code }));
  }

  // -- the server's side --------------------------------------------------------

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  push(frame: Frame): void {
    if (this.readyState === 1) this.onmessage?.({ data: JSON.stringify(frame) });
  }

  /** The server closes (or the connection drops: 1006). */
  drop(code: number): void {
    if (this.readyState >= 2) return;
    this.readyState = 3;
    this.onclose?.({ code });
  }

  sentOf(type: string): Frame[] {
    return this.sent.filter((f) => f.type === type);
  }
}

/**
 * A factory whose sockets open at once (or fail to, with 1006, while `refuse`
 * is set) and are answered by `server`.
 */
export function mockSockets(server: (frame: Frame, ws: MockSocket) => void) {
  const sockets: MockSocket[] = [];
  const state = { refuse: false };
  const factory: SocketFactory = (url) => {
    const ws = new MockSocket(url, server);
    sockets.push(ws);
    queueMicrotask(() => (state.refuse ? ws.drop(1006) : ws.open()));
    return ws;
  };
  return { sockets, factory, state };
}
