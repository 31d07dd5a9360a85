package testenv

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const discoInfo = `<iq type="get" id="d1" to="example.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`

// hasFeature reports whether a disco#info reply lists var.
func hasFeature(s Stanza, v string) bool {
	q, _ := s.Child("query")
	for _, c := range q.Children {
		if c.XMLName.Local == "feature" && c.Attr("var") == v {
			return true
		}
	}
	return false
}

// TestProsodyStarts checks what StartProsody promises: users log in, the
// component authenticates and gets XEP-0356 presence permission, the
// overlay module is loaded, and HTTP answers.
func TestProsodyStarts(t *testing.T) {
	srv := StartProsody(t, XMPPOptions{Users: []string{"alice", "bob"}, GracePeriod: 1500 * time.Millisecond})
	if srv.Kind != "prosody" || srv.Domain != "example.test" || srv.ComponentJID != "calendar.example.test" || srv.ComponentSecret == "" {
		t.Fatalf("server fields: %+v", srv)
	}
	cfg, err := os.ReadFile(filepath.Join(srv.Dir, "prosody.cfg.lua"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "presencegw_grace_period = 1.5\n") {
		t.Errorf("config lacks the grace period:\n%s", cfg)
	}

	comp := DialComponent(t, srv)
	perm := comp.WaitFor(t, 0, 5*time.Second, "privilege advertisement", func(s Stanza) bool {
		p, ok := s.Child("privilege")
		return s.XMLName.Local == "message" && ok && p.XMLName.Space == "urn:xmpp:privilege:2"
	})
	// Prosody writes the attributes in no fixed order: compare them, not text.
	p, _ := perm.Child("privilege")
	granted := false
	for _, c := range p.Children {
		granted = granted || c.Attr("access") == "presence" && c.Attr("type") == "managed_entity"
	}
	if !granted {
		t.Errorf("component permissions: %s", perm)
	}

	alice := DialXMPP(t, srv, "alice", "desk")
	mark := comp.Mark()
	alice.SendPresence(t, "", "", "here", 3)
	comp.WaitFor(t, mark, 5*time.Second, "alice's presence via XEP-0356", func(s Stanza) bool {
		return s.IsPresence() && s.Attr("from") == "alice@example.test/desk" && s.Status() == "here"
	})
	if r := alice.IQ(t, discoInfo); !hasFeature(r, "urn:presencegw:overlay:0") {
		t.Errorf("disco#info lacks the overlay feature: %s", r)
	}
	DialXMPP(t, srv, "bob", "phone")

	c, err := net.DialTimeout("tcp", srv.HTTPAddr, time.Second)
	if err != nil {
		t.Fatalf("HTTP port: %v", err)
	}
	c.Close()
}

// TestProsodyNoModule: the site without the module has no overlay feature.
func TestProsodyNoModule(t *testing.T) {
	srv := StartProsody(t, XMPPOptions{NoModule: true, Users: []string{"alice"}})
	alice := DialXMPP(t, srv, "alice", "desk")
	r := alice.IQ(t, discoInfo)
	if hasFeature(r, "urn:presencegw:overlay:0") {
		t.Errorf("disco#info lists the overlay feature without the module: %s", r)
	}
	if !hasFeature(r, "http://jabber.org/protocol/disco#info") {
		t.Errorf("not a disco#info reply: %s", r)
	}
}

// TestProsodyRestart: Stop closes the sessions, Start comes back on the
// same ports with the same accounts, and Register works on a running
// server.
func TestProsodyRestart(t *testing.T) {
	srv := StartProsody(t, XMPPOptions{Users: []string{"alice"}})
	c2s, compAddr := srv.C2SAddr, srv.ComponentAddr
	alice := DialXMPP(t, srv, "alice", "desk")
	srv.Stop(t)
	select {
	case <-alice.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the session survived Stop")
	}
	if c, err := net.DialTimeout("tcp", c2s, time.Second); err == nil {
		c.Close()
		t.Fatal("c2s port still accepts after Stop")
	}
	srv.Start(t)
	if srv.C2SAddr != c2s || srv.ComponentAddr != compAddr {
		t.Errorf("addresses changed: %s %s, were %s %s", srv.C2SAddr, srv.ComponentAddr, c2s, compAddr)
	}
	DialXMPP(t, srv, "alice", "desk2")
	srv.Register(t, "carol", "carol")
	DialXMPP(t, srv, "carol", "x")
	DialComponent(t, srv)
	srv.Stop(t)
	srv.Stop(t) // idempotent
}

// TestProsodyLogTail: Log is a bounded tail with the start-up lines of
// this server.
func TestProsodyLogTail(t *testing.T) {
	srv := StartProsody(t, XMPPOptions{})
	log := srv.Log()
	if !strings.Contains(log, "presencegw") || strings.Contains(log, "lua-unbound\n") && strings.Contains(log, "********") {
		t.Errorf("log tail:\n%s", log)
	}
	if n := strings.Count(log, "\n"); n > prosodyLogTail+20 {
		t.Errorf("log tail has %d lines", n)
	}
}

func TestDropUnboundNotice(t *testing.T) {
	in := "a\n**************************\nProsody was unable to find lua-unbound\nmore\n**************************\nb\n"
	if got := string(dropUnboundNotice([]byte(in))); got != "a\n\nb\n" {
		t.Errorf("got %q", got)
	}
	other := "**************************\nsomething else\n**************************\n"
	if got := string(dropUnboundNotice([]byte(other))); got != other {
		t.Errorf("got %q", got)
	}
}
