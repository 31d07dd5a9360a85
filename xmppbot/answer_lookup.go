package xmppbot

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"github.com/presencegw/presencegw/web"
)

// maxItemLength is the longest address or JID a lookup item may hold; a
// longer one is answered as invalid without asking the directory.
const maxItemLength = 1024

// lookupItem is one address or JID asked for.
type lookupItem struct {
	jid   bool // a <jid/>, else an <address/>
	value string
}

// errTooMany is a lookup over maxLookupItems.
var errTooMany = fmt.Errorf("at most %d addresses and JIDs per lookup", maxLookupItems)

// lookup answers the lookup IQ (docs/xmpp-protocol.md): local users get
// one <person/> per item, in order, shaped by Config.Visibility exactly
// as the HTTP API shapes it; anyone else is forbidden and learns nothing.
func (b *Bot) lookup(w xmlstream.TokenWriter, r *iqRequest, p *payload) error {
	switch {
	case b.cfg.Lookup == nil:
		return b.fail(w, r, stanzaError(stanza.Cancel, stanza.ServiceUnavailable, "lookups are off"), nil)
	case !r.user || !r.caller.local:
		return b.fail(w, r, stanzaError(stanza.Auth, stanza.Forbidden, ""), nil)
	case r.typ != "get":
		return b.fail(w, r, stanzaError(stanza.Modify, stanza.BadRequest, "a lookup is an IQ get"), nil)
	case !b.ans.limits.allow(r.caller):
		return b.fail(w, r, stanzaError(stanza.Wait, stanza.ResourceConstraint, "too many requests; slow down"), nil)
	}
	items, err := parseLookup(p)
	switch {
	case errors.Is(err, errTooMany):
		return b.fail(w, r, stanzaError(stanza.Modify, stanza.PolicyViolation, err.Error()), nil)
	case err != nil:
		return b.fail(w, r, stanzaError(stanza.Modify, stanza.BadRequest, err.Error()), nil)
	}
	out := el(xml.Name{Space: NSLookup, Local: "lookup"}, nil)
	for _, it := range items {
		out.add(b.person(it))
	}
	return b.result(w, r, out.reader())
}

// parseLookup reads the items of a <lookup/>: <address/> and <jid/>
// children in the lookup namespace, each with text only. Elements of
// other namespaces are ignored.
func parseLookup(p *payload) ([]lookupItem, error) {
	var items []lookupItem
	var cur *lookupItem
	depth := 0
	skip := 0 // depth of an ignored foreign element, 0 when none
	for _, tok := range p.toks[1 : len(p.toks)-1] {
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case skip > 0:
			case cur != nil:
				return nil, errors.New("<" + t.Name.Local + "/> inside a lookup item")
			case t.Name.Space != NSLookup:
				skip = depth
			case t.Name.Local == "address" || t.Name.Local == "jid":
				if len(items) == maxLookupItems {
					return nil, errTooMany
				}
				cur = &lookupItem{jid: t.Name.Local == "jid"}
			default:
				return nil, errors.New("unknown element <" + t.Name.Local + "/> in a lookup; use <address/> or <jid/>")
			}
		case xml.EndElement:
			if skip == depth {
				skip = 0
			} else if cur != nil && skip == 0 {
				cur.value = strings.TrimSpace(cur.value)
				items = append(items, *cur)
				cur = nil
			}
			depth--
		case xml.CharData:
			if cur != nil && skip == 0 {
				cur.value += string(t)
			}
		}
	}
	if len(items) == 0 {
		return nil, errors.New("a lookup needs at least one <address/> or <jid/>")
	}
	return items, nil
}

// person answers one item.
func (b *Bot) person(it lookupItem) *element {
	kind := "address"
	if it.jid {
		kind = "jid"
	}
	var e web.Entry
	switch {
	case it.value == "":
		e = web.Entry{Status: web.Invalid, Err: "empty"}
	case len(it.value) > maxItemLength:
		e = web.Entry{Status: web.Invalid, Err: fmt.Sprintf("longer than %d bytes", maxItemLength)}
	case it.jid:
		e = b.cfg.Lookup.LookupJID(it.value)
	default:
		e = b.cfg.Lookup.Lookup(it.value)
	}
	out := el(xml.Name{Local: "person"}, attrs(kind, it.value))
	switch e.Status {
	case web.Invalid:
		out.attrs = append(out.attrs, attrs("state", "unknown", "error", "invalid", "error-text", e.Err)...)
		return out
	case web.NotFound:
		out.attrs = append(out.attrs, attrs("state", "unknown", "error", "not-found")...)
		return out
	}
	v := web.Visible(e, b.cfg.Visibility)
	state := string(v.Presence.State)
	if state == "" {
		state = "unknown"
	}
	// The other identity (the JID of an address, the address of a JID) is
	// shown only to those who may see the JID at all.
	otherName, other := "jid", v.JID
	if it.jid {
		otherName, other = "address", v.Email
	}
	if v.JID == "" {
		other = ""
	}
	out.attrs = append(out.attrs, attrs(
		otherName, other,
		"state", state,
		"status", v.Presence.Status,
		"until", xmppTime(v.Presence.Until),
		"source", string(v.Presence.Source),
		"name", v.Name,
		"updated", xmppTime(v.Updated),
		"stale", boolAttr(v.Stale),
	)...)
	if c := v.Presence.Calendar; c.State != "" {
		out.add(el(xml.Name{Local: "calendar"}, attrs(
			"state", string(c.State),
			"status", c.Status,
			"until", xmppTime(c.Until),
			"tentative", boolAttr(c.Tentative),
			"working-elsewhere", boolAttr(c.WorkingElsewhere),
			"subject", c.Subject,
			"location", c.Location,
		)))
	}
	if v.Chat.Known {
		chat := el(xml.Name{Local: "chat"}, attrs("online", strconv.FormatBool(len(v.Chat.Resources) > 0)))
		for _, res := range v.Chat.Resources {
			chat.add(el(xml.Name{Local: "resource"}, attrs(
				"name", res.Name,
				"show", string(res.Show),
				"status", res.Status,
				"priority", strconv.Itoa(res.Priority),
			)))
		}
		out.add(chat)
	}
	return out
}

// xmppTime is an XEP-0082 date-time in UTC, "" for the zero time.
func xmppTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func boolAttr(v bool) string {
	if v {
		return "true"
	}
	return ""
}
