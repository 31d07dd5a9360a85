package rules

import (
	"testing"
	"time"
)

var berlin = mustLoad("Europe/Berlin")

func mustLoad(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// at is a time in Berlin on Wednesday 25 November 2026.
func at(hhmm string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", "2026-11-25 "+hhmm, berlin)
	if err != nil {
		panic(err)
	}
	return t
}

func ev(start, end string, show ShowAs) Event {
	return Event{Start: at(start), End: at(end), ShowAs: show}
}

func cal(events ...Event) Calendar {
	return Calendar{Events: events, Location: berlin, Known: true}
}

var (
	online  = Chat{Known: true, Resources: []Resource{{Name: "laptop"}}}
	offline = Chat{Known: true}
)

func chatWith(rs ...Resource) Chat { return Chat{Known: true, Resources: rs} }

func policy(change func(*Policy)) Policy {
	p := DefaultPolicy()
	if change != nil {
		change(&p)
	}
	return p
}

func TestDerive(t *testing.T) {
	// An "until" on a later day is re-derived at midnight, when its text
	// changes ("until Thu 00:30" → "until 00:30").
	midnight := at("00:00").Add(24 * time.Hour)
	holiday := AutoReply{Status: AutoReplyScheduled, Start: at("00:00").Add(-48 * time.Hour),
		End: time.Date(2026, 12, 1, 0, 0, 0, 0, berlin), Message: "\n  I'm on holiday until Monday.  \nUrgent: call Bob."}
	tests := []struct {
		name string
		in   Input
		now  time.Time
		want Output
	}{
		{
			name: "free and online: available, next change at the meeting",
			in:   Input{Calendar: cal(ev("14:00", "14:30", ShowBusy)), Chat: online, Policy: DefaultPolicy()},
			now:  at("13:00"),
			want: Output{State: Available, Source: SourceXMPP, Next: at("14:00"), Calendar: CalendarNow{State: Available}},
		},
		{
			name: "meeting starts: busy until its end, in the mailbox's zone",
			in:   Input{Calendar: cal(ev("14:00", "14:30", ShowBusy)), Chat: online, Policy: DefaultPolicy()},
			now:  at("14:00"),
			want: Output{State: Busy, Status: "In a meeting until 14:30", Source: SourceCalendar, Until: at("14:30"), Next: at("14:30"),
				Calendar: CalendarNow{State: Busy, Until: at("14:30"), Status: "In a meeting until 14:30"}},
		},
		{
			name: "meeting ends: what the person had before comes back",
			in: Input{Calendar: cal(ev("14:00", "14:30", ShowBusy)), Policy: DefaultPolicy(),
				Chat: chatWith(Resource{Name: "laptop", Status: "coding"}, Resource{Name: "gw", Show: ShowDND, Status: "In a meeting until 14:30", Priority: 9, ByGateway: true})},
			now:  at("14:30"),
			want: Output{State: Available, Status: "coding", Source: SourceXMPP, Calendar: CalendarNow{State: Available}},
		},
		{
			name: "back-to-back meetings merge into one until",
			in:   Input{Calendar: cal(ev("14:00", "14:30", ShowBusy), ev("14:30", "15:00", ShowBusy)), Chat: online, Policy: DefaultPolicy()},
			now:  at("14:10"),
			want: Output{State: Busy, Status: "In a meeting until 15:00", Source: SourceCalendar, Until: at("15:00"), Next: at("15:00"),
				Calendar: CalendarNow{State: Busy, Until: at("15:00"), Status: "In a meeting until 15:00"}},
		},
		{
			name: "overlapping meetings merge",
			in:   Input{Calendar: cal(ev("14:00", "15:00", ShowBusy), ev("14:45", "15:30", ShowTentative), ev("14:15", "14:20", ShowBusy)), Chat: online, Policy: DefaultPolicy()},
			now:  at("14:50"),
			want: Output{State: Busy, Status: "In a meeting until 15:30", Source: SourceCalendar, Until: at("15:30"), Next: at("15:30"),
				Calendar: CalendarNow{State: Busy, Until: at("15:30"), Status: "In a meeting until 15:30"}},
		},
		{
			name: "a five-minute gap is not merged by default",
			in:   Input{Calendar: cal(ev("14:00", "14:25", ShowBusy), ev("14:30", "15:00", ShowBusy)), Chat: online, Policy: DefaultPolicy()},
			now:  at("14:10"),
			want: Output{State: Busy, Status: "In a meeting until 14:25", Source: SourceCalendar, Until: at("14:25"), Next: at("14:25"),
				Calendar: CalendarNow{State: Busy, Until: at("14:25"), Status: "In a meeting until 14:25"}},
		},
		{
			name: "with a merge gap of 10 minutes it is",
			in: Input{Calendar: cal(ev("14:00", "14:25", ShowBusy), ev("14:30", "15:00", ShowBusy)), Chat: online,
				Policy: policy(func(p *Policy) { p.MergeGap = 10 * time.Minute })},
			now: at("14:27"),
			want: Output{State: Busy, Status: "In a meeting until 15:00", Source: SourceCalendar, Until: at("15:00"), Next: at("15:00"),
				Calendar: CalendarNow{State: Busy, Until: at("15:00"), Status: "In a meeting until 15:00"}},
		},
		{
			name: "cancelled and free events are ignored",
			in: Input{Calendar: cal(Event{Start: at("14:00"), End: at("15:00"), ShowAs: ShowBusy, Cancelled: true}, ev("14:00", "15:00", ShowFree)),
				Chat: online, Policy: DefaultPolicy()},
			now:  at("14:10"),
			want: Output{State: Available, Source: SourceXMPP, Calendar: CalendarNow{State: Available}},
		},
		{
			name: "tentative counts as busy by default",
			in:   Input{Calendar: cal(ev("14:00", "15:00", ShowTentative)), Chat: online, Policy: DefaultPolicy()},
			now:  at("14:10"),
			want: Output{State: Busy, Status: "In a meeting until 15:00", Source: SourceCalendar, Until: at("15:00"), Next: at("15:00"),
				Calendar: CalendarNow{State: Busy, Tentative: true, Until: at("15:00"), Status: "In a meeting until 15:00"}},
		},
		{
			name: "tentative as free when configured",
			in:   Input{Calendar: cal(ev("14:00", "15:00", ShowTentative)), Chat: online, Policy: policy(func(p *Policy) { p.TentativeBusy = false })},
			now:  at("14:10"),
			want: Output{State: Available, Source: SourceXMPP, Calendar: CalendarNow{State: Available}},
		},
		{
			name: "all-day busy events are ignored by default",
			in: Input{Calendar: cal(Event{Start: at("00:00"), End: at("00:00").Add(24 * time.Hour), ShowAs: ShowBusy, AllDay: true}),
				Chat: online, Policy: DefaultPolicy()},
			now:  at("10:00"),
			want: Output{State: Available, Source: SourceXMPP, Calendar: CalendarNow{State: Available}},
		},
		{
			name: "all-day busy events count when configured",
			in: Input{Calendar: cal(Event{Start: at("00:00"), End: at("00:00").Add(24 * time.Hour), ShowAs: ShowBusy, AllDay: true}),
				Chat: online, Policy: policy(func(p *Policy) { p.AllDay = true })},
			now: at("10:00"),
			want: Output{State: Busy, Status: "In a meeting until Thu 26 Nov 00:00", Source: SourceCalendar, Until: at("00:00").Add(24 * time.Hour), Next: at("00:00").Add(24 * time.Hour),
				Calendar: CalendarNow{State: Busy, Until: at("00:00").Add(24 * time.Hour), Status: "In a meeting until Thu 26 Nov 00:00"}},
		},
		{
			name: "an all-day out-of-office event always counts",
			in: Input{Calendar: cal(Event{Start: at("00:00"), End: at("00:00").Add(48 * time.Hour), ShowAs: ShowOOF, AllDay: true}),
				Chat: online, Policy: DefaultPolicy()},
			now: at("10:00"),
			want: Output{State: OOF, Status: "Out of office until Fri 27 Nov", Source: SourceCalendar, Until: at("00:00").Add(48 * time.Hour), Next: midnight,
				Calendar: CalendarNow{State: OOF, Until: at("00:00").Add(48 * time.Hour), Status: "Out of office until Fri 27 Nov"}},
		},
		{
			name: "scheduled automatic replies: OOF with the reply's first line",
			in:   Input{Calendar: Calendar{Known: true, Location: berlin, AutoReply: holiday}, Chat: online, Policy: DefaultPolicy()},
			now:  at("10:00"),
			want: Output{State: OOF, Status: "Out of office until Tue 1 Dec: I'm on holiday until Monday.", Source: SourceCalendar, Until: holiday.End, Next: midnight,
				Calendar: CalendarNow{State: OOF, Until: holiday.End, Status: "Out of office until Tue 1 Dec: I'm on holiday until Monday."}},
		},
		{
			name: "always-on automatic replies have no end",
			in:   Input{Calendar: Calendar{Known: true, Location: berlin, AutoReply: AutoReply{Status: AutoReplyAlways}}, Chat: online, Policy: DefaultPolicy()},
			now:  at("10:00"),
			want: Output{State: OOF, Status: "Out of office", Source: SourceCalendar, Calendar: CalendarNow{State: OOF, Status: "Out of office"}},
		},
		{
			name: "a meeting starting while OOF: still OOF",
			in: Input{Calendar: Calendar{Known: true, Location: berlin, AutoReply: holiday, Events: []Event{ev("14:00", "15:00", ShowBusy)}},
				Chat: online, Policy: DefaultPolicy()},
			now: at("14:00"),
			want: Output{State: OOF, Status: "Out of office until Tue 1 Dec: I'm on holiday until Monday.", Source: SourceCalendar, Until: holiday.End, Next: at("15:00"),
				Calendar: CalendarNow{State: OOF, Until: holiday.End, Status: "Out of office until Tue 1 Dec: I'm on holiday until Monday."}},
		},
		{
			name: "manual dnd is kept during a meeting",
			in: Input{Calendar: cal(ev("14:00", "15:00", ShowBusy)), Policy: DefaultPolicy(),
				Chat: chatWith(Resource{Name: "phone", Show: ShowDND, Status: "Focus time"})},
			now: at("14:10"),
			want: Output{State: DND, Status: "Focus time", Source: SourceManual, Next: at("15:00"),
				Calendar: CalendarNow{State: Busy, Until: at("15:00"), Status: "In a meeting until 15:00"}},
		},
		{
			name: "manual away beats OOF too",
			in:   Input{Calendar: Calendar{Known: true, Location: berlin, AutoReply: holiday}, Policy: DefaultPolicy(), Chat: chatWith(Resource{Show: ShowAway, Status: "lunch"})},
			now:  at("12:00"),
			want: Output{State: Away, Status: "lunch", Source: SourceManual, Next: midnight,
				Calendar: CalendarNow{State: OOF, Until: holiday.End, Status: "Out of office until Tue 1 Dec: I'm on holiday until Monday."}},
		},
		{
			name: "the highest-priority resource speaks for the person",
			in: Input{Calendar: cal(), Policy: DefaultPolicy(),
				Chat: chatWith(Resource{Name: "phone", Show: ShowXA, Priority: -1}, Resource{Name: "desk", Status: "here", Priority: 5})},
			now:  at("12:00"),
			want: Output{State: Available, Status: "here", Source: SourceXMPP, Calendar: CalendarNow{State: Available}},
		},
		{
			name: "offline in a meeting: offline, with the meeting for lookups",
			in:   Input{Calendar: cal(ev("14:00", "14:30", ShowBusy)), Chat: offline, Policy: DefaultPolicy()},
			now:  at("14:10"),
			want: Output{State: Offline, Status: "In a meeting until 14:30", Source: SourceXMPP, Until: at("14:30"), Next: at("14:30"),
				Calendar: CalendarNow{State: Busy, Until: at("14:30"), Status: "In a meeting until 14:30"}},
		},
		{
			name: "no chat server: the calendar alone, free is available",
			in:   Input{Calendar: cal(ev("14:00", "14:30", ShowBusy)), Policy: DefaultPolicy()},
			now:  at("13:00"),
			want: Output{State: Available, Source: SourceCalendar, Next: at("14:00"), Calendar: CalendarNow{State: Available}},
		},
		{
			name: "no chat server and no calendar: unknown",
			in:   Input{Policy: DefaultPolicy()},
			now:  at("13:00"),
			want: Output{State: Unknown, Source: SourceCalendar, Calendar: CalendarNow{State: Unknown}},
		},
		{
			name: "a person who opted out keeps their chat state",
			in:   Input{Calendar: cal(ev("14:00", "14:30", ShowBusy)), Chat: online, Policy: policy(func(p *Policy) { p.OptOut = true })},
			now:  at("14:10"),
			want: Output{State: Available, Source: SourceXMPP, Calendar: CalendarNow{State: Unknown}},
		},
		{
			name: "organisation automates OOF only: meetings do nothing",
			in: Input{Calendar: Calendar{Known: true, Location: berlin, Events: []Event{ev("14:00", "14:30", ShowBusy)}},
				Chat: online, Policy: policy(func(p *Policy) { p.Automatic.Meetings = false })},
			now:  at("14:10"),
			want: Output{State: Available, Source: SourceXMPP, Calendar: CalendarNow{State: Available}},
		},
		{
			name: "organisation automates meetings only: OOF does nothing",
			in:   Input{Calendar: Calendar{Known: true, Location: berlin, AutoReply: holiday}, Chat: online, Policy: policy(func(p *Policy) { p.Automatic.OOF = false })},
			now:  at("10:00"),
			want: Output{State: Available, Source: SourceXMPP, Calendar: CalendarNow{State: Available}},
		},
		{
			name: "a meeting across midnight shows day and time",
			in:   Input{Calendar: cal(Event{Start: at("23:30"), End: at("00:30").Add(24 * time.Hour), ShowAs: ShowBusy}), Chat: online, Policy: DefaultPolicy()},
			now:  at("23:45"),
			want: Output{State: Busy, Status: "In a meeting until Thu 26 Nov 00:30", Source: SourceCalendar, Until: at("00:30").Add(24 * time.Hour), Next: midnight,
				Calendar: CalendarNow{State: Busy, Until: at("00:30").Add(24 * time.Hour), Status: "In a meeting until Thu 26 Nov 00:30"}},
		},
		{
			name: "private meetings never show their subject",
			in: Input{Calendar: cal(Event{Start: at("14:00"), End: at("15:00"), ShowAs: ShowBusy, Private: true, Subject: "Doctor", Location: "Clinic"}),
				Chat: online, Policy: policy(func(p *Policy) { p.ShowSubject = true })},
			now: at("14:10"),
			want: Output{State: Busy, Status: "In a meeting until 15:00", Source: SourceCalendar, Until: at("15:00"), Next: at("15:00"),
				Calendar: CalendarNow{State: Busy, Until: at("15:00"), Status: "In a meeting until 15:00"}},
		},
		{
			name: "public subjects only when the policy allows",
			in: Input{Calendar: cal(Event{Start: at("14:00"), End: at("15:00"), ShowAs: ShowBusy, Subject: "Budget review", Location: "Room 4"}),
				Chat: online, Policy: policy(func(p *Policy) { p.ShowSubject = true })},
			now: at("14:10"),
			want: Output{State: Busy, Status: "In a meeting (Budget review) until 15:00", Source: SourceCalendar, Until: at("15:00"), Next: at("15:00"),
				Calendar: CalendarNow{State: Busy, Until: at("15:00"), Status: "In a meeting (Budget review) until 15:00", Subject: "Budget review", Location: "Room 4"}},
		},
		{
			name: "a merged private meeting hides the public one's subject",
			in: Input{Calendar: cal(Event{Start: at("14:00"), End: at("14:30"), ShowAs: ShowBusy, Subject: "Budget review"},
				Event{Start: at("14:30"), End: at("15:00"), ShowAs: ShowBusy, Private: true, Subject: "1:1"}),
				Chat: online, Policy: policy(func(p *Policy) { p.ShowSubject = true })},
			now: at("14:45"),
			want: Output{State: Busy, Status: "In a meeting until 15:00", Source: SourceCalendar, Until: at("15:00"), Next: at("15:00"),
				Calendar: CalendarNow{State: Busy, Until: at("15:00"), Status: "In a meeting until 15:00"}},
		},
		{
			name: "the subject follows the meeting going on, and changes at its end",
			in: Input{Calendar: cal(Event{Start: at("14:00"), End: at("14:30"), ShowAs: ShowBusy, Subject: "Budget review"},
				Event{Start: at("14:30"), End: at("15:00"), ShowAs: ShowBusy, Subject: "Hiring"}),
				Chat: online, Policy: policy(func(p *Policy) { p.ShowSubject = true })},
			now: at("14:10"),
			want: Output{State: Busy, Status: "In a meeting (Budget review) until 15:00", Source: SourceCalendar, Until: at("15:00"), Next: at("14:30"),
				Calendar: CalendarNow{State: Busy, Until: at("15:00"), Status: "In a meeting (Budget review) until 15:00", Subject: "Budget review"}},
		},
		{
			name: "an OOF event today does not quote a reply scheduled for next week",
			in: Input{Calendar: Calendar{Known: true, Location: berlin,
				Events:    []Event{ev("09:00", "17:00", ShowOOF)},
				AutoReply: AutoReply{Status: AutoReplyScheduled, Start: holiday.End, End: holiday.End.Add(48 * time.Hour), Message: "On holiday in Spain"}},
				Chat: online, Policy: DefaultPolicy()},
			now: at("10:00"),
			want: Output{State: OOF, Status: "Out of office until 17:00", Source: SourceCalendar, Until: at("17:00"), Next: at("17:00"),
				Calendar: CalendarNow{State: OOF, Until: at("17:00"), Status: "Out of office until 17:00"}},
		},
		{
			name: "working elsewhere: available with a note",
			in:   Input{Calendar: cal(ev("09:00", "17:00", ShowWorkingElsewhere)), Chat: online, Policy: DefaultPolicy()},
			now:  at("10:00"),
			want: Output{State: Available, Status: "Working elsewhere until 17:00", Source: SourceCalendar, Next: at("17:00"),
				Calendar: CalendarNow{State: Available, WorkingElsewhere: true, Until: at("17:00"), Status: "Working elsewhere until 17:00"}},
		},
		{
			name: "a meeting while working elsewhere is busy",
			in:   Input{Calendar: cal(ev("09:00", "17:00", ShowWorkingElsewhere), ev("10:00", "11:00", ShowBusy)), Chat: online, Policy: DefaultPolicy()},
			now:  at("10:00"),
			want: Output{State: Busy, Status: "In a meeting until 11:00", Source: SourceCalendar, Until: at("11:00"), Next: at("11:00"),
				Calendar: CalendarNow{State: Busy, Until: at("11:00"), Status: "In a meeting until 11:00"}},
		},
		{
			name: "facts unknown (never fetched, or expired): chat only",
			in:   Input{Calendar: Calendar{Events: []Event{ev("14:00", "15:00", ShowBusy)}}, Chat: online, Policy: DefaultPolicy()},
			now:  at("14:10"),
			want: Output{State: Available, Source: SourceXMPP, Calendar: CalendarNow{State: Unknown}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Derive(tt.in, tt.now)
			if !outputEqual(got, tt.want) {
				t.Errorf("Derive at %s\n got %+v\nwant %+v", tt.now.Format("15:04"), got, tt.want)
			}
		})
	}
}

func outputEqual(a, b Output) bool {
	return a.State == b.State && a.Status == b.Status && a.Source == b.Source && a.Until.Equal(b.Until) &&
		a.Next.Equal(b.Next) && a.Calendar.State == b.Calendar.State && a.Calendar.Tentative == b.Calendar.Tentative &&
		a.Calendar.WorkingElsewhere == b.Calendar.WorkingElsewhere && a.Calendar.Until.Equal(b.Calendar.Until) &&
		a.Calendar.Status == b.Calendar.Status && a.Calendar.Subject == b.Calendar.Subject && a.Calendar.Location == b.Calendar.Location
}

// An event changed or cancelled while in progress: the answer follows the
// facts as they are now, and so does the next change.
func TestEventChangedInProgress(t *testing.T) {
	now := at("14:10")
	meeting := ev("14:00", "15:00", ShowBusy)
	before := Derive(Input{Calendar: cal(meeting), Chat: online, Policy: DefaultPolicy()}, now)
	if before.State != Busy || !before.Next.Equal(at("15:00")) {
		t.Fatalf("before: %+v", before)
	}
	meeting.End = at("14:20") // shortened
	after := Derive(Input{Calendar: cal(meeting), Chat: online, Policy: DefaultPolicy()}, now)
	if after.Status != "In a meeting until 14:20" || !after.Next.Equal(at("14:20")) {
		t.Errorf("shortened: %+v", after)
	}
	meeting.Cancelled = true
	cancelled := Derive(Input{Calendar: cal(meeting), Chat: online, Policy: DefaultPolicy()}, now)
	if cancelled.State != Available || !cancelled.Next.IsZero() {
		t.Errorf("cancelled: %+v", cancelled)
	}
}

// Daylight saving changes: the status text uses the wall clock of the
// mailbox's zone on the day, and the boundary stays an instant.
func TestDST(t *testing.T) {
	ny := mustLoad("America/New_York")
	tests := []struct {
		name       string
		loc        *time.Location
		start, end time.Time // UTC
		now        time.Time
		want       string
	}{
		// Berlin, 25 Oct 2026: 03:00 CEST becomes 02:00 CET at 01:00 UTC.
		{"Berlin fall back, meeting ends after the change", berlin,
			time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC),
			time.Date(2026, 10, 25, 0, 45, 0, 0, time.UTC), "In a meeting until 02:30"},
		{"Berlin fall back, meeting ends before the change", berlin,
			time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC),
			time.Date(2026, 10, 25, 0, 15, 0, 0, time.UTC), "In a meeting until 02:30"},
		// New York, 8 Mar 2026: 02:00 EST becomes 03:00 EDT at 07:00 UTC.
		{"New York spring forward", ny,
			time.Date(2026, 3, 8, 6, 30, 0, 0, time.UTC), time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC),
			time.Date(2026, 3, 8, 6, 45, 0, 0, time.UTC), "In a meeting until 03:30"},
		{"same meeting seen from Berlin", berlin,
			time.Date(2026, 3, 8, 6, 30, 0, 0, time.UTC), time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC),
			time.Date(2026, 3, 8, 6, 45, 0, 0, time.UTC), "In a meeting until 08:30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Calendar{Known: true, Location: tt.loc, Events: []Event{{Start: tt.start, End: tt.end, ShowAs: ShowBusy}}}
			got := Derive(Input{Calendar: c, Chat: online, Policy: DefaultPolicy()}, tt.now)
			if got.Status != tt.want || !got.Next.Equal(tt.end) {
				t.Errorf("got %q next %s, want %q next %s", got.Status, got.Next, tt.want, tt.end)
			}
		})
	}
}

func TestLocalizedTexts(t *testing.T) {
	texts, err := Texts{
		Meeting:    "In einer Besprechung bis {{.Until}}",
		OOF:        "Abwesend{{if .Until}} bis {{.Until}}{{end}}",
		DateLayout: "Mon, 2. Jan",
		Weekdays:   [7]string{"So", "Mo", "Di", "Mi", "Do", "Fr", "Sa"},
		Months:     [12]string{"Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez"},
	}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	p := policy(func(p *Policy) { p.Texts = texts })
	got := Derive(Input{Calendar: cal(ev("14:00", "14:30", ShowBusy)), Chat: online, Policy: p}, at("14:00"))
	if got.Status != "In einer Besprechung bis 14:30" {
		t.Errorf("meeting: %q", got.Status)
	}
	oof := Calendar{Known: true, Location: berlin, AutoReply: AutoReply{Status: AutoReplyScheduled, Start: at("00:00"), End: time.Date(2026, 12, 3, 0, 0, 0, 0, berlin)}}
	if got := Derive(Input{Calendar: oof, Chat: online, Policy: p}, at("09:00")); got.Status != "Abwesend bis Do, 3. Dez" {
		t.Errorf("oof: %q", got.Status)
	}
	for _, bad := range []Texts{{Meeting: "{{.Until"}, {OOF: "{{.Nope}}"}} {
		if _, err := bad.Compile(); err == nil {
			t.Errorf("Compile(%+v) accepted a broken template", bad)
		}
	}
}

func TestFirstLine(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "",
		"\n\n  hello \n world": "hello",
		"one line":             "one line",
		"\r\n\tcrlf line\r\nx": "crlf line",
	} {
		if got := firstLine(in); got != want {
			t.Errorf("firstLine(%q) = %q, want %q", in, got, want)
		}
	}
	long := ""
	for range 300 {
		long += "é"
	}
	if got := []rune(firstLine(long)); len(got) != 200 || got[199] != '…' {
		t.Errorf("long line cut to %d runes", len(got))
	}
}

func TestUntilTextAfterMidnight(t *testing.T) {
	meeting := Event{Start: at("23:30"), End: at("00:30").Add(24 * time.Hour), ShowAs: ShowBusy}
	before := Derive(Input{Calendar: cal(meeting), Chat: online, Policy: DefaultPolicy()}, at("23:45"))
	after := Derive(Input{Calendar: cal(meeting), Chat: online, Policy: DefaultPolicy()}, before.Next)
	if before.Status != "In a meeting until Thu 26 Nov 00:30" || after.Status != "In a meeting until 00:30" || !after.Next.Equal(meeting.End) {
		t.Errorf("before midnight %q, at the re-derivation %q (next %s)", before.Status, after.Status, after.Next)
	}
}
