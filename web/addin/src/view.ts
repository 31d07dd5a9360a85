// Rendering: one list per header field, one row per person with a
// presence dot (colour and a glyph, so states differ without colour), the
// name, the state and status in words, and actions. DOM built with
// createElement only: nothing from the API is parsed as HTML, and the
// strict CSP allows no inline style or script.

import type { Presence } from "./api";
import type { Group, Person } from "./office";

const SVG = "http://www.w3.org/2000/svg";

/** The words for each state; unknown is a person outside the directory. */
export const stateLabels: Record<string, string> = {
  available: "Available",
  away: "Away",
  xa: "Away for a while",
  dnd: "Do not disturb",
  busy: "Busy",
  oof: "Out of office",
  offline: "Offline",
  unknown: "No presence",
  pending: "Looking up…",
};

function svg(tag: string, attrs: Record<string, string>): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The glyph in each state's dot (busy's is a filled square, drawn apart). */
const glyphs: Record<string, string> = {
  available: "M4.5 8.3l2.3 2.3 4.7-4.8", // check mark
  dnd: "M4.5 8h7", // bar
  away: "M8 4.5V8l2.5 1.8", // clock hands
  xa: "M8 4.5V8l2.5 1.8",
  oof: "M11 8H5m2.5-2.5L5 8l2.5 2.5", // arrow out
  offline: "M5.8 5.8l4.4 4.4m0-4.4l-4.4 4.4", // cross
  unknown: "M6.4 6.3a1.7 1.7 0 1 1 2.3 1.6c-.5.2-.7.6-.7 1.1v.4M8 11.2v.1", // question mark
};

/** dot draws the presence dot: a disc in the state's colour with a glyph. */
function dot(state: string): SVGElement {
  const s = svg("svg", { viewBox: "0 0 16 16", class: "dot", "aria-hidden": "true", focusable: "false" });
  const hollow = state === "offline" || state === "unknown" || state === "pending";
  s.appendChild(
    svg("circle", hollow ? { cx: "8", cy: "8", r: "6.5", class: "ring" } : { cx: "8", cy: "8", r: "7.5", class: "disc" }),
  );
  if (glyphs[state]) s.appendChild(svg("path", { d: glyphs[state], class: "glyph" }));
  if (state === "busy") s.appendChild(svg("rect", { x: "5", y: "5", width: "6", height: "6", rx: "1", class: "glyph-fill" }));
  return s;
}

const icons: Record<string, string> = {
  chat: "M3 3.5h10a1 1 0 0 1 1 1v6a1 1 0 0 1-1 1H7l-3 2.5V11.5H3a1 1 0 0 1-1-1v-6a1 1 0 0 1 1-1z",
  mail: "M2.5 4h11v8h-11zM2.5 4.5L8 9l5.5-4.5",
  copy: "M5.5 5.5h7v8h-7zM3.5 10.5v-8h7",
};

function icon(name: string): SVGElement {
  const s = svg("svg", { viewBox: "0 0 16 16", class: "icon", "aria-hidden": "true", focusable: "false" });
  s.appendChild(svg("path", { d: icons[name] }));
  return s;
}

/** timeText is a time of day, or a day and time when not today. */
function timeText(iso: string, now = new Date()): string {
  const t = new Date(iso);
  if (isNaN(t.getTime())) return "";
  const hm = t.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (t.toDateString() === now.toDateString()) return hm;
  return t.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short" }) + " " + hm;
}

/**
 * statusText is the line under a name: a meeting's end in the user's own
 * time zone, else the gateway's status text (out-of-office message, chat
 * status), else nothing.
 */
export function statusText(p: Presence | undefined): string {
  if (!p) return "";
  if (p.state === "busy" && p.source === "calendar" && p.until) {
    const t = timeText(p.until);
    if (t) return "In a meeting until " + t;
  }
  // "Out of office until Friday" under the state "Out of office": the
  // state's words once are enough.
  const s = p.status ?? "";
  const label = stateLabels[p.state];
  if (label && s.toLowerCase().startsWith(label.toLowerCase() + " ")) return s.slice(label.length + 1);
  return s;
}

/** chatLink is the chat action's URL: the configured web chat or xmpp:. */
export function chatLink(template: string, jid: string, email: string): string {
  // The u flag: a character beyond U+FFFF is one match, not two halves
  // that encodeURIComponent would throw on.
  if (!template) return "xmpp:" + jid.replace(/[^A-Za-z0-9@._~!$&'()*+,;=:/-]/gu, encodeURIComponent);
  return template.replaceAll("{jid}", encodeURIComponent(jid)).replaceAll("{email}", encodeURIComponent(email));
}

export interface RowActions {
  chatTemplate: string;
  /** Replaces "Looking up…" when no answer will come (sign-in failed). */
  pendingLabel?: string;
  copy(text: string, who: string): void;
}

/** row draws one person. */
export function row(p: Person, pr: Presence | undefined, a: RowActions): HTMLLIElement {
  const state = pr?.state ?? "pending";
  const name = pr?.name || p.name;
  const label = (state === "pending" && a.pendingLabel) || stateLabels[state] || state;
  const status = statusText(pr);
  const li = el("li", "person");
  li.dataset.email = p.email;
  li.dataset.state = state;
  if (pr?.stale) li.dataset.stale = "true";

  const d = el("span", "presence presence-" + state);
  d.setAttribute("role", "img");
  d.setAttribute("aria-label", label);
  d.title = label;
  d.appendChild(dot(state));
  li.appendChild(d);

  const who = el("div", "who");
  const n = el("div", "name", name);
  n.title = p.address;
  who.appendChild(n);
  const line = el("div", "status");
  line.appendChild(el("span", "state", label));
  if (status) {
    line.appendChild(document.createTextNode(" · "));
    line.appendChild(el("span", "text", status));
  }
  if (pr?.stale) {
    // The gateway could not read the calendar lately: say so.
    line.appendChild(el("span", "stale", " · calendar may be out of date"));
  }
  line.title = status ? `${label} · ${status}` : label;
  who.appendChild(line);
  li.appendChild(who);

  const acts = el("div", "actions");
  if (pr?.jid && state !== "unknown") {
    const c = el("a", "act chat");
    c.href = chatLink(a.chatTemplate, pr.jid, p.email);
    if (a.chatTemplate) {
      c.target = "_blank";
      c.rel = "noopener noreferrer";
    }
    c.setAttribute("aria-label", `Chat with ${name}`);
    c.title = `Chat with ${name}`;
    c.appendChild(icon("chat"));
    acts.appendChild(c);
  }
  const m = el("a", "act mail");
  m.href = "mailto:" + encodeURIComponent(p.address).replace("%40", "@");
  m.setAttribute("aria-label", `Mail ${name}`);
  m.title = `Mail ${name}`;
  m.appendChild(icon("mail"));
  acts.appendChild(m);
  const cp = el("button", "act copy");
  cp.type = "button";
  cp.setAttribute("aria-label", `Copy ${name}'s address`);
  cp.title = `Copy ${p.address}`;
  cp.appendChild(icon("copy"));
  cp.addEventListener("click", () => a.copy(p.address, name));
  acts.appendChild(cp);
  li.appendChild(acts);
  return li;
}

/** groups draws every group into root, replacing what was there. */
export function renderGroups(root: HTMLElement, gs: Group[], presence: Map<string, Presence>, a: RowActions): void {
  const frag = document.createDocumentFragment();
  for (const g of gs) {
    const sec = el("section", "group");
    sec.dataset.group = g.id;
    const h = el("h2", "", g.label);
    h.id = "group-" + g.id;
    sec.appendChild(h);
    const ul = el("ul", "people");
    ul.setAttribute("aria-labelledby", h.id);
    for (const p of g.people) ul.appendChild(row(p, presence.get(p.email), a));
    sec.appendChild(ul);
    frag.appendChild(sec);
  }
  root.replaceChildren(frag);
}

/** updateRows redraws the rows of one address in place (a live change). */
export function updateRows(root: HTMLElement, p: Presence, a: RowActions): void {
  const email = p.email.toLowerCase();
  for (const li of root.querySelectorAll<HTMLLIElement>("li.person")) {
    if (li.dataset.email !== email) continue;
    const focused = li.contains(document.activeElement) ? (document.activeElement as HTMLElement).className : "";
    const name = li.querySelector(".name");
    const person: Person = { email, address: name?.getAttribute("title") ?? email, name: name?.textContent ?? email };
    const fresh = row(person, p, a);
    // The name Outlook shows wins over the directory's only when the API
    // gives none.
    li.replaceWith(fresh);
    if (focused) fresh.querySelector<HTMLElement>("." + focused.split(" ").join("."))?.focus();
  }
}
