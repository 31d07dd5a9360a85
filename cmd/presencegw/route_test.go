package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencegw/presencegw/graph/ewstest"
	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/internal/presence"
	"github.com/presencegw/presencegw/internal/store"
	"github.com/presencegw/presencegw/internal/testenv"
	"github.com/presencegw/presencegw/rules"
)

func TestRouteDecide(t *testing.T) {
	r := newRouteRules(config.Routing{
		Default:   "graph",
		Attribute: "msExchRecipientTypeDetails",
		Values:    map[string]string{"1": "ews", "2147483648": "graph", "16": "none"},
		Domains:   map[string]string{"OnPrem.Example.com": "ews", "lab.example.com": "ics"},
		Mailboxes: map[string]string{"Carol@Example.com": "ics", "rooms@onprem.example.com": "none"},
	})
	cases := []struct {
		mailbox, attr string
		source, why   string
	}{
		{"alice@example.com", "1", "ews", whyAttribute},                 // on-premises user mailbox
		{"bob@example.com", "2147483648", "graph", whyAttribute},        // remote (online) mailbox
		{"bob@onprem.example.com", "2147483648", "graph", whyAttribute}, // the attribute beats the domain
		{"room@example.com", "16", "none", whyAttribute},
		{"dave@onprem.example.com", "", "ews", whyDomain},
		{"Dave@ONPREM.example.com", "", "ews", whyDomain},    // case does not matter
		{"erin@onprem.example.com", "128", "ews", whyDomain}, // a value no rule names falls through
		{"carol@example.com", "1", "ics", whyMailbox},        // the person's own rule beats all
		{"CAROL@example.com ", "", "ics", whyMailbox},
		{"rooms@onprem.example.com", "", "none", whyMailbox},
		{"kim@lab.example.com", "", "ics", whyDomain},
		{"zoe@elsewhere.example", "", "graph", whyDefault},
		{"not-an-address", "", "graph", whyDefault},
		{"frank@sub.onprem.example.com", "", "graph", whyDefault}, // domains match exactly
	}
	for _, c := range cases {
		src, why := r.decide(c.mailbox, c.attr)
		if src != c.source || why != c.why {
			t.Errorf("decide(%q, %q) = %s by %s, want %s by %s", c.mailbox, c.attr, src, why, c.source, c.why)
		}
	}
	// No default (a config that routes only some people): the rest get
	// no calendar, never a guess.
	none := newRouteRules(config.Routing{Default: "none", Mailboxes: map[string]string{"a@example.com": "ics"}})
	if src, why := none.decide("b@example.com", ""); src != "none" || why != whyDefault {
		t.Errorf("unrouted mailbox went to %s by %s", src, why)
	}
}

// recordingSource is a calendar source that records its calls.
type recordingSource struct {
	name        string
	sched, repl int
	fail        bool

	mu    sync.Mutex
	calls [][]string
}

func (s *recordingSource) BatchSizes() (int, int) { return s.sched, s.repl }

func (s *recordingSource) answer(mbs []string, kind string) ([]rules.MailboxFacts, error) {
	s.mu.Lock()
	s.calls = append(s.calls, slices.Clone(mbs))
	s.mu.Unlock()
	if s.fail {
		return nil, errors.New(s.name + " is down")
	}
	out := make([]rules.MailboxFacts, len(mbs))
	for i, mb := range mbs {
		out[i] = rules.MailboxFacts{Mailbox: mb, Events: []rules.Event{{Subject: s.name + " " + kind}}}
		if strings.HasPrefix(mb, "gone") {
			out[i].Err = errors.New("not found")
		}
	}
	return out, nil
}

func (s *recordingSource) Schedules(_ context.Context, mbs []string, _, _ time.Time) ([]rules.MailboxFacts, error) {
	return s.answer(mbs, "schedules")
}

func (s *recordingSource) AutoReplies(_ context.Context, mbs []string) ([]rules.MailboxFacts, error) {
	return s.answer(mbs, "autoreplies")
}

func (s *recordingSource) callList() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func newTestRouter(t *testing.T) (*routedCalendar, *recordingSource, *recordingSource) {
	t.Helper()
	g := &recordingSource{name: "graph", sched: 2, repl: 50}
	e := &recordingSource{name: "ews", sched: 100, repl: 50}
	rc := newRoutedCalendar(config.Routing{Default: "graph", Domains: map[string]string{"onprem.example.com": "ews"},
		Mailboxes: map[string]string{"nocal@example.com": "none"}},
		[]namedSource{{"graph", g}, {"ews", e}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return rc, g, e
}

// A mixed call goes to each source with its own mailboxes at its own
// batch size; none answers without asking anyone; answers keep every
// mailbox once.
func TestRoutedCalendarSplits(t *testing.T) {
	rc, g, e := newTestRouter(t)
	var _ presence.RoutedSource = rc
	mbs := []string{"a@example.com", "b@onprem.example.com", "c@example.com", "nocal@example.com", "d@example.com", "gone@onprem.example.com"}
	facts, err := rc.Schedules(t.Context(), mbs, time.Now(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(g.callList()); got != "[[a@example.com c@example.com] [d@example.com]]" {
		t.Errorf("graph calls = %s (batches of 2)", got)
	}
	if got := fmt.Sprint(e.callList()); got != "[[b@onprem.example.com gone@onprem.example.com]]" {
		t.Errorf("ews calls = %s", got)
	}
	by := map[string]rules.MailboxFacts{}
	for _, f := range facts {
		if _, dup := by[f.Mailbox]; dup {
			t.Errorf("%s answered twice", f.Mailbox)
		}
		by[f.Mailbox] = f
	}
	if len(by) != len(mbs) {
		t.Errorf("answers for %d of %d mailboxes", len(by), len(mbs))
	}
	if f := by["b@onprem.example.com"]; len(f.Events) != 1 || f.Events[0].Subject != "ews schedules" {
		t.Errorf("b = %+v, want ews's answer", f)
	}
	if f := by["nocal@example.com"]; f.Err != nil || len(f.Events) != 0 {
		t.Errorf("nocal = %+v, want no events and no error", f)
	}
	if f := by["gone@onprem.example.com"]; f.Err == nil {
		t.Error("a mailbox's own error was lost")
	}
	replies, err := rc.AutoReplies(t.Context(), []string{"nocal@example.com"})
	if err != nil || len(replies) != 1 || replies[0].AutoReply.Status != rules.AutoReplyDisabled {
		t.Errorf("none's auto replies = %+v, %v", replies, err)
	}
	if rc.Route("B@OnPrem.example.com") != "ews" || rc.Route("x@example.com") != "graph" {
		t.Error("Route off the table")
	}
	if s, r := rc.RouteBatchSizes("ews"); s != 100 || r != 50 {
		t.Errorf("ews batch sizes = %d, %d", s, r)
	}
	if s, r := rc.RouteBatchSizes("none"); s < 100 || r < 100 {
		t.Errorf("none batch sizes = %d, %d", s, r)
	}
}

// One source down: the others' facts still arrive; all down: an error.
func TestRoutedCalendarPartialFailure(t *testing.T) {
	rc, g, e := newTestRouter(t)
	e.fail = true
	facts, err := rc.Schedules(t.Context(), []string{"a@example.com", "b@onprem.example.com"}, time.Now(), time.Now().Add(time.Hour))
	if err != nil || len(facts) != 1 || facts[0].Mailbox != "a@example.com" {
		t.Errorf("one source down: %+v, %v; want graph's answer alone", facts, err)
	}
	_, err = rc.Schedules(t.Context(), []string{"b@onprem.example.com"}, time.Now(), time.Now().Add(time.Hour))
	if err == nil || !strings.Contains(err.Error(), "calendar source ews: ews is down") {
		t.Errorf("only source down: err = %v", err)
	}
	g.fail = true
	if _, err := rc.AutoReplies(t.Context(), []string{"a@example.com", "b@onprem.example.com"}); err == nil {
		t.Error("every source down, yet no error")
	}
}

// The engine polls a router by route: each batch one source's.
func TestRoutedCalendarThroughEngine(t *testing.T) {
	rc, g, e := newTestRouter(t)
	st, err := store.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := presence.New(rules.Policy{Automatic: rules.Automatic{Meetings: true}}, presence.Options{}, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"a@example.com", "a@onprem.example.com", "b@example.com", "b@onprem.example.com", "c@example.com"}
	eng.Track(ids)
	if err := eng.Refresh(t.Context(), rc); err != nil {
		t.Fatal(err)
	}
	// Graph: 3 mailboxes in batches of 2, schedules and replies (50).
	if got := fmt.Sprint(g.callList()); got != "[[a@example.com b@example.com] [c@example.com] [a@example.com b@example.com c@example.com]]" {
		t.Errorf("graph calls = %s", got)
	}
	if got := fmt.Sprint(e.callList()); got != "[[a@onprem.example.com b@onprem.example.com] [a@onprem.example.com b@onprem.example.com]]" {
		t.Errorf("ews calls = %s", got)
	}
}

// Hybrid at 10,000 mailboxes, half on premises, interleaved by address:
// the engine still sends EWS full batches (100 schedules, 50 mail tips),
// so EWS costs what it costs alone, 0.2 requests per mailbox and hour at
// the default 5/15-minute intervals; mixed batches would have doubled it.
func TestHybridRequestBudget(t *testing.T) {
	g := &recordingSource{name: "graph", sched: 20, repl: 50}
	e := &recordingSource{name: "ews", sched: 100, repl: 50}
	rc := newRoutedCalendar(config.Routing{Default: "graph", Domains: map[string]string{"onprem.example.com": "ews"}},
		[]namedSource{{"graph", g}, {"ews", e}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	st, err := store.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := presence.New(rules.Policy{}, presence.Options{}, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 5000 {
		ids = append(ids, fmt.Sprintf("user%05d@example.com", i), fmt.Sprintf("user%05d@onprem.example.com", i))
	}
	eng.Track(ids)
	if err := eng.Refresh(t.Context(), rc); err != nil {
		t.Fatal(err)
	}
	var sched, tips int
	for _, c := range e.callList() {
		if strings.Contains(c[0], "@example.com") {
			t.Fatalf("EWS asked for %s", c[0])
		}
		if len(c) == 100 {
			sched++ // Refresh asks schedules first, then replies in 50s
		} else if len(c) == 50 {
			tips++
		} else {
			t.Errorf("EWS batch of %d", len(c))
		}
	}
	perHour := float64(sched*12+tips*4) / 5000
	t.Logf("EWS: %d GetUserAvailability + %d GetMailTips per cycle for 5,000 mailboxes = %.2f requests per mailbox-hour", sched, tips, perHour)
	if sched != 50 || tips != 100 || perHour > 0.2001 {
		t.Errorf("EWS requests: %d schedules, %d mail tips (%.3f per mailbox-hour), want 50, 100 (0.2)", sched, tips, perHour)
	}
	if n := len(g.callList()); n != 250+100 {
		t.Errorf("Graph calls = %d, want 250 getSchedule + 100 getMailTips", n)
	}
}

// EWS with a bearer token from a file, through the real client against the
// fake: a token rewritten by a refresher is used from the next request.
func TestEWSBearerTokenFile(t *testing.T) {
	fake := ewstest.New(t)
	fake.Auth = ewstest.AuthBearer
	fake.Token = "token-one"
	fake.SetMailbox("alice@example.com", ewstest.Mailbox{})
	tokenFile := filepath.Join(t.TempDir(), "ews.token")
	if err := os.WriteFile(tokenFile, []byte("token-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := ewsSource(&config.EWS{URL: fake.EWSURL(), Auth: "bearer", TokenFile: tokenFile, SendingAs: "svc@example.com",
		ServerVersion: "Exchange2013_SP1", CAFile: fake.CAFile(t), Concurrency: 1, AvailabilityBatch: 100, MailTipsBatch: 50},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ask := func() error {
		_, err := src.Schedules(t.Context(), []string{"alice@example.com"}, time.Now(), time.Now().Add(time.Hour))
		return err
	}
	if err := ask(); err != nil {
		t.Fatal(err)
	}
	fake.Token = "token-two"
	if err := ask(); err == nil {
		t.Fatal("the fake accepted a stale token")
	}
	if err := os.WriteFile(tokenFile, []byte("token-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(tokenFile, later, later)
	if err := ask(); err != nil {
		t.Errorf("after the token file changed: %v", err)
	}
	reqs := fake.Requests()
	if len(reqs) == 0 || reqs[len(reqs)-1].Auth != "Bearer" {
		t.Errorf("requests = %+v", reqs)
	}
}

// The route table costs little per mailbox next to the directory index's
// kilobyte: measured at 100,000 mailboxes, half with an attribute value.
func TestRouteTableMemory(t *testing.T) {
	rc, _, _ := newTestRouter(t)
	const n = 100_000
	mailboxes := make([]string, n)
	attrs := map[string]string{}
	for i := range mailboxes {
		mailboxes[i] = fmt.Sprintf("user%06d@example.com", i)
		if i%2 == 0 {
			attrs[mailboxes[i]] = "1"
		}
	}
	before := testenv.LiveHeap()
	rc.update(mailboxes, attrs)
	after := testenv.LiveHeap()
	per := float64(int64(after)-int64(before)) / n
	t.Logf("route table: %.0f B per mailbox", per)
	if per > 100 {
		t.Errorf("route table takes %.0f B per mailbox, want ≤ 100", per)
	}
	if rc.Route("user000002@example.com") != "graph" {
		t.Error("table not in use")
	}
	runtime.KeepAlive(mailboxes)
	runtime.KeepAlive(attrs)
}

// Readiness per source: one that serves mailboxes but has read none is
// named, even while the others answer; none never is.
func TestRoutedCalendarUnread(t *testing.T) {
	rc, _, e := newTestRouter(t)
	rc.update([]string{"a@example.com", "b@onprem.example.com", "c@onprem.example.com", "nocal@example.com"}, nil)
	if got := fmt.Sprint(rc.Unread()); got != "map[ews:2 graph:1]" {
		t.Errorf("before any poll: %s", got)
	}
	e.fail = true
	rc.Schedules(t.Context(), []string{"a@example.com", "b@onprem.example.com", "nocal@example.com"}, time.Now(), time.Now().Add(time.Hour))
	if got := fmt.Sprint(rc.Unread()); got != "map[ews:2]" {
		t.Errorf("ews down: %s", got)
	}
	// A mailbox's own error is no read either.
	e.fail = false
	rc.Schedules(t.Context(), []string{"gone@onprem.example.com"}, time.Now(), time.Now().Add(time.Hour))
	if got := fmt.Sprint(rc.Unread()); got != "map[ews:2]" {
		t.Errorf("only a failing mailbox answered: %s", got)
	}
	rc.Schedules(t.Context(), []string{"b@onprem.example.com"}, time.Now(), time.Now().Add(time.Hour))
	if got := len(rc.Unread()); got != 0 {
		t.Errorf("after every source read: %v", rc.Unread())
	}
}
