package web

import (
	"testing"
	"time"

	"github.com/presencegw/presencegw/rules"
)

func TestVisible(t *testing.T) {
	alice := fakeBackend{}.Lookup("alice@example.com")
	until := time.Date(2026, 11, 25, 14, 30, 0, 0, time.UTC)

	v := Visible(alice, SeeState)
	if v.Presence.State != rules.Busy || v.Email != "alice@example.com" || v.Status != Found ||
		v.JID != "" || v.Name != "" || v.Presence.Status != "" || !v.Presence.Until.IsZero() || !v.Updated.IsZero() ||
		v.Presence.Calendar != (rules.CalendarNow{}) || v.Chat.Known || v.Mailbox != "" {
		t.Errorf("state: %+v", v)
	}

	v = Visible(alice, SeeStatus)
	if v.JID != "alice@chat" || v.Name != "Alice" || v.Presence.Status != "In a meeting until 14:30" || v.Presence.Source != rules.SourceCalendar ||
		!v.Presence.Until.Equal(until) || !v.Updated.Equal(until.Add(-30*time.Minute)) ||
		v.Presence.Calendar != (rules.CalendarNow{}) || v.Chat.Known {
		t.Errorf("status: %+v", v)
	}

	v = Visible(alice, SeeCalendar)
	if v.Presence.Calendar.Subject != "Budget" || v.Presence.Calendar.State != rules.Busy || !v.Presence.Calendar.Until.Equal(until) ||
		!v.Chat.Known || len(v.Chat.Resources) != 1 || v.Chat.Resources[0].Name != "pc" || v.Chat.Resources[0].Priority != 5 {
		t.Errorf("calendar: %+v", v)
	}

	for _, e := range []Entry{fakeBackend{}.Lookup("nobody@example.com"), fakeBackend{}.Lookup("garbage")} {
		v := Visible(e, SeeCalendar)
		if v.Status != e.Status || v.Err != e.Err || v.Email != e.Email || v.Presence.State != rules.Unknown || v.JID != "" {
			t.Errorf("%v: %+v", e.Status, v)
		}
	}
}
