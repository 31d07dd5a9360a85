package presence

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/presencegw/presencegw/rules"
)

// The mailbox gauges follow what happens: a mailbox failing alone is
// failing (and stale, never read), an outage makes every mailbox stale,
// and recovery clears both.
func TestMailboxGauges(t *testing.T) {
	e, _ := newEngine(t, Options{PollInterval: 100 * time.Millisecond, AutoReplyInterval: time.Hour, LookAhead: time.Hour, MailboxRetry: 150 * time.Millisecond})
	reg := prometheus.NewRegistry()
	if err := e.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	src := newFake()
	meeting := []rules.Event{{Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour), ShowAs: rules.ShowBusy}}
	src.set(func(f *fakeSource) {
		f.events["ok@example.com"] = meeting
		f.events["denied@example.com"] = meeting
		f.failing["denied@example.com"] = true
	})
	e.Track([]string{"ok@example.com", "denied@example.com"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx, src)

	gauges := func() [3]float64 {
		return [3]float64{testutil.ToFloat64(e.metrics.tracked), testutil.ToFloat64(e.metrics.stale), testutil.ToFloat64(e.metrics.failing)}
	}
	// waitGauges polls until tracked, stale and failing are want.
	waitGauges := func(phase string, want [3]float64) {
		t.Helper()
		var got [3]float64
		for start := time.Now(); time.Since(start) < 3*time.Second; time.Sleep(20 * time.Millisecond) {
			if got = gauges(); got == want {
				return
			}
		}
		t.Fatalf("%s: tracked, stale, failing = %v, want %v", phase, got, want)
	}
	waitGauges("one mailbox failing alone", [3]float64{2, 1, 1})
	src.set(func(f *fakeSource) { f.down = true })
	// Two intervals without a good read: both stale; the failing one
	// keeps its last error.
	waitGauges("outage", [3]float64{2, 2, 1})
	src.set(func(f *fakeSource) { f.down = false; delete(f.failing, "denied@example.com") })
	waitGauges("recovered", [3]float64{2, 0, 0})
}
