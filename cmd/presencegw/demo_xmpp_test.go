package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/presencegw/presencegw/internal/testenv"
)

// demoWait bounds each wait of the end-to-end test: Prosody's start, the
// first calendar poll, the overlay reaching bob.
const demoWait = 30 * time.Second

// A newcomer's path: 'presencegw demo --xmpp', log in as bob with a
// client, see alice (in the demo's meeting, which runs from 5 minutes
// before the start to 55 minutes after) as dnd "In a meeting until …",
// and the HTTP API still answers. Stopping the demo stops Prosody and
// removes its directory.
func TestDemoXMPP(t *testing.T) {
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, logs testenv.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--xmpp", "--listen", "127.0.0.1:0", "--xmpp-port", strconv.Itoa(port)}, &out, &logs)
	}()
	// The login instructions come once Prosody runs and the demo people
	// are online.
	waitFor(t, done, &logs, "the login instructions", func() bool { return strings.Contains(out.String(), "password: bob") })
	for _, want := range []string{
		"account:  bob@chat.example.com",
		fmt.Sprintf("server:   127.0.0.1, port %d", port),
		fmt.Sprintf("/connect bob@chat.example.com server 127.0.0.1 port %d tls trust", port),
		"plain-text passwords without TLS",
		"alice, bob, carol, dave, erin, frank",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the instructions lack %q:\n%s", want, out.String())
		}
	}
	httpAddr := logField(t, &logs, "presencegw listening", "addr")
	prosodyDir := logField(t, &logs, "prosody started", "dir")
	prosodyPID, _ := strconv.Atoi(logField(t, &logs, "prosody started", "pid"))

	bob := dialDemo(t, fmt.Sprintf("127.0.0.1:%d", port), "bob")
	roster := bob.roster(t)
	if got := roster["alice@chat.example.com"]; got != "both Alice Smith" {
		t.Errorf("bob's roster: alice is %q, want subscription both, named Alice Smith (roster %v)", got, roster)
	}
	if len(roster) != 5 {
		t.Errorf("bob's roster has %d contacts, want the 5 other demo people: %v", len(roster), roster)
	}
	bob.send(t, stanza.Presence{}.Wrap(nil))
	alice := bob.await(t, &logs, "alice's presence dnd \"In a meeting until …\"", func(p seenStanza) bool {
		return p.isPresence() && p.From == "alice@chat.example.com/demo" && p.Type == "" && p.Show == "dnd" && strings.HasPrefix(p.Status, "In a meeting until ")
	})
	t.Logf("bob sees %s: %s %q", alice.From, alice.Show, alice.Status)
	// carol has nothing in her calendar: her own presence, untouched.
	bob.await(t, &logs, "carol's presence, available", func(p seenStanza) bool {
		return p.isPresence() && p.From == "carol@chat.example.com/demo" && p.Type == "" && p.Show == "" && p.Status == ""
	})
	// The gateway answers chat commands, admin ones included.
	bob.send(t, rawXML(`<message type="chat" to="calendar.chat.example.com"><body>resolve alice@example.com</body></message>`))
	reply := bob.await(t, &logs, "the gateway's answer to resolve", func(p seenStanza) bool {
		return p.XMLName.Local == "message" && p.From == "calendar.chat.example.com"
	})
	if !strings.Contains(reply.Body, "alice@example.com → alice@chat.example.com") || !strings.Contains(reply.Body, "In a meeting until ") {
		t.Errorf("resolve answered %q", reply.Body)
	}

	// The HTTP API: alice busy by the calendar, online by the chat server.
	var body string
	for deadline := time.Now().Add(demoWait); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + httpAddr + "/api/v1/presence?email=alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if resp.StatusCode == 200 && strings.Contains(body, `"state":"busy"`) && strings.Contains(body, `"status":"In a meeting until `) && strings.Contains(body, `"online":true`) {
			break
		}
	}
	if !strings.Contains(body, `"state":"busy"`) || !strings.Contains(body, `"status":"In a meeting until `) || !strings.Contains(body, `"online":true`) {
		t.Errorf("/api/v1/presence?email=alice@example.com = %s, want busy, In a meeting until …, online", body)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("demo --xmpp exited %d:\n%s", code, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("demo --xmpp did not stop:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `msg="prosody stopped"`) {
		t.Errorf("no clean Prosody stop in the log:\n%s", logs.String())
	}
	if _, err := os.Stat(prosodyDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Prosody's directory %s is still there (%v)", prosodyDir, err)
	}
	if prosodyPID > 0 {
		if err := syscall.Kill(prosodyPID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("Prosody (pid %d) still runs: %v", prosodyPID, err)
		}
	}
	select {
	case <-bob.done:
	case <-time.After(5 * time.Second):
		t.Error("bob's session outlived Prosody")
	}
}

// Prosody dying ends the demo with an error that says so, and its
// directory is still removed.
func TestDemoXMPPProsodyDies(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, logs, errOut testenv.Buffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"demo", "--xmpp", "--listen", "127.0.0.1:0", "--xmpp-port", strconv.Itoa(freePort(t))}, &out, io.MultiWriter(&logs, &errOut))
		done <- code
	}()
	waitFor(t, done, &logs, "the login instructions", func() bool { return strings.Contains(out.String(), "password: bob") })
	dir := logField(t, &logs, "prosody started", "dir")
	pid, err := strconv.Atoi(logField(t, &logs, "prosody started", "pid"))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 1 || !strings.Contains(errOut.String(), "presencegw demo: prosody exited (signal: killed)") {
			t.Errorf("exit %d after Prosody died:\n%s", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the demo runs on without Prosody:\n%s", logs.String())
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Prosody's directory %s is still there (%v)", dir, err)
	}
}

// A taken client port is named, with the system Prosody as the likely
// holder and --xmpp-port as the way out; nothing is started.
func TestDemoXMPPPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	code, _, errOut := cli(t, "demo", "--xmpp", "--listen", "127.0.0.1:0", "--xmpp-port", strconv.Itoa(port))
	want := fmt.Sprintf("127.0.0.1:%d, the client port, is in use", port)
	if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "--xmpp-port") || !strings.Contains(errOut, "systemctl disable --now prosody") {
		t.Errorf("exit %d, %q; want 1 and %q", code, errOut, want)
	}
}

// Without Prosody the error says which packages to install.
func TestDemoXMPPWithoutProsody(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	old := prosodyBinDir
	prosodyBinDir = t.TempDir()
	defer func() { prosodyBinDir = old }()
	code, _, errOut := cli(t, "demo", "--xmpp", "--listen", "127.0.0.1:0", "--xmpp-port", strconv.Itoa(freePort(t)))
	if code != 1 || !strings.Contains(errOut, "prosody is not on PATH") || !strings.Contains(errOut, "install the Debian packages prosody and prosody-modules") {
		t.Errorf("exit %d, %q", code, errOut)
	}
}

func TestDemoHelpMentionsXMPP(t *testing.T) {
	code, _, errOut := cli(t, "demo", "--help")
	for _, want := range []string{"-xmpp", "-xmpp-port", "(default 5222)", "127.0.0.1 only", "plain-text passwords without TLS", "prosody-modules"} {
		if code != 0 || !strings.Contains(errOut, want) {
			t.Errorf("demo --help lacks %q (exit %d):\n%s", want, code, errOut)
		}
	}
}

// The roster file is what Prosody 0.12 itself stores once two users have
// accepted each other's subscriptions (read from a real Prosody's
// data directory after the handshake), and the storage names follow
// util.datamanager.
func TestProsodyRoster(t *testing.T) {
	people := []demoChatter{
		{User: "alice", JID: "alice@chat.example.com", Name: "Alice Smith", Department: "Engineering"},
		{User: "bob", JID: "bob@chat.example.com", Name: `Bob "B" Jones`},
	}
	want := `return {
	[false] = {
		["version"] = 1;
		["pending"] = {};
	};
	["bob@chat.example.com"] = {
		["subscription"] = "both";
		["name"] = "Bob \"B\" Jones";
		["groups"] = {};
	};
};
`
	if got := string(prosodyRoster(people[0], people)); got != want {
		t.Errorf("alice's roster:\n%s\nwant:\n%s", got, want)
	}
	if got := string(prosodyRoster(people[1], people)); !strings.Contains(got, "\t\t[\"groups\"] = {\n\t\t\t[\"Engineering\"] = true;\n\t\t};\n") {
		t.Errorf("bob's roster lacks alice's group:\n%s", got)
	}
	if got := prosodyEncode("chat.example.com"); got != "chat%2eexample%2ecom" {
		t.Errorf("prosodyEncode = %q", got)
	}
	if got := luaString("a\"b\\c\nd é"); got != `"a\"b\\c\010d é"` {
		t.Errorf("luaString = %s", got)
	}
}

// The demo's chat users are the enabled demo people on chat.example.com.
func TestDemoChatters(t *testing.T) {
	people, err := demoChatters()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(demoUsers(people), ","); got != "alice,bob,carol,dave,erin,frank" {
		t.Errorf("users %s (grace is disabled and must not be one)", got)
	}
	if people[0].JID != "alice@chat.example.com" || people[0].Name != "Alice Smith" || people[0].Department != "Engineering" {
		t.Errorf("alice: %+v", people[0])
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond until it holds, failing if the demo exits first or
// demoWait passes.
func waitFor(t *testing.T, done <-chan int, logs *testenv.Buffer, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(demoWait)
	for !cond() {
		select {
		case code := <-done:
			t.Fatalf("demo --xmpp exited %d before %s:\n%s", code, what, logs.String())
		case <-deadline:
			t.Fatalf("no %s within %v:\n%s", what, demoWait, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logField is a field of the first log line with the message.
func logField(t *testing.T, logs *testenv.Buffer, msg, field string) string {
	t.Helper()
	re := regexp.MustCompile(`msg="` + regexp.QuoteMeta(msg) + `".* ` + field + `=(\S+)`)
	m := re.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no %s in the log line %q:\n%s", field, msg, logs.String())
	}
	return m[1]
}

// demoClient is a plain XMPP client session that records the presence
// it receives: a newcomer's client, made with mellium, independent of the
// demo's own logins.
type demoClient struct {
	s    *xmpp.Session
	done chan struct{}

	mu       sync.Mutex
	received []seenStanza
	notify   chan struct{}
}

// seenStanza is a presence or message the client received.
type seenStanza struct {
	XMLName xml.Name
	From    string `xml:"from,attr"`
	Type    string `xml:"type,attr"`
	Show    string `xml:"show"`
	Status  string `xml:"status"`
	Body    string `xml:"body"`
}

func (s seenStanza) isPresence() bool { return s.XMLName.Local == "presence" }

// rawXML is one stanza written as XML, for Send.
func rawXML(s string) xml.TokenReader {
	return xml.NewTokenDecoder(&stripNS{d: xml.NewDecoder(strings.NewReader(s))})
}

// stripNS drops xmlns attributes, which the session's encoder writes
// itself.
type stripNS struct{ d *xml.Decoder }

func (s *stripNS) Token() (xml.Token, error) {
	tok, err := s.d.Token()
	if start, ok := tok.(xml.StartElement); ok {
		start.Name.Space = ""
		start.Attr = slices.DeleteFunc(slices.Clone(start.Attr), func(a xml.Attr) bool {
			return a.Name.Local == "xmlns" || a.Name.Space == "xmlns"
		})
		return start, err
	}
	if end, ok := tok.(xml.EndElement); ok {
		end.Name.Space = ""
		return end, err
	}
	return tok, err
}

// dialDemo logs user@chat.example.com in at addr (password = user),
// with SASL PLAIN on plain TCP as the demo's Prosody allows on loopback.
func dialDemo(t *testing.T, addr, user string) *demoClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), demoWait)
	defer cancel()
	me := jid.MustParse(user + "@chat.example.com")
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s, err := xmpp.NewSession(ctx, me.Domain(), me, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{xmpp.SASL("", user, sasl.Plain), xmpp.BindResource()}}
	}))
	if err != nil {
		conn.Close()
		t.Fatalf("log in as %s at %s: %v", me, addr, err)
	}
	c := &demoClient{s: s, done: make(chan struct{}), notify: make(chan struct{})}
	go func() {
		defer close(c.done)
		_ = s.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "presence" && start.Name.Local != "message" {
				return nil
			}
			var p seenStanza
			if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&p); err != nil {
				return nil
			}
			c.mu.Lock()
			c.received = append(c.received, p)
			close(c.notify)
			c.notify = make(chan struct{})
			c.mu.Unlock()
			return nil
		}))
	}()
	t.Cleanup(func() {
		_ = s.Close()
		s.Conn().Close()
	})
	return c
}

func (c *demoClient) send(t *testing.T, r xml.TokenReader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.s.Send(ctx, r); err != nil {
		t.Fatal(err)
	}
}

// roster fetches the roster: contact → "subscription name".
func (c *demoClient) roster(t *testing.T) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.s.SendIQElement(ctx, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "jabber:iq:roster", Local: "query"}}), stanza.IQ{Type: stanza.GetIQ})
	if err != nil {
		t.Fatalf("roster: %v", err)
	}
	defer r.Close()
	var reply struct {
		Type  string `xml:"type,attr"`
		Items []struct {
			JID          string `xml:"jid,attr"`
			Name         string `xml:"name,attr"`
			Subscription string `xml:"subscription,attr"`
		} `xml:"query>item"`
	}
	if err := xml.NewTokenDecoder(r).Decode(&reply); err != nil || reply.Type != "result" {
		t.Fatalf("roster: %v (type %q)", err, reply.Type)
	}
	out := map[string]string{}
	for _, it := range reply.Items {
		out[it.JID] = it.Subscription + " " + it.Name
	}
	return out
}

// await returns the first stanza received that match accepts.
func (c *demoClient) await(t *testing.T, logs *testenv.Buffer, what string, match func(seenStanza) bool) seenStanza {
	t.Helper()
	deadline := time.After(demoWait)
	for i := 0; ; {
		c.mu.Lock()
		for ; i < len(c.received); i++ {
			if match(c.received[i]) {
				p := c.received[i]
				c.mu.Unlock()
				return p
			}
		}
		notify, got := c.notify, fmt.Sprint(c.received)
		c.mu.Unlock()
		select {
		case <-notify:
		case <-c.done:
			t.Fatalf("bob's session ended before %s; received %s\n%s", what, got, logs.String())
		case <-deadline:
			t.Fatalf("bob: no %s within %v; received %s\n%s", what, demoWait, got, logs.String())
		}
	}
}
