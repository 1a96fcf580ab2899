import { useEffect, useRef, useState } from 'preact/hooks';
import type { PlatformEvent } from './api.js';

type Listener = (e: PlatformEvent) => void;
export type LiveState = 'connecting' | 'live' | 'reconnecting';

/**
 * One WebSocket to the event feed (`/v1/events/ws`) per logged-in tab, shared by every view.
 * It resumes from the last event it saw after a drop (`?cursor=`), so no event is missed, and
 * backs off between attempts. Views subscribe with `useLiveEvents`.
 */
// Module-level, so a view may subscribe before the feed of a new login exists (child effects run first).
const listeners = new Set<Listener>();
const stateListeners = new Set<(s: LiveState) => void>();

class LiveFeed {
  private socket: WebSocket | null = null;
  private lastSeq: number | null = null;
  private retryMs = 500;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  state: LiveState = 'connecting';

  constructor(private readonly key: string) {
    this.open();
  }

  private setState(s: LiveState) {
    this.state = s;
    for (const l of stateListeners) l(s);
  }

  private open() {
    const url = new URL('/v1/events/ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('access_token', this.key);
    if (this.lastSeq !== null) url.searchParams.set('cursor', String(this.lastSeq));
    const ws = new WebSocket(url);
    this.socket = ws;
    ws.onopen = () => {
      this.retryMs = 500;
      this.setState('live');
    };
    ws.onmessage = (m) => {
      const e = JSON.parse(String(m.data)) as PlatformEvent;
      if (this.lastSeq !== null && e.seq <= this.lastSeq) return;
      this.lastSeq = e.seq;
      for (const l of listeners) l(e);
    };
    ws.onclose = () => {
      if (this.closed) return;
      this.setState('reconnecting');
      this.timer = setTimeout(() => this.open(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 15_000);
    };
  }

  close() {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket?.close();
  }
}

let feed: LiveFeed | null = null;

export function startLiveFeed(key: string) {
  feed?.close();
  feed = new LiveFeed(key);
}

export function stopLiveFeed() {
  feed?.close();
  feed = null;
}

/** Calls `onEvent` for every live event that `accept` takes, while the component is mounted. */
export function useLiveEvents(accept: (e: PlatformEvent) => boolean, onEvent: (e: PlatformEvent) => void) {
  const handler = useRef({ accept, onEvent });
  handler.current = { accept, onEvent };
  useEffect(() => {
    const l: Listener = (e) => handler.current.accept(e) && handler.current.onEvent(e);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
}

/** Whether the live feed is connected, for the header's indicator. */
export function useLiveState(): LiveState {
  const [state, setState] = useState<LiveState>(feed?.state ?? 'connecting');
  useEffect(() => {
    setState(feed?.state ?? 'connecting');
    stateListeners.add(setState);
    return () => void stateListeners.delete(setState);
  }, []);
  return state;
}
