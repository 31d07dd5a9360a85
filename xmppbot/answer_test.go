package xmppbot

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"

	"github.com/presencegw/presencegw/internal/presence"
	"github.com/presencegw/presencegw/rules"
	"github.com/presencegw/presencegw/web"
)

// The answering side is tested by feeding real stanzas (XML text) to the
// component's stanza handler exactly as mellium's Session.Serve does, with
// fakes behind the Lookup, Admin and Engine interfaces.

const (
	ansComponent = "presence.example.com"
	ansHost      = "example.com"
	ansAlice     = "alice@example.com/laptop" // a local user with a mailbox
	ansBob       = "bob@example.com/phone"    // a local user the directory does not know
	ansAdmin     = "admin@example.com/desk"   // a local admin
	ansRemote    = "mallory@elsewhere.test/x" // not a local user
	ansMeeting   = "In a meeting until 14:30"
)

var ansUntil = time.Date(2026, 5, 4, 14, 30, 0, 0, time.UTC)

// ansLookup knows alice (busy in a meeting, two resources) and carol
// (available); addresses without "@" are invalid.
type ansLookup struct{}

func (ansLookup) Lookup(email string) web.Entry {
	e := strings.ToLower(strings.TrimSpace(email))
	if !strings.Contains(e, "@") {
		return web.Entry{Email: email, Status: web.Invalid, Err: fmt.Sprintf("%q is not an e-mail address", email)}
	}
	switch e {
	case "alice@corp.example":
		return web.Entry{Email: e, Status: web.Found, JID: "alice@example.com", Name: "Alice Liddell", Mailbox: "mbx-alice",
			Presence: rules.Output{State: rules.Busy, Status: ansMeeting, Source: rules.SourceCalendar, Until: ansUntil,
				Calendar: rules.CalendarNow{State: rules.Busy, Status: ansMeeting, Until: ansUntil, Subject: "Budget", Location: "Room 4"}},
			Chat: rules.Chat{Known: true, Resources: []rules.Resource{
				{Name: "laptop", Priority: 5}, {Name: "phone", Show: rules.ShowAway, Status: "on the road", Priority: -1}}},
			Updated: ansUntil.Add(-30 * time.Minute)}
	case "carol@corp.example":
		return web.Entry{Email: e, Status: web.Found, JID: "carol@example.com", Name: "Carol", Mailbox: "mbx-carol",
			Presence: rules.Output{State: rules.Available, Source: rules.SourceXMPP, Calendar: rules.CalendarNow{State: rules.Available}}}
	}
	return web.Entry{Email: e, Status: web.NotFound}
}

func (l ansLookup) LookupJID(j string) web.Entry {
	if !strings.Contains(j, "@") || strings.Contains(j, "/") {
		return web.Entry{Email: j, Status: web.Invalid, Err: "not a bare JID"}
	}
	if local, ok := strings.CutSuffix(strings.ToLower(j), "@example.com"); ok && (local == "alice" || local == "carol") {
		return l.Lookup(local + "@corp.example")
	}
	return web.Entry{Status: web.NotFound}
}

// ansAdminFake records the admin commands.
type ansAdminFake struct {
	mu      sync.Mutex
	explain []string
	syncs   int
	// sync runs a sync; nil answers "3 changes" at once.
	sync func(context.Context) (string, error)
}

func (a *ansAdminFake) Explain(address string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.explain = append(a.explain, address)
	return address + " → alice@example.com (ldap:corp, mail attribute)"
}

func (a *ansAdminFake) Sync(ctx context.Context) (string, error) {
	a.mu.Lock()
	a.syncs++
	f := a.sync
	a.mu.Unlock()
	if f != nil {
		return f(ctx)
	}
	return "3 changes", nil
}

// ansEngine keeps opt-outs; everything else is inert.
type ansEngine struct {
	mu      sync.Mutex
	optOut  map[string]bool
	failSet error
}

func (e *ansEngine) Subscribe(int) (<-chan presence.Change, func()) {
	return make(chan presence.Change), func() {}
}
func (e *ansEngine) Get(string) (rules.Output, bool) { return rules.Output{}, false }
func (e *ansEngine) Mailboxes() []string             { return nil }
func (e *ansEngine) SetChat(string, rules.Chat)      {}
func (e *ansEngine) SetOptOut(id string, optOut bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failSet != nil {
		return e.failSet
	}
	e.optOut[id] = optOut
	return nil
}
func (e *ansEngine) OptedOut(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.optOut[id]
}

type ansDir struct{}

func (ansDir) JIDOf(mb string) (string, bool) {
	if mb == "mbx-alice" {
		return "alice@example.com", true
	}
	return "", false
}

func (ansDir) MailboxOf(j string) (string, bool) {
	if j == "alice@example.com" {
		return "mbx-alice", true
	}
	return "", false
}

// ansWorld is a component with fakes behind it.
type ansWorld struct {
	bot    *Bot
	admin  *ansAdminFake
	engine *ansEngine
	sent   chan string // stanzas sent outside a handler
}

func newAnsWorld(t testing.TB, change func(*Config)) *ansWorld {
	t.Helper()
	w := &ansWorld{admin: &ansAdminFake{}, engine: &ansEngine{optOut: map[string]bool{}}, sent: make(chan string, 16)}
	cfg := Config{Server: "127.0.0.1:1", JID: ansComponent, Secret: []byte("s"), Hosts: []string{ansHost},
		Admins: []string{"Admin@Example.com"}, Visibility: web.SeeStatus, Lookup: ansLookup{}, Admin: w.admin}
	if change != nil {
		change(&cfg)
	}
	b, err := New(cfg, w.engine, ansDir{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.ans.send = func(r xml.TokenReader) error {
		var buf bytes.Buffer
		enc := xml.NewEncoder(&buf)
		if _, err := xmlstream.Copy(enc, r); err != nil {
			return err
		}
		if err := enc.Flush(); err != nil {
			return err
		}
		w.sent <- buf.String()
		return nil
	}
	w.bot = b
	return w
}

// ansRW is the in-memory TokenReadEncoder a handler gets: the stanza's
// inner tokens (and its end element), as mellium hands them over, and an
// encoder writing to a buffer.
type ansRW struct {
	xml.TokenReader
	*xml.Encoder
}

// ansStreamOpen is the component stream the stanzas are read from.
const ansStreamOpen = `<stream:stream xmlns="jabber:component:accept" xmlns:stream="http://etherx.jabber.org/streams">`

// feed hands one stanza to the component's stanza handler as the session
// would, and returns what the handler wrote.
func feed(b *Bot, stanzaXML string) (string, error) {
	d := xml.NewDecoder(strings.NewReader(ansStreamOpen + stanzaXML + `</stream:stream>`))
	if _, err := d.Token(); err != nil {
		return "", err
	}
	var start xml.StartElement
	for {
		tok, err := d.Token()
		if err != nil {
			return "", err
		}
		if s, ok := tok.(xml.StartElement); ok {
			start = s.Copy()
			break
		}
	}
	var out bytes.Buffer
	enc := xml.NewEncoder(&out)
	rw := ansRW{TokenReader: xmlstream.InnerElement(d), Encoder: enc}
	herr := (&conn{bot: b}).handle(rw, &start)
	// The session reads on to the stanza's end after the handler.
	_, _ = xmlstream.Copy(xmlstream.Discard(), rw)
	if err := enc.Flush(); err != nil {
		return out.String(), err
	}
	return out.String(), herr
}

// exchange feeds a stanza and parses the replies.
func (w *ansWorld) exchange(t testing.TB, stanzaXML string) []xnode {
	t.Helper()
	out, err := feed(w.bot, stanzaXML)
	if err != nil {
		t.Fatalf("handler: %v\nstanza: %s", err, stanzaXML)
	}
	replies, err := parseReplies(out)
	if err != nil {
		t.Fatalf("reply is not well-formed XML: %v\n%s", err, out)
	}
	return replies
}

// iq sends an IQ from `from` and returns its one reply.
func (w *ansWorld) iq(t testing.TB, from, typ, payload string) xnode {
	t.Helper()
	replies := w.exchange(t, fmt.Sprintf(`<iq type=%q id="q1" from=%q to=%q>%s</iq>`, typ, from, ansComponent, payload))
	if len(replies) != 1 {
		t.Fatalf("%d replies to an IQ %s, want 1: %v", len(replies), typ, replies)
	}
	r := replies[0]
	if r.XMLName.Local != "iq" || r.attr("id") != "q1" || r.attr("to") != from || r.attr("from") != ansComponent {
		t.Fatalf("reply %s id=%q to=%q from=%q, want iq id=q1 to=%s from=%s", r.XMLName.Local, r.attr("id"), r.attr("to"), r.attr("from"), from, ansComponent)
	}
	return r
}

// message sends a message and returns the replies.
func (w *ansWorld) message(t testing.TB, from, typ, body string) []xnode {
	t.Helper()
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(body))
	return w.exchange(t, fmt.Sprintf(`<message type=%q id="m1" from=%q to=%q><body>%s</body></message>`, typ, from, ansComponent, b.String()))
}

// chatText sends a chat message and returns the one reply's body.
func (w *ansWorld) chatText(t testing.TB, from, body string) string {
	t.Helper()
	replies := w.message(t, from, "chat", body)
	if len(replies) != 1 {
		t.Fatalf("%d replies to %q, want 1: %v", len(replies), body, replies)
	}
	r := replies[0]
	if r.XMLName.Local != "message" || r.attr("type") != "chat" || r.attr("to") != from || r.attr("from") != ansComponent || r.attr("id") == "" {
		t.Fatalf("reply to %q: %s type=%q to=%q from=%q id=%q", body, r.XMLName.Local, r.attr("type"), r.attr("to"), r.attr("from"), r.attr("id"))
	}
	return r.child("body").Text
}

// xnode is a parsed element.
type xnode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Kids    []xnode    `xml:",any"`
}

func (n xnode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// child is the first child with the local name (zero when none).
func (n xnode) child(local string) xnode {
	for _, k := range n.Kids {
		if k.XMLName.Local == local {
			return k
		}
	}
	return xnode{}
}

// children are the children with the local name.
func (n xnode) children(local string) []xnode {
	var out []xnode
	for _, k := range n.Kids {
		if k.XMLName.Local == local {
			out = append(out, k)
		}
	}
	return out
}

// stanzaErr is an error reply's type, condition, application condition
// and text.
func (n xnode) stanzaErr() (typ, cond, app, text string) {
	e := n.child("error")
	typ = e.attr("type")
	for _, k := range e.Kids {
		switch {
		case k.XMLName.Space == "urn:ietf:params:xml:ns:xmpp-stanzas" && k.XMLName.Local == "text":
			text = k.Text
		case k.XMLName.Space == "urn:ietf:params:xml:ns:xmpp-stanzas":
			cond = k.XMLName.Local
		default:
			app = k.XMLName.Local
		}
	}
	return
}

// parseReplies parses what a handler wrote: zero or more stanzas in the
// component namespace.
func parseReplies(out string) ([]xnode, error) {
	d := xml.NewDecoder(strings.NewReader(`<r xmlns="jabber:component:accept">` + out + `</r>`))
	var root xnode
	if err := d.Decode(&root); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("data after the replies")
	}
	return root.Kids, nil
}

// wantError asserts an IQ error reply.
func wantError(t testing.TB, r xnode, typ, cond, app string) {
	t.Helper()
	if r.attr("type") != "error" {
		t.Fatalf("reply type %q, want error %s/%s", r.attr("type"), typ, cond)
	}
	gt, gc, ga, _ := r.stanzaErr()
	if gt != typ || gc != cond || ga != app {
		t.Fatalf("error %s/%s (%s), want %s/%s (%s)", gt, gc, ga, typ, cond, app)
	}
}

func TestAnswerDiscoInfo(t *testing.T) {
	w := newAnsWorld(t, nil)
	q := func(node string) string {
		if node == "" {
			return `<query xmlns="http://jabber.org/protocol/disco#info"/>`
		}
		return fmt.Sprintf(`<query xmlns="http://jabber.org/protocol/disco#info" node=%q/>`, node)
	}
	cases := []struct {
		name, from, node string
		identity         string // category/type
		features         []string
		errCond          string
	}{
		{"component", ansAlice, "", "component/presence",
			[]string{nsDiscoInfo, nsDiscoItems, nsCommands, NSLookup}, ""},
		{"component to a stranger", ansRemote, "", "component/presence",
			[]string{nsDiscoInfo, nsDiscoItems, nsCommands, NSLookup}, ""},
		{"command list", ansAlice, nsCommands, "automation/command-list", []string{nsCommands}, ""},
		{"command node", ansAlice, "status", "automation/command-node", []string{nsCommands, nsData}, ""},
		{"admin node for an admin", ansAdmin, "sync", "automation/command-node", []string{nsCommands, nsData}, ""},
		{"admin node for a user", ansAlice, "sync", "", nil, "forbidden"},
		{"command node for a stranger", ansRemote, "status", "", nil, "forbidden"},
		{"unknown node", ansAlice, "nope", "", nil, "item-not-found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := w.iq(t, c.from, "get", q(c.node))
			if c.errCond != "" {
				_, cond, _, _ := r.stanzaErr()
				if r.attr("type") != "error" || cond != c.errCond {
					t.Fatalf("got %s %s, want error %s", r.attr("type"), cond, c.errCond)
				}
				return
			}
			if r.attr("type") != "result" {
				t.Fatalf("type %q: %v", r.attr("type"), r)
			}
			query := r.child("query")
			if query.XMLName.Space != nsDiscoInfo || query.attr("node") != c.node {
				t.Fatalf("query %v node %q", query.XMLName, query.attr("node"))
			}
			id := query.child("identity")
			if got := id.attr("category") + "/" + id.attr("type"); got != c.identity || id.attr("name") == "" {
				t.Errorf("identity %s name %q, want %s with a name", got, id.attr("name"), c.identity)
			}
			var got []string
			for _, f := range query.children("feature") {
				got = append(got, f.attr("var"))
			}
			if strings.Join(got, " ") != strings.Join(c.features, " ") {
				t.Errorf("features %v, want %v", got, c.features)
			}
		})
	}
	t.Run("set", func(t *testing.T) {
		wantError(t, w.iq(t, ansAlice, "set", q("")), "modify", "bad-request", "")
	})
	t.Run("no lookup feature without a lookup", func(t *testing.T) {
		w := newAnsWorld(t, func(c *Config) { c.Lookup = nil })
		for _, f := range w.iq(t, ansAlice, "get", q("")).child("query").children("feature") {
			if f.attr("var") == NSLookup {
				t.Fatal("lookup advertised while off")
			}
		}
	})
}

func TestAnswerDiscoItems(t *testing.T) {
	cases := []struct {
		name, from string
		change     func(*Config)
		nodes      string
	}{
		{"user", ansAlice, nil, "status calendar-off calendar-on"},
		{"admin", ansAdmin, nil, "status calendar-off calendar-on resolve sync"},
		{"stranger", ansRemote, nil, ""},
		{"admin without admin backend", ansAdmin, func(c *Config) { c.Admin = nil }, "status calendar-off calendar-on"},
		{"user without lookup", ansAlice, func(c *Config) { c.Lookup = nil }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newAnsWorld(t, c.change)
			r := w.iq(t, c.from, "get", `<query xmlns="http://jabber.org/protocol/disco#items" node="http://jabber.org/protocol/commands"/>`)
			if r.attr("type") != "result" {
				t.Fatalf("type %q", r.attr("type"))
			}
			var nodes []string
			for _, it := range r.child("query").children("item") {
				if it.attr("jid") != ansComponent || it.attr("name") == "" {
					t.Errorf("item %v: want jid %s and a name", it.Attrs, ansComponent)
				}
				nodes = append(nodes, it.attr("node"))
			}
			if got := strings.Join(nodes, " "); got != c.nodes {
				t.Errorf("commands %q, want %q", got, c.nodes)
			}
		})
	}
	w := newAnsWorld(t, nil)
	t.Run("no node", func(t *testing.T) {
		r := w.iq(t, ansAlice, "get", `<query xmlns="http://jabber.org/protocol/disco#items"/>`)
		if r.attr("type") != "result" || len(r.child("query").Kids) != 0 {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("unknown node", func(t *testing.T) {
		wantError(t, w.iq(t, ansAlice, "get", `<query xmlns="http://jabber.org/protocol/disco#items" node="x"/>`), "cancel", "item-not-found", "")
	})
}

func TestAnswerBadIQs(t *testing.T) {
	w := newAnsWorld(t, nil)
	many := strings.Repeat(`<address>a@corp.example</address>`, 5000)
	deep := strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40)
	cases := []struct {
		name, typ, to, payload string
		errType, cond          string
	}{
		{"unknown namespace", "get", ansComponent, `<query xmlns="jabber:iq:version"/>`, "cancel", "service-unavailable"},
		{"unknown element in a known namespace", "get", ansComponent, `<nope xmlns="urn:presencegw:lookup:0"/>`, "cancel", "service-unavailable"},
		{"no child", "get", ansComponent, ``, "modify", "bad-request"},
		{"only text", "set", ansComponent, `hello`, "modify", "bad-request"},
		{"two children", "get", ansComponent, `<query xmlns="http://jabber.org/protocol/disco#info"/><query xmlns="http://jabber.org/protocol/disco#info"/>`, "modify", "bad-request"},
		{"to a user at the component", "get", "someone@" + ansComponent, `<query xmlns="http://jabber.org/protocol/disco#info"/>`, "cancel", "service-unavailable"},
		{"to another domain", "get", "example.com", `<query xmlns="http://jabber.org/protocol/disco#info"/>`, "cancel", "service-unavailable"},
		{"too many tokens", "get", ansComponent, `<lookup xmlns="urn:presencegw:lookup:0">` + many + `</lookup>`, "modify", "policy-violation"},
		{"too many bytes", "get", ansComponent, `<lookup xmlns="urn:presencegw:lookup:0"><address>` + strings.Repeat("x", 70<<10) + `</address></lookup>`, "modify", "policy-violation"},
		{"too deep", "get", ansComponent, `<x xmlns="urn:example">` + deep + `</x>`, "modify", "policy-violation"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			replies := w.exchange(t, fmt.Sprintf(`<iq type=%q id="e1" from=%q to=%q>%s</iq>`, c.typ, ansAlice, c.to, c.payload))
			if len(replies) != 1 || replies[0].attr("id") != "e1" {
				t.Fatalf("replies %v, want one to e1", replies)
			}
			wantError(t, replies[0], c.errType, c.cond, "")
		})
	}
	for _, typ := range []string{"result", "error", "bogus", ""} {
		t.Run("no reply to type "+typ, func(t *testing.T) {
			if r := w.exchange(t, fmt.Sprintf(`<iq type=%q id="e2" from=%q to=%q><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, typ, ansAlice, ansComponent)); len(r) != 0 {
				t.Fatalf("replied %v", r)
			}
		})
	}
}

func TestAnswerOverComponentStream(t *testing.T) {
	testAnswerOverComponentStream(t)
}
