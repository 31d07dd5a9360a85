package presence

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/presencegw/presencegw/internal/testenv"
	"github.com/presencegw/presencegw/rules"
)

// BenchmarkBoundaryLatency: 1,000 mailboxes whose meetings start in the
// same minute (here: the same instant); the time from the boundary to
// each emitted change. Goal p99 ≤ 1 s.
func BenchmarkBoundaryLatency(b *testing.B) {
	const n = 1000
	e, _ := newEngine(b, Options{})
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("user%04d@example.com", i)
	}
	e.Track(ids)
	var all []time.Duration
	for b.Loop() {
		ch, stop := e.Subscribe(4 * n)
		start := time.Now().Add(200 * time.Millisecond)
		facts := make([]rules.MailboxFacts, n)
		for i, id := range ids {
			facts[i] = rules.MailboxFacts{Mailbox: id, Location: time.UTC, Events: []rules.Event{{Start: start, End: start.Add(time.Hour), ShowAs: rules.ShowBusy}}}
		}
		e.applySchedules(facts, time.Now())
		got := 0
		for got < n {
			c := <-ch
			if c.Output.State == rules.Busy {
				all = append(all, time.Since(start))
				got++
			}
		}
		stop()
		// Back to free for the next round.
		for i := range facts {
			facts[i].Events = nil
		}
		e.applySchedules(facts, time.Now())
	}
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(all[len(all)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkPollCost: Graph requests per mailbox per hour at 10,000
// mailboxes with schedules every 5 minutes and automatic replies every 15
// (each source call is one request). Time is scaled down 300×: a 1 s
// poll interval stands for 5 minutes. Goal ≤ 0.7.
func BenchmarkPollCost(b *testing.B) {
	const n = 10000
	const scale = 300
	for b.Loop() {
		e, _ := newEngine(b, Options{PollInterval: 5 * time.Minute / scale, AutoReplyInterval: 15 * time.Minute / scale, Concurrency: 16})
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("user%05d@example.com", i)
		}
		e.Track(ids)
		src := newFake()
		src.sizes = [2]int{20, 50}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); e.Run(ctx, src) }()
		// Three auto-reply intervals: nine schedule intervals ("45 min").
		time.Sleep(3 * 15 * time.Minute / scale)
		cancel()
		<-done
		sched, replies := src.calls()
		hours := 45.0 / 60
		b.ReportMetric(float64(len(sched)+len(replies))/n/hours, "req/mailbox/h")
		b.ReportMetric(float64(len(sched))/n/hours, "schedule-req/mailbox/h")
		b.ReportMetric(float64(len(replies))/n/hours, "autoreply-req/mailbox/h")
	}
}

// BenchmarkMemoryPerMailbox: heap per tracked mailbox with a day's
// typical calendar (four meetings, one with a subject) and an automatic
// reply. Goal ≤ 4 KiB.
func BenchmarkMemoryPerMailbox(b *testing.B) {
	const n = 100000
	for b.Loop() {
		before := testenv.LiveHeap()
		e, _ := newEngine(b, Options{})
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("user%06d@example.com", i)
		}
		e.Track(ids)
		now := time.Now()
		facts := make([]rules.MailboxFacts, 0, 20)
		replies := make([]rules.MailboxFacts, 0, 20)
		for i, id := range ids {
			var evs []rules.Event
			for k := range 4 {
				s := now.Add(time.Duration(k+1) * time.Hour)
				evs = append(evs, rules.Event{Start: s, End: s.Add(30 * time.Minute), ShowAs: rules.ShowBusy})
			}
			evs[0].Subject, evs[0].Location = fmt.Sprintf("Sync %d", i), "Room 4"
			facts = append(facts, rules.MailboxFacts{Mailbox: id, Events: evs, Location: time.UTC})
			replies = append(replies, rules.MailboxFacts{Mailbox: id, AutoReply: rules.AutoReply{Status: rules.AutoReplyDisabled}})
			if len(facts) == cap(facts) {
				e.applySchedules(facts, now)
				e.applyAutoReplies(replies, now)
				facts, replies = facts[:0], replies[:0]
			}
		}
		after := testenv.LiveHeap()
		runtime.KeepAlive(e)
		b.ReportMetric(float64(after-before)/n, "B/mailbox")
	}
}

// BenchmarkChangedSince: the XMPP publisher's periodic question at 10,000
// tracked mailboxes with 7 meetings each, when 1 % of them changed since
// it last asked (a re-read of everyone, Get and Next each, was 168 ms and
// 124 MB allocated).
func BenchmarkChangedSince(b *testing.B) {
	const n = 10000
	e, _ := newEngine(b, Options{})
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("user%05d@example.com", i)
	}
	e.Track(ids)
	now := time.Now()
	day := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
	facts := make([]rules.MailboxFacts, n)
	for i, id := range ids {
		var evs []rules.Event
		for h := range 7 {
			s := day.Add(time.Duration(8+h) * time.Hour)
			evs = append(evs, rules.Event{Start: s, End: s.Add(30 * time.Minute), ShowAs: rules.ShowBusy, Subject: "Meeting"})
		}
		facts[i] = rules.MailboxFacts{Mailbox: id, Location: time.UTC, Events: evs}
	}
	e.applySchedules(facts, now)
	_, v := e.ChangedSince(0)
	changed := 0
	for b.Loop() {
		b.StopTimer()
		for i := range n / 100 {
			id := ids[(changed+i*100)%n]
			e.SetChat(id, rules.Chat{Known: true, Resources: []rules.Resource{{Name: "pc", Status: fmt.Sprint(changed)}}})
		}
		changed++
		b.StartTimer()
		var got []string
		got, v = e.ChangedSince(v)
		for _, id := range got { // what the publisher does with each
			e.Get(id)
			e.Next(id)
		}
		if len(got) != n/100 {
			b.Fatalf("%d changed, want %d", len(got), n/100)
		}
	}
}
