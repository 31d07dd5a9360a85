// The gateway's presence API, as the task pane uses it: one Server-Sent
// Events stream per open item (GET /api/v1/presence/stream), read with
// fetch so it can carry the Entra ID token in a header (EventSource
// cannot), resumed with Last-Event-ID after a drop, retried with backoff
// while the gateway is unreachable.

/** One presence answer, as the API writes it. */
export interface Presence {
  email: string;
  jid?: string;
  name?: string;
  state: string;
  status?: string;
  source?: string;
  until?: string;
  stale?: boolean;
}

/** Why a request failed, worded for the user. */
export class APIError extends Error {
  constructor(
    message: string,
    readonly status = 0,
    readonly code = "",
  ) {
    super(message);
  }
}

/** What the stream tells its user besides presence. */
export type StreamState =
  | { kind: "connecting" }
  | { kind: "live" }
  | { kind: "retrying"; error: APIError; retryAt: number }
  | { kind: "failed"; error: APIError };

export interface StreamOptions {
  emails: string[];
  signal: AbortSignal;
  /** Returns the bearer token, or undefined to ask anonymously. */
  token(forceRefresh: boolean): Promise<string | undefined>;
  onPresence(p: Presence): void;
  onState(s: StreamState): void;
  /** Backoff bounds in ms (tests shorten them). */
  minDelay?: number;
  maxDelay?: number;
}

/** apiURL resolves an API path against the page: /addin/ sits next to /api/. */
export function apiURL(path: string): string {
  return new URL("../" + path, location.href).toString();
}

async function errorOf(r: Response): Promise<APIError> {
  let msg = `HTTP ${r.status}`;
  let code = "";
  try {
    const body = await r.json();
    if (body?.error?.message) {
      msg = body.error.message;
      code = body.error.code ?? "";
    }
  } catch {
    // not JSON: a proxy's page
  }
  return new APIError(msg, r.status, code);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

/**
 * stream follows the presence of emails until signal aborts: it connects,
 * reports each presence event, and after any failure waits (1 s, doubling
 * up to 30 s) and reconnects, resuming from the last event id so nothing
 * is missed. A 401 refreshes the token once before it counts as a failure.
 */
export async function stream(o: StreamOptions): Promise<void> {
  const url = apiURL("api/v1/presence/stream?" + o.emails.map((e) => "email=" + encodeURIComponent(e)).join("&"));
  const minDelay = o.minDelay ?? 1000;
  const maxDelay = o.maxDelay ?? 30000;
  let delay = minDelay;
  // The id of the last event seen, kept across connections: readEvents
  // sets it as events arrive, so a connection that breaks (rather than
  // ends) still resumes where it was.
  const cursor = { lastID: "" };
  let refresh = false;
  while (!o.signal.aborted) {
    o.onState({ kind: "connecting" });
    try {
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      const tok = await o.token(refresh);
      if (tok) headers.Authorization = "Bearer " + tok;
      if (cursor.lastID) headers["Last-Event-ID"] = cursor.lastID;
      let r: Response;
      try {
        r = await fetch(url, { headers, signal: o.signal, cache: "no-store", credentials: "omit" });
      } catch (e) {
        if (o.signal.aborted) return;
        throw new APIError("cannot reach the presence gateway");
      }
      if (r.status === 401 && tok && !refresh) {
        refresh = true; // once: the token may just have expired
        continue;
      }
      if (!r.ok || !r.body) throw await errorOf(r);
      refresh = false;
      delay = minDelay;
      o.onState({ kind: "live" });
      await readEvents(r.body, o, cursor);
      if (o.signal.aborted) return;
      throw new APIError("the connection to the presence gateway closed");
    } catch (e) {
      if (o.signal.aborted) return;
      const err = e instanceof APIError ? e : new APIError(e instanceof Error ? e.message : String(e));
      if (err.code === "no_naa" || err.status === 400 || err.status === 403 || err.status === 413) {
        // Retrying cannot help: this host gives no tokens, the gateway
        // refuses this user (a scope not consented, not in the directory)
        // or this request (an address it does not take, too many).
        o.onState({ kind: "failed", error: err });
        return;
      }
      o.onState({ kind: "retrying", error: err, retryAt: Date.now() + delay });
      await sleep(delay, o.signal);
      delay = Math.min(delay * 2, maxDelay);
    }
  }
}

/**
 * silenceLimit is how long the stream may stay silent before it counts as
 * dead: the gateway sends a comment every 15 s, so three missed beats mean
 * a connection that broke without a word (a sleeping laptop, a proxy).
 */
const silenceLimit = 45000;

/** readEvents parses the SSE body until it ends, keeping the last event id in cursor. */
async function readEvents(body: ReadableStream<Uint8Array>, o: StreamOptions, cursor: { lastID: string }): Promise<void> {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  let silent: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  try {
    for (;;) {
      clearTimeout(silent);
      silent = setTimeout(() => {
        timedOut = true;
        void reader.cancel();
      }, silenceLimit);
      const { value, done } = await reader.read();
      if (timedOut) throw new APIError("the presence gateway stopped answering");
      if (done) return;
      buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end: number;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let event = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const i = line.indexOf(":");
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
          if (field === "id") cursor.lastID = val;
          else if (field === "event") event = val;
          else if (field === "data") data += (data ? "\n" : "") + val;
        }
        if (event === "presence" && data) {
          try {
            o.onPresence(JSON.parse(data) as Presence);
          } catch {
            // one bad event must not end the stream
          }
        }
      }
    }
  } catch (e) {
    if (o.signal.aborted) return;
    throw e instanceof APIError ? e : new APIError("the connection to the presence gateway broke");
  } finally {
    clearTimeout(silent);
    reader.releaseLock();
  }
}
