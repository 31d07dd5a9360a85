package graph

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/presencegw/presencegw/graph/ewstest"
	"github.com/presencegw/presencegw/internal/presence"
	"github.com/presencegw/presencegw/rules"
)

// The engine's default poll intervals (internal/presence Options):
// schedules every 5 minutes, automatic replies every 15.
const (
	enginePoll      = 5 * time.Minute
	engineAutoReply = 15 * time.Minute
)

// TestEWSPollBudget: requests per mailbox and hour at 10,000 mailboxes
// with the engine's defaults, from the source's batch sizes. Goal ≤ 0.3
// with out-of-office (calendars alone at 100 per request: 0.12).
func TestEWSPollBudget(t *testing.T) {
	src, err := NewEWS(EWSConfig{URL: "https://mail.example.com/EWS/Exchange.asmx", Username: `EXAMPLE\svc`, Password: "p",
		SendingAs: "svc@example.com"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	const n = 10000
	sched, replies := src.BatchSizes()
	perHour := func(size int, every time.Duration) float64 {
		return math.Ceil(float64(n)/float64(size)) * float64(time.Hour/every)
	}
	calendars := perHour(sched, enginePoll) / n
	oof := perHour(replies, engineAutoReply) / n
	t.Logf("requests/mailbox/h: %.3f (GetUserAvailability %.3f + GetMailTips %.3f)", calendars+oof, calendars, oof)
	if calendars != 0.12 || calendars+oof > 0.3 {
		t.Errorf("calendars %.3f (want 0.12), total %.3f (goal ≤ 0.3)", calendars, calendars+oof)
	}
}

// memStore is the engine's store, in memory.
type memStore struct{}

func (memStore) ForEach(string, func(string, []byte) error) error      { return nil }
func (memStore) Write(string, bool, map[string][]byte, []string) error { return nil }

// BenchmarkEWSPollCost runs the real engine poller with the real EWS
// source (NTLM) against the fake for 10,000 mailboxes, with the engine's
// intervals scaled down 100× (a 3 s poll interval stands for 5 minutes),
// until the fake has seen one full cycle of each kind (every mailbox's
// schedule and automatic replies read once), and counts the SOAP requests
// that cycle took. The engine has no fake clock and a loaded machine
// stretches its cycles, so the hour is scaled from the cycles, not timed:
// requests per cycle × cycles per hour at the default intervals (12 of
// schedules, 4 of automatic replies). Goal ≤ 0.3 requests per mailbox and
// hour including out-of-office.
func BenchmarkEWSPollCost(b *testing.B) {
	const n = 10000
	const scale = 100
	for b.Loop() {
		fake := ewstest.New(b)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("user%05d@example.com", i)
			mb := ewstest.Mailbox{Events: []ewstest.Event{{Start: time.Now().Add(time.Duration(i%480) * time.Minute), End: time.Now().Add(time.Duration(i%480+30) * time.Minute), BusyType: "Busy", Subject: "Sync"}}}
			if i%20 == 0 {
				mb.OOF = &ewstest.OOF{Message: "Out until Monday"}
			}
			fake.SetMailbox(ids[i], mb)
		}
		src, err := NewEWS(EWSConfig{URL: fake.EWSURL(), Username: fake.Domain + `\` + fake.Username, Password: fake.Password,
			SendingAs: "svc-presence@example.com", CAFile: fake.CAFile(b), RetryDelay: 10 * time.Millisecond}, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		e, err := presence.New(rules.DefaultPolicy(), presence.Options{PollInterval: enginePoll / scale, AutoReplyInterval: engineAutoReply / scale,
			Concurrency: 8}, memStore{}, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		e.Track(ids)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); e.Run(ctx, src) }()
		// perCycle is the requests of op, in order, until every mailbox
		// was read once.
		perCycle := func(op string) (int, bool) {
			seen, k := map[string]bool{}, 0
			for _, r := range fake.Requests() {
				if r.Operation != op || r.Status != 200 {
					continue
				}
				k++
				for _, mb := range r.Mailboxes {
					seen[mb] = true
				}
				if len(seen) == n {
					return k, true
				}
			}
			return k, false
		}
		var sched, replies int
		for deadline := time.Now().Add(10 * engineAutoReply / scale); ; time.Sleep(100 * time.Millisecond) {
			var ok1, ok2 bool
			sched, ok1 = perCycle("GetUserAvailability")
			replies, ok2 = perCycle("GetMailTips")
			if ok1 && ok2 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("no full cycle after %s: %d schedule and %d auto-reply requests", 10*engineAutoReply/scale, sched, replies)
			}
		}
		cancel()
		<-done
		perHour := float64(sched)*float64(time.Hour/enginePoll) + float64(replies)*float64(time.Hour/engineAutoReply)
		st := src.Stats()
		_, handshakes := fake.Exchanges()
		b.ReportMetric(perHour/n, "req/mailbox/h")
		b.ReportMetric(float64(sched)*float64(time.Hour/enginePoll)/n, "availability-req/mailbox/h")
		b.ReportMetric(float64(replies)*float64(time.Hour/engineAutoReply)/n, "mailtips-req/mailbox/h")
		b.ReportMetric(float64(st.HTTPExchanges)/float64(st.Requests), "http/req")
		b.ReportMetric(float64(handshakes), "ntlm-handshakes")
		if st.Failed > 0 {
			b.Errorf("%d requests failed: %+v", st.Failed, st)
		}
	}
}

// BenchmarkParseAvailability100: parsing a GetUserAvailability answer
// for 100 mailboxes with eight detailed events each over a 9-hour
// window (the engine's look-behind and look-ahead), in MB/s.
func BenchmarkParseAvailability100(b *testing.B) {
	fake := ewstest.New(b)
	start := time.Date(2026, 5, 4, 7, 0, 0, 0, time.UTC)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		b.Fatal(err)
	}
	mbs := make([]string, 100)
	for i := range mbs {
		mbs[i] = fmt.Sprintf("user%03d@example.com", i)
		var evs []ewstest.Event
		for k := range 8 {
			s := start.Add(time.Duration(k)*time.Hour + time.Duration(i%4)*15*time.Minute)
			evs = append(evs, ewstest.Event{Start: s, End: s.Add(45 * time.Minute), BusyType: "Busy", Subject: fmt.Sprintf("Meeting %d about item %d", k, i),
				Location: "Room " + fmt.Sprint(k), IsMeeting: true, IsPrivate: k == 3})
		}
		fake.SetMailbox(mbs[i], ewstest.Mailbox{Events: evs, TimeZone: berlin})
	}
	raw := fake.AvailabilityBody(mbs, start, start.Add(9*time.Hour), 5*time.Minute)
	b.SetBytes(int64(len(raw)))
	b.ReportMetric(float64(len(raw)), "bytes/answer")
	for b.Loop() {
		facts, err := parseAvailability(raw, mbs, start, 5*time.Minute)
		if err != nil || len(facts) != 100 || len(facts[99].Events) != 8 {
			b.Fatalf("%v %d", err, len(facts))
		}
	}
}
