package xmppbot_test

// The overlay protocol (docs/overlay-protocol.md) against a real Prosody
// running configs/prosody/mod_presencegw.lua. The cases take the server's
// start function, so another server's module can run the same ones.

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presencegw/presencegw/internal/testenv"
)

const (
	ovNS = "urn:presencegw:overlay:0"
	// ovWait bounds waiting for a stanza that must arrive.
	ovWait = 5 * time.Second
	// ovSettle is how long a test waits before asserting that something
	// did not arrive. The server handles a request in one go, so anything
	// it sends is on the wire well within this.
	ovSettle = 400 * time.Millisecond

	ovAlice   = "alice@example.test"
	ovDesk    = ovAlice + "/desk"
	ovPhone   = ovAlice + "/phone"
	ovMeeting = "In a meeting until 14:30"
)

// ovStart starts a server with the overlay module.
type ovStart func(testing.TB, testenv.XMPPOptions) *testenv.XMPPServer

// ovCases are the cases of docs/overlay-protocol.md.
var ovCases = []struct {
	name string
	run  func(*testing.T, ovStart)
}{
	{"SetReachesContactsOnly", ovTestSet},
	{"LaterUpdates", ovTestUpdates},
	{"ProbesAndNewContacts", ovTestProbes},
	{"DirectedPresence", ovTestDirected},
	{"ClearRestoresOriginal", ovTestClear},
	{"ListAndReplace", ovTestList},
	{"UntilPastActsAsClear", ovTestUntilPast},
	{"ExpiresAtUntil", ovTestExpiry},
	{"GracePeriod", ovTestGrace},
	{"ClientsForbidden", ovTestForbidden},
	{"BadRequests", ovTestErrors},
	{"OfflinePerson", ovTestOffline},
	{"BlockWins", ovTestBlock},
	{"RestartDropsOverlays", ovTestRestart},
}

func TestProsodyOverlay(t *testing.T) {
	for _, c := range ovCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, testenv.StartProsody)
		})
	}
}

// TestProsodyWithoutModule: a server without the module neither
// advertises the feature nor accepts requests, which is what the gateway
// checks before falling back.
func TestProsodyWithoutModule(t *testing.T) {
	t.Parallel()
	srv := testenv.StartProsody(t, testenv.XMPPOptions{NoModule: true, Users: []string{"alice"}})
	comp := testenv.DialComponent(t, srv)
	if ovHasFeature(t, comp) {
		t.Error("disco#info lists the overlay feature without the module")
	}
	r := ovIQ(t, comp, "set", `<overlay xmlns="`+ovNS+`" jid="alice@example.test" show="dnd"/>`)
	if typ, cond, _ := ovError(r); typ != "cancel" || cond != "service-unavailable" {
		t.Errorf("set without the module: %s", r)
	}
}

// ovWorld is alice with two resources (desk: available, priority 10;
// phone: chat, priority 5), her contact bob (subscription both), carol
// (no relation) and eve (alice is subscribed to eve, not eve to alice),
// and the component.
type ovWorld struct {
	srv             *testenv.XMPPServer
	comp            *testenv.XMPPClient
	desk, phone     *testenv.XMPPClient
	bob, carol, eve *testenv.XMPPClient
}

// ovPresence is what a presence shows.
type ovPresence struct {
	show, status string
	priority     int
}

func (p ovPresence) String() string {
	return fmt.Sprintf("show %q status %q priority %d", p.show, p.status, p.priority)
}

var (
	ovDeskOriginal  = ovPresence{"", "at my desk", 10}
	ovPhoneOriginal = ovPresence{"chat", "on the phone", 5}
)

func ovNewWorld(t *testing.T, start ovStart, opts testenv.XMPPOptions) *ovWorld {
	t.Helper()
	opts.Users = []string{"alice", "bob", "carol", "eve"}
	srv := start(t, opts)
	w := &ovWorld{srv: srv}
	w.comp = testenv.DialComponent(t, srv)
	w.desk = testenv.DialXMPP(t, srv, "alice", "desk")
	w.desk.SendPresence(t, "", ovDeskOriginal.show, ovDeskOriginal.status, ovDeskOriginal.priority)
	w.bob = ovOnline(t, srv, "bob", "laptop")
	w.carol = ovOnline(t, srv, "carol", "home")
	w.eve = ovOnline(t, srv, "eve", "home")
	testenv.MakeContacts(t, w.desk, w.bob)

	mark := w.eve.Mark()
	w.desk.Send(t, `<presence type="subscribe" to="eve@example.test"/>`)
	w.eve.WaitFor(t, mark, ovWait, "alice's subscription request", func(s testenv.Stanza) bool {
		return s.IsPresence() && s.Attr("type") == "subscribe"
	})
	w.eve.Send(t, `<presence type="subscribed" to="alice@example.test"/>`)
	w.desk.WaitFor(t, 0, ovWait, "roster push: eve with subscription to", func(s testenv.Stanza) bool {
		q, _ := s.Child("query")
		item, ok := q.Child("item")
		return ok && item.Attr("jid") == "eve@example.test" && item.Attr("subscription") == "to"
	})

	m := w.marks()
	w.phone = testenv.DialXMPP(t, srv, "alice", "phone")
	w.phone.SendPresence(t, "", ovPhoneOriginal.show, ovPhoneOriginal.status, ovPhoneOriginal.priority)
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovPhone), ovPhoneOriginal, "bob's view of alice's phone before any overlay")
	ovNext(t, w.desk, m[w.desk], ovPhone)
	ovNext(t, w.comp, m[w.comp], ovPhone)
	time.Sleep(ovSettle)
	return w
}

func ovOnline(t *testing.T, srv *testenv.XMPPServer, user, resource string) *testenv.XMPPClient {
	t.Helper()
	c := testenv.DialXMPP(t, srv, user, resource)
	c.SendPresence(t, "", "", user+" here", 0)
	return c
}

// ovMarks remembers where each of the world's sessions is.
type ovMarks map[*testenv.XMPPClient]int

func (w *ovWorld) marks() ovMarks {
	m := ovMarks{}
	for _, c := range []*testenv.XMPPClient{w.comp, w.desk, w.phone, w.bob, w.carol, w.eve} {
		if c != nil {
			m[c] = c.Mark()
		}
	}
	return m
}

var ovIDs atomic.Int64

// ovIQ sends an IQ of type typ with payload from c to example.test and
// returns the reply.
func ovIQ(t *testing.T, c *testenv.XMPPClient, typ, payload string) testenv.Stanza {
	t.Helper()
	return c.IQ(t, fmt.Sprintf(`<iq type=%q id="ov%d" to="example.test">%s</iq>`, typ, ovIDs.Add(1), payload))
}

// ovSetPayload is a set request; until and status are left out when "".
func ovSetPayload(jid, show, until, status string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<overlay xmlns=%q jid=%q show=%q`, ovNS, jid, show)
	if until != "" {
		fmt.Fprintf(&b, ` until=%q`, until)
	}
	b.WriteString(">")
	if status != "" {
		b.WriteString("<status>" + status + "</status>")
	}
	b.WriteString("</overlay>")
	return b.String()
}

// set sets an overlay for alice and fails unless the server accepts it.
func (w *ovWorld) set(t *testing.T, show, until, status string) {
	t.Helper()
	r := ovIQ(t, w.comp, "set", ovSetPayload(ovAlice, show, until, status))
	if r.Attr("type") != "result" {
		t.Fatalf("set %s %q until %q: %s", show, status, until, r)
	}
}

func (w *ovWorld) clear(t *testing.T) {
	t.Helper()
	r := ovIQ(t, w.comp, "set", `<clear xmlns="`+ovNS+`" jid="alice@example.test"/>`)
	if r.Attr("type") != "result" {
		t.Fatalf("clear: %s", r)
	}
}

// list returns the component's overlays as the server lists them.
func ovList(t *testing.T, comp *testenv.XMPPClient) []testenv.Node {
	t.Helper()
	r := ovIQ(t, comp, "get", `<overlays xmlns="`+ovNS+`"/>`)
	if r.Attr("type") != "result" {
		t.Fatalf("list: %s", r)
	}
	q, ok := r.Child("overlays")
	if !ok || q.XMLName.Space != ovNS {
		t.Fatalf("list reply without <overlays xmlns=%q>: %s", ovNS, r)
	}
	return q.Children
}

// setAndWait sets the meeting overlay and waits until bob sees it on both
// of alice's resources.
func (w *ovWorld) setAndWait(t *testing.T) {
	t.Helper()
	mark := w.bob.Mark()
	w.set(t, "dnd", "", ovMeeting)
	ovExpect(t, ovNext(t, w.bob, mark, ovDesk), ovPresence{"dnd", ovMeeting, 10}, "bob's view of desk after set")
	ovExpect(t, ovNext(t, w.bob, mark, ovPhone), ovPresence{"dnd", ovMeeting, 5}, "bob's view of phone after set")
}

// ovNext waits for the first presence from the full JID from since mark.
func ovNext(t *testing.T, c *testenv.XMPPClient, mark int, from string) testenv.Stanza {
	t.Helper()
	return c.WaitFor(t, mark, ovWait, "presence from "+from, func(s testenv.Stanza) bool {
		return s.IsPresence() && s.Attr("from") == from
	})
}

// ovExpect fails unless s is available presence showing want.
func ovExpect(t *testing.T, s testenv.Stanza, want ovPresence, what string) {
	t.Helper()
	got := ovPresence{s.Show(), s.Status(), s.Priority()}
	if s.Attr("type") != "" || got != want {
		t.Errorf("%s: got %s (type %q), want %s\n%s", what, got, s.Attr("type"), want, s)
	}
	for _, name := range []string{"show", "status", "priority"} {
		if n := ovCount(s.Node, name); n > 1 {
			t.Errorf("%s: %d <%s> elements: %s", what, n, name, s)
		}
	}
}

func ovCount(n testenv.Node, local string) int {
	k := 0
	for _, c := range n.Children {
		if c.XMLName.Local == local {
			k++
		}
	}
	return k
}

// ovQuiet fails if c received any presence from alice since mark.
func ovQuiet(t *testing.T, c *testenv.XMPPClient, mark int, who string) {
	t.Helper()
	for _, s := range c.Received(mark) {
		if s.IsPresence() && testenv.Bare(s.Attr("from")) == ovAlice {
			t.Errorf("%s received %s", who, s)
		}
	}
}

// ovError splits an error reply into type, condition and text.
func ovError(s testenv.Stanza) (typ, cond, text string) {
	if s.Attr("type") != "error" {
		return "", "", ""
	}
	e, _ := s.Child("error")
	for _, c := range e.Children {
		if c.XMLName.Local == "text" {
			text = c.Text
		} else if cond == "" {
			cond = c.XMLName.Local
		}
	}
	return e.Attr("type"), cond, text
}

func ovHasFeature(t *testing.T, comp *testenv.XMPPClient) bool {
	t.Helper()
	r := ovIQ(t, comp, "get", `<query xmlns="http://jabber.org/protocol/disco#info"/>`)
	q, ok := r.Child("query")
	if r.Attr("type") != "result" || !ok {
		t.Fatalf("disco#info: %s", r)
	}
	for _, c := range q.Children {
		if c.XMLName.Local == "feature" && c.Attr("var") == ovNS {
			return true
		}
	}
	return false
}

// Set: contacts see the overlay on every resource with its priority; the
// person's own resources, non-contacts and the component see nothing.
func ovTestSet(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	if !ovHasFeature(t, w.comp) {
		t.Error("disco#info does not list " + ovNS)
	}
	m := w.marks()
	w.set(t, "dnd", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), ovMeeting)
	desk := ovNext(t, w.bob, m[w.bob], ovDesk)
	ovExpect(t, desk, ovPresence{"dnd", ovMeeting, 10}, "bob's view of desk")
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovPhone), ovPresence{"dnd", ovMeeting, 5}, "bob's view of phone")
	if d, ok := desk.Child("delay"); ok {
		t.Errorf("the overlay carries the stored presence's delay: %s", d)
	}
	time.Sleep(ovSettle)
	if n := len(w.bob.Received(m[w.bob])); n != 2 {
		t.Errorf("bob received %d stanzas, want the 2 presences: %v", n, w.bob.Received(m[w.bob]))
	}
	ovQuiet(t, w.desk, m[w.desk], "alice's desk")
	ovQuiet(t, w.phone, m[w.phone], "alice's phone")
	ovQuiet(t, w.carol, m[w.carol], "carol (no relation)")
	ovQuiet(t, w.eve, m[w.eve], "eve (not subscribed to alice)")
	ovQuiet(t, w.comp, m[w.comp], "the component")
}

// Later updates while the overlay is set: available and chat are
// overlaid, keeping priority, id and caps; a state set by hand passes
// unchanged. Alice's other resource and the component (XEP-0356) get
// the real presence every time.
func ovTestUpdates(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	w.setAndWait(t)
	for i, tc := range []struct {
		show, status string
		overlaid     bool
	}{
		{"", "back at desk", true},
		{"chat", "talk to me", true},
		{"away", "gone for lunch", false},
		{"xa", "out", false},
		{"dnd", "focus time", false},
		{"", "back again", true},
	} {
		t.Run(fmt.Sprintf("%d_%s", i, tc.show), func(t *testing.T) {
			m := w.marks()
			id := fmt.Sprintf("upd%d", i)
			show := ""
			if tc.show != "" {
				show = "<show>" + tc.show + "</show>"
			}
			w.desk.Send(t, fmt.Sprintf(`<presence id=%q>%s<status>%s</status><priority>7</priority>`+
				`<c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="https://client.example" ver="v%d="/></presence>`,
				id, show, tc.status, i))
			real := ovPresence{tc.show, tc.status, 7}
			want := real
			if tc.overlaid {
				want = ovPresence{"dnd", ovMeeting, 7}
			}
			got := ovNext(t, w.bob, m[w.bob], ovDesk)
			ovExpect(t, got, want, "bob's view")
			if got.Attr("id") != id {
				t.Errorf("id not kept: %s", got)
			}
			if c, ok := got.Child("c"); !ok || c.Attr("ver") != fmt.Sprintf("v%d=", i) {
				t.Errorf("caps not kept: %s", got)
			}
			ovExpect(t, ovNext(t, w.phone, m[w.phone], ovDesk), real, "alice's phone's view")
			ovExpect(t, ovNext(t, w.comp, m[w.comp], ovDesk), real, "the component's view (XEP-0356)")
			ovExpect(t, ovNext(t, w.desk, m[w.desk], ovDesk), real, "the reflection to desk")
		})
	}
}

// Probe replies (a contact's new resource), a new resource of the person
// and the presence sent to a newly approved contact are overlaid; a
// resource set away by hand stays away.
func ovTestProbes(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	w.setAndWait(t)
	m := w.marks()
	w.phone.SendPresence(t, "", "away", "auto away", 5)
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovPhone), ovPresence{"away", "auto away", 5}, "bob's view of phone set away")

	tablet := testenv.DialXMPP(t, w.srv, "bob", "tablet")
	tablet.SendPresence(t, "", "", "", 0)
	ovExpect(t, ovNext(t, tablet, 0, ovDesk), ovPresence{"dnd", ovMeeting, 10}, "probe reply for desk")
	ovExpect(t, ovNext(t, tablet, 0, ovPhone), ovPresence{"away", "auto away", 5}, "probe reply for phone")

	m = w.marks()
	laptop := testenv.DialXMPP(t, w.srv, "alice", "laptop")
	laptop.SendPresence(t, "", "", "new laptop", 1)
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovAlice+"/laptop"), ovPresence{"dnd", ovMeeting, 1}, "bob's view of a new resource")
	ovExpect(t, ovNext(t, w.desk, m[w.desk], ovAlice+"/laptop"), ovPresence{"", "new laptop", 1}, "alice's desk's view of laptop")

	// carol becomes a contact: what she gets on approval is overlaid.
	m = w.marks()
	w.carol.Send(t, `<presence type="subscribe" to="alice@example.test"/>`)
	w.desk.WaitFor(t, m[w.desk], ovWait, "carol's subscription request", func(s testenv.Stanza) bool {
		return s.IsPresence() && s.Attr("type") == "subscribe"
	})
	w.desk.Send(t, `<presence type="subscribed" to="carol@example.test"/>`)
	ovExpect(t, ovNext(t, w.carol, m[w.carol], ovDesk), ovPresence{"dnd", ovMeeting, 10}, "carol's view of desk on approval")
	ovExpect(t, ovNext(t, w.carol, m[w.carol], ovAlice+"/laptop"), ovPresence{"dnd", ovMeeting, 1}, "carol's view of laptop on approval")
	ovExpect(t, ovNext(t, w.carol, m[w.carol], ovPhone), ovPresence{"away", "auto away", 5}, "carol's view of phone on approval")
}

// Directed presence is overlaid only for a contact with a from/both
// subscription.
func ovTestDirected(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	w.setAndWait(t)
	for _, tc := range []struct {
		name string
		to   *testenv.XMPPClient
		want ovPresence
	}{
		{"carol, no relation", w.carol, ovPresence{"", "directed", 10}},
		{"eve, subscription to", w.eve, ovPresence{"", "directed", 10}},
		{"bob, subscription both", w.bob, ovPresence{"dnd", ovMeeting, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mark := tc.to.Mark()
			w.desk.SendPresence(t, tc.to.JID, "", "directed", 10)
			ovExpect(t, ovNext(t, tc.to, mark, ovDesk), tc.want, tc.name)
		})
	}
}

// Clear: contacts get what each resource last sent back (also when it was
// sent during the overlay); nobody else hears anything; clearing again is
// still a result.
func ovTestClear(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	w.setAndWait(t)
	m0 := w.marks()
	mark := m0[w.bob]
	latest := ovPresence{"", "still at my desk", 10}
	w.desk.SendPresence(t, "", latest.show, latest.status, latest.priority)
	ovExpect(t, ovNext(t, w.bob, mark, ovDesk), ovPresence{"dnd", ovMeeting, 10}, "bob's view of an update during the overlay")
	// Its copies to alice's own resources come on other connections.
	ovNext(t, w.desk, m0[w.desk], ovDesk)
	ovNext(t, w.phone, m0[w.phone], ovDesk)
	ovNext(t, w.comp, m0[w.comp], ovDesk)
	m := w.marks()
	w.clear(t)
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovDesk), latest, "bob's view of desk after clear")
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovPhone), ovPhoneOriginal, "bob's view of phone after clear")
	if l := ovList(t, w.comp); len(l) != 0 {
		t.Errorf("list after clear: %v", l)
	}
	time.Sleep(ovSettle)
	ovQuiet(t, w.desk, m[w.desk], "alice's desk")
	ovQuiet(t, w.phone, m[w.phone], "alice's phone")
	ovQuiet(t, w.carol, m[w.carol], "carol")
	ovQuiet(t, w.comp, m[w.comp], "the component")
	w.clear(t)

	// And the overlay is really gone: a new update reaches bob as sent.
	mark = w.bob.Mark()
	w.desk.SendPresence(t, "", "", "after clear", 10)
	ovExpect(t, ovNext(t, w.bob, mark, ovDesk), ovPresence{"", "after clear", 10}, "bob's view of an update after clear")
}

// List shows the overlay as set; a second set replaces it.
func ovTestList(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	if l := ovList(t, w.comp); len(l) != 0 {
		t.Errorf("list before any set: %v", l)
	}
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	m0 := w.marks()
	w.set(t, "dnd", until, ovMeeting)
	// The set's re-broadcast reaches bob on his own stream, in no fixed
	// order with the IQ result: wait for it before marking again.
	ovExpect(t, ovNext(t, w.bob, m0[w.bob], ovDesk), ovPresence{"dnd", ovMeeting, 10}, "bob's view after the set")
	l := ovList(t, w.comp)
	if len(l) != 1 || l[0].XMLName.Local != "overlay" || l[0].Attr("jid") != ovAlice || l[0].Attr("show") != "dnd" ||
		l[0].Attr("until") != until || l[0].ChildText("status") != ovMeeting {
		t.Errorf("list after set (until %s): %v", until, l)
	}

	m := w.marks()
	w.set(t, "xa", "", "Out of office")
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovDesk), ovPresence{"xa", "Out of office", 10}, "bob's view after the replacing set")
	l = ovList(t, w.comp)
	if len(l) != 1 || l[0].Attr("show") != "xa" || l[0].Attr("until") != "" || l[0].ChildText("status") != "Out of office" {
		t.Errorf("list after the replacing set: %v", l)
	}

	// A status is optional: the contacts' status is then empty.
	m = w.marks()
	w.set(t, "away", "", "")
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovDesk), ovPresence{"away", "", 10}, "bob's view of an overlay without status")
}

// An until that has passed acts as a clear.
func ovTestUntilPast(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)

	m := w.marks()
	w.set(t, "dnd", past, ovMeeting) // nothing set yet: nothing happens
	if l := ovList(t, w.comp); len(l) != 0 {
		t.Errorf("list after a set with until in the past: %v", l)
	}
	time.Sleep(ovSettle)
	ovQuiet(t, w.bob, m[w.bob], "bob")

	w.setAndWait(t)
	m = w.marks()
	w.set(t, "dnd", past, ovMeeting)
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovDesk), ovDeskOriginal, "bob's view of desk")
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovPhone), ovPhoneOriginal, "bob's view of phone")
	if l := ovList(t, w.comp); len(l) != 0 {
		t.Errorf("list after the set with until in the past: %v", l)
	}
}

// At until the server clears the overlay and re-broadcasts.
func ovTestExpiry(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	until := time.Now().Add(2500 * time.Millisecond).UTC().Truncate(time.Second) // 1.5 to 2.5 s ahead
	m := w.marks()
	w.set(t, "dnd", until.Format(time.RFC3339), ovMeeting)
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovDesk), ovPresence{"dnd", ovMeeting, 10}, "bob's view before until")
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovPhone), ovPresence{"dnd", ovMeeting, 5}, "bob's view of phone before until")

	mark := w.bob.Mark()
	back := ovNext(t, w.bob, mark, ovDesk)
	ovExpect(t, back, ovDeskOriginal, "bob's view of desk after until")
	ovExpect(t, ovNext(t, w.bob, mark, ovPhone), ovPhoneOriginal, "bob's view of phone after until")
	if back.At.Before(until.Add(-100 * time.Millisecond)) {
		t.Errorf("the overlay ended at %s, before until %s", back.At.UTC().Format(time.RFC3339Nano), until)
	}
	if late := back.At.Sub(until); late > 3*time.Second {
		t.Errorf("the overlay ended %v after until", late)
	}
	if l := ovList(t, w.comp); len(l) != 0 {
		t.Errorf("list after until: %v", l)
	}
}

// A component that reconnects within the grace period keeps its overlays;
// one that stays away longer (closed or cut) loses them. Refused
// handshakes (a wrong secret, a second connection) are not the component
// leaving.
func ovTestGrace(t *testing.T, start ovStart) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
		// leave makes the component go away (or not) and returns the
		// component to list with afterwards, nil if it is gone.
		leave func(*testing.T, *ovWorld) *testenv.XMPPClient
		keeps bool
	}{
		{"quick reconnect keeps", 3 * time.Second, func(t *testing.T, w *ovWorld) *testenv.XMPPClient {
			w.comp.Close()
			time.Sleep(500 * time.Millisecond)
			return testenv.DialComponent(t, w.srv)
		}, true},
		{"wrong secret does not count", 3 * time.Second, func(t *testing.T, w *ovWorld) *testenv.XMPPClient {
			bad := *w.srv
			bad.ComponentSecret = "wrong"
			if c, err := testenv.TryDialComponent(&bad); err == nil {
				c.Close()
				t.Fatal("a wrong component secret was accepted")
			}
			return w.comp
		}, true},
		{"second connection does not count", 3 * time.Second, func(t *testing.T, w *ovWorld) *testenv.XMPPClient {
			if c, err := testenv.TryDialComponent(w.srv); err == nil {
				c.Close()
				t.Fatal("a second component connection was accepted")
			}
			return w.comp
		}, true},
		{"closed longer than grace withdraws", 2 * time.Second, func(t *testing.T, w *ovWorld) *testenv.XMPPClient {
			w.comp.Close()
			return nil
		}, false},
		{"cut longer than a fractional grace withdraws", 1500 * time.Millisecond, func(t *testing.T, w *ovWorld) *testenv.XMPPClient {
			w.comp.Kill()
			return nil
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := ovNewWorld(t, start, testenv.XMPPOptions{GracePeriod: tc.grace})
			w.setAndWait(t)
			mark := w.bob.Mark()
			gone := time.Now()
			comp := tc.leave(t, w)
			if tc.keeps {
				time.Sleep(tc.grace + time.Second - time.Since(gone))
				l := ovList(t, comp)
				if len(l) != 1 || l[0].Attr("show") != "dnd" {
					t.Errorf("list after the grace period: %v", l)
				}
				ovQuiet(t, w.bob, mark, "bob")
				return
			}
			back := ovNext(t, w.bob, mark, ovDesk)
			ovExpect(t, back, ovDeskOriginal, "bob's view of desk after the grace period")
			ovExpect(t, ovNext(t, w.bob, mark, ovPhone), ovPhoneOriginal, "bob's view of phone after the grace period")
			if d := back.At.Sub(gone); d < tc.grace-200*time.Millisecond || d > tc.grace+3*time.Second {
				t.Errorf("overlay withdrawn %v after the component left, want about %v", d, tc.grace)
			}
			comp = testenv.DialComponent(t, w.srv)
			if l := ovList(t, comp); len(l) != 0 {
				t.Errorf("list after the grace period: %v", l)
			}
			// The reconnected component still gets the real presence.
			ovExpect(t, ovNext(t, comp, 0, ovDesk), ovDeskOriginal, "the component's snapshot of desk")
		})
	}
}

// Only the configured component may send requests; a refused request has
// no effect.
func ovTestForbidden(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	w.setAndWait(t)
	for _, tc := range []struct {
		name    string
		from    *testenv.XMPPClient
		typ     string
		payload string
	}{
		{"bob sets", w.bob, "set", ovSetPayload(ovAlice, "xa", "", "hijacked")},
		{"alice sets her own", w.desk, "set", ovSetPayload(ovAlice, "xa", "", "self")},
		{"bob clears", w.bob, "set", `<clear xmlns="` + ovNS + `" jid="alice@example.test"/>`},
		{"carol lists", w.carol, "get", `<overlays xmlns="` + ovNS + `"/>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := w.marks()
			r := ovIQ(t, tc.from, tc.typ, tc.payload)
			if typ, cond, _ := ovError(r); typ != "auth" || cond != "forbidden" {
				t.Errorf("want auth/forbidden, got %s", r)
			}
			if _, ok := r.Child("overlays"); ok {
				t.Errorf("the refusal lists overlays: %s", r)
			}
			time.Sleep(ovSettle)
			ovQuiet(t, w.bob, m[w.bob], "bob")
			ovQuiet(t, w.carol, m[w.carol], "carol")
			l := ovList(t, w.comp)
			if len(l) != 1 || l[0].Attr("show") != "dnd" || l[0].ChildText("status") != ovMeeting {
				t.Errorf("the overlay changed: %v", l)
			}
		})
	}
}

// Malformed requests get the errors of the protocol and change nothing.
func ovTestErrors(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	long := strings.Repeat("é", 1025)
	for _, tc := range []struct {
		name, typ, payload string
		errType, cond      string
	}{
		{"show chat", "set", ovSetPayload(ovAlice, "chat", "", "x"), "modify", "bad-request"},
		{"show online", "set", ovSetPayload(ovAlice, "online", "", ""), "modify", "bad-request"},
		{"show missing", "set", `<overlay xmlns="` + ovNS + `" jid="alice@example.test"/>`, "modify", "bad-request"},
		{"jid missing", "set", `<overlay xmlns="` + ovNS + `" show="dnd"/>`, "modify", "bad-request"},
		{"jid full", "set", ovSetPayload(ovDesk, "dnd", "", ""), "modify", "bad-request"},
		{"jid on another host", "set", ovSetPayload("alice@other.test", "dnd", "", ""), "modify", "bad-request"},
		{"jid of the host", "set", ovSetPayload("example.test", "dnd", "", ""), "modify", "bad-request"},
		{"jid malformed", "set", ovSetPayload("a@b@example.test", "dnd", "", ""), "modify", "bad-request"},
		{"until not a date", "set", ovSetPayload(ovAlice, "dnd", "tomorrow", ""), "modify", "bad-request"},
		{"until month 13", "set", ovSetPayload(ovAlice, "dnd", "2030-13-01T00:00:00Z", ""), "modify", "bad-request"},
		{"until without zone", "set", ovSetPayload(ovAlice, "dnd", "2030-01-01T00:00:00", ""), "modify", "bad-request"},
		{"status over 1024 characters", "set", ovSetPayload(ovAlice, "dnd", "", long), "modify", "bad-request"},
		{"clear jid full", "set", `<clear xmlns="` + ovNS + `" jid="alice@example.test/desk"/>`, "modify", "bad-request"},
		{"unknown user", "set", ovSetPayload("nobody@example.test", "dnd", "", ""), "cancel", "item-not-found"},
		{"clear unknown user", "set", `<clear xmlns="` + ovNS + `" jid="nobody@example.test"/>`, "cancel", "item-not-found"},
		{"unknown child", "set", `<frobnicate xmlns="` + ovNS + `" jid="alice@example.test"/>`, "cancel", "feature-not-implemented"},
		{"overlays as set", "set", `<overlays xmlns="` + ovNS + `"/>`, "cancel", "feature-not-implemented"},
		{"overlay as get", "get", ovSetPayload(ovAlice, "dnd", "", ""), "cancel", "feature-not-implemented"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := w.marks()
			r := ovIQ(t, w.comp, tc.typ, tc.payload)
			typ, cond, text := ovError(r)
			if typ != tc.errType || cond != tc.cond {
				t.Errorf("want %s/%s, got %s", tc.errType, tc.cond, r)
			}
			if cond == "bad-request" && text == "" {
				t.Errorf("bad-request without a text: %s", r)
			}
			if l := ovList(t, w.comp); len(l) != 0 {
				t.Errorf("list after a refused request: %v", l)
			}
			time.Sleep(ovSettle / 2)
			ovQuiet(t, w.bob, m[w.bob], "bob")
		})
	}
	// Exactly 1024 characters is fine.
	w.set(t, "dnd", "", strings.Repeat("é", 1024))
}

// An overlay set while the person is offline applies when they log in.
func ovTestOffline(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	mark := w.bob.Mark()
	w.desk.Close()
	w.phone.Close()
	w.bob.WaitFor(t, mark, ovWait, "alice's phone going offline", func(s testenv.Stanza) bool {
		return s.IsPresence() && s.Attr("from") == ovPhone && s.Attr("type") == "unavailable"
	})
	w.set(t, "dnd", "", ovMeeting)
	if l := ovList(t, w.comp); len(l) != 1 {
		t.Errorf("list after setting for an offline person: %v", l)
	}
	mark = w.bob.Mark()
	desk := testenv.DialXMPP(t, w.srv, "alice", "desk")
	desk.SendPresence(t, "", "", "good morning", 3)
	ovExpect(t, ovNext(t, w.bob, mark, ovDesk), ovPresence{"dnd", ovMeeting, 3}, "bob's view of alice logging in")
}

// A block still wins: a blocked contact gets nothing, and on unblock gets
// the overlaid presence.
func ovTestBlock(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	mark := w.bob.Mark()
	if r := w.desk.IQ(t, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="bob@example.test"/></block></iq>`); r.Attr("type") != "result" {
		t.Fatalf("block: %s", r)
	}
	w.bob.WaitFor(t, mark, ovWait, "unavailable from alice on block", func(s testenv.Stanza) bool {
		return s.IsPresence() && testenv.Bare(s.Attr("from")) == ovAlice && s.Attr("type") == "unavailable"
	})
	time.Sleep(ovSettle)
	mark = w.bob.Mark()
	w.set(t, "dnd", "", ovMeeting)
	time.Sleep(ovSettle)
	ovQuiet(t, w.bob, mark, "blocked bob")

	if r := w.desk.IQ(t, `<iq type="set" id="b2"><unblock xmlns="urn:xmpp:blocking"><item jid="bob@example.test"/></unblock></iq>`); r.Attr("type") != "result" {
		t.Fatalf("unblock: %s", r)
	}
	ovExpect(t, ovNext(t, w.bob, mark, ovDesk), ovPresence{"dnd", ovMeeting, 10}, "bob's view after unblock")
}

// Overlays live in memory: a server restart drops them.
func ovTestRestart(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	w.setAndWait(t)
	w.srv.Stop(t)
	w.srv.Start(t)
	comp := testenv.DialComponent(t, w.srv)
	if l := ovList(t, comp); len(l) != 0 {
		t.Errorf("list after a restart: %v", l)
	}
	bob := testenv.DialXMPP(t, w.srv, "bob", "laptop")
	bob.SendPresence(t, "", "", "", 0)
	desk := testenv.DialXMPP(t, w.srv, "alice", "desk")
	desk.SendPresence(t, "", "", "after restart", 10)
	ovExpect(t, ovNext(t, bob, 0, ovDesk), ovPresence{"", "after restart", 10}, "bob's view after a restart")
}
