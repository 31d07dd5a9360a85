package xmppbot

import (
	"testing"
	"time"

	"github.com/presencegw/presencegw/rules"
)

// TestSnapshotConfirms: people in the connect snapshot stay online; people
// known from an earlier connection and missing from the new snapshot go
// offline once it settled; without a snapshot nobody is dropped.
func TestSnapshotConfirms(t *testing.T) {
	old := settleDelay
	settleDelay = 50 * time.Millisecond
	t.Cleanup(func() { settleDelay = old })
	b, _ := benchBot(t, 10)
	eng := b.engine

	// First connection: the snapshot arrives before set-up completes.
	b.live.connecting()
	feedPresence(t, b, presenceXML(1, "desk", "", "here", 5))
	feedPresence(t, b, presenceXML(2, "desk", "", "here", 5))
	b.live.connected(true)
	time.Sleep(150 * time.Millisecond)
	for _, u := range []string{"u1@example.com", "u2@example.com"} {
		if out, _ := eng.Get(u); out.State != rules.Available {
			t.Errorf("%s after the first snapshot: %s, want available", u, out.State)
		}
	}

	// Reconnect: u2 left meanwhile, so the new snapshot has u1 only.
	b.live.disconnected()
	b.live.connecting()
	feedPresence(t, b, presenceXML(1, "desk", "", "here", 5))
	b.live.connected(true)
	time.Sleep(150 * time.Millisecond)
	if out, _ := eng.Get("u1@example.com"); out.State != rules.Available {
		t.Errorf("u1 after the reconnect: %s, want available", out.State)
	}
	if out, _ := eng.Get("u2@example.com"); out.State != rules.Offline {
		t.Errorf("u2 missing from the reconnect snapshot: %s, want offline", out.State)
	}

	// A server without a snapshot: nobody is dropped.
	b.live.disconnected()
	b.live.connecting()
	b.live.connected(false)
	time.Sleep(150 * time.Millisecond)
	if out, _ := eng.Get("u1@example.com"); out.State != rules.Available {
		t.Errorf("u1 after a reconnect without snapshot: %s, want available", out.State)
	}
}
