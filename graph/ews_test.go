package graph_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/presencegw/presencegw/graph"
	"github.com/presencegw/presencegw/graph/ewstest"
	"github.com/presencegw/presencegw/rules"
)

// newEWS makes a source for the fake, authenticating as the fake demands
// (its Auth), with short retry delays.
func newEWS(t *testing.T, fake *ewstest.Server, change func(*graph.EWSConfig)) (*graph.EWS, *bytes.Buffer) {
	t.Helper()
	cfg := graph.EWSConfig{URL: fake.EWSURL(), Auth: fake.Auth, CAFile: fake.CAFile(t),
		SendingAs: "svc-presence@example.com", RetryDelay: 10 * time.Millisecond, Timeout: 10 * time.Second}
	switch fake.Auth {
	case ewstest.AuthNTLM:
		cfg.Username, cfg.Password = fake.Domain+`\`+fake.Username, fake.Password
	case ewstest.AuthBasic:
		cfg.Username, cfg.Password = fake.Username, fake.Password
	case ewstest.AuthBearer:
		cfg.Token = func(context.Context) (string, error) { return fake.Token, nil }
	}
	if change != nil {
		change(&cfg)
	}
	var logs bytes.Buffer
	src, err := graph.NewEWS(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return src, &logs
}

func newFake(t *testing.T, auth string) *ewstest.Server {
	fake := ewstest.New(t)
	fake.Auth = auth
	if auth == ewstest.AuthBasic {
		fake.Username = "svc-presence@example.com"
	}
	return fake
}

func at(h, m int) time.Time {
	return time.Date(2026, 5, 4, h, m, 0, 0, time.UTC)
}

// TestEWSSchedules drives the source against the fake for each auth
// method and both time encodings: events with correct instants, details
// where the view has them, private events without them, a mailbox's zone,
// per-mailbox errors isolated, the merged-only fallback, the request
// shape (version, UTC time zone context, no impersonation).
func TestEWSSchedules(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	sydney, err := time.LoadLocation("Australia/Sydney")
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range []string{ewstest.AuthNTLM, ewstest.AuthBasic, ewstest.AuthBearer} {
		for _, offsets := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/offsets=%v", auth, offsets), func(t *testing.T) {
				fake := newFake(t, auth)
				fake.OffsetTimes = offsets
				fake.SetMailbox("alice@example.com", ewstest.Mailbox{TimeZone: berlin, Events: []ewstest.Event{
					{Start: at(9, 0), End: at(10, 0), BusyType: "Busy", Subject: "Standup & <review>", Location: "Room 4", IsMeeting: true},
					{Start: at(10, 0), End: at(10, 30), BusyType: "WorkingElsewhere"},
				}})
				fake.SetMailbox("bob@example.com", ewstest.Mailbox{TimeZone: sydney, Events: []ewstest.Event{
					{Start: at(11, 0), End: at(12, 0), BusyType: "Busy", Subject: "Doctor", Location: "Clinic", IsPrivate: true},
				}})
				fake.SetMailbox("carol@example.com", ewstest.Mailbox{View: "FreeBusyMerged", Events: []ewstest.Event{
					{Start: at(8, 30), End: at(9, 0), BusyType: "Tentative", Subject: "hidden"},
					{Start: at(13, 0), End: at(14, 0), BusyType: "OOF", Subject: "hidden"},
				}})
				fake.SetMailbox("erin@example.com", ewstest.Mailbox{ErrorCode: "ErrorNoFreeBusyAccess"})
				fake.SetMailbox("frank@example.com", ewstest.Mailbox{View: "MergedOnly", Events: []ewstest.Event{
					{Start: at(9, 0), End: at(9, 45), BusyType: "Busy", Subject: "hidden"},
				}})
				src, _ := newEWS(t, fake, nil)
				mbs := []string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com", "erin@example.com", "frank@example.com"}
				facts, err := src.Schedules(context.Background(), mbs, at(8, 0), at(17, 0))
				if err != nil {
					t.Fatal(err)
				}
				if len(facts) != len(mbs) {
					t.Fatalf("%d facts for %d mailboxes", len(facts), len(mbs))
				}
				for i, f := range facts {
					if f.Mailbox != mbs[i] {
						t.Errorf("facts[%d] is %s, want %s (order)", i, f.Mailbox, mbs[i])
					}
				}
				want := [][]rules.Event{
					{{Start: at(9, 0), End: at(10, 0), ShowAs: rules.ShowBusy, Subject: "Standup & <review>", Location: "Room 4"},
						{Start: at(10, 0), End: at(10, 30), ShowAs: rules.ShowWorkingElsewhere}},
					{{Start: at(11, 0), End: at(12, 0), ShowAs: rules.ShowBusy, Private: true}},
					{{Start: at(8, 30), End: at(9, 0), ShowAs: rules.ShowTentative}, {Start: at(13, 0), End: at(14, 0), ShowAs: rules.ShowOOF}},
					nil, nil,
					{{Start: at(9, 0), End: at(9, 45), ShowAs: rules.ShowBusy}},
				}
				for i, w := range want {
					if w == nil {
						continue
					}
					if facts[i].Err != nil {
						t.Errorf("%s: %v", mbs[i], facts[i].Err)
						continue
					}
					if !sameEvents(facts[i].Events, w) {
						t.Errorf("%s events:\n got %v\nwant %v", mbs[i], facts[i].Events, w)
					}
				}
				for i, code := range map[int]string{3: "ErrorMailRecipientNotFound", 4: "ErrorNoFreeBusyAccess"} {
					var re *graph.EWSResponseError
					if err := facts[i].Err; !errors.Is(err, graph.ErrMailbox) || !errors.As(err, &re) || re.Code != code {
						t.Errorf("%s: err %v, want ErrMailbox with %s", mbs[i], err, code)
					}
				}
				// The mailboxes' own zones, rebuilt from WorkingHours.
				for i, loc := range map[int]*time.Location{0: berlin, 1: sydney} {
					if !sameOffsets(facts[i].Location, loc, 2026) {
						t.Errorf("%s: location %v does not keep %v's offsets", mbs[i], facts[i].Location, loc)
					}
				}
				reqs := fake.Requests()
				if len(reqs) != 1 {
					t.Fatalf("%d requests, want 1", len(reqs))
				}
				r := reqs[0]
				wantAuth := map[string]string{ewstest.AuthNTLM: "NTLM", ewstest.AuthBasic: "Basic", ewstest.AuthBearer: "Bearer"}[auth]
				if r.Operation != "GetUserAvailability" || r.Status != 200 || r.Version != "Exchange2013_SP1" || r.TimeZoneContext != "UTC" ||
					r.Impersonated != "" || r.Auth != wantAuth || !r.Start.Equal(at(8, 0)) || !r.End.Equal(at(17, 0)) || len(r.Mailboxes) != len(mbs) {
					t.Errorf("request %+v", r)
				}
			})
		}
	}
}

func sameEvents(got, want []rules.Event) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.Start.Equal(w.Start) || !g.End.Equal(w.End) || g.ShowAs != w.ShowAs || g.Subject != w.Subject ||
			g.Location != w.Location || g.Private != w.Private || g.AllDay != w.AllDay {
			return false
		}
	}
	return true
}

// sameOffsets reports whether a keeps b's offsets through year, hour by
// hour.
func sameOffsets(a, b *time.Location, year int) bool {
	if a == nil {
		return false
	}
	for t := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC); t.Year() == year; t = t.Add(time.Hour) {
		_, oa := t.In(a).Zone()
		_, ob := t.In(b).Zone()
		if oa != ob {
			return false
		}
	}
	return true
}

// TestEWSChunking: more mailboxes than a request takes are split into
// requests of 100 (GetUserAvailability) and 50 (GetMailTips), answers in
// order.
func TestEWSChunking(t *testing.T) {
	fake := newFake(t, ewstest.AuthBasic)
	var mbs []string
	for i := range 250 {
		mb := fmt.Sprintf("user%03d@example.com", i)
		mbs = append(mbs, mb)
		s := at(9, 0).Add(time.Duration(i) * time.Minute)
		fake.SetMailbox(mb, ewstest.Mailbox{Events: []ewstest.Event{{Start: s, End: s.Add(30 * time.Minute), BusyType: "Busy"}}})
	}
	src, _ := newEWS(t, fake, nil)
	if s, a := src.BatchSizes(); s != 100 || a != 50 {
		t.Errorf("BatchSizes = %d, %d; want 100, 50", s, a)
	}
	facts, err := src.Schedules(context.Background(), mbs, at(8, 0), at(17, 0))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range facts {
		if f.Mailbox != mbs[i] || f.Err != nil || len(f.Events) != 1 || !f.Events[0].Start.Equal(at(9, 0).Add(time.Duration(i)*time.Minute)) {
			t.Fatalf("facts[%d] = %+v", i, f)
		}
	}
	replies, err := src.AutoReplies(context.Background(), mbs[:120])
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) != 120 {
		t.Errorf("%d auto replies for 120", len(replies))
	}
	var sizes []int
	for _, r := range fake.Requests() {
		sizes = append(sizes, len(r.Mailboxes))
	}
	if fmt.Sprint(sizes) != "[100 100 50 50 50 20]" {
		t.Errorf("request sizes %v, want [100 100 50 50 50 20]", sizes)
	}
}

// TestEWSWindowClamp: a window over 42 days is cut to 42, and the log
// says so (once).
func TestEWSWindowClamp(t *testing.T) {
	fake := newFake(t, ewstest.AuthBasic)
	fake.SetMailbox("alice@example.com", ewstest.Mailbox{})
	src, logs := newEWS(t, fake, nil)
	for range 2 {
		if _, err := src.Schedules(context.Background(), []string{"alice@example.com"}, at(0, 0), at(0, 0).AddDate(0, 0, 60)); err != nil {
			t.Fatal(err)
		}
	}
	r := fake.Requests()[0]
	if got := r.End.Sub(r.Start); got != 42*24*time.Hour {
		t.Errorf("window %s, want 42 days", got)
	}
	if n := strings.Count(logs.String(), "42 days"); n != 1 {
		t.Errorf("clamp logged %d times, want once:\n%s", n, logs)
	}
	if _, err := src.Schedules(context.Background(), []string{"alice@example.com"}, at(9, 0), at(9, 0)); err == nil {
		t.Error("an empty window was accepted")
	}
}

// TestEWSAutoReplies: mail tips mapped to the setting — always on (HTML
// to text), scheduled and active (with its window), scheduled but not yet
// begun (mail tips say nothing: disabled), off; unknown recipients,
// per-recipient errors and pending tips isolated; impersonation on
// GetMailTips only, with X-AnchorMailbox.
func TestEWSAutoReplies(t *testing.T) {
	now := time.Now()
	fake := newFake(t, ewstest.AuthNTLM)
	fake.RequireImpersonation = "presence-robot@example.com"
	fake.SetMailbox("alice@example.com", ewstest.Mailbox{OOF: &ewstest.OOF{Message: "<html><body><p>On leave &amp; offline.</p><p>Back on Monday</p></body></html>"}})
	fake.SetMailbox("bob@example.com", ewstest.Mailbox{OOF: &ewstest.OOF{Message: "Conference", Start: now.Add(-time.Hour).Truncate(time.Second), End: now.Add(48 * time.Hour).Truncate(time.Second)}})
	fake.SetMailbox("carol@example.com", ewstest.Mailbox{OOF: &ewstest.OOF{Message: "Holiday", Start: now.Add(24 * time.Hour), End: now.Add(48 * time.Hour)}})
	fake.SetMailbox("dave@example.com", ewstest.Mailbox{})
	fake.SetMailbox("erin@example.com", ewstest.Mailbox{MailTipsErrorCode: "ErrorMailRecipientNotFound"})
	fake.SetMailbox("frank@example.com", ewstest.Mailbox{PendingMailTips: true})
	src, _ := newEWS(t, fake, func(c *graph.EWSConfig) {
		c.Impersonate, c.SendingAs = "presence-robot@example.com", ""
	})
	mbs := []string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com", "ghost@example.com", "erin@example.com", "frank@example.com"}
	facts, err := src.AutoReplies(context.Background(), mbs)
	if err != nil {
		t.Fatal(err)
	}
	want := []rules.AutoReply{
		{Status: rules.AutoReplyAlways, Message: "On leave & offline.\nBack on Monday"},
		{Status: rules.AutoReplyScheduled, Message: "Conference", Start: now.Add(-time.Hour).Truncate(time.Second), End: now.Add(48 * time.Hour).Truncate(time.Second)},
		{Status: rules.AutoReplyDisabled},
		{Status: rules.AutoReplyDisabled},
	}
	for i, w := range want {
		got := facts[i].AutoReply
		if facts[i].Err != nil || got.Status != w.Status || got.Message != w.Message || !got.Start.Equal(w.Start) || !got.End.Equal(w.End) {
			t.Errorf("%s: %+v (err %v), want %+v", mbs[i], got, facts[i].Err, w)
		}
	}
	for i := 4; i < len(mbs); i++ {
		if !errors.Is(facts[i].Err, graph.ErrMailbox) {
			t.Errorf("%s: err %v, want ErrMailbox", mbs[i], facts[i].Err)
		}
	}
	// Free/busy does not impersonate.
	if _, err := src.Schedules(context.Background(), []string{"alice@example.com"}, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	reqs := fake.Requests()
	if r := reqs[0]; r.Operation != "GetMailTips" || r.Impersonated != "presence-robot@example.com" || r.AnchorMailbox != "presence-robot@example.com" ||
		r.SendingAs != "presence-robot@example.com" || r.TimeZoneContext != "UTC" {
		t.Errorf("GetMailTips request %+v", r)
	}
	if r := reqs[1]; r.Operation != "GetUserAvailability" || r.Impersonated != "" || r.AnchorMailbox != "" {
		t.Errorf("GetUserAvailability request %+v", r)
	}
}

// TestEWSFaults: what each fault does to a request.
func TestEWSFaults(t *testing.T) {
	tests := []struct {
		name   string
		auth   string
		faults []ewstest.Fault
		n      int // times each fault is injected
		change func(*graph.EWSConfig)
		// ctx bounds the call (default: 10 s).
		timeout time.Duration
		// wantErr is a substring of the error, "" for success; is an
		// errors.Is target.
		wantErr string
		is      error
		// requests the fake answers; minWait the least time taken.
		requests int
		minWait  time.Duration
		busy     int64
	}{
		{name: "server busy fault honours BackOffMilliseconds", faults: []ewstest.Fault{{Code: "ErrorServerBusy", BackOff: 150 * time.Millisecond}}, n: 1,
			requests: 2, minWait: 150 * time.Millisecond, busy: 1},
		{name: "server busy in the response messages", faults: []ewstest.Fault{{Code: "ErrorServerBusy", BackOff: 100 * time.Millisecond, InMessage: true}}, n: 1,
			requests: 2, minWait: 100 * time.Millisecond, busy: 1},
		{name: "server busy until the retries run out", faults: []ewstest.Fault{{Code: "ErrorServerBusy", BackOff: 10 * time.Millisecond}}, n: 4,
			wantErr: "(gave up after 4 attempts)", is: graph.ErrServerBusy, requests: 4, busy: 4},
		{name: "back-off longer than allowed fails at once", faults: []ewstest.Fault{{Code: "ErrorServerBusy", BackOff: 297749 * time.Millisecond}}, n: 1,
			change: func(c *graph.EWSConfig) { c.MaxBackOff = 50 * time.Millisecond }, wantErr: "SOAP fault ErrorServerBusy: The server cannot service this request right now. Try again later. (back off 4m57.749s) (the back-off is longer than the 50ms allowed)", is: graph.ErrServerBusy, requests: 1, busy: 1},
		{name: "back-off past the deadline fails at once", faults: []ewstest.Fault{{Code: "ErrorServerBusy", BackOff: 2 * time.Second}}, n: 1,
			timeout: 500 * time.Millisecond, wantErr: "(a retry in 2s would pass the deadline)", is: graph.ErrServerBusy, requests: 1, busy: 1},
		{name: "503 retried with backoff", faults: []ewstest.Fault{{Status: 503}}, n: 2, requests: 3},
		{name: "502 with Retry-After", faults: []ewstest.Fault{{Status: 502, RetryAfter: "1"}}, n: 1, requests: 2, minWait: time.Second},
		{name: "transient internal error retried", faults: []ewstest.Fault{{Code: "ErrorInternalServerTransientError"}}, n: 1, requests: 2},
		{name: "500 without a SOAP fault retried", faults: []ewstest.Fault{{Status: 500}}, n: 1, requests: 2},
		{name: "503 until the retries run out", faults: []ewstest.Fault{{Status: 503}}, n: 5, wantErr: "ews GetUserAvailability: HTTP 503 Service Unavailable: ewstest: injected Service Unavailable (gave up after 4 attempts)", requests: 4},
		{name: "other SOAP fault is precise and final", faults: []ewstest.Fault{{Code: "ErrorImpersonateUserDenied"}}, n: 1,
			wantErr: "ews GetUserAvailability: SOAP fault ErrorImpersonateUserDenied: The account does not have permission to impersonate the requested user.", requests: 1},
		{name: "403 is final", faults: []ewstest.Fault{{Status: 403}}, n: 1, wantErr: "HTTP 403 Forbidden", requests: 1},
		{name: "401 basic is final and clear", auth: ewstest.AuthBasic, change: func(c *graph.EWSConfig) { c.Password = "wrong" },
			wantErr: `refused GetUserAvailability as svc-presence@example.com with basic auth; check the credentials and that the EWS virtual directory allows basic (it offers: Basic)`,
			is:      graph.ErrEWSUnauthorized},
		{name: "401 ntlm wrong password", change: func(c *graph.EWSConfig) { c.Password = "wrong" },
			wantErr: `with ntlm auth; check the credentials and that the EWS virtual directory allows ntlm (it offers: Negotiate, NTLM)`, is: graph.ErrEWSUnauthorized},
		{name: "401 ntlm to a server that wants basic", auth: ewstest.AuthBasic, change: func(c *graph.EWSConfig) { c.Auth = "ntlm" },
			wantErr: "(it offers: Basic)", is: graph.ErrEWSUnauthorized},
		{name: "401 bearer", auth: ewstest.AuthBearer, change: func(c *graph.EWSConfig) {
			c.Token = func(context.Context) (string, error) { return "expired", nil }
		}, wantErr: "(it offers: Bearer)", is: graph.ErrEWSUnauthorized},
		{name: "token source failing", auth: ewstest.AuthBearer, change: func(c *graph.EWSConfig) {
			c.Token = func(context.Context) (string, error) { return "", errors.New("no token today") }
		}, wantErr: "access token: no token today"},
		{name: "answer larger than allowed", change: func(c *graph.EWSConfig) { c.MaxResponseBytes = 512 }, wantErr: "answer too large: more than 512 bytes", requests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := tt.auth
			if auth == "" {
				auth = ewstest.AuthNTLM
			}
			fake := newFake(t, auth)
			fake.SetMailbox("alice@example.com", ewstest.Mailbox{Events: []ewstest.Event{{Start: at(9, 0), End: at(10, 0), BusyType: "Busy"}}})
			for _, f := range tt.faults {
				fake.Fail(tt.n, f)
			}
			src, _ := newEWS(t, fake, tt.change)
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			facts, err := src.Schedules(ctx, []string{"alice@example.com"}, at(8, 0), at(17, 0))
			took := time.Since(start)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr == "" && (len(facts) != 1 || facts[0].Err != nil || len(facts[0].Events) != 1):
				t.Fatalf("facts %+v", facts)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			case tt.is != nil && !errors.Is(err, tt.is):
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if took < tt.minWait {
				t.Errorf("took %s, want at least %s", took, tt.minWait)
			}
			if tt.requests > 0 {
				if n := len(fake.Requests()); n != tt.requests {
					t.Errorf("%d requests answered, want %d", n, tt.requests)
				}
			}
			if st := src.Stats(); st.ServerBusy != tt.busy {
				t.Errorf("ServerBusy = %d, want %d", st.ServerBusy, tt.busy)
			}
		})
	}
}

// TestEWSServerBusyHoldsAll: a back-off holds every request back, not
// just the one that got it.
func TestEWSServerBusyHoldsAll(t *testing.T) {
	fake := newFake(t, ewstest.AuthBasic)
	fake.SetMailbox("alice@example.com", ewstest.Mailbox{})
	fake.Fail(1, ewstest.Fault{Code: "ErrorServerBusy", BackOff: 300 * time.Millisecond, Operation: "GetUserAvailability"})
	src, _ := newEWS(t, fake, nil)
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		_, err := src.Schedules(ctx, []string{"alice@example.com"}, at(8, 0), at(17, 0))
		done <- err
	}()
	// Wait until the client holds requests back (BackOff is counted once
	// the pause is set), then ask for mail tips. The fake stamps each
	// request when it arrives; the pause starts after the busy answer, so
	// the mail tips may arrive no sooner than the back-off after it.
	for src.Stats().BackOff == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, err := src.AutoReplies(ctx, []string{"alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	var busy, tips time.Time
	for _, r := range fake.Requests() {
		switch {
		case r.Operation == "GetUserAvailability" && busy.IsZero():
			busy = r.Time
		case r.Operation == "GetMailTips":
			tips = r.Time
		}
	}
	if busy.IsZero() || tips.IsZero() {
		t.Fatalf("requests %+v: want the busy availability request and mail tips", fake.Requests())
	}
	if gap := tips.Sub(busy); gap < 300*time.Millisecond {
		t.Errorf("the mail tips request arrived %s after the busy answer, within the 300ms back-off", gap)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestEWSNTLMConnection: NTLM authenticates a connection once; later
// requests on it go out without a handshake.
func TestEWSNTLMConnection(t *testing.T) {
	fake := newFake(t, ewstest.AuthNTLM)
	fake.SetMailbox("alice@example.com", ewstest.Mailbox{})
	src, _ := newEWS(t, fake, nil)
	for range 5 {
		if _, err := src.Schedules(context.Background(), []string{"alice@example.com"}, at(8, 0), at(17, 0)); err != nil {
			t.Fatal(err)
		}
	}
	exchanges, handshakes := fake.Exchanges()
	// The first request: anonymous (401), NEGOTIATE (401 + CHALLENGE),
	// AUTHENTICATE (200); then one exchange each.
	if handshakes != 1 || exchanges != 3+4 {
		t.Errorf("%d HTTP exchanges, %d handshakes for 5 requests; want 7 and 1", exchanges, handshakes)
	}
	if st := src.Stats(); st.Requests != 5 || st.HTTPExchanges != 7 {
		t.Errorf("stats %+v", st)
	}
}

func TestEWSMetrics(t *testing.T) {
	fake := newFake(t, ewstest.AuthBasic)
	fake.SetMailbox("alice@example.com", ewstest.Mailbox{})
	fake.Fail(1, ewstest.Fault{Code: "ErrorServerBusy", BackOff: 20 * time.Millisecond})
	src, _ := newEWS(t, fake, nil)
	if _, err := src.Schedules(context.Background(), []string{"alice@example.com"}, at(8, 0), at(17, 0)); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := src.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP presencegw_ews_requests_total SOAP requests to Exchange Web Services by operation, retries included.
# TYPE presencegw_ews_requests_total counter
presencegw_ews_requests_total{operation="GetUserAvailability"} 2
# HELP presencegw_ews_responses_total EWS HTTP answers by status.
# TYPE presencegw_ews_responses_total counter
presencegw_ews_responses_total{status="200"} 1
presencegw_ews_responses_total{status="500"} 1
# HELP presencegw_ews_server_busy_total ErrorServerBusy answers (Exchange throttling).
# TYPE presencegw_ews_server_busy_total counter
presencegw_ews_server_busy_total 1
# HELP presencegw_ews_retried_total EWS requests sent again (busy, 5xx, broken connections).
# TYPE presencegw_ews_retried_total counter
presencegw_ews_retried_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "presencegw_ews_requests_total", "presencegw_ews_responses_total",
		"presencegw_ews_server_busy_total", "presencegw_ews_retried_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "presencegw_ews_backoff_seconds_total"); err != nil || n != 1 {
		t.Errorf("%d back-off series", n)
	}
}

func TestNewEWSConfig(t *testing.T) {
	fake := newFake(t, ewstest.AuthNTLM)
	ok := graph.EWSConfig{URL: fake.EWSURL(), Username: `EXAMPLE\svc`, Password: "p", SendingAs: "svc@example.com"}
	tests := []struct {
		name    string
		change  func(*graph.EWSConfig)
		wantErr string
	}{
		{"ntlm by default", nil, ""},
		{"upn as sender", func(c *graph.EWSConfig) { c.Username, c.SendingAs = "svc@example.com", "" }, ""},
		{"plain http", func(c *graph.EWSConfig) { c.URL = "http://mail.example.com/EWS/Exchange.asmx" }, "HTTPS is required"},
		{"no url", func(c *graph.EWSConfig) { c.URL = "" }, "not an absolute URL"},
		{"no password", func(c *graph.EWSConfig) { c.Password = "" }, "needs a username and a password"},
		{"bearer without token", func(c *graph.EWSConfig) { c.Auth = "bearer" }, "needs a token source"},
		{"unknown auth", func(c *graph.EWSConfig) { c.Auth = "kerberos" }, `auth "kerberos"`},
		{"exchange 2007", func(c *graph.EWSConfig) { c.ServerVersion = "Exchange2007_SP1" }, "use Exchange2010 or later"},
		{"exchange 2010 sp2", func(c *graph.EWSConfig) { c.ServerVersion = "Exchange2010_SP2" }, ""},
		{"no sender", func(c *graph.EWSConfig) { c.SendingAs = "" }, "sending_as is required"},
		{"missing CA file", func(c *graph.EWSConfig) { c.CAFile = "/nonexistent/ca.pem" }, "CA file"},
		{"CA file without certificates", func(c *graph.EWSConfig) { c.CAFile = "ews_test.go" }, "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			if tt.change != nil {
				tt.change(&cfg)
			}
			_, err := graph.NewEWS(cfg, slog.New(slog.DiscardHandler))
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("NewEWS: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestEWSUntrustedCertificate: without the CA file the fake's certificate
// is refused.
func TestEWSUntrustedCertificate(t *testing.T) {
	fake := newFake(t, ewstest.AuthBasic)
	src, _ := newEWS(t, fake, func(c *graph.EWSConfig) { c.CAFile = "" })
	_, err := src.Schedules(context.Background(), []string{"alice@example.com"}, at(8, 0), at(17, 0))
	if err == nil || !strings.Contains(err.Error(), "set ca_file to the CA") {
		t.Errorf("error %v, want a certificate error", err)
	}
	if st := src.Stats(); st.Retried != 0 {
		t.Errorf("a certificate error was retried %d times", st.Retried)
	}
}

// TestEWSNotSOAP: a login page in front of EWS is reported as such.
func TestEWSNotSOAP(t *testing.T) {
	fake := newFake(t, ewstest.AuthBasic)
	fake.Fail(1, ewstest.Fault{Status: http.StatusOK})
	src, _ := newEWS(t, fake, nil)
	_, err := src.Schedules(context.Background(), []string{"alice@example.com"}, at(8, 0), at(17, 0))
	if err == nil || !strings.Contains(err.Error(), "not SOAP (a proxy or login page in the way?)") {
		t.Errorf("error %v", err)
	}
}
