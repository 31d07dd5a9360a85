package graph

import (
	"context"
	"strings"
	"time"

	"github.com/presencegw/presencegw/rules"
)

// Demo is the built-in calendar of "presencegw demo", generated relative
// to its start so there is always something to see:
//
//	alice@example.com  in a meeting now (ends in 25 minutes), a second one right after
//	bob@example.com    out of office until next Monday, with an OOF text
//	carol@example.com  free
//	dave@example.com   in a tentative meeting now
//	erin@example.com   in an all-day event today
//	frank@example.com  in a private meeting now
type Demo struct {
	start time.Time
	loc   *time.Location
}

// NewDemo makes the demo calendar around start, in the zone loc.
func NewDemo(start time.Time, loc *time.Location) *Demo {
	return &Demo{start: start, loc: loc}
}

// BatchSizes implements presence.CalendarSource.
func (d *Demo) BatchSizes() (int, int) { return MaxSchedules, 50 }

func (d *Demo) events(mailbox string) []rules.Event {
	t := d.start
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, d.loc)
	switch mailbox {
	case "alice@example.com":
		first := rules.Event{Start: t.Add(-5 * time.Minute), End: t.Add(25 * time.Minute), ShowAs: rules.ShowBusy, Subject: "Design review"}
		second := rules.Event{Start: first.End, End: first.End.Add(30 * time.Minute), ShowAs: rules.ShowBusy, Subject: "1:1 with Carol"}
		return []rules.Event{first, second}
	case "dave@example.com":
		return []rules.Event{{Start: t.Add(-10 * time.Minute), End: t.Add(20 * time.Minute), ShowAs: rules.ShowTentative, Subject: "Vendor call"}}
	case "erin@example.com":
		return []rules.Event{{Start: day, End: day.AddDate(0, 0, 1), ShowAs: rules.ShowBusy, AllDay: true, Subject: "Offsite"}}
	case "frank@example.com":
		return []rules.Event{{Start: t.Add(-15 * time.Minute), End: t.Add(45 * time.Minute), ShowAs: rules.ShowBusy, Private: true}}
	}
	return nil
}

// Schedules implements presence.CalendarSource.
func (d *Demo) Schedules(_ context.Context, mailboxes []string, start, end time.Time) ([]rules.MailboxFacts, error) {
	out := make([]rules.MailboxFacts, len(mailboxes))
	for i, mb := range mailboxes {
		out[i] = rules.MailboxFacts{Mailbox: mb, Location: d.loc}
		for _, e := range d.events(strings.ToLower(mb)) {
			if e.End.After(start) && e.Start.Before(end) {
				out[i].Events = append(out[i].Events, e)
			}
		}
	}
	return out, nil
}

// AutoReplies implements presence.CalendarSource.
func (d *Demo) AutoReplies(_ context.Context, mailboxes []string) ([]rules.MailboxFacts, error) {
	out := make([]rules.MailboxFacts, len(mailboxes))
	for i, mb := range mailboxes {
		out[i] = rules.MailboxFacts{Mailbox: mb, AutoReply: rules.AutoReply{Status: rules.AutoReplyDisabled}}
		if strings.EqualFold(mb, "bob@example.com") {
			t := d.start.In(d.loc)
			day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, d.loc)
			monday := day.AddDate(0, 0, (8-int(day.Weekday()))%7)
			if !monday.After(day) {
				monday = monday.AddDate(0, 0, 7)
			}
			out[i].AutoReply = rules.AutoReply{Status: rules.AutoReplyScheduled, Start: day.AddDate(0, 0, -2), End: monday,
				Message: "I'm on holiday and back on Monday.\nFor urgent matters, please contact Carol."}
		}
	}
	return out, nil
}
