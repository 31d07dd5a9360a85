package xmppbot_test

// The gateway sends each person's next calendar state ahead as a
// scheduled overlay (docs/overlay-protocol.md, "Scheduled overlays"), so
// the server shows it at the boundary with no request at that instant.
// Against real Prosody and ejabberd, through the real engine.

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencegw/presencegw/internal/testenv"
	"github.com/presencegw/presencegw/rules"
	"github.com/presencegw/presencegw/xmppbot"
)

// schedMetrics starts the component with a registry of its own.
func schedStart(t *testing.T, w *world) *prometheus.Registry {
	t.Helper()
	w.startBot(xmppbot.Config{})
	reg := prometheus.NewRegistry()
	if err := w.bot.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

// schedRequests is how many overlay requests of a kind the server accepted.
func schedRequests(reg *prometheus.Registry, kind string) float64 {
	return bpGauge(reg, "presencegw_xmpp_overlay_requests_total", "request", kind, "result", "ok")
}

// schedWaitRequests waits until n requests of kind were accepted, failing
// if that is not before deadline.
func schedWaitRequests(t *testing.T, reg *prometheus.Registry, kind string, n float64, deadline time.Time) {
	t.Helper()
	for schedRequests(reg, kind) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%v %s requests accepted by %v, want %v", schedRequests(reg, kind), kind, deadline.Format("15:04:05.000"), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// schedFirstDND is when c first received a dnd presence from of since mark.
func schedFirstDND(c *testenv.XMPPClient, mark int, of string) time.Time {
	for _, s := range c.Received(mark) {
		if s.IsPresence() && testenv.Bare(s.Attr("from")) == of && s.Attr("type") == "" && s.Show() == "dnd" {
			return s.At
		}
	}
	return time.Time{}
}

// schedBoundary is a whole second at least lead from now (the engine
// notices a meeting ahead at the publisher's next re-read, every 5 s).
func schedBoundary(lead time.Duration) time.Time {
	return time.Now().Add(lead).Truncate(time.Second).Add(time.Second)
}

func TestScheduledOverlays(t *testing.T) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			srv := s.start(t, testenv.XMPPOptions{Users: []string{"alice", "bob", "carol", "dave"}})
			w := newWorld(t, srv, "alice", "carol", "dave")
			bob := testenv.DialXMPP(t, srv, "bob", "pc")
			bob.SendPresence(t, "", "", "", 0)
			jid := map[string]string{}
			for _, p := range []string{"alice", "carol", "dave"} {
				c := testenv.DialXMPP(t, srv, p, "desk")
				c.SendPresence(t, "", "", p+" at the desk", 0)
				testenv.MakeContacts(t, c, bob)
				jid[p] = p + "@" + srv.Domain
			}
			reg := schedStart(t, w)

			t.Run("sent ahead, shown at the boundary with no request then", func(t *testing.T) {
				start := schedBoundary(9 * time.Second)
				end := start.Add(time.Hour).Truncate(time.Minute)
				mark := bob.Mark()
				w.meeting("alice", start, end)
				schedWaitRequests(t, reg, "schedule", 1, start.Add(-time.Second))
				if n := bpGauge(reg, "presencegw_xmpp_scheduled_overlays"); n != 1 {
					t.Errorf("scheduled overlays pending before the start: %v, want 1", n)
				}
				sets := schedRequests(reg, "set")
				busy := shown{Show: "dnd", Status: "In a meeting until " + end.UTC().Format("15:04")}
				seen := waitView(t, bob, jid["alice"], busy, time.Until(start)+5*time.Second)
				// Pending until its since by the gateway's clock (bob may see
				// it a few ms earlier by the server's).
				for deadline := start.Add(2 * time.Second); bpGauge(reg, "presencegw_xmpp_scheduled_overlays") != 0; time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Errorf("scheduled overlays pending 2 s after the start: %v, want 0 (applied)", bpGauge(reg, "presencegw_xmpp_scheduled_overlays"))
						break
					}
				}
				first := schedFirstDND(bob, mark, jid["alice"])
				if d := first.Sub(start); d < -50*time.Millisecond || d > time.Second {
					t.Errorf("bob received alice's dnd %v after the meeting start, want within 1 s (every client rule shows it at %v)", d, seen.Sub(start))
				}
				time.Sleep(time.Second)
				if n := schedRequests(reg, "set"); n != sets {
					t.Errorf("%v set requests at the boundary, want none (all sent ahead)", n-sets)
				}
			})

			t.Run("meeting cancelled ahead: the scheduled overlay is cancelled", func(t *testing.T) {
				start := schedBoundary(16 * time.Second)
				scheduled, cancels := schedRequests(reg, "schedule"), schedRequests(reg, "cancel")
				w.meeting("carol", start, start.Add(time.Hour))
				schedWaitRequests(t, reg, "schedule", scheduled+1, start.Add(-8*time.Second))
				w.cal.mu.Lock()
				delete(w.cal.events, "carol@"+mailDomain)
				w.cal.mu.Unlock()
				w.refresh()
				schedWaitRequests(t, reg, "cancel", cancels+1, start.Add(-time.Second))
				mark := bob.Mark()
				time.Sleep(time.Until(start) + 1500*time.Millisecond)
				if at := schedFirstDND(bob, mark, jid["carol"]); !at.IsZero() {
					t.Errorf("bob saw carol in dnd at %v after her meeting was cancelled", at.Sub(start))
				}
			})

			t.Run("reconnect reconciles the pending overlays", func(t *testing.T) {
				first := schedBoundary(25 * time.Second)
				scheduled := schedRequests(reg, "schedule")
				w.cal.mu.Lock()
				w.cal.events["carol@"+mailDomain] = []rules.Event{{Start: first, End: first.Add(time.Hour), ShowAs: rules.ShowBusy}}
				w.cal.mu.Unlock()
				w.meeting("dave", first, first.Add(time.Hour))
				schedWaitRequests(t, reg, "schedule", scheduled+2, first.Add(-15*time.Second))
				// The gateway goes away (within the module's grace
				// period); meanwhile dave's meeting moves earlier and
				// carol's is cancelled. Only the server's list tells the
				// new gateway what is pending (it does not store it).
				w.stopBot()
				moved := schedBoundary(9 * time.Second)
				end := moved.Add(time.Hour).Truncate(time.Minute)
				w.cal.mu.Lock()
				delete(w.cal.events, "carol@"+mailDomain)
				w.cal.mu.Unlock()
				w.meeting("dave", moved, end)
				mark := bob.Mark()
				reg2 := schedStart(t, w)
				schedWaitRequests(t, reg2, "schedule", 1, moved.Add(-time.Second))
				schedWaitRequests(t, reg2, "cancel", 1, moved.Add(-time.Second))
				busy := shown{Show: "dnd", Status: "In a meeting until " + end.UTC().Format("15:04")}
				waitView(t, bob, jid["dave"], busy, time.Until(moved)+5*time.Second)
				if d := schedFirstDND(bob, mark, jid["dave"]).Sub(moved); d < -50*time.Millisecond || d > time.Second {
					t.Errorf("bob received dave's dnd %v after the moved meeting's start, want within 1 s", d)
				}
				if n := schedRequests(reg2, "set"); n != 0 {
					t.Errorf("%v set requests after the reconnect, want none", n)
				}
				reg = reg2
			})
		})
	}
}

// A module without the #since feature gets each state at its boundary,
// as before scheduled overlays.
func TestScheduledOverlaysOldModule(t *testing.T) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			srv := s.start(t, testenv.XMPPOptions{Users: []string{"alice", "bob"}, WithoutScheduled: true})
			w := newWorld(t, srv, "alice")
			alice := testenv.DialXMPP(t, srv, "alice", "desk")
			bob := testenv.DialXMPP(t, srv, "bob", "pc")
			alice.SendPresence(t, "", "", "at my desk", 0)
			bob.SendPresence(t, "", "", "", 0)
			testenv.MakeContacts(t, alice, bob)
			reg := schedStart(t, w)
			start := schedBoundary(7 * time.Second)
			end := start.Add(time.Hour).Truncate(time.Minute)
			mark := bob.Mark()
			w.meeting("alice", start, end)
			busy := shown{Show: "dnd", Status: "In a meeting until " + end.UTC().Format("15:04")}
			waitView(t, bob, "alice@"+srv.Domain, busy, time.Until(start)+5*time.Second)
			if d := schedFirstDND(bob, mark, "alice@"+srv.Domain).Sub(start); d < -50*time.Millisecond || d > 2*time.Second {
				t.Errorf("bob received alice's dnd %v after the meeting start, want at the start", d)
			}
			if n := schedRequests(reg, "schedule"); n != 0 {
				t.Errorf("%v scheduled requests to a module without #since", n)
			}
			// The module's answer to the set may reach the component after
			// the presence it broadcast reached bob.
			schedWaitRequests(t, reg, "set", 1, time.Now().Add(5*time.Second))
		})
	}
}
