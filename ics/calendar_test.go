package ics

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/presencegw/presencegw/rules"
)

func parseFile(t *testing.T, file string, opt Options) *Calendar {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	cal, err := Parse(data, opt)
	if err != nil {
		t.Fatal(err)
	}
	return cal
}

func utc(y int, m time.Month, d, h, mi int) time.Time {
	return time.Date(y, m, d, h, mi, 0, 0, time.UTC)
}

// find returns the events with the subject, cancelled or not.
func find(events []rules.Event, subject string, cancelled bool) []rules.Event {
	var out []rules.Event
	for _, e := range events {
		if e.Subject == subject && e.Cancelled == cancelled {
			out = append(out, e)
		}
	}
	return out
}

// TestGoldenFacts restates, as UTC instants worked out by hand, the
// facts of the golden files that matter most.
func TestGoldenFacts(t *testing.T) {
	march, may := utc(2024, 3, 1, 0, 0), utc(2024, 5, 1, 0, 0)
	type want struct {
		subject    string
		starts     []time.Time
		show       rules.ShowAs
		allDay     bool
		cancelled  bool
		firstEnd   time.Time
		checkFirst bool
	}
	cases := []struct {
		file string
		opt  Options
		want []want
	}{
		{"google.ics", Options{Owner: "alice@example.com"}, []want{
			// 09:00 Berlin: CET (08:00Z) until 31 March, CEST (07:00Z) after;
			// 18 March excluded, 8 April moved, 15 April cancelled.
			{subject: "Team sync", show: rules.ShowBusy, starts: []time.Time{utc(2024, 3, 4, 8, 0), utc(2024, 3, 11, 8, 0), utc(2024, 3, 25, 8, 0), utc(2024, 4, 1, 7, 0), utc(2024, 4, 22, 7, 0), utc(2024, 4, 29, 7, 0)}},
			{subject: "Team sync", show: rules.ShowFree, cancelled: true, starts: []time.Time{utc(2024, 4, 15, 7, 0)}},
			{subject: "Team sync (moved)", show: rules.ShowBusy, starts: []time.Time{utc(2024, 4, 9, 12, 0)}},
			{subject: "Vendor pitch", show: rules.ShowFree, starts: []time.Time{utc(2024, 3, 13, 15, 0)}},
			{subject: "Maybe", show: rules.ShowTentative, starts: []time.Time{utc(2024, 3, 13, 16, 30)}},
			{subject: "Conference Berlin", show: rules.ShowFree, allDay: true, starts: []time.Time{utc(2024, 3, 19, 23, 0)}, firstEnd: utc(2024, 3, 21, 23, 0), checkFirst: true},
		}},
		{"outlook.ics", Options{Location: mustZone(t, "Europe/Berlin")}, []want{
			// Seattle changes to PDT on 10 March, Berlin three weeks later.
			{subject: "Standup Seattle", show: rules.ShowBusy, starts: []time.Time{utc(2024, 3, 7, 17, 0), utc(2024, 3, 8, 17, 0), utc(2024, 3, 9, 17, 0), utc(2024, 3, 10, 16, 0), utc(2024, 3, 11, 16, 0)}},
			{subject: "Call with Seattle", show: rules.ShowBusy, starts: []time.Time{utc(2024, 3, 11, 15, 0)}},
			{subject: "Jour fixe", show: rules.ShowBusy, starts: []time.Time{utc(2024, 3, 5, 9, 0), utc(2024, 3, 19, 9, 0), utc(2024, 3, 26, 9, 0), utc(2024, 4, 9, 8, 0), utc(2024, 4, 16, 8, 0), utc(2024, 4, 23, 8, 0)}},
			{subject: "Jour fixe (verschoben)", show: rules.ShowTentative, starts: []time.Time{utc(2024, 3, 12, 14, 0)}},
			{subject: "Urlaub", show: rules.ShowOOF, allDay: true, starts: []time.Time{utc(2024, 4, 7, 22, 0)}, firstEnd: utc(2024, 4, 12, 22, 0), checkFirst: true},
			{subject: "Homeoffice", show: rules.ShowWorkingElsewhere, starts: []time.Time{utc(2024, 3, 15, 7, 0)}},
		}},
		{"outlook.ics", Options{}, []want{
			// Without the person's zone, all-day dates are UTC days.
			{subject: "Urlaub", show: rules.ShowOOF, allDay: true, starts: []time.Time{utc(2024, 4, 8, 0, 0)}, firstEnd: utc(2024, 4, 13, 0, 0), checkFirst: true},
		}},
		{"fastmail.ics", Options{}, []want{
			// 07:00 Melbourne: AEDT (20:00Z the day before) until 7 April, AEST (21:00Z) after.
			{subject: "Swim", show: rules.ShowBusy, starts: []time.Time{utc(2024, 3, 27, 20, 0), utc(2024, 4, 3, 20, 0), utc(2024, 4, 10, 21, 0), utc(2024, 4, 24, 21, 0)}},
			{subject: "Swim (Friday)", show: rules.ShowBusy, starts: []time.Time{utc(2024, 4, 18, 20, 30)}},
		}},
		{"edge.ics", Options{}, []want{
			{subject: "Weekly", show: rules.ShowBusy, starts: []time.Time{utc(2024, 3, 6, 9, 0), utc(2024, 3, 13, 9, 0)}},
			// THISANDFUTURE from 20 March: an hour later, an hour long, in wall-clock time.
			{subject: "Weekly (later, longer)", show: rules.ShowBusy, starts: []time.Time{utc(2024, 3, 20, 10, 0), utc(2024, 3, 27, 10, 0), utc(2024, 4, 10, 9, 0), utc(2024, 4, 17, 9, 0)}, firstEnd: utc(2024, 3, 20, 11, 0), checkFirst: true},
			{subject: "Weekly (one-off)", show: rules.ShowBusy, starts: []time.Time{utc(2024, 4, 3, 13, 0)}},
			{subject: "In the DST gap", show: rules.ShowBusy, starts: []time.Time{utc(2024, 3, 31, 1, 30)}, firstEnd: utc(2024, 3, 31, 2, 30), checkFirst: true},
			{subject: "Acme zone", show: rules.ShowBusy, starts: []time.Time{utc(2024, 3, 8, 14, 0), utc(2024, 3, 15, 13, 0)}},
			{subject: "Custom zone", show: rules.ShowBusy, starts: []time.Time{utc(2024, 3, 12, 4, 30)}},
		}},
	}
	for _, tc := range cases {
		cal := parseFile(t, tc.file, tc.opt)
		events := cal.Events(march, may)
		for _, w := range tc.want {
			got := find(events, w.subject, w.cancelled)
			if len(got) != len(w.starts) {
				t.Errorf("%s %q: %d occurrences, want %d", tc.file, w.subject, len(got), len(w.starts))
				continue
			}
			for i, e := range got {
				if !e.Start.Equal(w.starts[i]) || e.ShowAs != w.show || e.AllDay != w.allDay || e.Cancelled != w.cancelled {
					t.Errorf("%s %q #%d: %v %s all-day %v cancelled %v, want %v %s %v %v", tc.file, w.subject, i,
						e.Start.UTC(), e.ShowAs, e.AllDay, e.Cancelled, w.starts[i], w.show, w.allDay, w.cancelled)
				}
			}
			if w.checkFirst && !got[0].End.Equal(w.firstEnd) {
				t.Errorf("%s %q: ends %v, want %v", tc.file, w.subject, got[0].End.UTC(), w.firstEnd)
			}
		}
	}
}

// The window takes events that overlap it, cut nowhere: one that began
// before and one that ends after are both in.
func TestWindowOverlap(t *testing.T) {
	cal := parseFile(t, "google.ics", Options{})
	got := cal.Events(utc(2024, 3, 4, 8, 15), utc(2024, 3, 4, 8, 16))
	if len(got) != 1 || got[0].Subject != "Team sync" || !got[0].Start.Equal(utc(2024, 3, 4, 8, 0)) {
		t.Fatalf("%+v, want the meeting in progress", got)
	}
	if got := cal.Events(utc(2024, 3, 4, 8, 30), utc(2024, 3, 4, 9, 0)); len(got) != 0 {
		t.Errorf("%+v: a meeting that ended at the window's start is not in it", got)
	}
	if got := cal.Events(utc(2024, 3, 4, 7, 0), utc(2024, 3, 4, 8, 0)); len(got) != 0 {
		t.Errorf("%+v: a meeting that starts at the window's end is not in it", got)
	}
}

func TestPrune(t *testing.T) {
	cal := parseFile(t, "google.ics", Options{})
	before := len(cal.series)
	cal.prune(utc(2024, 4, 1, 0, 0))
	// The unbounded weekly series stays (with its exceptions); the
	// single events of March go.
	if len(cal.series) != 1 || cal.series[0].uid != "5l2kcq0e6mv3ihtqf9o1t7b2s4@google.com" {
		t.Errorf("%d of %d series left, want only the weekly one", len(cal.series), before)
	}
	if got := cal.Events(utc(2024, 4, 1, 0, 0), utc(2024, 5, 1, 0, 0)); len(got) != 5 {
		t.Errorf("%d events in April after pruning, want 5", len(got))
	}
}

func TestLoadZoneOption(t *testing.T) {
	tokyo := mustZone(t, "Asia/Tokyo")
	data := []byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=Tokyo Standard Time:20240312T090000\r\nDURATION:PT30M\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
	cal, err := Parse(data, Options{LoadZone: func(name string) (*time.Location, error) {
		if name == "Tokyo Standard Time" {
			return tokyo, nil
		}
		return nil, os.ErrNotExist
	}})
	if err != nil || len(cal.Problems) > 0 {
		t.Fatal(err, cal.Problems)
	}
	got := cal.Events(utc(2024, 3, 1, 0, 0), utc(2024, 4, 1, 0, 0))
	if len(got) != 1 || !got[0].Start.Equal(utc(2024, 3, 12, 0, 0)) {
		t.Errorf("%+v, want 09:00 Tokyo = 00:00Z", got)
	}
	// Without the hook and without a VTIMEZONE the event is a problem.
	cal, err = Parse(data, Options{})
	if err != nil || len(cal.Problems) != 1 {
		t.Errorf("%v %v, want one problem", err, cal.Problems)
	}
}

// The facts of a feed, through the rules: a day of the Outlook feed as
// the engine would see it.
func TestFactsThroughRules(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	cal := parseFile(t, "outlook.ics", Options{Location: berlin})
	derive := func(at time.Time) rules.Output {
		events := cal.Events(at.Add(-time.Hour), at.Add(8*time.Hour))
		return rules.Derive(rules.Input{
			Calendar: rules.Calendar{Events: events, AutoReply: rules.AutoReply{Status: rules.AutoReplyDisabled}, Location: cal.Zone, Known: true},
			Policy:   rules.DefaultPolicy(),
		}, at)
	}
	for _, tc := range []struct {
		at    time.Time
		state rules.State
		until time.Time
	}{
		{utc(2024, 3, 5, 9, 30), rules.Busy, utc(2024, 3, 5, 10, 0)},    // Jour fixe
		{utc(2024, 3, 5, 10, 30), rules.Available, time.Time{}},         // after it
		{utc(2024, 3, 18, 12, 30), rules.Available, time.Time{}},        // "Lesezeit" is free
		{utc(2024, 4, 10, 9, 0), rules.OOF, utc(2024, 4, 12, 22, 0)},    // all-day OOF event
		{utc(2024, 3, 9, 17, 5), rules.Busy, utc(2024, 3, 9, 17, 15)},   // Seattle standup, PST
		{utc(2024, 3, 10, 16, 5), rules.Busy, utc(2024, 3, 10, 16, 15)}, // and PDT
		{utc(2024, 3, 14, 7, 0), rules.Busy, utc(2024, 3, 14, 7, 30)},   // private: busy, no subject
	} {
		out := derive(tc.at)
		if out.Calendar.State != tc.state || !out.Calendar.Until.Equal(tc.until) {
			t.Errorf("%v: %s until %v, want %s until %v", tc.at, out.Calendar.State, out.Calendar.Until.UTC(), tc.state, tc.until)
		}
	}
}

// Occurrences at wall times a DST change skips or repeats follow RFC
// 5545: the gap is read with the offset before it, the repeated hour is
// the first.
func TestRecurrenceAtDSTChanges(t *testing.T) {
	data := []byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:night\r\nDTSTART;TZID=Europe/Berlin:20240317T023000\r\nDURATION:PT15M\r\nRRULE:FREQ=WEEKLY;BYDAY=SU\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
	cal, err := Parse(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := cal.Events(utc(2024, 3, 30, 0, 0), utc(2024, 4, 1, 0, 0))
	if len(got) != 1 || !got[0].Start.Equal(utc(2024, 3, 31, 1, 30)) {
		t.Errorf("spring: %+v, want 03:30 CEST (01:30Z)", got)
	}
	got = cal.Events(utc(2024, 10, 26, 0, 0), utc(2024, 10, 28, 0, 0))
	if len(got) != 1 || !got[0].Start.Equal(utc(2024, 10, 27, 0, 30)) {
		t.Errorf("autumn: %+v, want the first 02:30, CEST (00:30Z)", got)
	}
}

// Starting a rule later (rule.from) must not change a single occurrence:
// compared with rrule-go iterating from DTSTART, for rules of every
// frequency with the parts that decide where occurrences fall.
func TestRebaseMatchesFullIteration(t *testing.T) {
	rrules := []string{
		"FREQ=DAILY", "FREQ=DAILY;INTERVAL=3", "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR", "FREQ=DAILY;INTERVAL=2;BYMONTH=3,10",
		"FREQ=WEEKLY", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR", "FREQ=WEEKLY;INTERVAL=3;BYDAY=SU;WKST=SU", "FREQ=WEEKLY;UNTIL=20260101T000000Z",
		"FREQ=MONTHLY", "FREQ=MONTHLY;INTERVAL=5", "FREQ=MONTHLY;BYDAY=1FR", "FREQ=MONTHLY;BYDAY=-1MO;INTERVAL=2",
		"FREQ=MONTHLY;BYMONTHDAY=31", "FREQ=MONTHLY;BYMONTHDAY=-1,15", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
		"FREQ=YEARLY", "FREQ=YEARLY;INTERVAL=2", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
		"FREQ=YEARLY;BYYEARDAY=100,-1", "FREQ=YEARLY;BYMONTH=2", "FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29",
	}
	starts := []string{"20150131T093000", "20150329T023000", "20160229T180000", "20150105T000000"}
	windows := []time.Time{utc(2015, 6, 1, 0, 0), utc(2019, 12, 30, 0, 0), utc(2024, 2, 28, 0, 0), utc(2024, 10, 27, 0, 0), utc(2031, 1, 1, 0, 0)}
	for _, rr := range rrules {
		for _, st := range starts {
			data := []byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:r\r\nDTSTART;TZID=Europe/Berlin:" + st + "\r\nDURATION:PT1H\r\nRRULE:" + rr + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
			cal, err := Parse(data, Options{})
			if err != nil || len(cal.Problems) > 0 || len(cal.series) != 1 {
				t.Fatalf("%s from %s: %v %v", rr, st, err, cal.Problems)
			}
			if len(cal.series[0].rules) == 0 {
				continue // never occurs from this start (29 February every 4 years from 2015)
			}
			r := cal.series[0].rules[0]
			for _, lo := range windows {
				hi := lo.AddDate(0, 4, 0)
				full := r.r.Between(lo, hi, true)
				moved := r.from(lo).Between(lo, hi, true)
				if len(full) != len(moved) {
					t.Errorf("%s from %s, window %v: %d occurrences, %d when started later", rr, st, lo, len(full), len(moved))
					continue
				}
				for i := range full {
					if !full[i].Equal(moved[i]) {
						t.Errorf("%s from %s: occurrence %v, started later %v", rr, st, full[i], moved[i])
						break
					}
				}
			}
		}
	}
}
