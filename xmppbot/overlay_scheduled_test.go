package xmppbot_test

// Scheduled overlays (docs/overlay-protocol.md, "Scheduled overlays")
// against a real server: the same cases for Prosody and ejabberd.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/presencegw/presencegw/internal/testenv"
)

const ovSinceFeature = ovNS + "#since"

// ovSchedCases are the scheduled-overlay cases.
var ovSchedCases = []struct {
	name string
	run  func(*testing.T, ovStart)
}{
	{"PromotedAtSince", ovTestSchedPromote},
	{"CancelAndPlainClear", ovTestSchedCancel},
	{"BackToBackNoFlash", ovTestSchedBackToBack},
	{"PastSinceIsASet", ovTestSchedPast},
	{"BadRequests", ovTestSchedErrors},
	{"GraceWithdrawsPending", ovTestSchedGrace},
	{"OldModuleAppliesAtOnce", ovTestSchedOldModule},
}

func TestProsodyOverlayScheduled(t *testing.T) {
	for _, c := range ovSchedCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, testenv.StartProsody)
		})
	}
}

func TestEjabberdOverlayScheduled(t *testing.T) {
	for _, c := range ovSchedCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, testenv.StartEjabberd)
		})
	}
}

// req is ovIQ for any server: ejabberd wants a component's stanzas
// addressed from its JID.
func (w *ovWorld) req(t *testing.T, c *testenv.XMPPClient, typ, payload string) testenv.Stanza {
	t.Helper()
	from := ""
	if !strings.Contains(c.JID, "@") {
		from = fmt.Sprintf(` from=%q`, w.srv.ComponentJID)
	}
	return c.IQ(t, fmt.Sprintf(`<iq type=%q id="ovs%d"%s to="example.test">%s</iq>`, typ, ovIDs.Add(1), from, payload))
}

func (w *ovWorld) schedSet(t *testing.T, show, until, status string) {
	t.Helper()
	if r := w.req(t, w.comp, "set", ovSetPayload(ovAlice, show, until, status)); r.Attr("type") != "result" {
		t.Fatalf("set %s %q until %q: %s", show, status, until, r)
	}
}

func (w *ovWorld) schedClear(t *testing.T) {
	t.Helper()
	if r := w.req(t, w.comp, "set", `<clear xmlns="`+ovNS+`" jid="alice@example.test"/>`); r.Attr("type") != "result" {
		t.Fatalf("clear: %s", r)
	}
}

func (w *ovWorld) schedSetAndWait(t *testing.T) {
	t.Helper()
	mark := w.bob.Mark()
	w.schedSet(t, "dnd", "", ovMeeting)
	ovExpect(t, ovNext(t, w.bob, mark, ovDesk), ovPresence{"dnd", ovMeeting, 10}, "bob's view of desk after set")
	ovExpect(t, ovNext(t, w.bob, mark, ovPhone), ovPresence{"dnd", ovMeeting, 5}, "bob's view of phone after set")
}

// ovStamp is t as XEP-0082 with milliseconds, as the gateway sends since.
func ovStamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// schedule sends a scheduled overlay for alice and fails unless accepted.
func (w *ovWorld) schedule(t *testing.T, show, status string, since, until time.Time) {
	t.Helper()
	u := ""
	if !until.IsZero() {
		u = fmt.Sprintf(` until=%q`, until.UTC().Format(time.RFC3339))
	}
	r := w.req(t, w.comp, "set", fmt.Sprintf(`<overlay xmlns=%q jid=%q show=%q since=%q%s><status>%s</status></overlay>`,
		ovNS, ovAlice, show, ovStamp(since), u, status))
	if r.Attr("type") != "result" {
		t.Fatalf("scheduled set %s since %s: %s", show, ovStamp(since), r)
	}
}

func (w *ovWorld) features(t *testing.T, comp *testenv.XMPPClient) map[string]bool {
	t.Helper()
	r := w.req(t, comp, "get", `<query xmlns="http://jabber.org/protocol/disco#info"/>`)
	q, ok := r.Child("query")
	if r.Attr("type") != "result" || !ok {
		t.Fatalf("disco#info: %s", r)
	}
	f := map[string]bool{}
	for _, c := range q.Children {
		if c.XMLName.Local == "feature" {
			f[c.Attr("var")] = true
		}
	}
	return f
}

// ovPending is the list's scheduled entries (those with since), by JID.
func (w *ovWorld) pending(t *testing.T, comp *testenv.XMPPClient) (active, pending map[string]testenv.Node) {
	t.Helper()
	active, pending = map[string]testenv.Node{}, map[string]testenv.Node{}
	r := w.req(t, comp, "get", `<overlays xmlns="`+ovNS+`"/>`)
	q, ok := r.Child("overlays")
	if r.Attr("type") != "result" || !ok {
		t.Fatalf("list: %s", r)
	}
	for _, n := range q.Children {
		if n.Attr("since") != "" {
			pending[n.Attr("jid")] = n
		} else {
			active[n.Attr("jid")] = n
		}
	}
	return active, pending
}

// A scheduled overlay changes nothing until since, is listed with since
// meanwhile, and at since acts as a set: bob sees it on both resources
// within a second, and its until ends it.
func ovTestSchedPromote(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	if f := w.features(t, w.comp); !f[ovNS] || !f[ovSinceFeature] {
		t.Fatalf("disco#info lacks %s: %v", ovSinceFeature, f)
	}
	since := time.Now().Add(2 * time.Second).Truncate(time.Millisecond)
	until := since.Add(3 * time.Second).Truncate(time.Second).Add(time.Second)
	m := w.marks()
	w.schedule(t, "dnd", ovMeeting, since, until)
	active, pending := w.pending(t, w.comp)
	if p, ok := pending[ovAlice]; len(active) != 0 || !ok || p.Attr("show") != "dnd" || p.ChildText("status") != ovMeeting ||
		p.Attr("until") != until.UTC().Format(time.RFC3339) || p.Attr("since") != ovStamp(since) {
		t.Errorf("list before since (since %s): active %v, pending %v", ovStamp(since), active, pending)
	}
	desk := ovNext(t, w.bob, m[w.bob], ovDesk)
	ovExpect(t, desk, ovPresence{"dnd", ovMeeting, 10}, "bob's view of desk at since")
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovPhone), ovPresence{"dnd", ovMeeting, 5}, "bob's view of phone at since")
	if d := desk.At.Sub(since); d < -50*time.Millisecond || d > time.Second {
		t.Errorf("bob saw the scheduled overlay %v after since, want within 1 s", d)
	}
	ovQuiet(t, w.desk, m[w.desk], "alice's own desk") // her own resources see her real presence
	active, pending = w.pending(t, w.comp)
	if a, ok := active[ovAlice]; len(pending) != 0 || !ok || a.Attr("show") != "dnd" || a.Attr("since") != "" {
		t.Errorf("list after since: active %v, pending %v", active, pending)
	}
	// until still ends it.
	mark := w.bob.Mark()
	back := ovNext(t, w.bob, mark, ovDesk)
	ovExpect(t, back, ovDeskOriginal, "bob's view of desk after until")
	if back.At.Before(until.Add(-100 * time.Millisecond)) {
		t.Errorf("the promoted overlay ended at %v, before until %v", back.At, until)
	}
}

// clear scheduled="true" cancels the pending overlay only; a plain clear
// clears the current one only.
func ovTestSchedCancel(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	w.schedSetAndWait(t)
	since := time.Now().Add(1500 * time.Millisecond)
	w.schedule(t, "xa", "Out of office", since, time.Time{})
	m := w.marks()
	w.schedClear(t)
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovDesk), ovDeskOriginal, "bob's view after a plain clear")
	if active, pending := w.pending(t, w.comp); len(active) != 0 || len(pending) != 1 {
		t.Errorf("after a plain clear: active %v, pending %v", active, pending)
	}
	r := w.req(t, w.comp, "set", `<clear xmlns="`+ovNS+`" jid="alice@example.test" scheduled="true"/>`)
	if r.Attr("type") != "result" {
		t.Fatalf("cancel: %s", r)
	}
	if active, pending := w.pending(t, w.comp); len(active) != 0 || len(pending) != 0 {
		t.Errorf("after the cancel: active %v, pending %v", active, pending)
	}
	m = w.marks()
	time.Sleep(time.Until(since) + time.Second)
	ovQuiet(t, w.bob, m[w.bob], "bob after the cancelled since")
	// Idempotent.
	if r := w.req(t, w.comp, "set", `<clear xmlns="`+ovNS+`" jid="alice@example.test" scheduled="true"/>`); r.Attr("type") != "result" {
		t.Errorf("a second cancel: %s", r)
	}
}

// A scheduled overlay that starts when the current one ends replaces it
// without the person's own presence in between.
func ovTestSchedBackToBack(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	t0 := time.Now().Add(2500 * time.Millisecond).Truncate(time.Second)
	m := w.marks()
	w.schedSet(t, "dnd", t0.UTC().Format(time.RFC3339), ovMeeting)
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovDesk), ovPresence{"dnd", ovMeeting, 10}, "bob's view of the first meeting")
	w.schedule(t, "dnd", "In a meeting until 15:00", t0, t0.Add(time.Hour))
	mark := w.bob.Mark()
	next := ovNext(t, w.bob, mark, ovDesk)
	ovExpect(t, next, ovPresence{"dnd", "In a meeting until 15:00", 10}, "bob's next view of desk at the shared boundary")
	if d := next.At.Sub(t0); d < -1100*time.Millisecond || d > time.Second {
		t.Errorf("the second meeting showed %v after its since", d)
	}
}

// A since already passed is a plain set, now.
func ovTestSchedPast(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	m := w.marks()
	w.schedule(t, "dnd", ovMeeting, time.Now().Add(-time.Minute), time.Time{})
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovDesk), ovPresence{"dnd", ovMeeting, 10}, "bob's view after a set with a past since")
	if active, pending := w.pending(t, w.comp); len(active) != 1 || len(pending) != 0 {
		t.Errorf("list: active %v, pending %v", active, pending)
	}
}

func ovTestSchedErrors(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{})
	soon := time.Now().Add(time.Hour)
	for _, tc := range []struct{ name, payload, typ, cond string }{
		{"since not a date-time", fmt.Sprintf(`<overlay xmlns=%q jid=%q show="dnd" since="tomorrow"/>`, ovNS, ovAlice), "modify", "bad-request"},
		{"until before since", fmt.Sprintf(`<overlay xmlns=%q jid=%q show="dnd" since=%q until=%q/>`, ovNS, ovAlice,
			ovStamp(soon), soon.Add(-time.Minute).UTC().Format(time.RFC3339)), "modify", "bad-request"},
		{"unknown person", fmt.Sprintf(`<overlay xmlns=%q jid="nobody@example.test" show="dnd" since=%q/>`, ovNS, ovStamp(soon)), "cancel", "item-not-found"},
		{"scheduled not a boolean", fmt.Sprintf(`<clear xmlns=%q jid=%q scheduled="maybe"/>`, ovNS, ovAlice), "modify", "bad-request"},
	} {
		r := w.req(t, w.comp, "set", tc.payload)
		if typ, cond, _ := ovError(r); typ != tc.typ || cond != tc.cond {
			t.Errorf("%s: got %s/%s, want %s/%s: %s", tc.name, typ, cond, tc.typ, tc.cond, r)
		}
	}
	if active, pending := w.pending(t, w.comp); len(active) != 0 || len(pending) != 0 {
		t.Errorf("refused requests left: active %v, pending %v", active, pending)
	}
	// A client may not schedule either.
	r := w.req(t, w.bob, "set", fmt.Sprintf(`<overlay xmlns=%q jid=%q show="dnd" since=%q/>`, ovNS, ovAlice, ovStamp(soon)))
	if typ, cond, _ := ovError(r); typ != "auth" || cond != "forbidden" {
		t.Errorf("a client's scheduled set: %s", r)
	}
}

// A component gone longer than the grace period loses its pending
// overlays too: nothing is promoted afterwards.
func ovTestSchedGrace(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{GracePeriod: time.Second})
	since := time.Now().Add(3 * time.Second)
	w.schedule(t, "dnd", ovMeeting, since, time.Time{})
	m := w.marks()
	w.comp.Close()
	time.Sleep(time.Until(since) + 1500*time.Millisecond)
	ovQuiet(t, w.bob, m[w.bob], "bob after since, the component gone")
	comp := testenv.DialComponent(t, w.srv)
	if active, pending := w.pending(t, comp); len(active) != 0 || len(pending) != 0 {
		t.Errorf("after the grace period: active %v, pending %v", active, pending)
	}
}

// A module from before scheduled overlays advertises no #since and
// applies an overlay with since at once: the reason the gateway sends
// since only where the feature is listed.
func ovTestSchedOldModule(t *testing.T, start ovStart) {
	w := ovNewWorld(t, start, testenv.XMPPOptions{WithoutScheduled: true})
	if f := w.features(t, w.comp); !f[ovNS] || f[ovSinceFeature] {
		t.Fatalf("old module's disco#info: %v", f)
	}
	m := w.marks()
	w.schedule(t, "dnd", ovMeeting, time.Now().Add(time.Hour), time.Time{})
	ovExpect(t, ovNext(t, w.bob, m[w.bob], ovDesk), ovPresence{"dnd", ovMeeting, 10}, "bob's view: the old module applied it at once")
}
