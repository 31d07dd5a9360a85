package xmppbot_test

import (
	"strings"
	"testing"
	"time"

	"github.com/presencegw/presencegw/internal/testenv"
	"github.com/presencegw/presencegw/xmppbot"
)

// rosterPush matches a roster push (or roster result) carrying an item
// for itemJID with the given subscription.
func rosterPush(itemJID, subscription string) func(testenv.Stanza) bool {
	return func(s testenv.Stanza) bool {
		if s.XMLName.Local != "iq" {
			return false
		}
		q, ok := s.Child("query")
		if !ok {
			return false
		}
		it, ok := q.Child("item")
		return ok && it.Attr("jid") == itemJID && it.Attr("subscription") == subscription
	}
}

// TestFallbackShadowContact: Prosody without the overlay module, with the
// XEP-0356 roster permission and shadow_contacts on: alice's contact bob
// gets "alice (calendar)" in his roster, and its presence carries the
// calendar state; carol, not a contact, gets nothing.
func TestFallbackShadowContact(t *testing.T) {
	srv := testenv.StartProsody(t, testenv.XMPPOptions{NoModule: true, RosterPermission: "both", Users: []string{"alice", "bob", "carol"}})
	w := newWorld(t, srv, "alice", "bob", "carol")
	alice := "alice@" + srv.Domain
	shadow := `alice\40` + srv.Domain + "@" + srv.ComponentJID
	shadowFull := shadow + "/calendar"
	desk := testenv.DialXMPP(t, srv, "alice", "desk")
	bob := testenv.DialXMPP(t, srv, "bob", "pc")
	carol := testenv.DialXMPP(t, srv, "carol", "laptop")
	desk.SendPresence(t, "", "", "at my desk", 10)
	bob.SendPresence(t, "", "", "", 0)
	carol.SendPresence(t, "", "", "", 0)
	testenv.MakeContacts(t, desk, bob)
	w.startBot(xmppbot.Config{ShadowContacts: true})
	parent := t

	st := w.bot.Status()
	if st.Mechanism != xmppbot.MechanismShadow || st.Overlay {
		t.Fatalf("status %+v, want mechanism %q", st, xmppbot.MechanismShadow)
	}
	if off := strings.Join(st.Off, "\n"); !strings.Contains(off, "shadow contact") || !strings.Contains(off, `alice\40`) {
		t.Errorf("Off does not say what contacts see instead: %q", st.Off)
	}
	waitView(t, bob, alice, shown{Show: "", Status: "at my desk"}, 5*time.Second)

	now := time.Now()
	end := now.Add(time.Hour).Truncate(time.Minute)
	busy := "In a meeting until " + end.UTC().Format("15:04")
	fromShadow := func(typ, show string) func(testenv.Stanza) bool {
		return func(s testenv.Stanza) bool {
			return s.IsPresence() && s.Attr("from") == shadowFull && s.Attr("type") == typ && (typ != "" || s.Show() == show)
		}
	}
	noShadowFor := func(t *testing.T, c *testenv.XMPPClient, mark int) {
		t.Helper()
		for _, s := range c.Received(mark) {
			if strings.Contains(s.String(), `alice\40`) && !(s.IsPresence() && s.Attr("type") == "unsubscribed") {
				t.Errorf("%s received %s", c.JID, s.String())
			}
		}
	}

	t.Run("meeting: bob gets the shadow in his roster and its dnd", func(t *testing.T) {
		mark, cmark := bob.Mark(), carol.Mark()
		start := time.Now()
		w.meeting("alice", now.Add(-time.Minute), end)
		push := bob.WaitFor(t, mark, 5*time.Second, "roster push of "+shadow, rosterPush(shadow, "to"))
		q, _ := push.Child("query")
		if it, _ := q.Child("item"); it.Attr("name") != "alice (calendar)" {
			t.Errorf("roster item %s, want the name %q", push.String(), "alice (calendar)")
		}
		p := bob.WaitFor(t, mark, 5*time.Second, "dnd from "+shadowFull, fromShadow("", "dnd"))
		if took := time.Since(start); took > time.Second {
			t.Errorf("bob saw the meeting %v after the boundary, want ≤ 1 s", took)
		}
		if p.Status() != busy {
			t.Errorf("bob got %s, want status %q", p.String(), busy)
		}
		v := viewOf(bob, shadow)
		for _, rule := range allRules {
			if got := v.show(rule); got.Show != "dnd" || got.Status != busy {
				t.Errorf("%s shows the shadow as %+v, want dnd %q", rule, got, busy)
			}
		}
		// alice herself is untouched.
		if got := viewOf(bob, alice).show(ruleHighestPriority); got.Show != "" || got.Status != "at my desk" {
			t.Errorf("bob shows alice as %+v, want her own state", got)
		}
		time.Sleep(500 * time.Millisecond)
		noShadowFor(t, carol, cmark)
		r := bob.IQ(t, `<iq type="get" id="r2"><query xmlns="jabber:iq:roster"/></iq>`)
		q, _ = r.Child("query")
		found := false
		for _, it := range q.Children {
			found = found || it.Attr("jid") == shadow && it.Attr("subscription") == "to"
		}
		if !found {
			t.Errorf("bob's roster has no %s with subscription to: %s", shadow, r.String())
		}
	})

	t.Run("carol probes and subscribes: nothing revealed", func(t *testing.T) {
		mark := carol.Mark()
		carol.Send(t, `<presence type="probe" to="`+shadow+`"/>`)
		carol.Send(t, `<presence type="subscribe" to="`+shadow+`"/>`)
		carol.WaitFor(t, mark, 5*time.Second, "unsubscribed from "+shadow, func(s testenv.Stanza) bool {
			return s.IsPresence() && s.Attr("type") == "unsubscribed" && s.Attr("from") == shadow
		})
		time.Sleep(500 * time.Millisecond)
		noShadowFor(t, carol, mark)
	})

	t.Run("a message to the shadow: told where to write", func(t *testing.T) {
		mark := bob.Mark()
		bob.Send(t, `<message type="chat" to="`+shadow+`"><body>are you free?</body></message>`)
		m := bob.WaitFor(t, mark, 5*time.Second, "an answer from "+shadowFull, func(s testenv.Stanza) bool {
			return s.XMLName.Local == "message" && s.Attr("from") == shadowFull
		})
		if body := m.ChildText("body"); !strings.Contains(body, "write to "+alice) {
			t.Errorf("answer %q does not point to %s", body, alice)
		}
	})

	t.Run("alice's status command says how contacts see it", func(t *testing.T) {
		mark := desk.Mark()
		desk.Send(t, `<message type="chat" to="`+srv.ComponentJID+`"><body>status</body></message>`)
		m := desk.WaitFor(t, mark, 5*time.Second, "the status answer", func(s testenv.Stanza) bool {
			return s.XMLName.Local == "message" && s.Attr("from") == srv.ComponentJID
		})
		if body := m.ChildText("body"); !strings.Contains(body, "Your contacts see: dnd") || !strings.Contains(body, "second contact") {
			t.Errorf("status answer:\n%s", body)
		}
	})

	t.Run("bob logs in again: his server's probe is answered", func(t *testing.T) {
		bob.Close()
		bob = testenv.DialXMPP(parent, srv, "bob", "pc")
		bob.SendPresence(t, "", "", "", 0)
		p := bob.WaitFor(t, 0, 5*time.Second, "dnd from "+shadowFull+" after the probe", fromShadow("", "dnd"))
		if p.Status() != busy {
			t.Errorf("bob got %s", p.String())
		}
	})

	t.Run("alice offline: the shadow goes unavailable; back online: dnd", func(t *testing.T) {
		mark := bob.Mark()
		desk.Close()
		bob.WaitFor(t, mark, 5*time.Second, "unavailable from "+shadowFull, fromShadow("unavailable", ""))
		mark = bob.Mark()
		desk = testenv.DialXMPP(parent, srv, "alice", "desk")
		desk.SendPresence(t, "", "", "at my desk", 10)
		bob.WaitFor(t, mark, 5*time.Second, "dnd from "+shadowFull, fromShadow("", "dnd"))
	})

	t.Run("meeting end: unavailable", func(t *testing.T) {
		mark := bob.Mark()
		w.meeting("alice", now.Add(-2*time.Hour), now.Add(-time.Hour))
		bob.WaitFor(t, mark, 5*time.Second, "unavailable from "+shadowFull, fromShadow("unavailable", ""))
		if v := viewOf(bob, shadow); len(v.resources) != 0 {
			t.Errorf("the shadow still shows %+v", v.resources)
		}
	})

	t.Run("out of office: xa; gateway restart keeps the contacts", func(t *testing.T) {
		mark := bob.Mark()
		w.oof("alice", "On holiday\nCall Dave")
		p := bob.WaitFor(t, mark, 5*time.Second, "xa from "+shadowFull, fromShadow("", "xa"))
		if p.Status() != "Out of office: On holiday" {
			t.Errorf("bob got %s", p.String())
		}
		w.stopBot()
		mark = bob.Mark()
		w.oof("alice", "")
		w.startBot(xmppbot.Config{ShadowContacts: true})
		// The restarted gateway knows bob holds the shadow (store) and
		// withdraws the state that ended while it was down.
		bob.WaitFor(t, mark, 10*time.Second, "unavailable from "+shadowFull, fromShadow("unavailable", ""))
	})

	t.Run("bob removes the shadow: not put back", func(t *testing.T) {
		mark := bob.Mark()
		bob.IQ(t, `<iq type="set" id="rm1"><query xmlns="jabber:iq:roster"><item jid="`+shadow+`" subscription="remove"/></query></iq>`)
		bob.WaitFor(t, mark, 5*time.Second, "roster push removing "+shadow, rosterPush(shadow, "remove"))
		time.Sleep(500 * time.Millisecond) // the unsubscribe reaches the component
		mark = bob.Mark()
		w.meeting("alice", now.Add(-time.Minute), end)
		time.Sleep(1500 * time.Millisecond)
		for _, s := range bob.Received(mark) {
			if rosterPush(shadow, "to")(s) || fromShadow("", "dnd")(s) {
				t.Errorf("bob removed the shadow but received %s", s.String())
			}
		}
		// Subscribing again brings it back.
		mark = bob.Mark()
		bob.Send(t, `<presence type="subscribe" to="`+shadow+`"/>`)
		bob.WaitFor(t, mark, 5*time.Second, "roster item "+shadow+" subscription to", rosterPush(shadow, "to"))
		bob.WaitFor(t, mark, 5*time.Second, "dnd from "+shadowFull, fromShadow("", "dnd"))
	})

	t.Run("shadow contacts turned off: the roster items are removed", func(t *testing.T) {
		w.stopBot()
		mark := bob.Mark()
		w.startBot(xmppbot.Config{})
		if got := w.bot.Status().Mechanism; got != xmppbot.MechanismNone {
			t.Errorf("mechanism %q, want %q", got, xmppbot.MechanismNone)
		}
		bob.WaitFor(t, mark, 10*time.Second, "roster push removing "+shadow, rosterPush(shadow, "remove"))
		r := bob.IQ(t, `<iq type="get" id="r3"><query xmlns="jabber:iq:roster"/></iq>`)
		if strings.Contains(r.String(), `alice\40`) {
			t.Errorf("bob's roster still holds the shadow: %s", r.String())
		}
	})
}

// TestFallbackShadowEjabberd: ejabberd 23.01 grants the roster
// permission but fails every XEP-0356 roster set, so without the module
// and without sessions_api the shadow contacts are detected as unusable
// at connect, and the status says why.
func TestFallbackShadowEjabberd(t *testing.T) {
	srv := testenv.StartEjabberd(t, testenv.XMPPOptions{NoModule: true, Users: []string{"alice", "bob"}})
	w := newWorld(t, srv, "alice", "bob")
	w.noSessionsAPI = true
	w.startBot(xmppbot.Config{ShadowContacts: true})
	st := w.bot.Status()
	if st.Mechanism != xmppbot.MechanismNone {
		t.Errorf("mechanism %q, want %q on ejabberd 23.01", st.Mechanism, xmppbot.MechanismNone)
	}
	if off := strings.Join(st.Off, "\n"); !strings.Contains(off, "refused a roster set") {
		t.Errorf("Off does not say the roster set failed: %q", st.Off)
	}
}

// TestFallbackShadowContactLeaves: someone who is no longer allowed to
// see alice's presence (she removed him) loses the shadow at her next
// calendar state and sees nothing of it.
func TestFallbackShadowContactLeaves(t *testing.T) {
	srv := testenv.StartProsody(t, testenv.XMPPOptions{NoModule: true, RosterPermission: "both", Users: []string{"alice", "bob"}})
	w := newWorld(t, srv, "alice", "bob")
	bobJID := "bob@" + srv.Domain
	shadow := `alice\40` + srv.Domain + "@" + srv.ComponentJID
	desk := testenv.DialXMPP(t, srv, "alice", "desk")
	bob := testenv.DialXMPP(t, srv, "bob", "pc")
	desk.SendPresence(t, "", "", "", 10)
	bob.SendPresence(t, "", "", "", 0)
	testenv.MakeContacts(t, desk, bob)
	w.startBot(xmppbot.Config{ShadowContacts: true})
	now := time.Now()
	dnd := func(s testenv.Stanza) bool {
		return s.IsPresence() && testenv.Bare(s.Attr("from")) == shadow && s.Attr("type") == "" && s.Show() == "dnd"
	}

	mark := bob.Mark()
	w.meeting("alice", now.Add(-time.Minute), now.Add(time.Hour))
	bob.WaitFor(t, mark, 5*time.Second, "dnd from the shadow", dnd)
	w.meeting("alice", now.Add(-2*time.Hour), now.Add(-time.Hour))
	bob.WaitFor(t, mark, 5*time.Second, "unavailable from the shadow", func(s testenv.Stanza) bool {
		return s.IsPresence() && testenv.Bare(s.Attr("from")) == shadow && s.Attr("type") == "unavailable"
	})

	// alice removes bob: he may no longer see her presence.
	desk.IQ(t, `<iq type="set" id="rm1"><query xmlns="jabber:iq:roster"><item jid="`+bobJID+`" subscription="remove"/></query></iq>`)
	bob.WaitFor(t, mark, 5*time.Second, "roster push: alice gone", func(s testenv.Stanza) bool {
		return rosterPush("alice@"+srv.Domain, "none")(s) || rosterPush("alice@"+srv.Domain, "remove")(s)
	})
	mark = bob.Mark()
	w.meeting("alice", now.Add(-time.Minute), now.Add(time.Hour))
	bob.WaitFor(t, mark, 5*time.Second, "roster push removing the shadow", rosterPush(shadow, "remove"))
	time.Sleep(time.Second)
	for _, s := range bob.Received(mark) {
		if dnd(s) {
			t.Errorf("bob is no longer alice's contact but received %s", s.String())
		}
	}
}
