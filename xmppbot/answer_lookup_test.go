package xmppbot

import (
	"fmt"
	"strings"
	"testing"

	"github.com/presencegw/presencegw/web"
)

func lookupPayload(items ...string) string {
	return `<lookup xmlns="urn:presencegw:lookup:0">` + strings.Join(items, "") + `</lookup>`
}

func addr(a string) string    { return "<address>" + a + "</address>" }
func jidItem(j string) string { return "<jid>" + j + "</jid>" }

// persons asserts a lookup result and returns its people.
func persons(t *testing.T, r xnode) []xnode {
	t.Helper()
	if r.attr("type") != "result" {
		typ, cond, _, text := r.stanzaErr()
		t.Fatalf("lookup failed: %s/%s %s", typ, cond, text)
	}
	l := r.child("lookup")
	if l.XMLName.Space != NSLookup {
		t.Fatalf("lookup reply in %q", l.XMLName.Space)
	}
	return l.children("person")
}

// attrMap is a person's attributes, with its children's names.
func attrMap(n xnode) map[string]string {
	m := map[string]string{}
	for _, a := range n.Attrs {
		m[a.Name.Local] = a.Value
	}
	for _, k := range n.Kids {
		m["<"+k.XMLName.Local+">"] = "yes"
	}
	return m
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestLookupVisibility(t *testing.T) {
	cases := []struct {
		name string
		vis  web.Visibility
		item string
		want map[string]string
	}{
		{"state by address", web.SeeState, addr("alice@corp.example"),
			map[string]string{"address": "alice@corp.example", "state": "busy"}},
		{"state by jid: the address stays hidden", web.SeeState, jidItem("alice@example.com"),
			map[string]string{"jid": "alice@example.com", "state": "busy"}},
		{"status by address", web.SeeStatus, addr("alice@corp.example"),
			map[string]string{"address": "alice@corp.example", "jid": "alice@example.com", "state": "busy", "status": ansMeeting,
				"until": "2026-05-04T14:30:00Z", "source": "calendar", "name": "Alice Liddell", "updated": "2026-05-04T14:00:00Z"}},
		{"status by jid", web.SeeStatus, jidItem("Alice@Example.com"),
			map[string]string{"jid": "Alice@Example.com", "address": "alice@corp.example", "state": "busy", "status": ansMeeting,
				"until": "2026-05-04T14:30:00Z", "source": "calendar", "name": "Alice Liddell", "updated": "2026-05-04T14:00:00Z"}},
		{"calendar", web.SeeCalendar, addr("alice@corp.example"),
			map[string]string{"address": "alice@corp.example", "jid": "alice@example.com", "state": "busy", "status": ansMeeting,
				"until": "2026-05-04T14:30:00Z", "source": "calendar", "name": "Alice Liddell", "updated": "2026-05-04T14:00:00Z",
				"<calendar>": "yes", "<chat>": "yes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newAnsWorld(t, func(cfg *Config) { cfg.Visibility = c.vis })
			ps := persons(t, w.iq(t, ansAlice, "get", lookupPayload(c.item)))
			if len(ps) != 1 {
				t.Fatalf("%d people", len(ps))
			}
			if got := attrMap(ps[0]); !sameMap(got, c.want) {
				t.Errorf("got  %v\nwant %v", got, c.want)
			}
			if c.vis == web.SeeCalendar {
				cal := ps[0].child("calendar")
				if cal.attr("state") != "busy" || cal.attr("subject") != "Budget" || cal.attr("location") != "Room 4" || cal.attr("until") != "2026-05-04T14:30:00Z" {
					t.Errorf("calendar %v", cal.Attrs)
				}
				chat := ps[0].child("chat")
				rs := chat.children("resource")
				if chat.attr("online") != "true" || len(rs) != 2 || rs[1].attr("name") != "phone" || rs[1].attr("show") != "away" ||
					rs[1].attr("status") != "on the road" || rs[1].attr("priority") != "-1" {
					t.Errorf("chat %v %v", chat.Attrs, rs)
				}
			}
		})
	}
}

func TestLookupItems(t *testing.T) {
	w := newAnsWorld(t, nil)
	t.Run("one per item, in order, with per-item errors", func(t *testing.T) {
		ps := persons(t, w.iq(t, ansAlice, "get", lookupPayload(
			addr(" carol@corp.example\n"), jidItem("alice@example.com"), addr("nobody@corp.example"),
			addr("not-an-address"), jidItem("zed@example.com"), jidItem("a@b/c"), addr(""), addr(strings.Repeat("x", 2000)+"@corp.example"),
			`<other xmlns="urn:example:ignored"><address>x@y</address></other>`, addr("alice@corp.example"))))
		want := []map[string]string{
			{"address": "carol@corp.example", "jid": "carol@example.com", "state": "available", "source": "xmpp", "name": "Carol"},
			{"jid": "alice@example.com", "address": "alice@corp.example", "state": "busy", "status": ansMeeting, "until": "2026-05-04T14:30:00Z",
				"source": "calendar", "name": "Alice Liddell", "updated": "2026-05-04T14:00:00Z"},
			{"address": "nobody@corp.example", "state": "unknown", "error": "not-found"},
			{"address": "not-an-address", "state": "unknown", "error": "invalid", "error-text": `"not-an-address" is not an e-mail address`},
			{"jid": "zed@example.com", "state": "unknown", "error": "not-found"},
			{"jid": "a@b/c", "state": "unknown", "error": "invalid", "error-text": "not a bare JID"},
			{"state": "unknown", "error": "invalid", "error-text": "empty"},
			{"address": strings.Repeat("x", 2000) + "@corp.example", "state": "unknown", "error": "invalid", "error-text": "longer than 1024 bytes"},
			{"address": "alice@corp.example", "jid": "alice@example.com", "state": "busy", "status": ansMeeting, "until": "2026-05-04T14:30:00Z",
				"source": "calendar", "name": "Alice Liddell", "updated": "2026-05-04T14:00:00Z"},
		}
		if len(ps) != len(want) {
			t.Fatalf("%d people, want %d", len(ps), len(want))
		}
		for i := range want {
			if got := attrMap(ps[i]); !sameMap(got, want[i]) {
				t.Errorf("person %d:\ngot  %v\nwant %v", i, got, want[i])
			}
		}
	})
	t.Run("100 items", func(t *testing.T) {
		if ps := persons(t, w.iq(t, ansAdmin, "get", lookupPayload(strings.Repeat(addr("carol@corp.example")+"\n", 100)))); len(ps) != 100 {
			t.Fatalf("%d people", len(ps))
		}
	})
	bad := []struct {
		name, payload, errType, cond, text string
	}{
		{"101 items", lookupPayload(strings.Repeat(jidItem("carol@example.com"), 101)), "modify", "policy-violation", "at most 100"},
		{"no items", lookupPayload(), "modify", "bad-request", "at least one"},
		{"only foreign elements", lookupPayload(`<address xmlns="urn:other">a@b</address>`), "modify", "bad-request", "at least one"},
		{"unknown element", lookupPayload(`<email>a@b</email>`), "modify", "bad-request", "<email/>"},
		{"nested element", lookupPayload(`<address>a<b/>@c</address>`), "modify", "bad-request", "inside a lookup item"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			r := w.iq(t, ansBob, "get", c.payload)
			wantError(t, r, c.errType, c.cond, "")
			if _, _, _, text := r.stanzaErr(); !strings.Contains(text, c.text) {
				t.Errorf("text %q, want it to mention %q", text, c.text)
			}
		})
	}
}

func TestLookupPolicy(t *testing.T) {
	w := newAnsWorld(t, nil)
	t.Run("strangers are forbidden and learn nothing", func(t *testing.T) {
		var first string
		for i, item := range []string{addr("alice@corp.example"), addr("nobody@corp.example"), addr("garbage"), jidItem("alice@example.com")} {
			r := w.iq(t, ansRemote, "get", lookupPayload(item))
			wantError(t, r, "auth", "forbidden", "")
			out, _ := feed(w.bot, fmt.Sprintf(`<iq type="get" id="q1" from=%q to=%q>%s</iq>`, ansRemote, ansComponent, lookupPayload(item)))
			if i == 0 {
				first = out
			} else if out != first {
				t.Errorf("answers differ:\n%s\n%s", first, out)
			}
		}
	})
	t.Run("servers and components are forbidden", func(t *testing.T) {
		wantError(t, w.iq(t, ansHost, "get", lookupPayload(addr("alice@corp.example"))), "auth", "forbidden", "")
		wantError(t, w.iq(t, "other.example.com", "get", lookupPayload(addr("alice@corp.example"))), "auth", "forbidden", "")
	})
	t.Run("a set is a bad request", func(t *testing.T) {
		wantError(t, w.iq(t, ansAlice, "set", lookupPayload(addr("alice@corp.example"))), "modify", "bad-request", "")
	})
	t.Run("lookups off", func(t *testing.T) {
		w := newAnsWorld(t, func(c *Config) { c.Lookup = nil })
		wantError(t, w.iq(t, ansAlice, "get", lookupPayload(addr("alice@corp.example"))), "cancel", "service-unavailable", "")
	})
	t.Run("rate limited", func(t *testing.T) {
		w := newAnsWorld(t, nil)
		limited := 0
		for range 30 {
			r := w.iq(t, ansAlice, "get", lookupPayload(addr("carol@corp.example")))
			if r.attr("type") == "error" {
				wantError(t, r, "wait", "resource-constraint", "")
				limited++
			}
		}
		if limited < 15 {
			t.Errorf("%d of 30 quick lookups refused, want at least 15 (burst %d)", limited, commandBurst)
		}
		// Another user has a bucket of their own.
		persons(t, w.iq(t, ansBob, "get", lookupPayload(addr("carol@corp.example"))))
	})
}
