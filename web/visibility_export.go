package web

import (
	"time"

	"github.com/presencegw/presencegw/rules"
)

// Visible is e as a caller with visibility v sees it, decided by the
// same code that shapes the HTTP API's answers: whatever v may not see is
// zero (JID, Name, Status, Source, Until, Updated and Stale below
// SeeStatus; the calendar and the chat resources below SeeCalendar).
// Mailbox and Presence.Next, which the API never shows, are always zero.
// NotFound and Invalid entries keep their Email, Status and Err: the
// caller is one who may learn whether an address exists (see
// Caller.Directory); answer anyone else as if e were unknown.
//
// Other front ends (the XMPP lookup) use it so that one policy decides
// what every caller sees.
func Visible(e Entry, v Visibility) Entry {
	out, _ := render(e, &Caller{Visibility: v, Directory: true})
	ve := Entry{Email: out.Email, Status: e.Status, Presence: rules.Output{State: out.State}}
	if out.Error != nil {
		ve.Err = e.Err
		return ve
	}
	ve.JID, ve.Name, ve.Stale = out.JID, out.Name, out.Stale
	ve.Presence.Status, ve.Presence.Source, ve.Presence.Until = out.Status, out.Source, timeOf(out.Until)
	ve.Updated = timeOf(out.Updated)
	if c := out.Calendar; c != nil {
		ve.Presence.Calendar = rules.CalendarNow{State: c.State, Status: c.Status, Until: timeOf(c.Until), Tentative: c.Tentative,
			WorkingElsewhere: c.WorkingElsewhere, Subject: c.Subject, Location: c.Location}
	}
	if ch := out.Chat; ch != nil {
		ve.Chat.Known = true
		for _, r := range ch.Resources {
			ve.Chat.Resources = append(ve.Chat.Resources, rules.Resource{Name: r.Name, Show: rules.Show(r.Show), Status: r.Status, Priority: r.Priority})
		}
	}
	return ve
}

func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
