package presence

import (
	"context"
	"testing"
	"time"
)

// CalendarRead counts a mailbox as read after its first good schedule, and
// an outage afterwards does not take that back.
func TestCalendarRead(t *testing.T) {
	e, _ := newEngine(t, Options{PollInterval: 50 * time.Millisecond, AutoReplyInterval: time.Hour, LookAhead: time.Hour, MailboxRetry: time.Hour})
	src := newFake()
	src.set(func(f *fakeSource) { f.down = true })
	e.Track([]string{"a@example.com", "b@example.com"})
	if tracked, read := e.CalendarRead(); tracked != 2 || read != 0 {
		t.Fatalf("before any poll: tracked %d read %d, want 2 0", tracked, read)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx, src)
	time.Sleep(200 * time.Millisecond)
	if _, read := e.CalendarRead(); read != 0 {
		t.Fatalf("the source is down, yet %d mailboxes count as read", read)
	}
	src.set(func(f *fakeSource) { f.down = false })
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		if _, read := e.CalendarRead(); read == 2 {
			break
		}
		if time.Since(start) > 3*time.Second {
			t.Fatal("mailboxes not counted as read after the source came back")
		}
	}
	src.set(func(f *fakeSource) { f.down = true })
	time.Sleep(200 * time.Millisecond)
	if tracked, read := e.CalendarRead(); tracked != 2 || read != 2 {
		t.Errorf("after a later outage: tracked %d read %d, want 2 2", tracked, read)
	}
}
