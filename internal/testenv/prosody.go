package testenv

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Prosody test servers: the Debian packages prosody (0.12) and
// prosody-modules (mod_privilege) must be installed; without them the
// tests fail, never skip.

const (
	prosodyDomain    = "example.test"
	prosodyComponent = "calendar.example.test"
	// prosodyModules is where Debian's prosody-modules installs
	// mod_privilege (its README: the component host needs it too).
	prosodyModules = "/usr/lib/prosody/modules"
	// nobody is the uid/gid Prosody runs as when the tests run as root:
	// Prosody refuses to run as root.
	nobody = 65534
	// prosodyLogTail is how much of the log Log returns.
	prosodyLogTail = 120
)

// errPortTaken marks a start attempt where Prosody could not bind one of
// its ports. Prosody does not exit then (it logs "Failed to open server
// port" and runs on), so the attempt is stopped and retried.
var errPortTaken = errors.New("a port was taken")

// errProsodyExited marks a start attempt where Prosody exited by itself.
var errProsodyExited = errors.New("prosody exited")

// StartProsody starts Prosody (`prosody -F`, foreground) with a
// configuration written to a temporary directory: one VirtualHost,
// example.test, a component calendar.example.test with a random secret and
// XEP-0356 presence ("managed_entity") and roster ("get") permissions, the
// overlay module configs/prosody/mod_presencegw.lua (unless opts.NoModule)
// and mod_webpresence on HTTPAddr. It listens on random 127.0.0.1 ports for
// c2s (STARTTLS offered with the testenv certificate, for DNS localhost,
// not required; plain auth allowed), components and HTTP; s2s is off.
// Users in opts.Users are registered with password = user name. When the
// test runs as root, Prosody runs as uid/gid 65534 (nobody). The server is
// stopped by t.Cleanup. A missing Prosody, or one that does not start, is
// fatal.
func StartProsody(t testing.TB, opts XMPPOptions) *XMPPServer {
	t.Helper()
	p := &prosody{
		bin:      prosodyLookPath(t, "prosody"),
		ctl:      prosodyLookPath(t, "prosodyctl"),
		asNobody: os.Geteuid() == 0,
		opts:     opts,
	}
	if _, err := os.Stat(filepath.Join(prosodyModules, "mod_privilege", "mod_privilege.lua")); err != nil {
		t.Fatalf("testenv: prosody: mod_privilege not found (%v): install the Debian package prosody-modules", err)
	}
	p.repoModules = repoProsodyDir(t)
	if p.asNobody {
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Fatalf("testenv: prosody: running as root needs setpriv (util-linux) to run Prosody as nobody: %v", err)
		}
	}

	dir := t.TempDir()
	srv := &XMPPServer{
		Kind:            "prosody",
		Domain:          prosodyDomain,
		ComponentJID:    prosodyComponent,
		ComponentSecret: rand.Text(),
		Dir:             dir,
		impl:            p,
	}
	p.dir = dir
	p.writeCerts(t)
	if p.asNobody {
		// t.TempDir's parent is private to root; nobody only needs to pass
		// through it to its own directory.
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			t.Fatalf("testenv: prosody: %v", err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatalf("testenv: prosody: %v", err)
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("testenv: stopping prosody: %v", err)
		}
	})

	var failures []string
	for attempt := 1; attempt <= portAttempts; attempt++ {
		ports, err := freePorts(3)
		if err != nil {
			t.Fatalf("testenv: prosody: choosing ports: %v", err)
		}
		p.c2sPort, p.componentPort, p.httpPort = ports[0], ports[1], ports[2]
		srv.C2SAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.c2sPort))
		srv.ComponentAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.componentPort))
		srv.HTTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.httpPort))
		if err := p.writeConfig(srv.ComponentSecret); err != nil {
			t.Fatalf("testenv: prosody: %v", err)
		}
		err = p.launch()
		if err == nil {
			for _, u := range opts.Users {
				srv.Register(t, u, u)
			}
			return srv
		}
		failures = append(failures, fmt.Sprintf("attempt %d on ports %v: %v", attempt, ports, err))
		if !errors.Is(err, errPortTaken) && !errors.Is(err, errProsodyExited) {
			break
		}
	}
	t.Fatalf("testenv: prosody did not start:\n%s\n--- %s:\n%s", strings.Join(failures, "\n"), p.logPath(), p.log())
	return nil
}

// prosody implements xmppImpl.
type prosody struct {
	bin, ctl    string
	asNobody    bool
	opts        XMPPOptions
	repoModules string // <repo>/configs/prosody
	dir         string

	c2sPort, componentPort, httpPort int

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil when stopped
	done chan struct{} // closed when cmd has been waited for
}

// repoProsodyDir finds configs/prosody of this repository from this
// source file's location, so tests in any package load the module under
// test rather than an installed copy.
func repoProsodyDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatalf("testenv: prosody: cannot locate the source file")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "configs", "prosody")
	dir, err := filepath.Abs(dir)
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "mod_presencegw.lua"))
	}
	if err != nil {
		t.Fatalf("testenv: prosody: the overlay module: %v", err)
	}
	return dir
}

func prosodyLookPath(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("testenv: %s not found in PATH, /usr/bin, /usr/sbin or /usr/local/bin: the XMPP tests need a real Prosody; "+
		"install the Debian packages prosody and prosody-modules", name)
	return ""
}

func (p *prosody) cfgPath() string { return filepath.Join(p.dir, "prosody.cfg.lua") }
func (p *prosody) logPath() string { return filepath.Join(p.dir, "prosody.log") }

// stderrPath collects what Prosody prints before its log is set up (Lua
// errors in the config, missing libraries).
func (p *prosody) stderrPath() string { return filepath.Join(p.dir, "prosody.stderr") }

// writeCerts puts the testenv certificate (for DNS localhost and
// 127.0.0.1) where the config's ssl option names it.
func (p *prosody) writeCerts(t testing.TB) {
	t.Helper()
	m, err := testTLS()
	if err != nil {
		t.Fatalf("testenv: prosody: generating TLS certificates: %v", err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "server.pem"), m.certPEM, 0o644); err != nil {
		t.Fatalf("testenv: prosody: %v", err)
	}
	if err := p.writeOwned(filepath.Join(p.dir, "server.key"), m.keyPEM, 0o600); err != nil {
		t.Fatalf("testenv: prosody: %v", err)
	}
}

// writeOwned writes a file that Prosody must be able to read and, running
// as nobody, own.
func (p *prosody) writeOwned(path string, data []byte, perm os.FileMode) error {
	if err := os.WriteFile(path, data, perm); err != nil {
		return err
	}
	return p.chown(path)
}

func (p *prosody) chown(path string) error {
	if !p.asNobody {
		return nil
	}
	return os.Chown(path, nobody, nobody)
}

// luaString quotes s as a Lua string literal.
func luaString(s string) string { return strconv.Quote(s) }

func (p *prosody) writeConfig(secret string) error {
	q := luaString
	var b strings.Builder
	fmt.Fprintf(&b, `-- Written by internal/testenv StartProsody for one test.
pidfile = %s
data_path = %s
log = { debug = %s }
plugin_paths = { %s, %s }
certificates = %s

interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { %d }
c2s_direct_tls_ports = {}
legacy_ssl_ports = {}
component_ports = { %d }
component_interfaces = { "127.0.0.1" }
http_ports = { %d }
http_interfaces = { "127.0.0.1" }
https_ports = {}
s2s_ports = {}

-- The test clients speak plain TCP on loopback and authenticate with PLAIN.
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"

modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "blocklist"; "admin_shell" }
modules_disabled = { "s2s" }

VirtualHost %s
	ssl = { certificate = %s; key = %s }
	privileged_entities = { [%s] = { presence = "managed_entity"; roster = %s } }
`,
		q(filepath.Join(p.dir, "prosody.pid")), q(filepath.Join(p.dir, "data")), q(p.logPath()),
		q(p.repoModules), q(prosodyModules), q(p.dir),
		p.c2sPort, p.componentPort, p.httpPort,
		q(prosodyDomain), q(filepath.Join(p.dir, "server.pem")), q(filepath.Join(p.dir, "server.key")),
		q(prosodyComponent), q(cmp.Or(p.opts.RosterPermission, "get")))
	if p.opts.NoModule {
		b.WriteString("\tmodules_enabled = { \"privilege\"; \"webpresence\" }\n")
	} else {
		b.WriteString("\tmodules_enabled = { \"privilege\"; \"presencegw\"; \"webpresence\" }\n")
		fmt.Fprintf(&b, "\tpresencegw_components = { %s }\n", q(prosodyComponent))
		if p.opts.GracePeriod > 0 {
			fmt.Fprintf(&b, "\tpresencegw_grace_period = %s\n", strconv.FormatFloat(p.opts.GracePeriod.Seconds(), 'f', -1, 64))
		}
		if p.opts.WithoutScheduled {
			b.WriteString("\tpresencegw_scheduled = false\n")
		}
	}
	fmt.Fprintf(&b, `
Component %s
	component_secret = %s
	modules_enabled = { "privilege" }
`, q(prosodyComponent), q(secret))
	return p.writeOwned(p.cfgPath(), []byte(b.String()), 0o600)
}

// command runs a Prosody binary, as nobody when the tests run as root.
func (p *prosody) command(bin string, args ...string) *exec.Cmd {
	if p.asNobody {
		args = append([]string{"--reuid=" + strconv.Itoa(nobody), "--regid=" + strconv.Itoa(nobody), "--clear-groups", bin}, args...)
		bin = "setpriv"
	}
	return exec.Command(bin, args...)
}

// launch starts Prosody on the configured ports and waits until it is
// ready. On any error Prosody is not running afterwards.
func (p *prosody) launch() error {
	if p.asNobody {
		// Everything Prosody writes (data, log, pidfile) must be nobody's,
		// including what an earlier run or prosodyctl left.
		err := filepath.Walk(p.dir, func(path string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return p.chown(path)
		})
		if err != nil {
			return err
		}
	}
	errf, err := os.OpenFile(p.stderrPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// The log's size marks where this run's lines start.
	var logStart int64
	if fi, err := os.Stat(p.logPath()); err == nil {
		logStart = fi.Size()
	}
	cmd := p.command(p.bin, "--config", p.cfgPath(), "-F")
	cmd.Stdout, cmd.Stderr = errf, errf
	err = cmd.Start()
	errf.Close()
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	if err := p.waitReady(done, logStart); err != nil {
		_ = p.stop()
		return err
	}
	return nil
}

// waitReady polls the log until it shows that this Prosody bound all three
// ports and loaded its hosts (and the overlay module), then checks that the
// ports accept connections. The log, not just a connect, tells that the
// listener is ours: another process may hold the port, and Prosody keeps
// running without it.
func (p *prosody) waitReady(done <-chan struct{}, logStart int64) error {
	want := []string{
		fmt.Sprintf("Activated service 'c2s' on [127.0.0.1]:%d", p.c2sPort),
		fmt.Sprintf("Activated service 'component' on [127.0.0.1]:%d", p.componentPort),
		fmt.Sprintf("Activated service 'http' on [127.0.0.1]:%d", p.httpPort),
		"Activated host: " + prosodyComponent,
		prosodyComponent + ":privilege",
	}
	if !p.opts.NoModule {
		want = append(want, prosodyDomain+":presencegw\tinfo\tpresence overlay for")
	}
	deadline := time.After(startTimeout)
	var missing []string
	for {
		select {
		case <-done:
			return fmt.Errorf("%w during start-up (%v)", errProsodyExited, p.exitState())
		case <-deadline:
			return fmt.Errorf("not ready after %v; the log lacks %q", startTimeout, missing)
		case <-time.After(20 * time.Millisecond):
		}
		log := p.readLog(logStart)
		if strings.Contains(log, "Failed to open server port") {
			return errPortTaken
		}
		for _, bad := range []string{"Unable to load module", "Error loading module", "Error initializing module"} {
			if strings.Contains(log, bad) {
				return fmt.Errorf("a module failed to load (%q in the log)", bad)
			}
		}
		missing = missing[:0]
		for _, w := range want {
			if !strings.Contains(log, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) > 0 {
			continue
		}
		for _, port := range []int{p.c2sPort, p.componentPort, p.httpPort} {
			c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
			if err != nil {
				return fmt.Errorf("port %d: %v", port, err)
			}
			c.Close()
		}
		return nil
	}
}

func (p *prosody) readLog(from int64) string {
	b, err := os.ReadFile(p.logPath())
	if err != nil || int64(len(b)) < from {
		return ""
	}
	return string(b[from:])
}

func (p *prosody) exitState() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.ProcessState == nil {
		return "unknown status"
	}
	return p.cmd.ProcessState.String()
}

func (p *prosody) register(user, password string) error {
	cmd := p.command(p.ctl, "--config", p.cfgPath(), "register", user, prosodyDomain, password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("prosodyctl register: %v\n%s", err, out)
	}
	return nil
}

func (p *prosody) start() error {
	p.mu.Lock()
	running := p.cmd != nil
	p.mu.Unlock()
	if running {
		return errors.New("already running")
	}
	deadline := time.Now().Add(restartWindow)
	var failures []string
	for attempt := 1; ; attempt++ {
		err := p.launch()
		if err == nil {
			return nil
		}
		failures = append(failures, fmt.Sprintf("attempt %d: %v", attempt, err))
		if !errors.Is(err, errPortTaken) && !errors.Is(err, errProsodyExited) || time.Now().After(deadline) {
			return errors.New(strings.Join(failures, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// prosodyStopTimeout is how long stop waits after SIGTERM before SIGKILL.
// Prosody closes every session gracefully before it exits and has once
// taken over 10 s doing so on a loaded machine after a test whose
// assertions had all passed; a Prosody that hangs still fails the test.
const prosodyStopTimeout = 30 * time.Second

// stop sends SIGTERM and waits, with SIGKILL after prosodyStopTimeout. It
// is a no-op when Prosody is not running.
func (p *prosody) stop() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	var err error
	select {
	case <-done:
	default:
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(prosodyStopTimeout):
			_ = cmd.Process.Kill()
			<-done
			err = fmt.Errorf("prosody (pid %d) ignored SIGTERM for %v and was killed; its log:\n%s", cmd.Process.Pid, prosodyStopTimeout, p.log())
		}
	}
	p.mu.Lock()
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
	return err
}

// log returns the last lines of Prosody's log, after what it printed on
// stderr (the lua-unbound notice is dropped).
func (p *prosody) log() string {
	var b strings.Builder
	if e, err := os.ReadFile(p.stderrPath()); err == nil {
		if e = bytes.TrimSpace(dropUnboundNotice(e)); len(e) > 0 {
			b.WriteString("--- stderr:\n")
			b.Write(e)
			b.WriteString("\n--- " + p.logPath() + ":\n")
		}
	}
	l, err := os.ReadFile(p.logPath())
	if err != nil {
		b.WriteString(err.Error())
		return b.String()
	}
	lines := strings.SplitAfter(string(l), "\n")
	if len(lines) > prosodyLogTail {
		fmt.Fprintf(&b, "[... %d earlier lines]\n", len(lines)-prosodyLogTail)
		lines = lines[len(lines)-prosodyLogTail:]
	}
	b.WriteString(strings.Join(lines, ""))
	return b.String()
}

// dropUnboundNotice removes the boxed "Prosody was unable to find
// lua-unbound" notice that every start prints on Debian 12.
func dropUnboundNotice(b []byte) []byte {
	const box = "**************************"
	for {
		i := bytes.Index(b, []byte(box))
		if i < 0 {
			return b
		}
		j := bytes.Index(b[i+len(box):], []byte(box))
		if j < 0 || !bytes.Contains(b[i:i+len(box)+j], []byte("lua-unbound")) {
			return b
		}
		b = append(b[:i:i], b[i+2*len(box)+j:]...)
	}
}
