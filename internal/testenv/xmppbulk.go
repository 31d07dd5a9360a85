package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
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

	"github.com/presencegw/presencegw/internal/xmppbind"
)

// Helpers for load tests with thousands of users on one server (the
// xmppbot boundary benchmark): accounts and rosters written in bulk, a
// light client session, the server's process and its CPU time.

// PID is the server's operating-system process (Prosody's; ejabberd's
// BEAM VM, which erl execs into), 0 while it is stopped.
func (s *XMPPServer) PID() int {
	switch impl := s.impl.(type) {
	case *prosody:
		impl.mu.Lock()
		defer impl.mu.Unlock()
		if impl.cmd != nil && impl.cmd.Process != nil {
			return impl.cmd.Process.Pid // setpriv execs Prosody: same process
		}
	case *ejabberd:
		impl.mu.Lock()
		defer impl.mu.Unlock()
		if impl.cmd != nil && impl.cmd.Process != nil {
			return impl.cmd.Process.Pid
		}
	}
	return 0
}

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat's times
// (100 on every architecture Go supports on Linux).
const clockTicks = 100

// ProcessCPU is the user + system CPU time a process has used so far,
// from /proc/PID/stat (10 ms resolution).
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields count from
	// after its closing parenthesis, which is field 3 (state).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// BulkRegister creates many accounts at once, each with password = user
// name, and their rosters: contacts[user] are the user's roster items,
// all with subscription "both" (the caller makes the lists symmetric).
// Registering thousands through prosodyctl one by one takes minutes; on
// Prosody the internal storage files are written directly (in the format
// Prosody 0.12 itself writes, checked against accounts made with
// prosodyctl and rosters made by subscription handshakes), which the
// running server reads when a user logs in. On ejabberd the HTTP API's
// register and add_rosteritem run, many at a time. User names must be
// lower-case ASCII without spaces or quotes.
func (s *XMPPServer) BulkRegister(t testing.TB, contacts map[string][]string) {
	t.Helper()
	for user := range contacts {
		if user == "" || strings.ContainsAny(user, "\"\\ @/<>&'") || user != strings.ToLower(user) {
			t.Fatalf("testenv: BulkRegister: user name %q: want lower-case ASCII without spaces, quotes, @ or /", user)
		}
	}
	var err error
	switch impl := s.impl.(type) {
	case *prosody:
		err = impl.bulkRegister(contacts)
	case *ejabberd:
		err = impl.bulkRegister(contacts)
	default:
		err = errors.New("not supported")
	}
	if err != nil {
		t.Fatalf("testenv: %s: bulk register: %v", s.Kind, err)
	}
}

// prosodyEncode is Prosody's datamanager encoding of a path component:
// every non-alphanumeric byte as %xx (so example.test is example%2etest).
func prosodyEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

func (p *prosody) bulkRegister(contacts map[string][]string) error {
	hostDir := filepath.Join(p.dir, "data", prosodyEncode(prosodyDomain))
	accounts, rosters := filepath.Join(hostDir, "accounts"), filepath.Join(hostDir, "roster")
	for _, d := range []string{hostDir, accounts, rosters} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return err
		}
		if err := p.chown(d); err != nil {
			return err
		}
	}
	for user, cs := range contacts {
		name := prosodyEncode(user) + ".dat"
		account := fmt.Sprintf("return {\n\t[\"password\"] = %s;\n};\n", luaString(user))
		if err := p.writeOwned(filepath.Join(accounts, name), []byte(account), 0o640); err != nil {
			return err
		}
		var b strings.Builder
		b.WriteString("return {\n\t[false] = {\n\t\t[\"pending\"] = {};\n\t\t[\"version\"] = 1;\n\t};\n")
		sorted := append([]string(nil), cs...)
		sort.Strings(sorted)
		for _, c := range sorted {
			fmt.Fprintf(&b, "\t[%s] = {\n\t\t[\"subscription\"] = \"both\";\n\t\t[\"groups\"] = {};\n\t};\n", luaString(c+"@"+prosodyDomain))
		}
		b.WriteString("};\n")
		if err := p.writeOwned(filepath.Join(rosters, name), []byte(b.String()), 0o640); err != nil {
			return err
		}
	}
	return nil
}

// bulkRegister registers through the API, 16 calls at a time, on its
// own HTTP client that keeps that many connections open (one connection
// per call would run out of loopback ports).
func (e *ejabberd) bulkRegister(contacts map[string][]string) error {
	const parallel = 16
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: parallel}}
	defer client.CloseIdleConnections()
	call := func(command string, args map[string]string) error {
		body, _ := json.Marshal(args)
		resp, err := client.Post("http://"+ejAddr(e.httpPort)+"/api/"+command, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if resp.StatusCode != http.StatusOK || bytes.Contains(b, []byte(`"status":"error"`)) {
			return fmt.Errorf("%s %v: %s %s", command, args, resp.Status, bytes.TrimSpace(b))
		}
		return nil
	}
	users := make(chan string)
	errc := make(chan error, parallel)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for u := range users {
				err := call("register", map[string]string{"user": u, "host": ejDomain, "password": u})
				for _, c := range contacts[u] {
					if err != nil {
						break
					}
					err = call("add_rosteritem", map[string]string{"localuser": u, "localhost": ejDomain,
						"user": c, "host": ejDomain, "nick": c, "group": "", "subs": "both"})
				}
				if err != nil {
					errc <- err
					for range users {
					}
					return
				}
			}
		})
	}
	var err error
feed:
	for u := range contacts {
		select {
		case users <- u:
		case err = <-errc:
			break feed
		}
	}
	close(users)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

// SetCacheSize sets ejabberd's cache_size, the entries each of its
// caches (rosters, roster items, accounts, privacy lists) holds; the
// default, 1000, is too small for thousands of online users: lookups
// miss, ejabberd logs "Shrinking cache", and every presence broadcast
// reads the database. The server is restarted with it (the accounts
// stay). Nothing is done for Prosody, which has no such caches.
func (s *XMPPServer) SetCacheSize(t testing.TB, entries int) {
	t.Helper()
	e, ok := s.impl.(*ejabberd)
	if !ok {
		return
	}
	cfg, err := os.ReadFile(e.configPath())
	if err != nil {
		t.Fatalf("testenv: ejabberd: %v", err)
	}
	const anchor = "loglevel: info\n"
	if !bytes.Contains(cfg, []byte(anchor)) {
		t.Fatalf("testenv: ejabberd: the config has no %q", anchor)
	}
	var kept []string
	for _, line := range strings.SplitAfter(string(cfg), "\n") {
		if !strings.HasPrefix(line, "cache_size:") {
			kept = append(kept, line)
		}
	}
	tuned := strings.Replace(strings.Join(kept, ""), anchor, anchor+fmt.Sprintf("cache_size: %d\n", entries), 1)
	if err := os.WriteFile(e.configPath(), []byte(tuned), 0o600); err != nil {
		t.Fatalf("testenv: ejabberd: %v", err)
	}
	s.Stop(t)
	s.Start(t)
}

// SetLogLevel makes a running Prosody log from level ("info", "warn")
// up instead of debug: under load, debug logging costs Prosody much of
// its CPU and would dominate CPU figures. The configuration is re-read
// (SIGHUP) from a modified copy and the file then restored, so a later
// Start logs at debug again (its readiness check reads debug lines).
// ejabberd already logs at info: nothing is done.
func (s *XMPPServer) SetLogLevel(t testing.TB, level string) {
	t.Helper()
	p, ok := s.impl.(*prosody)
	if !ok {
		return
	}
	if err := p.setLogLevel(level, s.PID()); err != nil {
		t.Fatalf("testenv: prosody: log level %s: %v\n%s", level, err, s.Log())
	}
}

func (p *prosody) setLogLevel(level string, pid int) error {
	if pid == 0 {
		return errors.New("not running")
	}
	// mod_posix installs its SIGHUP handler on the main loop's first
	// turn; before that the signal would kill Prosody. A client stream
	// answered means the loop is turning.
	if err := p.streamAnswered(); err != nil {
		return err
	}
	orig, err := os.ReadFile(p.cfgPath())
	if err != nil {
		return err
	}
	from := fmt.Sprintf("log = { debug = %s }", luaString(p.logPath()))
	to := fmt.Sprintf("log = { { levels = { min = %s }, to = \"file\", filename = %s } }", luaString(level), luaString(p.logPath()))
	if !strings.Contains(string(orig), from) {
		return fmt.Errorf("the config has no %q", from)
	}
	if err := p.writeOwned(p.cfgPath(), []byte(strings.Replace(string(orig), from, to, 1)), 0o600); err != nil {
		return err
	}
	defer p.writeOwned(p.cfgPath(), orig, 0o600)
	var logStart int64
	if fi, err := os.Stat(p.logPath()); err == nil {
		logStart = fi.Size()
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return err
	}
	// The reload runs in Prosody's main loop; it logs the signal first and
	// (at info) that the log is reopened.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.readLog(logStart), "Received SIGHUP") {
		if time.Now().After(deadline) {
			return errors.New("no \"Received SIGHUP\" in the log within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	return nil
}

// streamAnswered opens a client stream and waits for its features.
func (p *prosody) streamAnswered() error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.c2sPort)), 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = fmt.Fprintf(c, "<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", prosodyDomain)
	var got []byte
	buf := make([]byte, 4096)
	for err == nil && !bytes.Contains(got, []byte("features")) {
		var n int
		n, err = c.Read(buf)
		got = append(got, buf[:n]...)
	}
	if err != nil {
		return fmt.Errorf("waiting for a client stream's features: %w (got %q)", err, got)
	}
	return nil
}

// LitePresence is what a LiteClient reports of each presence it gets.
type LitePresence struct {
	From, Type, Show, Status string
}

// LiteClient is a logged-in client session that keeps nothing it
// receives: each presence's from, type, show and status go to a
// callback, everything else is dropped. Thousands fit in one process.
type LiteClient struct {
	// JID is the bound full JID.
	JID     string
	session *xmpp.Session
	done    chan struct{}

	mu  sync.Mutex
	err error
}

// DialLite logs user@Domain/resource in with password over plain TCP (as
// DialXMPP does) and serves the stream, calling onPresence (from the
// session's goroutine: keep it short) for every presence received. It
// sends nothing else: no roster request, no initial presence.
func DialLite(ctx context.Context, srv *XMPPServer, user, password, resource string, onPresence func(LitePresence)) (*LiteClient, error) {
	addr, err := jid.Parse(user + "@" + srv.Domain + "/" + resource)
	if err != nil {
		return nil, err
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", srv.C2SAddr)
	if err != nil {
		return nil, err
	}
	s, err := xmpp.NewSession(ctx, addr.Domain(), addr, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
			xmpp.SASL("", password, sasl.Plain),
			xmppbind.Feature(addr.Resourcepart()),
		}}
	}))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("log in %s: %w", addr, err)
	}
	c := &LiteClient{JID: s.LocalAddr().String(), session: s, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		err := s.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "presence" {
				return nil // the session skips the rest
			}
			var p LitePresence
			for _, a := range start.Attr {
				switch a.Name.Local {
				case "from":
					p.From = a.Value
				case "type":
					p.Type = a.Value
				}
			}
			readShowStatus(r, &p)
			onPresence(p)
			return nil
		}))
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
	}()
	return c, nil
}

// readShowStatus reads a presence's direct <show/> and <status/> texts.
func readShowStatus(r xml.TokenReader, p *LitePresence) {
	depth := 0
	var field *string
	for {
		tok, err := r.Token()
		if err != nil {
			return
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			field = nil
			if depth == 1 {
				switch tok.Name.Local {
				case "show":
					field = &p.Show
				case "status":
					field = &p.Status
				}
			}
		case xml.EndElement:
			depth--
			field = nil
			if depth < 0 {
				return
			}
		case xml.CharData:
			if field != nil {
				*field += string(tok)
			}
		}
	}
}

// Send writes one raw stanza, e.g. `<presence><show>dnd</show></presence>`.
func (c *LiteClient) Send(ctx context.Context, raw string) error {
	return c.session.Send(ctx, rawTokens(raw))
}

// Err is why the session ended (nil while it runs).
func (c *LiteClient) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done is closed when the session has ended.
func (c *LiteClient) Done() <-chan struct{} { return c.done }

// Close drops the connection without closing the stream (the server
// then broadcasts unavailable, as for any lost client) and waits for the
// session to stop, at most 5 s.
func (c *LiteClient) Close() {
	_ = c.session.Conn().Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}
