package testenv

import (
	"net"
	"os"
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
