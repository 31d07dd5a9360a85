package xmppbot_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/presencegw/presencegw/internal/testenv"
	"github.com/presencegw/presencegw/rules"
	"github.com/presencegw/presencegw/xmppbot"
)

// TestFallbackCalendarSession: ejabberd without the overlay module, with
// its HTTP API: the gateway keeps a token-login alice/calendar session at
// priority -1 while alice is in a meeting and online.
func TestFallbackCalendarSession(t *testing.T) {
	srv := testenv.StartEjabberd(t, testenv.XMPPOptions{NoModule: true, Users: []string{"alice", "bob", "carol"}})
	w := newWorld(t, srv, "alice", "bob", "carol")
	alice := "alice@" + srv.Domain
	cal := alice + "/calendar"
	mailbox := "alice@" + mailDomain
	desk := testenv.DialXMPP(t, srv, "alice", "desk")
	bob := testenv.DialXMPP(t, srv, "bob", "pc")
	carol := testenv.DialXMPP(t, srv, "carol", "laptop")
	desk.SendPresence(t, "", "", "at my desk", 10)
	bob.SendPresence(t, "", "", "", 0)
	carol.SendPresence(t, "", "", "", 0)
	testenv.MakeContacts(t, desk, bob)
	// startBot sets SessionsAPI = http://HTTPAddr/api on ejabberd.
	w.startBot(xmppbot.Config{ClientServer: srv.C2SAddr})
	parent := t // clients made in a subtest must outlive it

	st := w.bot.Status()
	if st.Mechanism != xmppbot.MechanismSession || st.Overlay {
		t.Fatalf("status %+v, want mechanism %q without the overlay module", st, xmppbot.MechanismSession)
	}
	if !strings.Contains(strings.Join(st.Off, "\n"), "session "+"calendar") {
		t.Errorf("Off does not say what contacts see instead: %q", st.Off)
	}
	waitView(t, bob, alice, shown{Show: "", Status: "at my desk"}, 5*time.Second)

	now := time.Now()
	end := now.Add(time.Hour).Truncate(time.Minute)
	busy := "In a meeting until " + end.UTC().Format("15:04")
	isCal := func(typ, show string) func(testenv.Stanza) bool {
		return func(s testenv.Stanza) bool {
			return s.IsPresence() && s.Attr("from") == cal && s.Attr("type") == typ && (typ != "" || s.Show() == show)
		}
	}

	t.Run("meeting: bob sees alice/calendar dnd at priority -1", func(t *testing.T) {
		mark := bob.Mark()
		w.meeting("alice", now.Add(-time.Minute), end)
		p := bob.WaitFor(t, mark, 10*time.Second, "dnd from "+cal, isCal("", "dnd"))
		if p.Priority() != -1 || p.Status() != busy {
			t.Errorf("bob got %s, want priority -1 and status %q", p.String(), busy)
		}
		v := viewOf(bob, alice)
		if got := v.show(ruleDNDIfAny); got.Show != "dnd" || got.Status != busy {
			t.Errorf("%s shows %+v, want dnd %q", ruleDNDIfAny, got, busy)
		}
		// What the other rules show: the desk (priority 10, available).
		if got := v.show(ruleHighestPriority); got.Show != "" || got.Status != "at my desk" {
			t.Errorf("%s shows %+v, want the desk", ruleHighestPriority, got)
		}
		for _, s := range carol.Received(0) {
			if s.IsPresence() && testenv.Bare(s.Attr("from")) == alice {
				t.Errorf("carol (not a contact) received %s", s.String())
			}
		}
	})

	t.Run("the engine does not take the calendar resource as alice's own", func(t *testing.T) {
		waitFor(t, "the engine sees the meeting", func() bool {
			out, _ := w.engine.Get(mailbox)
			return out.State == rules.Busy && out.Source == rules.SourceCalendar
		})
		// Below the calendar session's priority the desk is still what
		// alice set: were the calendar resource hers, it would win as a
		// hand-set dnd.
		mark := bob.Mark()
		desk.SendPresence(t, "", "", "at my desk", -5)
		bob.WaitFor(t, mark, 5*time.Second, "the desk at -5", func(s testenv.Stanza) bool {
			return s.IsPresence() && s.Attr("from") == desk.JID && s.Priority() == -5
		})
		time.Sleep(200 * time.Millisecond)
		out, _ := w.engine.Get(mailbox)
		if out.State != rules.Busy || out.Source != rules.SourceCalendar || out.Status != busy {
			t.Errorf("engine: %s %q (%s), want busy %q from the calendar", out.State, out.Status, out.Source, busy)
		}
		desk.SendPresence(t, "", "away", "lunch", 10)
		waitFor(t, "the engine learns alice's own away", func() bool {
			out, _ := w.engine.Get(mailbox)
			return out.State == rules.Away && out.Source == rules.SourceManual && out.Status == "lunch"
		})
		desk.SendPresence(t, "", "", "at my desk", 10)
		waitFor(t, "the engine is back to the meeting", func() bool {
			out, _ := w.engine.Get(mailbox)
			return out.State == rules.Busy && out.Source == rules.SourceCalendar
		})
	})

	t.Run("component link cut: the session stays, no flap", func(t *testing.T) {
		before := w.bot.Status().Since
		mark := bob.Mark()
		w.proxy.cut()
		waitFor(t, "the component reconnects", func() bool {
			st := w.bot.Status()
			return st.Connected && st.Since.After(before)
		})
		if got := w.bot.Status().Mechanism; got != xmppbot.MechanismSession {
			t.Errorf("after the reconnect the mechanism is %q", got)
		}
		time.Sleep(time.Second)
		for _, s := range bob.Received(mark) {
			if s.IsPresence() && s.Attr("from") == cal {
				t.Errorf("bob saw a flap after a quick reconnect: %s", s.String())
			}
		}
		if got := viewOf(bob, alice).show(ruleDNDIfAny); got.Show != "dnd" {
			t.Errorf("%s shows %+v after the reconnect", ruleDNDIfAny, got)
		}
	})

	t.Run("session kicked by the server: logged in again", func(t *testing.T) {
		mark := bob.Mark()
		apiCall(t, srv, "kick_session", `{"user":"alice","host":"`+srv.Domain+`","resource":"calendar","reason":"test"}`)
		bob.WaitFor(t, mark, 5*time.Second, "unavailable from "+cal, isCal("unavailable", ""))
		p := bob.WaitFor(t, mark, 10*time.Second, "dnd from "+cal+" again", isCal("", "dnd"))
		if p.Priority() != -1 || p.Status() != busy {
			t.Errorf("bob got %s", p.String())
		}
	})

	t.Run("alice offline: no session; back online: it returns", func(t *testing.T) {
		mark := bob.Mark()
		desk.Close()
		bob.WaitFor(t, mark, 5*time.Second, "unavailable from "+cal, isCal("unavailable", ""))
		waitView(t, bob, alice, shown{Show: "offline"}, 5*time.Second)
		waitFor(t, "the engine learns alice is offline", func() bool {
			out, _ := w.engine.Get(mailbox)
			return out.State == rules.Offline
		})
		time.Sleep(time.Second)
		for _, s := range bob.Received(mark) {
			if isCal("", "dnd")(s) {
				t.Errorf("alice is offline but bob received %s", s.String())
			}
		}
		mark = bob.Mark()
		desk = testenv.DialXMPP(parent, srv, "alice", "desk")
		desk.SendPresence(t, "", "", "at my desk", 10)
		bob.WaitFor(t, mark, 10*time.Second, "dnd from "+cal, isCal("", "dnd"))
	})

	t.Run("meeting end: the session goes unavailable", func(t *testing.T) {
		mark := bob.Mark()
		w.meeting("alice", now.Add(-2*time.Hour), now.Add(-time.Hour))
		bob.WaitFor(t, mark, 5*time.Second, "unavailable from "+cal, isCal("unavailable", ""))
		// Every rule, Monal's last received included: the session left
		// alice's own state behind before it went.
		waitView(t, bob, alice, shown{Show: "", Status: "at my desk"}, 3*time.Second)
		out, _ := w.engine.Get(mailbox)
		if out.State != rules.Available || out.Source != rules.SourceXMPP || out.Status != "at my desk" {
			t.Errorf("engine: %s %q (%s), want alice's own available", out.State, out.Status, out.Source)
		}
	})

	t.Run("out of office: xa", func(t *testing.T) {
		mark := bob.Mark()
		w.oof("alice", "On holiday\nCall Dave")
		p := bob.WaitFor(t, mark, 5*time.Second, "xa from "+cal, isCal("", "xa"))
		if p.Status() != "Out of office: On holiday" || p.Priority() != -1 {
			t.Errorf("bob got %s", p.String())
		}
	})

	t.Run("server restart: the session is created again", func(t *testing.T) {
		srv.Stop(t)
		srv.Start(t)
		desk = testenv.DialXMPP(parent, srv, "alice", "desk")
		bob = testenv.DialXMPP(parent, srv, "bob", "pc")
		desk.SendPresence(t, "", "", "at my desk", 10)
		bob.SendPresence(t, "", "", "", 0)
		p := bob.WaitFor(t, 0, 30*time.Second, "xa from "+cal+" after the restart", isCal("", "xa"))
		if p.Status() != "Out of office: On holiday" {
			t.Errorf("bob got %s", p.String())
		}
	})

	t.Run("gateway stopped: the session closes", func(t *testing.T) {
		mark := bob.Mark()
		w.stopBot()
		bob.WaitFor(t, mark, 5*time.Second, "unavailable from "+cal, isCal("unavailable", ""))
	})
}

// TestFallbackNone: without the module and with no fallback, nothing is
// published and the status says so.
func TestFallbackNone(t *testing.T) {
	srv := testenv.StartProsody(t, testenv.XMPPOptions{NoModule: true, Users: []string{"alice", "bob"}})
	w := newWorld(t, srv, "alice", "bob")
	alice := "alice@" + srv.Domain
	desk := testenv.DialXMPP(t, srv, "alice", "desk")
	bob := testenv.DialXMPP(t, srv, "bob", "pc")
	desk.SendPresence(t, "", "", "at my desk", 10)
	bob.SendPresence(t, "", "", "", 0)
	testenv.MakeContacts(t, desk, bob)
	w.startBot(xmppbot.Config{})
	st := w.bot.Status()
	if st.Mechanism != xmppbot.MechanismNone {
		t.Errorf("mechanism %q, want %q", st.Mechanism, xmppbot.MechanismNone)
	}
	if off := strings.Join(st.Off, "\n"); !strings.Contains(off, "contacts see only what people set themselves") {
		t.Errorf("Off does not say nothing is published: %q", st.Off)
	}
	mark := bob.Mark()
	w.meeting("alice", time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	time.Sleep(2 * time.Second)
	for _, s := range bob.Received(mark) {
		if s.IsPresence() && testenv.Bare(s.Attr("from")) == alice {
			t.Errorf("bob received %s with nothing to publish through", s.String())
		}
	}
}

// apiCall runs one ejabberd mod_http_api command.
func apiCall(t *testing.T, srv *testenv.XMPPServer, command, body string) {
	t.Helper()
	resp, err := http.Post(fmt.Sprintf("http://%s/api/%s", srv.HTTPAddr, command), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", command, resp.Status)
	}
}
