package presence

import (
	"testing"
	"time"

	"github.com/presencegw/presencegw/rules"
)

func TestNext(t *testing.T) {
	now := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return time.Date(2026, 11, 25, h, m, 0, 0, time.UTC) }
	tests := []struct {
		name   string
		events []rules.Event
		optOut bool
		ok     bool
		at     time.Time
		state  rules.State
		until  time.Time
	}{
		{name: "meeting ahead", events: []rules.Event{{Start: at(14, 30), End: at(15, 0), ShowAs: rules.ShowBusy}},
			ok: true, at: at(14, 30), state: rules.Busy, until: at(15, 0)},
		{name: "in a meeting: its end", events: []rules.Event{{Start: at(13, 30), End: at(14, 15), ShowAs: rules.ShowBusy}},
			ok: true, at: at(14, 15), state: rules.Available},
		{name: "back to back merge: the end of both", events: []rules.Event{
			{Start: at(13, 30), End: at(14, 15), ShowAs: rules.ShowBusy}, {Start: at(14, 15), End: at(14, 45), ShowAs: rules.ShowBusy}},
			ok: true, at: at(14, 45), state: rules.Available},
		{name: "free events change nothing", events: []rules.Event{{Start: at(14, 30), End: at(15, 0), ShowAs: rules.ShowFree}},
			ok: true, at: at(14, 0).Add(8 * time.Hour), state: rules.Unknown},
		{name: "opted out: calendar unknown ahead", events: []rules.Event{{Start: at(14, 30), End: at(15, 0), ShowAs: rules.ShowBusy}},
			optOut: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newEngine(t, Options{})
			e.now = func() time.Time { return now }
			e.Track([]string{"a@x"})
			if tc.optOut {
				if err := e.SetOptOut("a@x", true); err != nil {
					t.Fatal(err)
				}
			}
			e.applySchedules([]rules.MailboxFacts{{Mailbox: "a@x", Events: tc.events, Location: time.UTC}}, now)
			next, out, ok := e.Next("A@x")
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (at %v, %+v)", ok, tc.ok, next, out)
			}
			if !ok {
				return
			}
			if !next.Equal(tc.at) || out.Calendar.State != tc.state || !out.Calendar.Until.Equal(tc.until) {
				t.Errorf("Next = %v, calendar %s until %v; want %v, %s until %v", next, out.Calendar.State, out.Calendar.Until, tc.at, tc.state, tc.until)
			}
			// The timer derives the same when the time comes.
			e.now = func() time.Time { return next }
			if got, _ := e.Get("a@x"); !sameOutput(got, out) {
				t.Errorf("at %v Get = %+v, Next said %+v", next, got, out)
			}
		})
	}
	e, _ := newEngine(t, Options{})
	if _, _, ok := e.Next("nobody@x"); ok {
		t.Error("Next of an untracked mailbox is ok")
	}
}
