package xmppbot_test

// The ejabberd overlay module (configs/ejabberd/mod_presencegw.erl)
// against a real ejabberd 23.01, case by case as docs/overlay-protocol.md
// says. Raw stanzas only: the component is testenv's raw component, the
// users are real c2s sessions. overlay_prosody_test.go runs the same
// cases against Prosody.

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presencegw/presencegw/internal/testenv"
)

const (
	ejNS = "urn:presencegw:overlay:0"
	// ejWait bounds every wait for a stanza that must arrive.
	ejWait = 5 * time.Second
	// ejMeeting is the overlay text the cases set.
	ejMeeting = "In a meeting until 14:30"
)

var ejIQID atomic.Int64

// ejReq sends a raw overlay request from the component (from/to filled
// in, a fresh id) and returns the reply.
func ejReq(t *testing.T, comp *testenv.XMPPClient, typ, payload string) testenv.Stanza {
	t.Helper()
	return comp.IQ(t, fmt.Sprintf(`<iq type=%q id="ov%d" from="calendar.example.test" to="example.test">%s</iq>`,
		typ, ejIQID.Add(1), payload))
}

// ejSet sets an overlay for jid; extra is more attributes (until=...).
func ejSet(t *testing.T, comp *testenv.XMPPClient, jid, show, status, extra string) testenv.Stanza {
	t.Helper()
	st := ""
	if status != "" {
		st = "<status>" + status + "</status>"
	}
	return ejReq(t, comp, "set", fmt.Sprintf(`<overlay xmlns=%q jid=%q show=%q %s>%s</overlay>`, ejNS, jid, show, extra, st))
}

func ejClear(t *testing.T, comp *testenv.XMPPClient, jid string) testenv.Stanza {
	t.Helper()
	return ejReq(t, comp, "set", fmt.Sprintf(`<clear xmlns=%q jid=%q/>`, ejNS, jid))
}

// ejList returns the component's overlays as jid → the <overlay/> node.
func ejList(t *testing.T, comp *testenv.XMPPClient) map[string]testenv.Node {
	t.Helper()
	r := ejReq(t, comp, "get", fmt.Sprintf(`<overlays xmlns=%q/>`, ejNS))
	ejResult(t, r)
	q, ok := r.Child("overlays")
	if !ok || q.XMLName.Space != ejNS {
		t.Fatalf("list: no <overlays xmlns=%q/> in %s", ejNS, r)
	}
	m := map[string]testenv.Node{}
	for _, c := range q.Children {
		m[c.Attr("jid")] = c
	}
	return m
}

func ejResult(t *testing.T, r testenv.Stanza) {
	t.Helper()
	if r.Attr("type") != "result" {
		t.Fatalf("want a result, got %s", r)
	}
}

// ejError checks r is an error of type typ with the condition cond.
func ejError(t *testing.T, what string, r testenv.Stanza, typ, cond string) {
	t.Helper()
	e, ok := r.Child("error")
	if r.Attr("type") != "error" || !ok {
		t.Errorf("%s: want error %s/%s, got %s", what, typ, cond, r)
		return
	}
	if _, ok := e.Child(cond); !ok || e.Attr("type") != typ {
		t.Errorf("%s: want error %s/%s, got %s", what, typ, cond, r)
	}
}

// ejIsPresence matches available presence from the full JID from with
// the show and status given.
func ejIsPresence(from, show, status string) func(testenv.Stanza) bool {
	return func(s testenv.Stanza) bool {
		return s.IsPresence() && s.Attr("type") == "" && s.Attr("from") == from && s.Show() == show && s.Status() == status
	}
}

// ejSees waits until c receives that presence (since mark).
func ejSees(t *testing.T, c *testenv.XMPPClient, mark int, from, show, status string) testenv.Stanza {
	t.Helper()
	return c.WaitFor(t, mark, ejWait, fmt.Sprintf("presence from %s show=%q status=%q", from, show, status), ejIsPresence(from, show, status))
}

var ejSyncN atomic.Int64

// ejSync makes every sender send c a message and waits for them all.
// Each c2s session handles its mailbox in order, so whatever a sender's
// session was asked to send c before (the module's re-broadcasts
// included) has arrived once its message has.
func ejSync(t *testing.T, c *testenv.XMPPClient, senders ...*testenv.XMPPClient) {
	t.Helper()
	mark := c.Mark()
	for _, s := range senders {
		body := fmt.Sprintf("sync-%d", ejSyncN.Add(1))
		s.Send(t, fmt.Sprintf(`<message to=%q type="chat"><body>%s</body></message>`, c.JID, body))
		c.WaitFor(t, mark, ejWait, "sync message "+body, func(st testenv.Stanza) bool {
			return st.XMLName.Local == "message" && st.ChildText("body") == body
		})
	}
}

// ejPresences is the presences c received since mark that come from
// any of the JIDs with the prefix (a bare JID + "/" for all resources).
func ejPresences(c *testenv.XMPPClient, mark int, prefix string) []string {
	var out []string
	for _, s := range c.Received(mark) {
		if s.IsPresence() && strings.HasPrefix(s.Attr("from"), prefix) {
			out = append(out, s.String())
		}
	}
	return out
}

// ejNone fails if c got any presence from prefix since mark (call after
// ejSync).
func ejNone(t *testing.T, who string, c *testenv.XMPPClient, mark int, prefix string) {
	t.Helper()
	if got := ejPresences(c, mark, prefix); len(got) > 0 {
		t.Errorf("%s got presence from %s it must not:\n%s", who, prefix, strings.Join(got, "\n"))
	}
}

// ejLogin logs user/resource in and sends initial presence.
func ejLogin(t *testing.T, srv *testenv.XMPPServer, user, resource, show, status string, prio int) *testenv.XMPPClient {
	t.Helper()
	c := testenv.DialXMPP(t, srv, user, resource)
	c.SendPresence(t, "", show, status, prio)
	c.WaitFor(t, 0, ejWait, "own presence reflected", ejIsPresence(c.JID, show, status))
	return c
}

// ejPeople is alice (desk prio 5 "at my desk", phone prio 1) with bob
// (pc, tablet) as a contact (both), carol as a non-contact and the raw
// component.
type ejPeople struct {
	srv                *testenv.XMPPServer
	desk, phone        *testenv.XMPPClient
	pc, tablet, carol  *testenv.XMPPClient
	comp               *testenv.XMPPClient
	alice, bob, carolB string // bare JIDs
}

func ejSetup(t *testing.T, opts testenv.XMPPOptions) *ejPeople {
	t.Helper()
	opts.Users = append(opts.Users, "alice", "bob", "carol")
	srv := testenv.StartEjabberd(t, opts)
	p := &ejPeople{srv: srv, alice: "alice@example.test", bob: "bob@example.test", carolB: "carol@example.test"}
	p.comp = testenv.DialComponent(t, srv)
	p.desk = ejLogin(t, srv, "alice", "desk", "", "at my desk", 5)
	p.pc = ejLogin(t, srv, "bob", "pc", "", "", 0)
	testenv.MakeContacts(t, p.desk, p.pc)
	p.phone = ejLogin(t, srv, "alice", "phone", "", "", 1)
	p.tablet = ejLogin(t, srv, "bob", "tablet", "", "", 0)
	p.carol = ejLogin(t, srv, "carol", "laptop", "", "", 0)
	// Everyone has everything before the cases start.
	ejSees(t, p.pc, 0, p.phone.JID, "", "")
	ejSees(t, p.tablet, 0, p.desk.JID, "", "at my desk")
	ejSees(t, p.tablet, 0, p.phone.JID, "", "")
	// alice's own resources see each other too (late on a loaded
	// machine, it would land after a case's mark).
	ejSees(t, p.desk, 0, p.phone.JID, "", "")
	return p
}

func TestOverlayEjabberdSetUpdateClear(t *testing.T) {
	t.Parallel()
	p := ejSetup(t, testenv.XMPPOptions{})

	// Discovery.
	r := ejReq(t, p.comp, "get", `<query xmlns="http://jabber.org/protocol/disco#info"/>`)
	if !strings.Contains(r.String(), ejNS) {
		t.Errorf("disco#info lacks %s: %s", ejNS, r)
	}

	// The component's XEP-0356 feed: alice's own presence, as sent.
	compMark := p.comp.Mark()
	p.phone.SendPresence(t, "", "", "on the phone", 1)
	ejSees(t, p.comp, compMark, p.phone.JID, "", "on the phone")
	for _, c := range []*testenv.XMPPClient{p.pc, p.tablet, p.desk, p.phone} {
		ejSees(t, c, 0, p.phone.JID, "", "on the phone")
	}

	// Set: bob sees dnd + text on both of alice's resources, priorities
	// kept; alice's own other resource and carol see nothing; the
	// component gets nothing new.
	marks := map[*testenv.XMPPClient]int{p.pc: p.pc.Mark(), p.tablet: p.tablet.Mark(), p.desk: p.desk.Mark(),
		p.phone: p.phone.Mark(), p.carol: p.carol.Mark(), p.comp: p.comp.Mark()}
	ejResult(t, ejSet(t, p.comp, p.alice, "dnd", ejMeeting, ""))
	for _, c := range []*testenv.XMPPClient{p.pc, p.tablet} {
		d := ejSees(t, c, marks[c], p.desk.JID, "dnd", ejMeeting)
		if d.Priority() != 5 {
			t.Errorf("%s: desk's overlaid presence has priority %d, want 5: %s", c.JID, d.Priority(), d)
		}
		ph := ejSees(t, c, marks[c], p.phone.JID, "dnd", ejMeeting)
		if ph.Priority() != 1 {
			t.Errorf("%s: phone's overlaid presence has priority %d, want 1: %s", c.JID, ph.Priority(), ph)
		}
	}
	for _, c := range []*testenv.XMPPClient{p.phone, p.desk, p.carol} {
		ejSync(t, c, p.desk, p.phone)
	}
	ejNone(t, "alice/phone", p.phone, marks[p.phone], p.alice+"/")
	ejNone(t, "alice/desk", p.desk, marks[p.desk], p.alice+"/")
	ejNone(t, "carol", p.carol, marks[p.carol], p.alice+"/")
	ejSync(t, p.pc, p.desk, p.phone)
	if got := ejPresences(p.pc, marks[p.pc], p.alice+"/"); len(got) != 2 {
		t.Errorf("bob/pc got %d presences from alice on set, want one per resource:\n%s", len(got), strings.Join(got, "\n"))
	}
	ejSync(t, p.comp, p.desk, p.phone)
	ejNone(t, "the component", p.comp, marks[p.comp], p.alice+"/")

	// Hand-set states pass unchanged, to contacts and to the component.
	for _, show := range []string{"away", "xa", "dnd"} {
		m, cm := p.pc.Mark(), p.comp.Mark()
		p.phone.SendPresence(t, "", show, "hand-set "+show, 1)
		ejSees(t, p.pc, m, p.phone.JID, show, "hand-set "+show)
		ejSees(t, p.comp, cm, p.phone.JID, show, "hand-set "+show)
	}

	// A later update during the overlay is overlaid (chat too); alice's
	// other resource and the component get it as sent.
	for _, show := range []string{"", "chat"} {
		m, dm, cm := p.pc.Mark(), p.desk.Mark(), p.comp.Mark()
		p.phone.SendPresence(t, "", show, "back "+show, 1)
		ejSees(t, p.pc, m, p.phone.JID, "dnd", ejMeeting)
		ejSees(t, p.desk, dm, p.phone.JID, show, "back "+show)
		ejSees(t, p.comp, cm, p.phone.JID, show, "back "+show)
	}

	// A contact coming online mid-overlay (probe replies) sees it.
	late := ejLogin(t, p.srv, "bob", "late", "", "", 0)
	ejSees(t, late, 0, p.desk.JID, "dnd", ejMeeting)
	ejSees(t, late, 0, p.phone.JID, "dnd", ejMeeting)

	// So does a resource of alice's logging in, at its own priority; her
	// other resources get its presence as sent.
	dm := p.desk.Mark()
	m := p.pc.Mark()
	laptop := ejLogin(t, p.srv, "alice", "laptop", "", "laptop here", 3)
	l := ejSees(t, p.pc, m, laptop.JID, "dnd", ejMeeting)
	if l.Priority() != 3 {
		t.Errorf("laptop's overlaid presence has priority %d, want 3: %s", l.Priority(), l)
	}
	ejSees(t, p.desk, dm, laptop.JID, "", "laptop here")

	// Directed presence to a non-contact is not overlaid.
	cm := p.carol.Mark()
	p.phone.SendPresence(t, p.carolB, "", "just for carol", 1)
	ejSees(t, p.carol, cm, p.phone.JID, "", "just for carol")

	// Directed presence to a contact is (rule 2 holds).
	m = p.pc.Mark()
	p.phone.SendPresence(t, p.bob, "", "just for bob", 1)
	ejSees(t, p.pc, m, p.phone.JID, "dnd", ejMeeting)

	// List.
	list := ejList(t, p.comp)
	if o, ok := list[p.alice]; !ok || len(list) != 1 || o.Attr("show") != "dnd" || o.ChildText("status") != ejMeeting || o.Attr("until") != "" {
		t.Errorf("list: %v", list)
	}

	// A new set replaces the overlay and re-broadcasts.
	m = p.pc.Mark()
	ejResult(t, ejSet(t, p.comp, p.alice, "xa", "", `until="2099-01-02T03:04:05Z"`))
	ejSees(t, p.pc, m, p.desk.JID, "xa", "")
	list = ejList(t, p.comp)
	if o := list[p.alice]; o.Attr("show") != "xa" || o.Attr("until") != "2099-01-02T03:04:05Z" {
		t.Errorf("list after replace: %v", list)
	}

	// Every resource's re-broadcast of the replacement has reached bob
	// (the sessions send it in their own time) before the clear is counted.
	ejSync(t, p.pc, p.desk, p.phone, laptop)

	// Clear: bob gets exactly what each resource last sent back, once
	// per resource; alice's own resources get nothing.
	m, dm = p.pc.Mark(), p.desk.Mark()
	ejResult(t, ejClear(t, p.comp, p.alice))
	ejSees(t, p.pc, m, p.desk.JID, "", "at my desk")
	// Directed presence does not change what a session last broadcast.
	ejSees(t, p.pc, m, p.phone.JID, "chat", "back chat")
	ejSees(t, p.pc, m, laptop.JID, "", "laptop here")
	ejSync(t, p.pc, p.desk, p.phone, laptop)
	if got := ejPresences(p.pc, m, p.alice+"/"); len(got) != 3 {
		t.Errorf("bob/pc got %d presences from alice on clear, want 3:\n%s", len(got), strings.Join(got, "\n"))
	}
	ejSync(t, p.desk, p.desk, p.phone, laptop)
	ejNone(t, "alice/desk", p.desk, dm, p.alice+"/")
	if list := ejList(t, p.comp); len(list) != 0 {
		t.Errorf("list after clear: %v", list)
	}
	// Clear is idempotent.
	ejResult(t, ejClear(t, p.comp, p.alice))

	// After the clear, updates pass as sent.
	m = p.pc.Mark()
	p.desk.SendPresence(t, "", "", "desk again", 5)
	ejSees(t, p.pc, m, p.desk.JID, "", "desk again")
}

func TestOverlayEjabberdOfflineUser(t *testing.T) {
	t.Parallel()
	srv := testenv.StartEjabberd(t, testenv.XMPPOptions{Users: []string{"dave", "bob"}})
	comp := testenv.DialComponent(t, srv)
	dave := ejLogin(t, srv, "dave", "pc", "", "", 0)
	bob := ejLogin(t, srv, "bob", "pc", "", "", 0)
	testenv.MakeContacts(t, dave, bob)
	dave.Close()
	bob.WaitFor(t, 0, ejWait, "dave unavailable", func(s testenv.Stanza) bool {
		return s.IsPresence() && s.Attr("type") == "unavailable" && s.Attr("from") == dave.JID
	})

	ejResult(t, ejSet(t, comp, "dave@example.test", "away", "Out of office", ""))
	m := bob.Mark()
	again := ejLogin(t, srv, "dave", "pc", "", "", 0)
	ejSees(t, bob, m, again.JID, "away", "Out of office")
}

func TestOverlayEjabberdUntil(t *testing.T) {
	t.Parallel()
	p := ejSetup(t, testenv.XMPPOptions{})

	// An until already passed acts as a clear.
	m := p.pc.Mark()
	ejResult(t, ejSet(t, p.comp, p.alice, "dnd", ejMeeting, ""))
	ejSees(t, p.pc, m, p.desk.JID, "dnd", ejMeeting)
	m = p.pc.Mark()
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	ejResult(t, ejSet(t, p.comp, p.alice, "dnd", ejMeeting, `until="`+past+`"`))
	ejSees(t, p.pc, m, p.desk.JID, "", "at my desk")
	ejSees(t, p.pc, m, p.phone.JID, "", "")
	if list := ejList(t, p.comp); len(list) != 0 {
		t.Errorf("list after an until in the past: %v", list)
	}

	// Expiry: the server clears it at until by itself.
	m = p.pc.Mark()
	until := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second) // 2-3 s ahead, whole seconds
	ejResult(t, ejSet(t, p.comp, p.alice, "dnd", ejMeeting, `until="`+until.UTC().Format(time.RFC3339)+`"`))
	ejSees(t, p.pc, m, p.desk.JID, "dnd", ejMeeting)
	if o := ejList(t, p.comp)[p.alice]; o.Attr("until") != until.UTC().Format(time.RFC3339) {
		t.Errorf("list: until %q, want %s", o.Attr("until"), until.UTC().Format(time.RFC3339))
	}
	m = p.pc.Mark()
	back := p.pc.WaitFor(t, m, time.Until(until)+ejWait, "desk's own presence after expiry", ejIsPresence(p.desk.JID, "", "at my desk"))
	ejSees(t, p.pc, m, p.phone.JID, "", "")
	if back.At.Before(until) {
		t.Errorf("overlay withdrawn at %v, before until %v", back.At, until)
	}
	if late := back.At.Sub(until); late > 3*time.Second { // slack for a loaded machine
		t.Errorf("overlay withdrawn %v after until", late)
	}
	t.Logf("withdrawn %v after until", back.At.Sub(until))
	if list := ejList(t, p.comp); len(list) != 0 {
		t.Errorf("list after expiry: %v", list)
	}
	// Fractional seconds and offsets are XEP-0082 date-times too.
	ejResult(t, ejSet(t, p.comp, p.alice, "dnd", "", `until="2099-06-01T12:00:00.250+02:00"`))
	if o := ejList(t, p.comp)[p.alice]; o.Attr("until") != "2099-06-01T10:00:00.250Z" {
		t.Errorf("list: until %q, want 2099-06-01T10:00:00.250Z", o.Attr("until"))
	}
}

func TestOverlayEjabberdComponentGrace(t *testing.T) {
	t.Parallel()
	grace := 2 * time.Second
	p := ejSetup(t, testenv.XMPPOptions{GracePeriod: grace})

	m := p.pc.Mark()
	ejResult(t, ejSet(t, p.comp, p.alice, "dnd", ejMeeting, ""))
	ejSees(t, p.pc, m, p.desk.JID, "dnd", ejMeeting)
	ejSees(t, p.pc, m, p.phone.JID, "dnd", ejMeeting)

	// Away and back within the grace period: the overlay stays.
	m = p.pc.Mark()
	p.comp.Close()
	time.Sleep(grace / 4)
	comp := testenv.DialComponent(t, p.srv)
	time.Sleep(grace + time.Second)
	ejSync(t, p.pc, p.desk, p.phone)
	ejNone(t, "bob/pc", p.pc, m, p.alice+"/")
	if list := ejList(t, comp); len(list) != 1 {
		t.Errorf("list after a reconnect within the grace period: %v", list)
	}
	late := ejLogin(t, p.srv, "bob", "late", "", "", 0)
	ejSees(t, late, 0, p.desk.JID, "dnd", ejMeeting)

	// Away for longer (connection cut, no stream close): withdrawn.
	m = p.pc.Mark()
	gone := time.Now()
	comp.Kill()
	back := ejSees(t, p.pc, m, p.desk.JID, "", "at my desk")
	ejSees(t, p.pc, m, p.phone.JID, "", "")
	if d := back.At.Sub(gone); d < grace || d > grace+3*time.Second {
		t.Errorf("overlay withdrawn %v after the component left, want about the grace period %v", d, grace)
	}
	t.Logf("withdrawn %v after the component left", back.At.Sub(gone))
	comp = testenv.DialComponent(t, p.srv)
	if list := ejList(t, comp); len(list) != 0 {
		t.Errorf("list after the grace period: %v", list)
	}
}

func TestOverlayEjabberdErrors(t *testing.T) {
	t.Parallel()
	p := ejSetup(t, testenv.XMPPOptions{})
	mPC, mDesk := p.pc.Mark(), p.desk.Mark()

	// A c2s user cannot set, clear or list: forbidden, and nothing
	// happens.
	for _, payload := range []string{
		fmt.Sprintf(`<overlay xmlns=%q jid=%q show="dnd"><status>hijack</status></overlay>`, ejNS, p.alice),
		fmt.Sprintf(`<clear xmlns=%q jid=%q/>`, ejNS, p.alice),
	} {
		r := p.carol.IQ(t, fmt.Sprintf(`<iq type="set" id="c%d" to="example.test">%s</iq>`, ejIQID.Add(1), payload))
		ejError(t, "carol: "+payload, r, "auth", "forbidden")
	}
	r := p.carol.IQ(t, fmt.Sprintf(`<iq type="get" id="c%d" to="example.test"><overlays xmlns=%q/></iq>`, ejIQID.Add(1), ejNS))
	ejError(t, "carol: list", r, "auth", "forbidden")
	// Nor can the component from a full JID (not its bare domain).
	r = p.comp.IQ(t, fmt.Sprintf(`<iq type="set" id="r%d" from="calendar.example.test/x" to="example.test"><overlay xmlns=%q jid=%q show="dnd"/></iq>`,
		ejIQID.Add(1), ejNS, p.alice))
	ejError(t, "component with a resource", r, "auth", "forbidden")
	ejSync(t, p.pc, p.desk, p.phone)
	ejNone(t, "bob/pc", p.pc, mPC, p.alice+"/")
	ejSync(t, p.desk, p.desk, p.phone)
	ejNone(t, "alice/desk", p.desk, mDesk, p.alice+"/")
	if list := ejList(t, p.comp); len(list) != 0 {
		t.Errorf("list after refused requests: %v", list)
	}

	long := strings.Repeat("é", 1025)
	for _, c := range []struct {
		what, typ, payload, errType, cond string
	}{
		{"bad show", "set", `<overlay xmlns="%s" jid="alice@example.test" show="busy"/>`, "modify", "bad-request"},
		{"show chat", "set", `<overlay xmlns="%s" jid="alice@example.test" show="chat"/>`, "modify", "bad-request"},
		{"no show", "set", `<overlay xmlns="%s" jid="alice@example.test"/>`, "modify", "bad-request"},
		{"no jid", "set", `<overlay xmlns="%s" show="dnd"/>`, "modify", "bad-request"},
		{"full jid", "set", `<overlay xmlns="%s" jid="alice@example.test/desk" show="dnd"/>`, "modify", "bad-request"},
		{"other host", "set", `<overlay xmlns="%s" jid="alice@other.test" show="dnd"/>`, "modify", "bad-request"},
		{"domain jid", "set", `<overlay xmlns="%s" jid="example.test" show="dnd"/>`, "modify", "bad-request"},
		{"malformed jid", "set", `<overlay xmlns="%s" jid="a@b@c" show="dnd"/>`, "modify", "bad-request"},
		{"bad until", "set", `<overlay xmlns="%s" jid="alice@example.test" show="dnd" until="tomorrow"/>`, "modify", "bad-request"},
		{"until without zone", "set", `<overlay xmlns="%s" jid="alice@example.test" show="dnd" until="2099-01-01T10:00:00"/>`, "modify", "bad-request"},
		{"status too long", "set", `<overlay xmlns="%s" jid="alice@example.test" show="dnd"><status>` + long + `</status></overlay>`, "modify", "bad-request"},
		{"unknown user", "set", `<overlay xmlns="%s" jid="nobody@example.test" show="dnd"/>`, "cancel", "item-not-found"},
		{"clear unknown user", "set", `<clear xmlns="%s" jid="nobody@example.test"/>`, "cancel", "item-not-found"},
		{"clear bad jid", "set", `<clear xmlns="%s" jid="alice@other.test"/>`, "modify", "bad-request"},
		{"get overlay", "get", `<overlay xmlns="%s" jid="alice@example.test" show="dnd"/>`, "cancel", "feature-not-implemented"},
		{"get clear", "get", `<clear xmlns="%s" jid="alice@example.test"/>`, "cancel", "feature-not-implemented"},
		{"set overlays", "set", `<overlays xmlns="%s"/>`, "cancel", "feature-not-implemented"},
		{"until month 13", "set", `<overlay xmlns="%s" jid="alice@example.test" show="dnd" until="2030-13-01T00:00:00Z"/>`, "modify", "bad-request"},
		{"unknown child", "set", `<frob xmlns="%s"/>`, "cancel", "feature-not-implemented"},
	} {
		ejError(t, c.what, ejReq(t, p.comp, c.typ, fmt.Sprintf(c.payload, ejNS)), c.errType, c.cond)
	}
	ejSync(t, p.pc, p.desk, p.phone)
	ejNone(t, "bob/pc", p.pc, mPC, p.alice+"/")
	if list := ejList(t, p.comp); len(list) != 0 {
		t.Errorf("list after bad requests: %v", list)
	}

	// 1024 characters are fine.
	ok := strings.Repeat("é", 1024)
	m := p.pc.Mark()
	ejResult(t, ejSet(t, p.comp, p.alice, "dnd", ok, ""))
	ejSees(t, p.pc, m, p.desk.JID, "dnd", ok)
}

func TestOverlayEjabberdRestartDropsOverlays(t *testing.T) {
	t.Parallel()
	p := ejSetup(t, testenv.XMPPOptions{})
	m := p.pc.Mark()
	ejResult(t, ejSet(t, p.comp, p.alice, "dnd", ejMeeting, ""))
	ejSees(t, p.pc, m, p.desk.JID, "dnd", ejMeeting)

	p.srv.Stop(t)
	p.srv.Start(t)
	comp := testenv.DialComponent(t, p.srv)
	if list := ejList(t, comp); len(list) != 0 {
		t.Errorf("list after a restart: %v", list)
	}
	pc := ejLogin(t, p.srv, "bob", "pc", "", "", 0)
	desk := ejLogin(t, p.srv, "alice", "desk", "", "at my desk", 5)
	ejSees(t, pc, 0, desk.JID, "", "at my desk")
	ejSync(t, pc, desk)
	for _, s := range pc.Received(0) {
		if s.IsPresence() && s.Show() == "dnd" {
			t.Errorf("bob sees dnd after the restart: %s", s)
		}
	}
}

// A block (XEP-0191) wins: the blocked contact gets nothing on set, and
// the person's sessions get no error for the skipped contact (the module
// re-broadcasts with the session's own privacy check, as ejabberd's
// broadcast does).
func TestOverlayEjabberdBlock(t *testing.T) {
	t.Parallel()
	p := ejSetup(t, testenv.XMPPOptions{})
	if r := p.desk.IQ(t, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="bob@example.test"/></block></iq>`); r.Attr("type") != "result" {
		t.Fatalf("block: %s", r)
	}
	// ejabberd 23.01 sends bob nothing on the block itself.
	time.Sleep(500 * time.Millisecond)
	m, dm, phm := p.pc.Mark(), p.desk.Mark(), p.phone.Mark()
	ejResult(t, ejSet(t, p.comp, p.alice, "dnd", ejMeeting, ""))
	ejSync(t, p.desk, p.desk, p.phone)
	ejSync(t, p.phone, p.desk, p.phone)
	for _, c := range []struct {
		who  string
		c    *testenv.XMPPClient
		mark int
	}{{"alice/desk", p.desk, dm}, {"alice/phone", p.phone, phm}} {
		for _, s := range c.c.Received(c.mark) {
			if s.IsPresence() {
				t.Errorf("%s got a presence on set: %s", c.who, s)
			}
		}
	}
	// Messages from a blocking user are blocked too, so wait instead of
	// syncing bob.
	time.Sleep(time.Second)
	for _, s := range p.pc.Received(m) {
		if s.IsPresence() && testenv.Bare(s.Attr("from")) == p.alice && s.Attr("type") != "unavailable" {
			t.Errorf("blocked bob got alice's presence: %s", s)
		}
	}

	m = p.pc.Mark()
	if r := p.desk.IQ(t, `<iq type="set" id="b2"><unblock xmlns="urn:xmpp:blocking"><item jid="bob@example.test"/></unblock></iq>`); r.Attr("type") != "result" {
		t.Fatalf("unblock: %s", r)
	}
	// ejabberd 23.01 sends nothing on unblock either (Prosody does);
	// alice's next presence reaches bob, overlaid.
	p.phone.SendPresence(t, "", "", "after the unblock", 1)
	ejSees(t, p.pc, m, p.phone.JID, "dnd", ejMeeting)
}
