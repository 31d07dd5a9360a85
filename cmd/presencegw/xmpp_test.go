package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/internal/testenv"
	"github.com/presencegw/presencegw/ldapmap"
)

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// writeXMPPConfig writes a config with a file directory (alice and bob),
// no calendar source and an xmpp section for the component port at
// server, and returns its path.
func writeXMPPConfig(t *testing.T, listen, server string) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "people.yaml"), []byte(`people:
  - mail: alice@example.com
    jid: alice@example.com
    name: Alice
  - mail: bob@example.com
    aliases: [b.jones@example.com]
    mailbox: Bob.Mbx@Example.com
    jid: bob@example.com
    name: Bob
`), 0o600)
	os.WriteFile(filepath.Join(dir, "xmpp.secret"), []byte("s3cret\n"), 0o600)
	path := filepath.Join(dir, "config.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`listen: %s
store: state.db
files:
  - name: people
    path: people.yaml
web:
  anonymous: [presence]
xmpp:
  server: %s
  jid: calendar.example.com
  secret_file: xmpp.secret
  reconnect_max: 1s
`, listen, server)), 0o600)
	return path
}

// A chat server outage leaves the HTTP API up and ready; the component
// keeps retrying and says why in the log.
func TestServeWithXMPPServerDown(t *testing.T) {
	addr, xmppAddr := closedPort(t), closedPort(t)
	cfg := writeXMPPConfig(t, addr, xmppAddr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs testenv.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "-c", cfg}, io.Discard, &logs) }()
	get := func(path string) (int, string) { return getText(addr, path) }
	// The failure is logged, and retried, while the gateway serves.
	deadline := time.Now().Add(10 * time.Second)
	for !(strings.Count(logs.String(), "xmpp component disconnected") >= 2) && time.Now().Before(deadline) {
		select {
		case code := <-done:
			t.Fatalf("serve exited %d with the chat server down:\n%s", code, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	failure := "dial " + xmppAddr + ": "
	if !strings.Contains(logs.String(), "xmpp component disconnected") || !strings.Contains(logs.String(), failure) || !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("logs lack the XMPP connection failure (%q, connection refused), retried:\n%s", failure, logs.String())
	}
	if !strings.Contains(logs.String(), `msg="xmpp component starting" server=`+xmppAddr+" jid=calendar.example.com hosts=[example.com]") {
		t.Errorf("logs lack the component's start:\n%s", logs.String())
	}
	var code int
	var body string
	for i := 0; i < 100; i++ {
		if code, body = get("/readyz"); code == http.StatusOK {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != http.StatusOK {
		t.Errorf("/readyz = %d %s with the chat server down\n%s", code, body, logs.String())
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "presencegw_xmpp_connected 0") || !strings.Contains(body, "presencegw_xmpp_disconnects_total") {
		t.Errorf("/metrics = %d, lacks the component's series:\n%.2000s", code, body)
	}
	// Without a calendar the engine still answers (from live presence,
	// unknown until the component learns it), never "stale".
	if code, body := get("/api/v1/presence?email=alice@example.com"); code != 200 || !strings.Contains(body, `"state":"unknown"`) || strings.Contains(body, "stale") {
		t.Errorf("lookup = %d %s", code, body)
	}
	select {
	case code := <-done:
		t.Fatalf("serve exited %d", code)
	default:
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d after cancel\n%s", code, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not shut down")
	}
	if !strings.Contains(logs.String(), "msg=stopped") {
		t.Errorf("logs lack the end:\n%s", logs.String())
	}
}

func TestDoctorXMPPUnreachable(t *testing.T) {
	xmppAddr := closedPort(t)
	cfg := writeXMPPConfig(t, "127.0.0.1:0", xmppAddr)
	start := time.Now()
	code, out, errOut := cli(t, "doctor", "-c", cfg)
	want := "xmpp calendar.example.com at " + xmppAddr + ": FAILED: dial " + xmppAddr + ": "
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "connection refused") {
		t.Errorf("doctor: exit %d, output lacks %q:\n%s%s", code, want, out, errOut)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("doctor took %s to find a closed port", took)
	}
	// A server that answers nothing: the check gives up in time.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	defer func(d time.Duration) { xmppProbeTimeout = d }(xmppProbeTimeout)
	xmppProbeTimeout = 500 * time.Millisecond
	cfg = writeXMPPConfig(t, "127.0.0.1:0", ln.Addr().String())
	code, out, _ = cli(t, "doctor", "-c", cfg)
	want = "xmpp calendar.example.com at " + ln.Addr().String() + ": FAILED: no component handshake with " + ln.Addr().String() + " within 500ms"
	if code != 1 || !strings.Contains(out, want) {
		t.Errorf("doctor with a silent server: exit %d, output lacks %q:\n%s", code, want, out)
	}
}

func TestDoctorWithoutXMPP(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "people.csv"), []byte("mail,jid\nalice@example.com,alice@example.com\n"), 0o600)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("store: state.db\nfiles:\n  - name: people\n    path: people.csv\n"), 0o600)
	if code, out, errOut := cli(t, "doctor", "-c", cfg); code != 0 || !strings.Contains(out, "xmpp: not configured") {
		t.Errorf("doctor: %d %q %s", code, out, errOut)
	}
}

// fakeServer is the server side of XEP-0114, enough for the component's
// set-up: the handshake, a XEP-0356 advertisement, disco#info. It
// records every stanza the component sends.
type fakeServer struct {
	ln      net.Listener
	secret  string
	perms   map[string]string // the advertisement; nil sends none
	overlay bool              // disco#info lists the overlay namespace
	reject  string            // a stream error condition instead of the handshake

	mu       sync.Mutex
	received []string // "iq get ns:local to" of each IQ, "message", ...
	closed   chan struct{}
}

func startFakeServer(t *testing.T, f *fakeServer) *fakeServer {
	t.Helper()
	var err error
	if f.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	f.closed = make(chan struct{}, 8)
	t.Cleanup(func() { f.ln.Close() })
	go func() {
		for {
			c, err := f.ln.Accept()
			if err != nil {
				return
			}
			go func() {
				f.serve(c)
				c.Close()
				f.closed <- struct{}{}
			}()
		}
	}()
	return f
}

func (f *fakeServer) addr() string { return f.ln.Addr().String() }

func (f *fakeServer) stanzas() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.received...)
}

func (f *fakeServer) serve(c net.Conn) {
	d := xml.NewDecoder(c)
	var to string
	for {
		tok, err := d.Token()
		if err != nil {
			return
		}
		if s, ok := tok.(xml.StartElement); ok && s.Name.Local == "stream" {
			for _, a := range s.Attr {
				if a.Name.Local == "to" {
					to = a.Value
				}
			}
			break
		}
	}
	const id = "fake-stream-1"
	fmt.Fprintf(c, `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='%s' id='%s'>`, to, id)
	var hs struct {
		XMLName xml.Name `xml:"handshake"`
		Value   string   `xml:",chardata"`
	}
	if err := d.Decode(&hs); err != nil {
		return
	}
	if f.reject != "" {
		fmt.Fprintf(c, `<stream:error><%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`, f.reject)
		return
	}
	if want := fmt.Sprintf("%x", sha1.Sum([]byte(id+f.secret))); hs.Value != want {
		fmt.Fprint(c, `<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)
		return
	}
	fmt.Fprint(c, `<handshake/>`)
	if f.perms != nil {
		fmt.Fprintf(c, `<message from='example.com' to='%s'><privilege xmlns='urn:xmpp:privilege:2'>`, to)
		for access, typ := range f.perms {
			fmt.Fprintf(c, `<perm access='%s' type='%s'/>`, access, typ)
		}
		fmt.Fprint(c, `</privilege></message>`)
	}
	for {
		var st struct {
			XMLName xml.Name
			ID      string `xml:"id,attr"`
			Type    string `xml:"type,attr"`
			To      string `xml:"to,attr"`
			Payload []struct {
				XMLName xml.Name
			} `xml:",any"`
		}
		if err := d.Decode(&st); err != nil {
			return
		}
		desc := st.XMLName.Local + " " + st.Type
		var ns string
		if len(st.Payload) > 0 {
			ns = st.Payload[0].XMLName.Space
			desc += " " + ns + ":" + st.Payload[0].XMLName.Local
		}
		desc += " to " + st.To
		f.mu.Lock()
		f.received = append(f.received, desc)
		f.mu.Unlock()
		if st.XMLName.Local != "iq" || st.Type != "get" && st.Type != "set" {
			continue
		}
		switch ns {
		case "http://jabber.org/protocol/disco#info":
			fmt.Fprintf(c, `<iq type='result' id='%s' from='%s' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'>`, st.ID, st.To, to)
			if f.overlay {
				fmt.Fprint(c, `<feature var='urn:presencegw:overlay:0'/>`)
			}
			fmt.Fprint(c, `</query></iq>`)
		case "urn:presencegw:overlay:0":
			fmt.Fprintf(c, `<iq type='result' id='%s' from='%s' to='%s'><overlays xmlns='urn:presencegw:overlay:0'><overlay jid='alice@example.com' show='dnd'><status>In a meeting</status></overlay></overlays></iq>`, st.ID, st.To, to)
		default:
			fmt.Fprintf(c, `<iq type='error' id='%s' from='%s' to='%s'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`, st.ID, st.To, to)
		}
	}
}

// doctor reports what the server granted, and its check never gets as
// far as publishing: a running gateway's overlays stay as they are.
func TestDoctorXMPPConnected(t *testing.T) {
	f := startFakeServer(t, &fakeServer{secret: "s3cret", perms: map[string]string{"presence": "managed_entity", "message": "outgoing"}, overlay: true})
	cfg := writeXMPPConfig(t, "127.0.0.1:0", f.addr())
	code, out, errOut := cli(t, "doctor", "-c", cfg)
	for _, want := range []string{
		"xmpp calendar.example.com at " + f.addr() + ": connected\n",
		"xmpp permissions (XEP-0356): message=outgoing, presence=managed_entity\n",
		"xmpp overlay module: answered on example.com\n",
		"xmpp calendar presence for contacts: overlay module\n",
		"xmpp features: all on\n",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("doctor: exit %d, output lacks %q:\n%s%s", code, want, out, errOut)
		}
	}
	select {
	case <-f.closed:
	case <-time.After(5 * time.Second):
		t.Error("doctor left the component connected")
	}
	time.Sleep(200 * time.Millisecond)
	for _, s := range f.stanzas() {
		if strings.Contains(s, "urn:presencegw:overlay:0") {
			t.Errorf("doctor's check sent an overlay request: %s (all: %q)", s, f.stanzas())
		}
	}

	// Nothing granted, no module: each feature that is off, and why.
	f = startFakeServer(t, &fakeServer{secret: "s3cret", perms: map[string]string{"message": "outgoing"}})
	cfg = writeXMPPConfig(t, "127.0.0.1:0", f.addr())
	code, out, _ = cli(t, "doctor", "-c", cfg)
	for _, want := range []string{
		": connected\n",
		"xmpp permissions (XEP-0356): message=outgoing\n",
		"xmpp overlay module: did not answer on example.com\n",
		"xmpp calendar presence for contacts: none\n",
		"xmpp feature off: calendar presence for contacts: the overlay module is not loaded",
		"xmpp feature off: live presence for lookups: the server granted no XEP-0356 presence permission",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("doctor without permissions: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}

	// A wrong secret, and a second connection the server turns away.
	f = startFakeServer(t, &fakeServer{secret: "other"})
	cfg = writeXMPPConfig(t, "127.0.0.1:0", f.addr())
	code, out, _ = cli(t, "doctor", "-c", cfg)
	if want := "xmpp calendar.example.com at " + f.addr() + ": FAILED: component handshake with " + f.addr() + " as calendar.example.com: "; code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "not-authorized") {
		t.Errorf("doctor with a wrong secret: exit %d, output lacks %q:\n%s", code, want, out)
	}
	f = startFakeServer(t, &fakeServer{secret: "s3cret", reject: "conflict"})
	cfg = writeXMPPConfig(t, "127.0.0.1:0", f.addr())
	code, out, _ = cli(t, "doctor", "-c", cfg)
	if code != 1 || !strings.Contains(out, "conflict") || !strings.Contains(out, "is the gateway running and connected already?") {
		t.Errorf("doctor turned away: exit %d:\n%s", code, out)
	}
}

// The engine exists for the component even without a calendar source;
// with neither, there is none (as before).
func TestOpenPresenceForXMPP(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cfgPath := writeXMPPConfig(t, "127.0.0.1:0", "127.0.0.1:5347")
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(cfg, false, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if a.presence == nil || a.calendar != nil {
		t.Errorf("with xmpp, no calendar: presence %v, calendar %v", a.presence, a.calendar)
	}
	if b := a.backend(); !b.noCalendar || b.presence == nil {
		t.Errorf("backend = %+v", b)
	}
	bot, err := a.newBot()
	if err != nil || bot == nil {
		t.Fatalf("newBot: %v, %v", bot, err)
	}
	cfg.XMPP = nil
	b, err := openApp(cfg, false, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if b.presence != nil || b.calendar != nil {
		t.Errorf("with neither: presence %v, calendar %v", b.presence, b.calendar)
	}
	if bot, err := b.newBot(); bot != nil || err != nil {
		t.Errorf("newBot without xmpp: %v, %v", bot, err)
	}
	// An unreadable secret fails at start, naming it.
	x := &config.XMPP{Server: "127.0.0.1:5347", JID: "calendar.example.com", SecretFile: filepath.Join(t.TempDir(), "missing"), Visibility: "status"}
	if _, err := xmppConfig(x, log); err == nil || !strings.Contains(err.Error(), "xmpp secret") {
		t.Errorf("missing secret: %v", err)
	}
}

// The calendar sessions' TLS: nil by default (the component decides),
// the CA file added to the system's roots, a file without a certificate
// refused by name.
func TestXMPPClientTLS(t *testing.T) {
	dir := t.TempDir()
	if c, err := xmppClientTLS(&config.XMPP{}); c != nil || err != nil {
		t.Errorf("default: %v, %v", c, err)
	}
	c, err := xmppClientTLS(&config.XMPP{ClientTLSName: "chat.example.com"})
	if err != nil || c.ServerName != "chat.example.com" || c.RootCAs != nil || c.MinVersion != tls.VersionTLS12 {
		t.Errorf("name only: %+v, %v", c, err)
	}
	caPEM, caCert := testCA(t)
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = xmppClientTLS(&config.XMPP{ClientCAFile: ca})
	if err != nil || c.RootCAs == nil {
		t.Fatalf("CA file: %+v, %v", c, err)
	}
	if _, err := caCert.Verify(x509.VerifyOptions{Roots: c.RootCAs}); err != nil {
		t.Errorf("the CA file's certificate is not trusted by the pool: %v", err)
	}
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := xmppClientTLS(&config.XMPP{ClientCAFile: bad}); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("bad CA file: %v", err)
	}
}

// testCA makes a self-signed CA certificate, as PEM and parsed.
func testCA(t *testing.T) ([]byte, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "presencegw test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert
}

func TestBotAdapters(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cfg, err := loadConfig(writeXMPPConfig(t, "127.0.0.1:0", "127.0.0.1:5347"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(cfg, false, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if _, err := a.dir.SyncFull(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	d := botDirectory{dir: a.dir}
	for _, tt := range []struct {
		mailbox, jid string
		ok           bool
	}{
		{"alice@example.com", "alice@example.com", true},
		{"ALICE@example.com", "alice@example.com", true},
		{"bob.mbx@example.com", "", false}, // not one of bob's addresses
		{"b.jones@example.com", "", false}, // bob's alias, not his mailbox
		{"nobody@example.com", "", false},  // not found
		{"not an address", "", false},      // invalid
	} {
		if j, ok := d.JIDOf(tt.mailbox); j != tt.jid || ok != tt.ok {
			t.Errorf("JIDOf(%q) = %q, %v; want %q, %v", tt.mailbox, j, ok, tt.jid, tt.ok)
		}
	}
	for _, tt := range []struct {
		jid, mailbox string
		ok           bool
	}{
		{"alice@example.com", "alice@example.com", true},
		{"Bob@Example.com", "bob.mbx@example.com", true}, // lower case, as the engine keys it
		{"carol@example.com", "", false},
		{"example.com", "", false},
	} {
		if m, ok := d.MailboxOf(tt.jid); m != tt.mailbox || ok != tt.ok {
			t.Errorf("MailboxOf(%q) = %q, %v; want %q, %v", tt.jid, m, ok, tt.mailbox, tt.ok)
		}
	}
	// The engine keys the presence the component learns as the web layer
	// looks it up.
	mb, _ := d.MailboxOf("bob@example.com")
	if got := a.dir.Resolve("b.jones@example.com"); got.Person == nil || !strings.EqualFold(got.Person.MailboxID, mb) {
		t.Errorf("bob's mailbox %q vs %+v", mb, got.Person)
	}

	adm := botAdmin{a: a}
	if got, want := adm.Explain("B.Jones@example.com"), explain(a.dir.Resolve("b.jones@example.com"), nil); !strings.HasPrefix(got, want) ||
		!strings.Contains(got, "b.jones@example.com → bob@example.com") || !strings.Contains(got, "presence:   unknown") {
		t.Errorf("Explain = %q", got)
	}
	if got := adm.Explain("nobody@example.com"); got != "nobody@example.com: not found in any directory\n  override:   none\n" {
		t.Errorf("Explain of an unknown address = %q", got)
	}
	sum, err := adm.Sync(context.Background())
	if err != nil || !regexpMatch(`^people: (full read, 2 people|\d+ changed), 0 removed, [\d.]+s\nindex: 2 people, 3 addresses, 0 conflicts \(0 unresolved\), [\d.]+s$`, sum) {
		t.Errorf("Sync = %q, %v", sum, err)
	}
	results := []ldapmap.SourceResult{{Source: "corp", Err: fmt.Errorf("ldap: connection refused")}}
	if got := syncSummary(a.dir, results, time.Second); !strings.HasPrefix(got, "corp: FAILED: ldap: connection refused (last good entries kept)\nindex: ") {
		t.Errorf("summary of a failure = %q", got)
	}
}

// scheduled_overlays: absent or true schedules ahead, false does not.
func TestXMPPConfigScheduled(t *testing.T) {
	t.Setenv("PRESENCEGW_TEST_XMPP_SECRET", "s3cret")
	no, yes := false, true
	for _, tt := range []struct {
		name        string
		set         *bool
		noScheduled bool
	}{{"absent", nil, false}, {"true", &yes, false}, {"false", &no, true}} {
		t.Run(tt.name, func(t *testing.T) {
			x := &config.XMPP{Server: "127.0.0.1:5347", JID: "calendar.example.com", SecretEnv: "PRESENCEGW_TEST_XMPP_SECRET",
				Visibility: "status", ScheduledOverlays: tt.set}
			c, err := xmppConfig(x, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if c.NoScheduled != tt.noScheduled {
				t.Errorf("NoScheduled = %v, want %v", c.NoScheduled, tt.noScheduled)
			}
		})
	}
}
