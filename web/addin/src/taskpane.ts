// The presence task pane: people of the open mail, their presence, live.
// Loaded by taskpane.html after Office.js; settings come from the page's
// <meta name="presencegw-config">, which the gateway fills in.

import { APIError, stream, type Presence, type StreamState } from "./api";
import { Auth, type Config } from "./auth";
import { groupsOf, isCompose, type Group, type Item, type OfficeGlobal } from "./office";
import { renderGroups, updateRows, type RowActions } from "./view";

const $ = (id: string) => document.getElementById(id) as HTMLElement;

function readConfig(): Config {
  const raw = document.querySelector('meta[name="presencegw-config"]')?.getAttribute("content") ?? "{}";
  const c = JSON.parse(raw) as Partial<Config>;
  return {
    clientId: c.clientId ?? "",
    authority: c.authority ?? "",
    scope: c.scope ?? "",
    chatUrl: c.chatUrl ?? "",
    anonymous: c.anonymous ?? false,
  };
}

/** notice shows a message in the live region (empty hides it). */
function notice(kind: "info" | "error", text: string, retry?: () => void): void {
  const n = $("notice");
  n.replaceChildren();
  n.hidden = !text;
  n.dataset.kind = kind;
  if (!text) return;
  const p = document.createElement("p");
  p.textContent = text;
  n.appendChild(p);
  if (retry) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "retry";
    b.textContent = "Retry now";
    b.addEventListener("click", retry);
    n.appendChild(b);
  }
}

/** emailsOf lists the addresses of groups, each once. */
function emailsOf(groups: Group[]): string[] {
  return [...new Set(groups.flatMap((g) => g.people.map((p) => p.email)))];
}

/** Pane is the state of one open pane. */
class Pane {
  private groups: Group[] = [];
  private sig = "";
  private presence = new Map<string, Presence>();
  private abort?: AbortController;
  private emailsKey = "";
  private generation = 0;
  private retryTimer?: ReturnType<typeof setInterval>;
  private actions: RowActions;
  private auth: Auth;

  constructor(office: OfficeGlobal, cfg: Config) {
    this.auth = new Auth(cfg, () => office.context.requirements.isSetSupported("NestedAppAuth", "1.1"));
    this.actions = { chatTemplate: cfg.chatUrl, copy: (text, who) => this.copy(text, who) };
  }

  /** show loads the item now in the host (null: none selected). */
  async show(item: Item | null): Promise<void> {
    const gen = ++this.generation;
    if (!item) {
      this.follow([]);
      this.groups = [];
      this.sig = "";
      $("people").replaceChildren();
      $("empty").textContent = "Select a message to see who can be reached.";
      $("empty").hidden = false;
      document.body.dataset.state = "no-item";
      return;
    }
    const groups = await groupsOf(item);
    if (gen !== this.generation) return; // another item came meanwhile
    const sig = JSON.stringify(groups);
    if (sig === this.sig && document.body.dataset.state === "ready") return; // nothing changed
    this.sig = sig;
    this.groups = groups;
    const emails = emailsOf(groups);
    $("empty").hidden = emails.length > 0;
    $("empty").textContent = isCompose(item) ? "Add recipients to see who can be reached." : "Nobody in this message has an address.";
    this.follow(emails);
    this.render();
    document.body.dataset.state = "ready";
  }

  private render(): void {
    renderGroups($("people"), this.groups, this.presence, this.actions);
  }

  /** follow streams the presence of emails, ending the previous stream. */
  private follow(emails: string[]): void {
    const key = [...emails].sort().join(" ");
    if (key === this.emailsKey) return;
    this.emailsKey = key;
    this.abort?.abort();
    this.abort = undefined;
    for (const e of [...this.presence.keys()]) if (!emails.includes(e)) this.presence.delete(e);
    clearInterval(this.retryTimer);
    notice("info", "");
    if (emails.length === 0) return;
    const ac = new AbortController();
    this.abort = ac;
    void stream({
      emails,
      signal: ac.signal,
      token: (force) => this.auth.token(force),
      onPresence: (p) => {
        if (ac.signal.aborted) return;
        const email = p.email.toLowerCase();
        const old = this.presence.get(email);
        this.presence.set(email, p);
        if (!old || JSON.stringify(old) !== JSON.stringify(p)) updateRows($("people"), p, this.actions);
      },
      onState: (s) => {
        if (!ac.signal.aborted) this.streamState(s, ac);
      },
    });
  }

  /** restart opens a new stream for the same people now. */
  private restart(): void {
    this.emailsKey = "";
    this.follow(emailsOf(this.groups));
  }

  private streamState(s: StreamState, ac: AbortController): void {
    clearInterval(this.retryTimer);
    document.body.dataset.stream = s.kind;
    if (s.kind !== "failed" && this.actions.pendingLabel) {
      this.actions.pendingLabel = undefined;
      this.render();
    }
    switch (s.kind) {
      case "connecting":
        return;
      case "live":
        notice("info", this.auth.notice);
        return;
      case "failed":
        this.actions.pendingLabel = "Presence not available";
        this.render();
        notice(
          "error",
          s.error.status === 403
            ? `The presence gateway refused access: ${s.error.message}.`
            : s.error.status
              ? `Presence is unavailable: ${s.error.message} (HTTP ${s.error.status}).`
              : s.error.message,
          () => this.restart(),
        );
        return;
      case "retrying": {
        const e: APIError = s.error;
        const what =
          e.status === 401
            ? `The presence gateway refused access: ${e.message}.`
            : e.code === "no_naa" || e.code === "auth"
              ? e.message
              : `Presence is unavailable: ${e.message}${e.status ? ` (HTTP ${e.status})` : ""}.`;
        const tick = () => {
          const secs = Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000));
          notice("error", `${what} Retrying in ${secs} s…`, () => {
            if (!ac.signal.aborted) this.restart();
          });
        };
        tick();
        this.retryTimer = setInterval(tick, 1000);
      }
    }
  }

  private async copy(text: string, who: string): Promise<void> {
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch {
      // The host's frame may not allow the Clipboard API: the old way.
      const t = document.createElement("textarea");
      t.value = text;
      t.className = "offscreen";
      document.body.appendChild(t);
      t.select();
      try {
        ok = document.execCommand("copy");
      } catch {
        ok = false;
      }
      t.remove();
    }
    $("announce").textContent = ok ? `Copied ${who}'s address, ${text}.` : `Could not copy the address ${text}.`;
  }
}

/** theme follows the Office theme where the host reports one. */
function applyTheme(office: OfficeGlobal): void {
  const t = office.context.officeTheme;
  const root = document.documentElement;
  const bg = t?.bodyBackgroundColor;
  if (!t || !bg || !/^#?[0-9a-f]{6}$/i.test(bg)) return; // the CSS follows prefers-color-scheme
  const hex = bg.replace("#", "");
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  const dark = t.isDarkTheme ?? 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5;
  root.dataset.theme = dark ? "dark" : "light";
  root.style.setProperty("--bg", "#" + hex);
  if (t.bodyForegroundColor && /^#?[0-9a-f]{6}$/i.test(t.bodyForegroundColor)) {
    root.style.setProperty("--fg", "#" + t.bodyForegroundColor.replace("#", ""));
  }
}

/** attempt runs f and reports whether it did not throw. */
function attempt(f: () => void): boolean {
  try {
    f();
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const cfg = readConfig();
  const office = window.Office;
  if (!office) {
    $("empty").textContent = "Open this pane from Outlook: Office.js did not load.";
    $("empty").hidden = false;
    document.body.dataset.state = "no-office";
    return;
  }
  await office.onReady();
  applyTheme(office);
  const mailbox = office.context.mailbox;
  const ev = office.EventType;
  if (ev.OfficeThemeChanged !== undefined && mailbox.addHandlerAsync) {
    // Hosts without the event may refuse it, some by throwing.
    attempt(() => mailbox.addHandlerAsync!(ev.OfficeThemeChanged, () => applyTheme(office)));
  }
  const pane = new Pane(office, cfg);
  let recipientsPoll: ReturnType<typeof setInterval> | undefined;
  const load = (item: Item | null) => {
    clearInterval(recipientsPoll);
    void pane.show(item);
    if (item && isCompose(item)) {
      // Recipients as they are typed: the event where the host has it
      // (Mailbox 1.7), else a look every two seconds.
      const watched =
        office.context.requirements.isSetSupported("Mailbox", "1.7") &&
        !!item.addHandlerAsync &&
        attempt(() => item.addHandlerAsync!(ev.RecipientsChanged, () => void pane.show(item)));
      if (!watched) recipientsPoll = setInterval(() => void pane.show(item), 2000);
    }
  };
  // A pinned pane stays open while the user moves between mails.
  mailbox.addHandlerAsync?.(ev.ItemChanged, () => load(office.context.mailbox.item));
  load(mailbox.item);
}

main().catch((e) => {
  notice("error", "The presence pane failed to start: " + (e instanceof Error ? e.message : String(e)));
});
