package xmppbot_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencegw/presencegw/internal/presence"
	"github.com/presencegw/presencegw/internal/store"
	"github.com/presencegw/presencegw/internal/testenv"
	"github.com/presencegw/presencegw/rules"
	"github.com/presencegw/presencegw/web"
	"github.com/presencegw/presencegw/xmppbot"
)

// servers are the XMPP servers every end-to-end case runs against.
var servers = []struct {
	name  string
	start func(testing.TB, testenv.XMPPOptions) *testenv.XMPPServer
}{
	{"prosody", testenv.StartProsody},
	{"ejabberd", testenv.StartEjabberd},
}

// mailDomain is the people's mail domain; JIDs are on the server's.
const mailDomain = "example.com"

// fakeCalendar is a calendar source whose facts the test sets.
type fakeCalendar struct {
	mu      sync.Mutex
	events  map[string][]rules.Event
	replies map[string]rules.AutoReply
}

func newFakeCalendar() *fakeCalendar {
	return &fakeCalendar{events: map[string][]rules.Event{}, replies: map[string]rules.AutoReply{}}
}

func (c *fakeCalendar) BatchSizes() (int, int) { return 100, 100 }

func (c *fakeCalendar) Schedules(_ context.Context, mailboxes []string, _, _ time.Time) ([]rules.MailboxFacts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]rules.MailboxFacts, len(mailboxes))
	for i, m := range mailboxes {
		out[i] = rules.MailboxFacts{Mailbox: m, Events: c.events[m], Location: time.UTC}
	}
	return out, nil
}

func (c *fakeCalendar) AutoReplies(_ context.Context, mailboxes []string) ([]rules.MailboxFacts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]rules.MailboxFacts, len(mailboxes))
	for i, m := range mailboxes {
		r, ok := c.replies[m]
		if !ok {
			r.Status = rules.AutoReplyDisabled
		}
		out[i] = rules.MailboxFacts{Mailbox: m, AutoReply: r}
	}
	return out, nil
}

// directory maps user@example.com ↔ user@<server domain>.
type directory struct{ domain string }

func (d directory) JIDOf(mailbox string) (string, bool) {
	local, dom, ok := strings.Cut(mailbox, "@")
	if !ok || dom != mailDomain {
		return "", false
	}
	return local + "@" + d.domain, true
}

func (d directory) MailboxOf(bare string) (string, bool) {
	local, dom, ok := strings.Cut(bare, "@")
	if !ok || dom != d.domain {
		return "", false
	}
	return local + "@" + mailDomain, true
}

// lookup answers the component's lookups from the engine, through the
// test directory, as the gateway's web backend does.
type lookup struct {
	engine *presence.Engine
	dir    directory
}

func (l lookup) Lookup(email string) web.Entry {
	j, ok := l.dir.JIDOf(strings.ToLower(email))
	if !ok {
		return web.Entry{Email: email, Status: web.NotFound}
	}
	return l.entry(email, j)
}

func (l lookup) LookupJID(j string) web.Entry {
	mb, ok := l.dir.MailboxOf(strings.ToLower(j))
	if !ok {
		return web.Entry{Email: j, Status: web.NotFound}
	}
	return l.entry(mb, strings.ToLower(j))
}

func (l lookup) entry(mailbox, j string) web.Entry {
	out, ok := l.engine.Get(mailbox)
	if !ok {
		return web.Entry{Email: mailbox, Status: web.NotFound}
	}
	return web.Entry{Email: mailbox, Status: web.Found, JID: j, Mailbox: mailbox, Presence: out}
}

// world is a server, an engine with a fake calendar and the component.
type world struct {
	t      *testing.T
	srv    *testenv.XMPPServer
	cal    *fakeCalendar
	engine *presence.Engine
	db     *store.DB
	proxy  *proxy
	bot    *xmppbot.Bot
	stop   func()
	// noSessionsAPI keeps startBot from configuring ejabberd's HTTP API.
	noSessionsAPI bool
}

func newWorld(t *testing.T, srv *testenv.XMPPServer, people ...string) *world {
	t.Helper()
	db, err := store.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	eng, err := presence.New(rules.DefaultPolicy(), presence.Options{}, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var mbs []string
	for _, p := range people {
		mbs = append(mbs, p+"@"+mailDomain)
	}
	eng.Track(mbs)
	w := &world{t: t, srv: srv, cal: newFakeCalendar(), engine: eng, db: db, proxy: startProxy(t, srv.ComponentAddr)}
	w.refresh()
	return w
}

// refresh makes the engine read the fake calendar now.
func (w *world) refresh() {
	w.t.Helper()
	if err := w.engine.Refresh(context.Background(), w.cal); err != nil {
		w.t.Fatal(err)
	}
}

// meeting gives person a busy meeting [start, end) and refreshes.
func (w *world) meeting(person string, start, end time.Time) {
	w.cal.mu.Lock()
	w.cal.events[person+"@"+mailDomain] = []rules.Event{{Start: start, End: end, ShowAs: rules.ShowBusy}}
	w.cal.mu.Unlock()
	w.refresh()
}

// oof switches person's automatic replies on (or off with "").
func (w *world) oof(person, message string) {
	w.cal.mu.Lock()
	if message == "" {
		delete(w.cal.replies, person+"@"+mailDomain)
	} else {
		w.cal.replies[person+"@"+mailDomain] = rules.AutoReply{Status: rules.AutoReplyAlways, Message: message}
	}
	w.cal.mu.Unlock()
	w.refresh()
}

// startBot runs the component (through the cuttable proxy) until
// stopBot; it waits until the component is connected.
func (w *world) startBot(cfg xmppbot.Config) {
	w.t.Helper()
	cfg.Server = w.proxy.addr
	cfg.JID = w.srv.ComponentJID
	cfg.Secret = []byte(w.srv.ComponentSecret)
	cfg.Hosts = []string{w.srv.Domain}
	if w.srv.Kind == "ejabberd" && !w.noSessionsAPI {
		cfg.SessionsAPI = "http://" + w.srv.HTTPAddr + "/api"
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{w.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.Lookup == nil {
		cfg.Lookup, cfg.Visibility = lookup{w.engine, directory{w.srv.Domain}}, web.SeeStatus
	}
	bot, err := xmppbot.New(cfg, w.engine, directory{w.srv.Domain}, w.db)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bot.Run(ctx) }()
	w.bot = bot
	w.stop = func() { cancel(); <-done }
	w.t.Cleanup(w.stopBot)
	w.waitConnected()
}

func (w *world) waitConnected() {
	w.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !w.bot.Status().Connected {
		if time.Now().After(deadline) {
			w.t.Fatalf("component not connected within 15s: %+v\n%s", w.bot.Status(), w.srv.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *world) stopBot() {
	if w.stop != nil {
		w.stop()
		w.stop = nil
	}
}

type testWriter struct{ t *testing.T }

func (tw testWriter) Write(p []byte) (int, error) {
	tw.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// proxy forwards the component's TCP connection so a test can cut it.
type proxy struct {
	addr string
	ln   net.Listener
	mu   sync.Mutex
	open []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), ln: ln}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.open = append(p.open, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

// cut drops every open connection, as a network failure does.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.open {
		c.Close()
	}
	p.open = nil
}

// view is what a contact's client shows for a person, under each of the
// aggregation rules real clients use (see
// shared/research/client-aggregation.md), computed from the presences
// the contact actually received.
type view struct {
	resources map[string]shown // by full JID
	last      *shown           // the last available presence received
}

type shown struct {
	Show, Status string
	Priority     int
}

// Rules clients use to show a person with several resources.
const (
	ruleHighestPriority = "highest priority (Pidgin, Psi, Converse.js)"
	ruleDNDIfAny        = "dnd if any (Conversations, Gajim, Dino)"
	ruleMostAvailable   = "most available (Movim)"
	ruleLastReceived    = "last received (Monal)"
)

var allRules = []string{ruleHighestPriority, ruleDNDIfAny, ruleMostAvailable, ruleLastReceived}

// viewOf replays what client c received from the bare JID of.
func viewOf(c *testenv.XMPPClient, of string) view {
	v := view{resources: map[string]shown{}}
	for _, s := range c.Received(0) {
		if !s.IsPresence() || testenv.Bare(s.Attr("from")) != of || !strings.Contains(s.Attr("from"), "/") {
			continue
		}
		switch s.Attr("type") {
		case "":
			sh := shown{Show: s.Show(), Status: s.Status(), Priority: s.Priority()}
			v.resources[s.Attr("from")] = sh
			v.last = &sh
		case "unavailable":
			delete(v.resources, s.Attr("from"))
		}
	}
	return v
}

// availability ranks shows, most available first.
func availability(show string) int {
	switch show {
	case "chat":
		return 0
	case "":
		return 1
	case "away":
		return 2
	case "dnd":
		return 3
	case "xa":
		return 4
	}
	return 5
}

// show is what the client shows under rule ("offline" with no resource).
func (v view) show(rule string) shown {
	if len(v.resources) == 0 {
		return shown{Show: "offline"}
	}
	var best *shown
	for _, r := range v.resources {
		r := r
		switch rule {
		case ruleHighestPriority:
			if best == nil || r.Priority > best.Priority || r.Priority == best.Priority && availability(r.Show) < availability(best.Show) {
				best = &r
			}
		case ruleDNDIfAny:
			if r.Show == "dnd" {
				return r
			}
			fallthrough
		case ruleMostAvailable:
			// Movim: online/chat 1, away 2, dnd 3, xa 4 (lowest wins).
			if best == nil || availability(r.Show) < availability(best.Show) {
				best = &r
			}
		case ruleLastReceived:
			return *v.last
		}
	}
	return *best
}

// waitView waits until every client rule shows want (show, and the
// status where want has one) for the person, failing with the last view.
func waitView(t *testing.T, c *testenv.XMPPClient, of string, want shown, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := viewOf(c, of)
		ok := true
		var got []string
		for _, r := range allRules {
			s := v.show(r)
			if s.Show != want.Show || want.Status != "" && s.Status != want.Status {
				ok = false
			}
			got = append(got, r+": "+s.Show+" "+s.Status)
		}
		if ok {
			return time.Now()
		}
		if time.Now().After(deadline) {
			for _, s := range c.Received(0) {
				if s.IsPresence() && testenv.Bare(s.Attr("from")) == of {
					got = append(got, s.At.Format("15:04:05.000 ")+s.String())
				}
			}
			select {
			case <-c.Done():
				got = append(got, fmt.Sprintf("(%s's session ended: %v)", c.JID, c.Err()))
			default:
			}
			t.Fatalf("%s does not show %s as %q %q within %v under every client rule:\n%s", c.JID, of, want.Show, want.Status, timeout, strings.Join(got, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lastFrom is when c last received a presence from of.
func lastFrom(c *testenv.XMPPClient, of string) time.Time {
	var at time.Time
	for _, s := range c.Received(0) {
		if s.IsPresence() && testenv.Bare(s.Attr("from")) == of {
			at = s.At
		}
	}
	return at
}

// TestCalendarPresenceEveryClientShows is the outcome that matters: a
// contact's client shows the calendar state whatever rule it uses, at
// the boundary, and the person's own state again at its end.
func TestCalendarPresenceEveryClientShows(t *testing.T) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			srv := s.start(t, testenv.XMPPOptions{Users: []string{"alice", "bob", "carol"}})
			w := newWorld(t, srv, "alice", "bob", "carol")
			alice := srv.Domain
			alice = "alice@" + alice
			desk := testenv.DialXMPP(t, srv, "alice", "desk")
			phone := testenv.DialXMPP(t, srv, "alice", "phone")
			bob := testenv.DialXMPP(t, srv, "bob", "pc")
			carol := testenv.DialXMPP(t, srv, "carol", "laptop")
			desk.SendPresence(t, "", "", "at my desk", 10)
			phone.SendPresence(t, "", "", "", 5)
			bob.SendPresence(t, "", "", "", 0)
			carol.SendPresence(t, "", "", "", 0)
			testenv.MakeContacts(t, desk, bob)
			w.startBot(xmppbot.Config{})
			waitView(t, bob, alice, shown{Show: ""}, 5*time.Second)

			start := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).Add(time.Second)
			end := start.Add(4 * time.Second)
			w.meeting("alice", start, end)
			busyText := "In a meeting until " + end.UTC().Format("15:04")
			waitView(t, bob, alice, shown{Show: "dnd", Status: busyText}, time.Until(start)+2*time.Second)
			if at := lastFrom(bob, alice); at.Before(start.Add(-50*time.Millisecond)) || at.After(start.Add(time.Second)) {
				t.Errorf("bob saw the meeting at %v, want within 1 s after the boundary %v", at.Format("15:04:05.000"), start.Format("15:04:05.000"))
			}
			waitView(t, bob, alice, shown{Show: ""}, time.Until(end)+2*time.Second)
			if got := viewOf(bob, alice).show(ruleHighestPriority); got.Status != "at my desk" {
				t.Errorf("after the meeting bob's highest-priority view has status %q, want alice's own %q", got.Status, "at my desk")
			}
			if at := lastFrom(bob, alice); at.After(end.Add(time.Second)) {
				t.Errorf("bob saw the meeting end at %v, want within 1 s after %v", at.Format("15:04:05.000"), end.Format("15:04:05.000"))
			}
			for _, c := range []*testenv.XMPPClient{desk, phone, carol} {
				for _, st := range c.Received(0) {
					if st.IsPresence() && testenv.Bare(st.Attr("from")) == alice && st.Show() == "dnd" {
						t.Errorf("%s was shown the overlay: %s", c.JID, st.String())
					}
				}
			}
		})
	}
}

// TestScenario walks one meeting day on each server: what the person
// sets by hand passes, late contacts see the overlay, non-contacts see
// nothing, the component's link is cut, the gateway dies, the server
// restarts during out-of-office.
func TestScenario(t *testing.T) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			srv := s.start(t, testenv.XMPPOptions{Users: []string{"alice", "bob", "carol"}, GracePeriod: 3 * time.Second})
			w := newWorld(t, srv, "alice", "bob", "carol")
			alice := "alice@" + srv.Domain
			desk := testenv.DialXMPP(t, srv, "alice", "desk")
			phone := testenv.DialXMPP(t, srv, "alice", "phone")
			bob := testenv.DialXMPP(t, srv, "bob", "pc")
			carol := testenv.DialXMPP(t, srv, "carol", "laptop")
			desk.SendPresence(t, "", "", "at my desk", 10)
			phone.SendPresence(t, "", "", "", 5)
			bob.SendPresence(t, "", "", "", 0)
			carol.SendPresence(t, "", "", "", 0)
			testenv.MakeContacts(t, desk, bob)
			w.startBot(xmppbot.Config{})
			parent := t // clients made in a subtest must outlive it

			now := time.Now()
			end := now.Add(time.Hour).Truncate(time.Minute)
			busy := shown{Show: "dnd", Status: "In a meeting until " + end.UTC().Format("15:04")}
			w.meeting("alice", now.Add(-time.Minute), end)
			waitView(t, bob, alice, busy, 5*time.Second)

			t.Run("hand-set away passes unchanged", func(t *testing.T) {
				desk.SendPresence(t, "", "away", "lunch", 10)
				waitFor(t, "bob sees desk away", func() bool {
					r := viewOf(bob, alice).resources[desk.JID]
					return r.Show == "away" && r.Status == "lunch"
				})
				if r := viewOf(bob, alice).resources[phone.JID]; r.Show != "dnd" {
					t.Errorf("phone as bob sees it: %+v, want still dnd", r)
				}
				waitFor(t, "the engine learns alice's own away", func() bool {
					out, _ := w.engine.Get("alice@" + mailDomain)
					return out.State == rules.Away && out.Source == rules.SourceManual
				})
			})
			t.Run("hand-set dnd with own text passes unchanged", func(t *testing.T) {
				desk.SendPresence(t, "", "dnd", "focus time", 10)
				waitFor(t, "bob sees desk's own dnd", func() bool {
					r := viewOf(bob, alice).resources[desk.JID]
					return r.Show == "dnd" && r.Status == "focus time"
				})
			})
			t.Run("a new status text during the meeting is overlaid", func(t *testing.T) {
				desk.SendPresence(t, "", "", "back at my desk", 10)
				waitView(t, bob, alice, busy, 3*time.Second)
			})
			t.Run("a contact coming online mid-meeting sees it", func(t *testing.T) {
				tablet := testenv.DialXMPP(t, srv, "bob", "tablet")
				tablet.SendPresence(t, "", "", "", 0)
				waitView(t, tablet, alice, busy, 3*time.Second)
			})
			t.Run("a non-contact sees nothing", func(t *testing.T) {
				for _, st := range carol.Received(0) {
					if st.IsPresence() && testenv.Bare(st.Attr("from")) == alice {
						t.Errorf("carol received %s", st.String())
					}
				}
			})
			t.Run("link cut mid-meeting: reconnect within grace keeps it", func(t *testing.T) {
				before := w.bot.Status().Since
				w.proxy.cut()
				waitFor(t, "the component reconnects", func() bool {
					st := w.bot.Status()
					return st.Connected && st.Since.After(before)
				})
				mark := bob.Mark()
				time.Sleep(4 * time.Second) // past the server's grace period
				waitView(t, bob, alice, busy, time.Second)
				for _, st := range bob.Received(mark) {
					if st.IsPresence() && testenv.Bare(st.Attr("from")) == alice && st.Show() != "dnd" {
						t.Errorf("bob saw a flap after a quick reconnect: %s", st.String())
					}
				}
			})
			t.Run("gateway killed mid-meeting: withdrawn after the grace period", func(t *testing.T) {
				w.stopBot()
				w.proxy.cut()
				waitView(t, bob, alice, shown{Show: ""}, 8*time.Second)
			})
			t.Run("gateway restarted: the meeting is back", func(t *testing.T) {
				w.startBot(xmppbot.Config{})
				waitView(t, bob, alice, busy, 5*time.Second)
			})
			t.Run("meeting over, out of office; server restart republishes", func(t *testing.T) {
				w.meeting("alice", now.Add(-2*time.Hour), now.Add(-time.Hour))
				w.oof("alice", "On holiday\nCall Dave for anything urgent")
				oof := shown{Show: "xa", Status: "Out of office: On holiday"}
				waitView(t, bob, alice, oof, 5*time.Second)

				srv.Stop(t)
				srv.Start(t)
				desk = testenv.DialXMPP(parent, srv, "alice", "desk")
				bob = testenv.DialXMPP(parent, srv, "bob", "pc")
				desk.SendPresence(t, "", "", "at my desk", 10)
				bob.SendPresence(t, "", "", "", 0)
				waitView(t, bob, alice, oof, 20*time.Second)
			})
			t.Run("a lookup from bob", func(t *testing.T) {
				r := bob.IQ(t, fmt.Sprintf(`<iq type="get" id="lk1" to=%q><lookup xmlns="urn:presencegw:lookup:0"><address>alice@%s</address><jid>%s</jid><address>nobody@%s</address></lookup></iq>`,
					srv.ComponentJID, mailDomain, alice, mailDomain))
				l, ok := r.Child("lookup")
				if r.Attr("type") != "result" || !ok || len(l.Children) != 3 {
					t.Fatalf("lookup reply: %s", r.String())
				}
				for i, p := range l.Children[:2] {
					if p.Attr("state") != "oof" || !strings.HasPrefix(p.Attr("status"), "Out of office") {
						t.Errorf("person %d: %s, want alice out of office", i, p.String())
					}
				}
				if p := l.Children[2]; p.Attr("error") != "not-found" {
					t.Errorf("unknown address: %s, want error not-found", p.String())
				}
			})
			t.Run("calendar off by chat stops automatic states", func(t *testing.T) {
				say := func(body string) string {
					mark := desk.Mark()
					desk.Send(t, fmt.Sprintf(`<message type="chat" to=%q><body>%s</body></message>`, srv.ComponentJID, body))
					return desk.WaitFor(t, mark, 5*time.Second, "the component's reply to "+body, func(s testenv.Stanza) bool {
						return s.XMLName.Local == "message" && s.Attr("from") == srv.ComponentJID
					}).ChildText("body")
				}
				if reply := say("calendar off"); !strings.Contains(strings.ToLower(reply), "off") {
					t.Errorf("reply to calendar off: %q", reply)
				}
				waitView(t, bob, alice, shown{Show: "", Status: "at my desk"}, 3*time.Second)
				if !w.engine.OptedOut("alice@" + mailDomain) {
					t.Error("the engine does not keep alice's opt-out")
				}
				say("calendar on")
				waitView(t, bob, alice, shown{Show: "xa"}, 3*time.Second)
			})
			t.Run("offline leaves nothing", func(t *testing.T) {
				desk.Close()
				waitView(t, bob, alice, shown{Show: "offline"}, 3*time.Second)
				waitFor(t, "the engine learns alice is offline", func() bool {
					out, _ := w.engine.Get("alice@" + mailDomain)
					return out.State == rules.Offline
				})
			})
		})
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
