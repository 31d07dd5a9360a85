package xmppbot

import (
	"testing"
	"time"

	"github.com/presencegw/presencegw/rules"
)

// TestPublisherDue: what the publisher sends next for one person, given
// what it wants and what the server holds, with the module's own doings
// (a pending overlay promoted at since, an overlay dropped at until)
// taken into account only where the module takes scheduled overlays.
func TestPublisherDue(t *testing.T) {
	now := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	const j = "alice@example.test"
	m1 := overlay{Show: "dnd", Status: "In a meeting until 14:30", Until: now.Add(30 * time.Minute)}
	m2 := overlay{Show: "dnd", Status: "In a meeting until 15:00", Until: now.Add(time.Hour)}
	ended := overlay{Show: "dnd", Status: "In a meeting until 13:59", Until: now.Add(-time.Minute)}
	sched := func(since time.Time, o overlay) *scheduled { return &scheduled{Since: since, O: o} }
	tests := []struct {
		name              string
		schedules         bool
		want, have        *overlay
		wantNext, hasNext *scheduled
		due               string // "" none, else the request kind
	}{
		{name: "in sync", schedules: true, want: &m1, have: &m1},
		{name: "promoted at since: nothing to send", schedules: true, want: &m2, have: &m1, hasNext: sched(now.Add(-time.Second), m2)},
		{name: "not yet promoted: the current wish is sent", schedules: true, want: &m2, have: &m1, hasNext: sched(now.Add(time.Second), m2), due: "set"},
		{name: "expired at until: no clear", schedules: true, have: &ended},
		{name: "old module: the clear is sent", schedules: false, have: &ended, due: "clear"},
		{name: "next state scheduled", schedules: true, want: &m1, have: &m1, wantNext: sched(now.Add(30*time.Minute), m2), due: "schedule"},
		{name: "next state already pending", schedules: true, want: &m1, have: &m1, wantNext: sched(now.Add(30*time.Minute), m2), hasNext: sched(now.Add(30*time.Minute), m2)},
		{name: "meeting moved: re-sent", schedules: true, want: &m1, have: &m1, wantNext: sched(now.Add(40*time.Minute), m2), hasNext: sched(now.Add(30*time.Minute), m2), due: "schedule"},
		{name: "meeting cancelled: cancel", schedules: true, want: &m1, have: &m1, hasNext: sched(now.Add(30*time.Minute), m2), due: "cancel"},
		{name: "too late to schedule", schedules: true, want: &m1, have: &m1, wantNext: sched(now.Add(-time.Millisecond), m2)},
		{name: "old module: nothing scheduled", schedules: false, want: &m1, have: &m1, wantNext: sched(now.Add(30*time.Minute), m2)},
		{name: "current first", schedules: true, want: &m1, wantNext: sched(now.Add(30*time.Minute), m2), due: "set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &publisher{now: func() time.Time { return now }, schedules: tc.schedules,
				want: map[string]overlay{}, have: map[string]overlay{}, wantNext: map[string]scheduled{},
				haveNext: map[string]scheduled{}, unsaved: map[string]bool{}}
			if tc.want != nil {
				p.want[j] = *tc.want
			}
			if tc.have != nil {
				p.have[j] = *tc.have
			}
			if tc.wantNext != nil {
				p.wantNext[j] = *tc.wantNext
			}
			if tc.hasNext != nil {
				p.haveNext[j] = *tc.hasNext
			}
			r, ok := p.due(j)
			got := ""
			if ok {
				got = r.kind()
			}
			if got != tc.due {
				t.Errorf("due = %q (%+v), want %q", got, r, tc.due)
			}
		})
	}
}

// TestNextWant: only an overlay that differs from the current one is
// scheduled; since carries milliseconds.
func TestNextWant(t *testing.T) {
	at := time.Date(2026, 11, 25, 14, 30, 0, 123456789, time.UTC)
	busy := func(status string, until time.Time) rules.Output {
		return rules.Output{Calendar: rules.CalendarNow{State: rules.Busy, Status: status, Until: until}}
	}
	cur, _ := wantFor(busy("In a meeting until 14:30", at))
	if _, ok := nextWant(at, rules.Output{Calendar: rules.CalendarNow{State: rules.Available}}, cur, true); ok {
		t.Error("a change to no overlay is scheduled")
	}
	if _, ok := nextWant(at, busy("In a meeting until 14:30", at), cur, true); ok {
		t.Error("the same overlay is scheduled again")
	}
	s, ok := nextWant(at, busy("In a meeting until 15:00", at.Add(30*time.Minute)), cur, true)
	if !ok || s.Since != at.Truncate(time.Millisecond) || s.O.Show != "dnd" || s.O.Status != "In a meeting until 15:00" {
		t.Errorf("nextWant = %+v, %v", s, ok)
	}
	if got := s.Since.Format(sinceFormat); got != "2026-11-25T14:30:00.123Z" {
		t.Errorf("since on the wire %q", got)
	}
}
