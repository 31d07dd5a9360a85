package testenv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The harness itself: ejabberd starts with the module, users can log in,
// the component can connect, a restart keeps the accounts, and nothing is
// left listening afterwards. The module's behaviour is tested in xmppbot.
func TestEjabberdStartRestart(t *testing.T) {
	t.Parallel()
	srv := StartEjabberd(t, XMPPOptions{Users: []string{"alice", "bob"}, GracePeriod: 2 * time.Second})
	e := srv.impl.(*ejabberd)
	t.Logf("start-up %v", e.startTime)

	alice := DialXMPP(t, srv, "alice", "desk")
	comp := DialComponent(t, srv)
	r := comp.IQ(t, `<iq type="get" id="d1" from="calendar.example.test" to="example.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if !strings.Contains(r.String(), "urn:presencegw:overlay:0") {
		t.Errorf("disco#info lacks the overlay feature: %s", r)
	}
	cfg, err := os.ReadFile(e.configPath())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "grace_period: 2}") {
		t.Errorf("config lacks grace_period 2:\n%s", cfg)
	}

	ports := []string{srv.C2SAddr, srv.ComponentAddr, srv.HTTPAddr, ejAddr(e.epmdPort)}
	began := time.Now()
	srv.Stop(t)
	t.Logf("stop %v", time.Since(began))
	<-alice.Done()
	for _, a := range ports {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Stop", a)
		}
	}

	began = time.Now()
	srv.Start(t)
	t.Logf("restart %v", time.Since(began))
	if got := []string{srv.C2SAddr, srv.ComponentAddr, srv.HTTPAddr, ejAddr(e.epmdPort)}; strings.Join(got, " ") != strings.Join(ports, " ") {
		t.Errorf("ports after restart %v, want %v", got, ports)
	}
	DialXMPP(t, srv, "bob", "pc") // the account survived the restart
	srv.Register(t, "carol", "carol")
	DialXMPP(t, srv, "carol", "x")
}

func TestEjabberdNoModule(t *testing.T) {
	t.Parallel()
	srv := StartEjabberd(t, XMPPOptions{NoModule: true})
	comp := DialComponent(t, srv)
	r := comp.IQ(t, `<iq type="get" id="d1" from="calendar.example.test" to="example.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if strings.Contains(r.String(), "urn:presencegw:overlay:0") {
		t.Errorf("disco#info has the overlay feature without the module: %s", r)
	}
	r = comp.IQ(t, `<iq type="get" id="l1" from="calendar.example.test" to="example.test"><overlays xmlns="urn:presencegw:overlay:0"/></iq>`)
	if r.Attr("type") != "error" {
		t.Errorf("list without the module: %s", r)
	}
}

// What the module does on ejabberd's own events, which only the harness
// can cause: deleting a user drops the user's overlay, and unloading the
// module (reload_config without it) withdraws every overlay and the
// disco feature.
func TestEjabberdModuleRemoveUserAndUnload(t *testing.T) {
	t.Parallel()
	srv := StartEjabberd(t, XMPPOptions{Users: []string{"alice", "bob", "dave"}})
	e := srv.impl.(*ejabberd)
	alice := DialXMPP(t, srv, "alice", "desk")
	alice.SendPresence(t, "", "", "at my desk", 1)
	bob := DialXMPP(t, srv, "bob", "pc")
	bob.SendPresence(t, "", "", "", 0)
	MakeContacts(t, alice, bob)
	comp := DialComponent(t, srv)
	list := func() string {
		return comp.IQ(t, `<iq type="get" id="l1" from="calendar.example.test" to="example.test"><overlays xmlns="urn:presencegw:overlay:0"/></iq>`).String()
	}
	set := func(user string) {
		r := comp.IQ(t, `<iq type="set" id="s1" from="calendar.example.test" to="example.test"><overlay xmlns="urn:presencegw:overlay:0" jid="`+
			user+`@example.test" show="dnd"><status>busy</status></overlay></iq>`)
		if r.Attr("type") != "result" {
			t.Fatalf("set %s: %s", user, r)
		}
	}

	set("dave")
	if _, err := e.api("unregister", map[string]string{"user": "dave", "host": ejDomain}); err != nil {
		t.Fatal(err)
	}
	if l := list(); strings.Contains(l, "dave@") {
		t.Errorf("dave's overlay outlived his account: %s", l)
	}

	mark := bob.Mark()
	set("alice")
	bob.WaitFor(t, mark, 5*time.Second, "alice dnd", func(s Stanza) bool {
		return s.IsPresence() && s.Attr("from") == alice.JID && s.Show() == "dnd" && s.Status() == "busy"
	})
	e.opts.NoModule = true
	if err := e.writeConfig(); err != nil {
		t.Fatal(err)
	}
	mark = bob.Mark()
	if _, err := e.api("reload_config", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	bob.WaitFor(t, mark, 5*time.Second, "alice's own presence after the module was unloaded", func(s Stanza) bool {
		return s.IsPresence() && s.Attr("from") == alice.JID && s.Show() == "" && s.Status() == "at my desk"
	})
	r := comp.IQ(t, `<iq type="get" id="d1" from="calendar.example.test" to="example.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if strings.Contains(r.String(), "urn:presencegw:overlay:0") {
		t.Errorf("disco#info still has the overlay feature after unloading: %s", r)
	}
}

// The example configuration for a real deployment
// (configs/ejabberd/ejabberd.yml) loads on ejabberd 23.01 with the module:
// the harness's server is restarted on it, with only the ports, host
// names, certificate and secret replaced, and /api/status allowed for the
// harness's readiness check.
func TestEjabberdExampleConfigLoads(t *testing.T) {
	t.Parallel()
	srv := StartEjabberd(t, XMPPOptions{})
	e := srv.impl.(*ejabberd)
	srv.Stop(t)

	example, err := os.ReadFile(filepath.Join(repoEjabberdDir(t), "ejabberd.yml"))
	if err != nil {
		t.Fatal(err)
	}
	s2s, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(example)
	for _, r := range [][2]string{
		{"port: 5222\n", fmt.Sprintf("port: %d\n", e.c2sPort)},
		{"port: 5269\n", fmt.Sprintf("port: %d\n", s2s[0])},
		{"port: 5347\n", fmt.Sprintf("port: %d\n", e.componentPort)},
		{"port: 5280\n", fmt.Sprintf("port: %d\n", e.httpPort)},
		{`ip: "::"`, `ip: "127.0.0.1"`},
		{"/etc/ejabberd/ejabberd.pem", e.certPath()},
		{"CHANGE-ME-long-random-secret", e.secret},
		{"example.com", ejDomain},
		{"      - connected_users_info\n", "      - connected_users_info\n      - status\n"},
	} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("the example config no longer has %q", r[0])
		}
		cfg = strings.ReplaceAll(cfg, r[0], r[1])
	}
	if err := os.WriteFile(e.configPath(), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Start(t)

	comp := DialComponent(t, srv)
	r := comp.IQ(t, `<iq type="get" id="d1" from="calendar.example.test" to="example.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if !strings.Contains(r.String(), "urn:presencegw:overlay:0") {
		t.Errorf("disco#info lacks the overlay feature: %s", r)
	}
	r = comp.IQ(t, `<iq type="get" id="l1" from="calendar.example.test" to="example.test"><overlays xmlns="urn:presencegw:overlay:0"/></iq>`)
	if r.Attr("type") != "result" {
		t.Errorf("the component cannot list: %s", r)
	}
	if out, err := e.api("connected_users_info", map[string]any{}); err != nil || out != "[]" {
		t.Errorf("connected_users_info: %q, %v", out, err)
	}
	if _, err := e.api("registered_users", map[string]string{"host": ejDomain}); err == nil {
		t.Errorf("the example's API allows registered_users, want only connected_users_info")
	}
	for _, bad := range []string{"[error]", "[critical]", "Granting no permissions"} {
		if strings.Contains(srv.Log(), bad) {
			t.Errorf("the log has %q:\n%s", bad, srv.Log())
		}
	}
}
