// The part of Office.js the task pane uses, typed here rather than through
// @types/office-js: a handful of members, the same in every host. Office.js
// itself comes from Microsoft's CDN at run time (taskpane.html) and is
// never bundled.

/** A person in a mail header, as Outlook reports it. */
export interface EmailAddressDetails {
  emailAddress: string;
  displayName?: string;
}

interface AsyncResult<T> {
  status: string; // "succeeded" | "failed"
  value: T;
  error?: { message?: string };
}

/** A recipient field of an item being composed. */
interface Recipients {
  getAsync(cb: (r: AsyncResult<EmailAddressDetails[]>) => void): void;
}

/** The open mail: read mode has plain values, compose mode async fields. */
export interface Item {
  itemType?: string;
  from?: EmailAddressDetails | null | { getAsync: unknown };
  sender?: EmailAddressDetails | null;
  to?: EmailAddressDetails[] | Recipients;
  cc?: EmailAddressDetails[] | Recipients;
  bcc?: Recipients;
  addHandlerAsync?(type: unknown, handler: (ev: unknown) => void, cb?: (r: AsyncResult<void>) => void): void;
}

export interface OfficeTheme {
  bodyBackgroundColor?: string;
  bodyForegroundColor?: string;
  controlBackgroundColor?: string;
  controlForegroundColor?: string;
  isDarkTheme?: boolean;
}

export interface OfficeGlobal {
  onReady(cb?: (info: { host?: string; platform?: string }) => void): Promise<{ host?: string; platform?: string }>;
  context: {
    mailbox: {
      item: Item | null;
      addHandlerAsync?(type: unknown, handler: (ev: unknown) => void, cb?: (r: AsyncResult<void>) => void): void;
    };
    officeTheme?: OfficeTheme;
    requirements: { isSetSupported(name: string, version?: string): boolean };
  };
  EventType: { ItemChanged: unknown; RecipientsChanged: unknown; OfficeThemeChanged?: unknown };
}

declare global {
  interface Window {
    Office?: OfficeGlobal;
  }
}

/** A person in one header field of the item. */
export interface Person {
  email: string; // lower case: the key of presence answers
  address: string; // as Outlook gave it
  name: string;
}

/** The header fields of one item, in display order. */
export interface Group {
  id: string; // "from", "sender", "to", "cc", "bcc"
  label: string;
  people: Person[];
}

/**
 * What the gateway refuses in an address (ldapmap.NormalizeAddress):
 * control characters, white space, "<", ">" and ",". It refuses a whole
 * stream for one such address, so the pane must not ask for it.
 */
const badAddressChar = /[\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000<>,]/;

/** isAddress reports whether the gateway takes a as an e-mail address. */
function isAddress(a: string): boolean {
  const at = a.lastIndexOf("@");
  return at > 0 && at < a.length - 1 && a.indexOf("@") === at && !badAddressChar.test(a) && new TextEncoder().encode(a).length <= 320;
}

function person(d: EmailAddressDetails | null | undefined): Person | null {
  const address = (d?.emailAddress ?? "").trim();
  // An X.500 address, a group without SMTP, a quoted local part with an
  // @ or a space: nothing the gateway can look up.
  if (!isAddress(address)) return null;
  return { email: address.toLowerCase(), address, name: (d?.displayName ?? "").trim() || address };
}

function people(list: EmailAddressDetails[] | null | undefined): Person[] {
  const out: Person[] = [];
  for (const d of list ?? []) {
    const p = person(d);
    if (p) out.push(p);
  }
  return out;
}

function isRecipients(f: unknown): f is Recipients {
  return !!f && typeof (f as Recipients).getAsync === "function";
}

/** Whether the item is being composed (recipients as they are typed). */
export function isCompose(item: Item): boolean {
  return isRecipients(item.to);
}

function recipientsOf(f: Recipients | undefined): Promise<Person[]> {
  if (!f) return Promise.resolve([]);
  return new Promise((resolve) => {
    f.getAsync((r) => resolve(r.status === "succeeded" ? people(r.value) : []));
  });
}

/**
 * The groups of people of an item: from (and the sender when someone sent
 * on behalf of the from address), to and cc; in compose mode to, cc and
 * bcc as typed so far.
 */
export async function groupsOf(item: Item): Promise<Group[]> {
  const groups: Group[] = [];
  const add = (id: string, label: string, ps: Person[]) => {
    if (ps.length > 0) groups.push({ id, label, people: ps });
  };
  if (isCompose(item)) {
    const [to, cc, bcc] = await Promise.all([
      recipientsOf(item.to as Recipients),
      recipientsOf(item.cc as Recipients),
      recipientsOf(item.bcc),
    ]);
    add("to", "To", to);
    add("cc", "Cc", cc);
    add("bcc", "Bcc", bcc);
    return groups;
  }
  const from = isRecipients(item.from) ? null : person(item.from as EmailAddressDetails | null);
  const sender = person(item.sender);
  add("from", "From", from ? [from] : []);
  if (sender && from && sender.email !== from.email) {
    add("sender", `Sent by, on behalf of ${from.name}`, [sender]);
  } else if (sender && !from) {
    add("from", "From", [sender]);
  }
  add("to", "To", people(item.to as EmailAddressDetails[]));
  add("cc", "Cc", people(item.cc as EmailAddressDetails[]));
  return groups;
}
