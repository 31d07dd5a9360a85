package xmppbot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestChatCommands(t *testing.T) {
	cases := []struct {
		name, from, body string
		want             []string // substrings of the reply
		not              []string // must not appear
	}{
		{"help", ansAlice, "help", []string{"status", "calendar off", "calendar on", "help"}, []string{"resolve", "sync"}},
		{"help for an admin", ansAdmin, "Help", []string{"status", "calendar off", "resolve ADDRESS", "sync"}, nil},
		{"question mark", ansAlice, "?", []string{"calendar off"}, nil},
		{"unknown", ansAlice, "hello there", []string{`Unknown command "hello"`, `"help"`}, nil},
		{"unknown, clipped", ansAlice, strings.Repeat("z", 100), []string{`"` + strings.Repeat("z", 40) + `…"`}, []string{strings.Repeat("z", 41)}},
		{"calendar alone", ansAlice, "calendar", []string{`"calendar off"`, `"calendar on"`}, nil},
		{"calendar nonsense", ansAlice, "calendar maybe", []string{`"calendar off"`}, nil},
		{"resolve by a user", ansAlice, "resolve bob@corp.example", []string{"administrators only"}, []string{"→"}},
		{"sync by a user", ansBob, "sync", []string{"administrators only"}, nil},
		{"resolve", ansAdmin, "resolve bob@corp.example", []string{"bob@corp.example → alice@example.com (ldap:corp, mail attribute)"}, nil},
		{"resolve without an address", ansAdmin, "resolve", []string{"Usage: resolve ADDRESS"}, nil},
		{"resolve with two", ansAdmin, "resolve a@b c@d", []string{"Usage: resolve ADDRESS"}, nil},
		{"status of someone unknown", ansBob, "status", []string{"no person with the JID bob@example.com"}, nil},
		{"calendar off for someone unknown", ansBob, "calendar off", []string{"no mailbox for bob@example.com"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newAnsWorld(t, nil)
			got := w.chatText(t, c.from, c.body)
			for _, s := range c.want {
				if !strings.Contains(got, s) {
					t.Errorf("reply %q lacks %q", got, s)
				}
			}
			for _, s := range c.not {
				if strings.Contains(got, s) {
					t.Errorf("reply %q has %q", got, s)
				}
			}
		})
	}
	t.Run("not available", func(t *testing.T) {
		w := newAnsWorld(t, func(c *Config) { c.Lookup, c.Admin = nil, nil })
		for _, body := range []string{"status", "calendar off", "sync"} {
			if got := w.chatText(t, ansAdmin, body); !strings.Contains(got, "not available") {
				t.Errorf("%s: %q", body, got)
			}
		}
		if got := w.chatText(t, ansAdmin, "help"); strings.Contains(got, "status") || strings.Contains(got, "sync") {
			t.Errorf("help lists what is off: %q", got)
		}
	})
}

func TestChatCalendarOptOut(t *testing.T) {
	w := newAnsWorld(t, nil)
	steps := []struct {
		body, want string
		optOut     bool
	}{
		{"calendar off", "Calendar states are off", true},
		{"CALENDAR OFF", "already off", true},
		{"calendar on", "Calendar states are on again", false},
		{"calendar On", "already on", false},
	}
	for _, s := range steps {
		if got := w.chatText(t, ansAlice, s.body); !strings.Contains(got, s.want) {
			t.Errorf("%s: %q, want %q", s.body, got, s.want)
		}
		if got := w.engine.OptedOut("mbx-alice"); got != s.optOut {
			t.Errorf("after %s: opted out %v", s.body, got)
		}
	}
	w.engine.failSet = errors.New("disk full")
	if got := w.chatText(t, ansAlice, "calendar off"); !strings.Contains(got, "could not be saved") || strings.Contains(got, "disk") {
		t.Errorf("failed save: %q", got)
	}
}

func TestChatStatus(t *testing.T) {
	w := newAnsWorld(t, nil)
	got := w.chatText(t, ansAlice, "status")
	for _, s := range []string{
		"Alice Liddell — alice@corp.example (alice@example.com)",
		"Outlook shows: busy “In a meeting until 14:30” until 2026-05-04 14:30 UTC — from your calendar.",
		"Calendar: busy “In a meeting until 14:30” until 2026-05-04 14:30 UTC. Calendar states are on",
		"Your contacts see: your own presence; the gateway has set nothing.",
		"Online: no client of yours",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("status lacks %q:\n%s", s, got)
		}
	}

	// What the server holds and what the feed says show up.
	w.bot.pub.mu.Lock()
	w.bot.pub.have["alice@example.com"] = overlay{Show: "dnd", Status: ansMeeting, Until: ansUntil}
	w.bot.pub.mu.Unlock()
	w.bot.live.apply(presenceStanza{From: "alice@example.com/laptop", Show: "dnd", Status: "focus", Priority: "5"})
	w.bot.live.apply(presenceStanza{From: "alice@example.com/phone"})
	if err := w.engine.SetOptOut("mbx-alice", true); err != nil {
		t.Fatal(err)
	}
	got = w.chatText(t, ansAlice, "status")
	for _, s := range []string{
		"Calendar: not used — you turned calendar states off",
		"Your contacts see: dnd “In a meeting until 14:30” until 2026-05-04 14:30 UTC, set by the gateway on your server.",
		`Online: laptop — dnd "focus", priority 5; phone — available, priority 0.`,
	} {
		if !strings.Contains(got, s) {
			t.Errorf("status lacks %q:\n%s", s, got)
		}
	}
}

func TestChatIgnoredAndRefused(t *testing.T) {
	w := newAnsWorld(t, nil)
	for _, typ := range []string{"error", "groupchat", "headline"} {
		if r := w.message(t, ansAlice, typ, "help"); len(r) != 0 {
			t.Errorf("type %s: replied %v", typ, r)
		}
	}
	if r := w.exchange(t, `<message type="chat" from="`+ansAlice+`" to="`+ansComponent+`"><active xmlns="http://jabber.org/protocol/chatstates"/></message>`); len(r) != 0 {
		t.Errorf("chat state: replied %v", r)
	}
	if r := w.message(t, ansAlice, "chat", "  \n "); len(r) != 0 {
		t.Errorf("blank body: replied %v", r)
	}
	for _, from := range []string{ansHost, "other.example.com", "", "@@@"} {
		if r := w.message(t, from, "chat", "help"); len(r) != 0 {
			t.Errorf("from %q: replied %v", from, r)
		}
	}
	t.Run("normal messages are answered", func(t *testing.T) {
		r := w.message(t, ansAlice, "normal", "help")
		if len(r) != 1 || r[0].attr("type") != "chat" {
			t.Fatalf("%v", r)
		}
		r = w.exchange(t, `<message from="`+ansAlice+`" to="`+ansComponent+`"><body>help</body></message>`)
		if len(r) != 1 || r[0].attr("type") != "chat" {
			t.Fatalf("no type: %v", r)
		}
	})
	t.Run("strangers get a refusal, never data", func(t *testing.T) {
		for _, body := range []string{"status", "help", "resolve alice@corp.example", "sync"} {
			got := w.chatText(t, ansRemote, body)
			if !strings.Contains(got, "answers users of example.com only") || strings.Contains(got, "alice") || strings.Contains(got, "calendar") {
				t.Errorf("%s: %q", body, got)
			}
		}
		if w.admin.syncs != 0 || len(w.admin.explain) != 0 {
			t.Error("a stranger ran an admin command")
		}
	})
	t.Run("oversized body", func(t *testing.T) {
		r := w.message(t, ansAlice, "chat", "status "+strings.Repeat("x", maxBody))
		if len(r) != 1 || r[0].XMLName.Local != "message" || r[0].attr("type") != "error" || r[0].attr("id") != "m1" || r[0].attr("to") != ansAlice {
			t.Fatalf("%v", r)
		}
		wantError(t, r[0], "modify", "policy-violation", "")
	})
}

func TestChatRateLimit(t *testing.T) {
	w := newAnsWorld(t, nil)
	replies := 0
	for range 40 {
		replies += len(w.message(t, ansAlice, "chat", "sync"))
	}
	if replies > commandBurst+2 {
		t.Errorf("%d replies to 40 quick messages, want about the burst (%d)", replies, commandBurst)
	}
	// Strangers share one bucket: many strangers cannot flood either.
	replies = 0
	for i := range 40 {
		replies += len(w.message(t, fmt.Sprintf("u%d@elsewhere.test/r", i), "chat", "help"))
	}
	if replies > commandBurst+2 {
		t.Errorf("%d refusals to 40 strangers, want about the burst (%d)", replies, commandBurst)
	}
	if n := len(w.bot.ans.limits.buckets); n > 1 {
		t.Errorf("%d buckets kept, want 1 (alice's)", n)
	}
}

func TestChatSync(t *testing.T) {
	w := newAnsWorld(t, nil)
	release := make(chan struct{})
	w.admin.sync = func(ctx context.Context) (string, error) {
		select {
		case <-release:
			return "12 entries, 2 changed", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if got := w.chatText(t, ansAdmin, "sync"); !strings.Contains(got, "sync started") {
		t.Fatalf("sync: %q", got)
	}
	if got := w.chatText(t, ansAdmin, "sync"); !strings.Contains(got, "already running") {
		t.Fatalf("second sync: %q", got)
	}
	close(release)
	msg := waitSent(t, w)
	for _, s := range []string{`to="` + ansAdmin + `"`, `from="` + ansComponent + `"`, `type="chat"`, "Directory sync finished: 12 entries, 2 changed"} {
		if !strings.Contains(msg, s) {
			t.Errorf("summary %s lacks %s", msg, s)
		}
	}

	t.Run("failure", func(t *testing.T) {
		w.admin.sync = func(context.Context) (string, error) { return "", errors.New("ldap: connection refused") }
		waitIdle(t, w)
		w.chatText(t, ansAdmin, "sync")
		if msg := waitSent(t, w); !strings.Contains(msg, "Directory sync failed: ldap: connection refused") {
			t.Errorf("summary %s", msg)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		w.admin.sync = func(ctx context.Context) (string, error) { <-ctx.Done(); return "", ctx.Err() }
		w.bot.ans.syncTimeout = 50 * time.Millisecond
		waitIdle(t, w)
		w.chatText(t, ansAdmin, "sync")
		if msg := waitSent(t, w); !strings.Contains(msg, "Directory sync") {
			t.Errorf("summary %s", msg)
		}
	})
}

func waitSent(t *testing.T, w *ansWorld) string {
	t.Helper()
	select {
	case m := <-w.sent:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing sent")
	}
	return ""
}

func waitIdle(t *testing.T, w *ansWorld) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for w.bot.ans.syncing.Load() {
		if time.Now().After(deadline) {
			t.Fatal("a sync is still running")
		}
		time.Sleep(time.Millisecond)
	}
}

// adhoc executes a command and returns the reply.
func (w *ansWorld) adhoc(t *testing.T, from, attrs, inner string) xnode {
	t.Helper()
	return w.iq(t, from, "set", `<command xmlns="http://jabber.org/protocol/commands" `+attrs+`>`+inner+`</command>`)
}

// completedNote asserts a completed command and returns its note.
func completedNote(t *testing.T, r xnode, node, noteType string) string {
	t.Helper()
	if r.attr("type") != "result" {
		typ, cond, app, text := r.stanzaErr()
		t.Fatalf("command failed: %s/%s %s %s", typ, cond, app, text)
	}
	c := r.child("command")
	if c.XMLName.Space != nsCommands || c.attr("status") != "completed" || c.attr("node") != node || c.attr("sessionid") == "" {
		t.Fatalf("command %v", c.Attrs)
	}
	n := c.child("note")
	if n.attr("type") != noteType {
		t.Fatalf("note type %q, want %q: %s", n.attr("type"), noteType, n.Text)
	}
	return n.Text
}

func TestCommandAdhocOneStage(t *testing.T) {
	w := newAnsWorld(t, nil)
	cases := []struct {
		from, node, action string
		noteType, want     string
		optOut             bool
	}{
		{ansAlice, "status", "", "info", "Outlook shows: busy", false},
		{ansAlice, "calendar-off", "execute", "info", "Calendar states are off", true},
		{ansAlice, "calendar-off", "complete", "info", "already off", true},
		{ansAlice, "calendar-on", "", "info", "on again", false},
		{ansBob, "status", "", "error", "no person with the JID bob@example.com", false},
		{ansBob, "calendar-off", "", "error", "no mailbox", false},
	}
	for _, c := range cases {
		t.Run(c.node+" by "+c.from, func(t *testing.T) {
			attrs := fmt.Sprintf(`node=%q`, c.node)
			if c.action != "" {
				attrs += fmt.Sprintf(` action=%q`, c.action)
			}
			if got := completedNote(t, w.adhoc(t, c.from, attrs, ""), c.node, c.noteType); !strings.Contains(got, c.want) {
				t.Errorf("note %q, want %q", got, c.want)
			}
			if got := w.engine.OptedOut("mbx-alice"); got != c.optOut {
				t.Errorf("opted out %v", got)
			}
		})
	}
	t.Run("sync", func(t *testing.T) {
		if got := completedNote(t, w.adhoc(t, ansAdmin, `node="sync"`, ""), "sync", "info"); !strings.Contains(got, "sync started") {
			t.Errorf("note %q", got)
		}
		if msg := waitSent(t, w); !strings.Contains(msg, "Directory sync finished: 3 changes") || !strings.Contains(msg, ansAdmin) {
			t.Errorf("summary %s", msg)
		}
	})
}

func TestCommandAdhocResolve(t *testing.T) {
	w := newAnsWorld(t, nil)
	w.bot.ans.limits = newSenderLimits(1000, 1000)
	form := func(a string) string {
		return `<x xmlns="jabber:x:data" type="submit"><field var="address"><value>` + a + `</value></field></x>`
	}
	start := func(t *testing.T) string {
		t.Helper()
		r := w.adhoc(t, ansAdmin, `node="resolve" action="execute"`, "")
		if r.attr("type") != "result" {
			t.Fatalf("stage 1: %v", r)
		}
		c := r.child("command")
		x := c.child("x")
		f := x.child("field")
		if c.attr("status") != "executing" || c.attr("sessionid") == "" || c.child("actions").attr("execute") != "complete" ||
			len(c.child("actions").children("complete")) != 1 ||
			x.XMLName.Space != nsData || x.attr("type") != "form" ||
			f.attr("var") != "address" || f.attr("type") != "text-single" || f.child("required").XMLName.Local != "required" {
			t.Fatalf("stage 1: %+v", c)
		}
		return c.attr("sessionid")
	}
	t.Run("two stages", func(t *testing.T) {
		sid := start(t)
		got := completedNote(t, w.adhoc(t, ansAdmin, fmt.Sprintf(`node="resolve" sessionid=%q`, sid), form(" bob@corp.example ")), "resolve", "info")
		if got != "bob@corp.example → alice@example.com (ldap:corp, mail attribute)" {
			t.Errorf("note %q", got)
		}
		// The session is over.
		wantError(t, w.adhoc(t, ansAdmin, fmt.Sprintf(`node="resolve" sessionid=%q`, sid), form("x@y")), "cancel", "not-allowed", "session-expired")
	})
	t.Run("complete action", func(t *testing.T) {
		sid := start(t)
		completedNote(t, w.adhoc(t, ansAdmin, fmt.Sprintf(`node="resolve" sessionid=%q action="complete"`, sid), form("a@b")), "resolve", "info")
	})
	t.Run("form with the first request", func(t *testing.T) {
		completedNote(t, w.adhoc(t, ansAdmin, `node="resolve"`, form("c@d")), "resolve", "info")
	})
	t.Run("cancel", func(t *testing.T) {
		sid := start(t)
		r := w.adhoc(t, ansAdmin, fmt.Sprintf(`node="resolve" sessionid=%q action="cancel"`, sid), "")
		if c := r.child("command"); r.attr("type") != "result" || c.attr("status") != "canceled" || c.attr("sessionid") != sid {
			t.Fatalf("%v", r)
		}
		wantError(t, w.adhoc(t, ansAdmin, fmt.Sprintf(`node="resolve" sessionid=%q action="cancel"`, sid), ""), "cancel", "not-allowed", "session-expired")
	})
	t.Run("missing address", func(t *testing.T) {
		sid := start(t)
		wantError(t, w.adhoc(t, ansAdmin, fmt.Sprintf(`node="resolve" sessionid=%q`, sid), ""), "modify", "bad-request", "bad-payload")
		wantError(t, w.adhoc(t, ansAdmin, fmt.Sprintf(`node="resolve" sessionid=%q`, sid), form("  ")), "modify", "bad-request", "bad-payload")
		// Still open: it can be completed now.
		completedNote(t, w.adhoc(t, ansAdmin, fmt.Sprintf(`node="resolve" sessionid=%q`, sid), form("a@b")), "resolve", "info")
	})
	t.Run("next and prev", func(t *testing.T) {
		sid := start(t)
		for _, a := range []string{"next", "prev"} {
			wantError(t, w.adhoc(t, ansAdmin, fmt.Sprintf(`node="resolve" sessionid=%q action=%q`, sid, a), form("a@b")), "modify", "bad-request", "bad-action")
		}
	})
	t.Run("someone else's session", func(t *testing.T) {
		sid := start(t)
		wantError(t, w.adhoc(t, "admin@example.com/other", fmt.Sprintf(`node="resolve" sessionid=%q`, sid), form("a@b")), "modify", "bad-request", "bad-sessionid")
	})
	t.Run("another node's session", func(t *testing.T) {
		sid := start(t)
		wantError(t, w.adhoc(t, ansAdmin, fmt.Sprintf(`node="sync" sessionid=%q`, sid), ""), "modify", "bad-request", "bad-sessionid")
	})
	t.Run("expired", func(t *testing.T) {
		sid := start(t)
		w.bot.ans.adhoc.mu.Lock()
		w.bot.ans.adhoc.m[sid].expires = time.Now().Add(-time.Second)
		w.bot.ans.adhoc.mu.Unlock()
		wantError(t, w.adhoc(t, ansAdmin, fmt.Sprintf(`node="resolve" sessionid=%q`, sid), form("a@b")), "cancel", "not-allowed", "session-expired")
	})
	t.Run("too many open sessions", func(t *testing.T) {
		w := newAnsWorld(t, nil)
		w.bot.ans.limits = newSenderLimits(1000, 1000)
		var sids []string
		for i := range adhocPerOwner + 1 {
			r := w.adhoc(t, ansAdmin, `node="resolve"`, "")
			if i < adhocPerOwner {
				if r.attr("type") != "result" {
					t.Fatalf("session %d refused", i)
				}
				sids = append(sids, r.child("command").attr("sessionid"))
			}
			if i == adhocPerOwner {
				wantError(t, r, "cancel", "not-allowed", "")
			}
		}
		// Another requester is not affected; ending one makes room.
		if r := w.adhoc(t, "admin@example.com/other", `node="resolve"`, ""); r.attr("type") != "result" {
			t.Fatalf("other resource refused: %v", r)
		}
		w.adhoc(t, ansAdmin, fmt.Sprintf(`node="resolve" sessionid=%q action="cancel"`, sids[0]), "")
		if r := w.adhoc(t, ansAdmin, `node="resolve"`, ""); r.attr("type") != "result" {
			t.Fatalf("refused after a cancel: %v", r)
		}
	})
}

func TestCommandAdhocErrors(t *testing.T) {
	cases := []struct {
		name, from, attrs, inner string
		change                   func(*Config)
		typ                      string // IQ type
		errType, cond, app       string
	}{
		{"user runs resolve", ansAlice, `node="resolve"`, "", nil, "set", "cancel", "forbidden", ""},
		{"user runs sync", ansBob, `node="sync"`, "", nil, "set", "cancel", "forbidden", ""},
		{"stranger runs status", ansRemote, `node="status"`, "", nil, "set", "cancel", "forbidden", ""},
		{"server runs status", ansHost, `node="status"`, "", nil, "set", "cancel", "forbidden", ""},
		{"unknown node", ansAlice, `node="reboot"`, "", nil, "set", "cancel", "item-not-found", ""},
		{"no node", ansAlice, ``, "", nil, "set", "cancel", "item-not-found", ""},
		{"get", ansAlice, `node="status"`, "", nil, "get", "modify", "bad-request", ""},
		{"admin off", ansAdmin, `node="sync"`, "", func(c *Config) { c.Admin = nil }, "set", "cancel", "service-unavailable", ""},
		{"lookup off", ansAlice, `node="status"`, "", func(c *Config) { c.Lookup = nil }, "set", "cancel", "service-unavailable", ""},
		{"unknown action", ansAlice, `node="status" action="jump"`, "", nil, "set", "modify", "bad-request", "malformed-action"},
		{"cancel without a session", ansAlice, `node="status" action="cancel"`, "", nil, "set", "modify", "bad-request", "bad-action"},
		{"next without a session", ansAdmin, `node="resolve" action="next"`, "", nil, "set", "modify", "bad-request", "bad-action"},
		{"unknown session", ansAlice, `node="status" sessionid="status:nope"`, "", nil, "set", "modify", "bad-request", "bad-sessionid"},
		{"malformed form", ansAdmin, `node="resolve"`, `<x xmlns="jabber:x:data" type="submit"><field var="address"><value><b/></value></field></x>`, nil, "set", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newAnsWorld(t, c.change)
			r := w.iq(t, c.from, c.typ, `<command xmlns="http://jabber.org/protocol/commands" `+c.attrs+`>`+c.inner+`</command>`)
			if c.cond == "" {
				return // any well-formed answer
			}
			wantError(t, r, c.errType, c.cond, c.app)
		})
	}
}

func TestCommandAdhocRateLimit(t *testing.T) {
	w := newAnsWorld(t, nil)
	limited := 0
	for range 30 {
		r := w.adhoc(t, ansAdmin, `node="sync"`, "")
		if r.attr("type") == "error" {
			wantError(t, r, "wait", "resource-constraint", "")
			limited++
		}
	}
	if limited < 15 {
		t.Errorf("%d of 30 quick commands refused, want at least 15", limited)
	}
	waitIdle(t, w)
	w.admin.mu.Lock()
	defer w.admin.mu.Unlock()
	if w.admin.syncs > commandBurst {
		t.Errorf("%d syncs ran", w.admin.syncs)
	}
}

// TestCommandSameAsChat checks that both ways run the same code.
func TestCommandSameAsChat(t *testing.T) {
	w := newAnsWorld(t, nil)
	chat := w.chatText(t, ansAlice, "status")
	note := completedNote(t, w.adhoc(t, ansAlice, `node="status"`, ""), "status", "info")
	if chat != note {
		t.Errorf("chat and ad-hoc differ:\n%s\n%s", chat, note)
	}
}
