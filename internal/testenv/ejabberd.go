package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

// ejabberd test servers: the Debian package ejabberd (23.01, which brings
// Erlang and the erlang-p1-* libraries with their headers) must be
// installed; without it the tests fail, never skip.

const (
	ejDomain    = "example.test"
	ejComponent = "calendar.example.test"
	// ejStartTimeout bounds one start attempt. ejabberd itself starts in
	// about a second; parallel tests under -race on a loaded machine take
	// longer.
	ejStartTimeout = 45 * time.Second
	// ejStopTimeout is how long a stop waits for the VM to exit before
	// killing it.
	ejStopTimeout = 15 * time.Second
	// ejLogTail is how many lines of the log Log returns.
	ejLogTail = 150
)

var (
	// errEjPortTaken marks a start attempt where ejabberd or its epmd
	// could not bind a port (another process took it after freePorts
	// chose it); it is retried on other ports, or the same ones on Start.
	errEjPortTaken = errors.New("a port was taken")
	// errEjExited marks a start attempt where the VM exited by itself.
	errEjExited = errors.New("ejabberd exited")
)

// StartEjabberd starts ejabberd 23.01 as `erl -s ejabberd` (no
// ejabberdctl, which su's to the ejabberd user) with a configuration in a
// temporary directory: one host, example.test; a XEP-0114 component
// calendar.example.test with a random secret and XEP-0356 permissions
// (presence managed_entity, roster both, message outgoing); the overlay
// module configs/ejabberd/mod_presencegw.erl, compiled for the test with
// configs/ejabberd/build.sh and loaded from ERL_LIBS (unless
// opts.NoModule), with grace_period from opts.GracePeriod; mod_roster,
// mod_privacy and mod_blocking (XEP-0191); mod_http_api on HTTPAddr /api,
// open to loopback for every command (mod_admin_extra's too). c2s offers STARTTLS
// with the testenv certificate (for 127.0.0.1 and localhost, not the
// domain) but does not require it, and allows PLAIN without it. All ports,
// including a private epmd's (ERL_EPMD_PORT; the VM is told not to start
// one of its own), are random on 127.0.0.1, and the Erlang node name is
// unique, so parallel tests do not meet. Users in opts.Users are
// registered through /api/register with password = user name. ejabberd
// runs as the calling user, root included (it does not refuse). Stop,
// Start and t.Cleanup stop the VM and its epmd. A missing ejabberd or
// Erlang, a module that does not compile cleanly, or a server that does
// not start, is fatal.
func StartEjabberd(t testing.TB, opts XMPPOptions) *XMPPServer {
	t.Helper()
	e := &ejabberd{
		erl:   ejLookPath(t, "erl"),
		epmd:  ejLookPath(t, "epmd"),
		opts:  opts,
		node:  "ejt_" + strings.ToLower(rand.Text()[:12]) + "@localhost",
		httpc: &http.Client{Timeout: 10 * time.Second},
	}
	e.appDir = ejAppDir(t)
	dir := t.TempDir()
	e.dir = dir
	srv := &XMPPServer{
		Kind:            "ejabberd",
		Domain:          ejDomain,
		ComponentJID:    ejComponent,
		ComponentSecret: rand.Text(),
		Dir:             dir,
		impl:            e,
	}
	e.secret = srv.ComponentSecret
	for _, d := range []string{"logs", "lib"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatalf("testenv: ejabberd: %v", err)
		}
	}
	if !opts.NoModule {
		e.buildModule(t)
	}
	e.writeCert(t)

	t.Cleanup(func() {
		if err := e.stop(); err != nil {
			t.Errorf("testenv: stopping ejabberd: %v", err)
		}
	})

	began := time.Now()
	var failures []string
	for attempt := 1; attempt <= portAttempts; attempt++ {
		ports, err := freePorts(4)
		if err != nil {
			t.Fatalf("testenv: ejabberd: choosing ports: %v", err)
		}
		e.c2sPort, e.componentPort, e.httpPort, e.epmdPort = ports[0], ports[1], ports[2], ports[3]
		srv.C2SAddr = ejAddr(e.c2sPort)
		srv.ComponentAddr = ejAddr(e.componentPort)
		srv.HTTPAddr = ejAddr(e.httpPort)
		if err := e.writeConfig(); err != nil {
			t.Fatalf("testenv: ejabberd: %v", err)
		}
		err = e.launch()
		if err == nil {
			e.startTime = time.Since(began)
			t.Logf("testenv: ejabberd %s ready in %v (c2s %s, component %s, http %s)",
				e.node, e.startTime.Round(time.Millisecond), srv.C2SAddr, srv.ComponentAddr, srv.HTTPAddr)
			for _, u := range opts.Users {
				srv.Register(t, u, u)
			}
			return srv
		}
		failures = append(failures, fmt.Sprintf("attempt %d on ports %v: %v", attempt, ports, err))
		if !errors.Is(err, errEjPortTaken) && !errors.Is(err, errEjExited) {
			break
		}
	}
	t.Fatalf("testenv: ejabberd did not start:\n%s\n--- %s:\n%s", strings.Join(failures, "\n"), e.outPath(), e.log())
	return nil
}

// ejabberd implements xmppImpl.
type ejabberd struct {
	erl, epmd string
	appDir    string // ejabberd's OTP application directory (ebin, include)
	opts      XMPPOptions
	node      string // the Erlang node name, kept across restarts (mnesia)
	secret    string
	dir       string
	httpc     *http.Client

	c2sPort, componentPort, httpPort, epmdPort int

	// startTime is how long the first start took, ports chosen to ready.
	startTime time.Duration

	mu       sync.Mutex
	cmd      *exec.Cmd     // the VM, nil when stopped
	done     chan struct{} // closed when cmd has been waited for
	epmdCmd  *exec.Cmd
	epmdDone chan struct{}
}

func ejAddr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func ejLookPath(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/bin", "/usr/lib/erlang/bin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("testenv: %s not found in PATH, /usr/bin, /usr/lib/erlang/bin or /usr/local/bin: the XMPP tests need a real "+
		"ejabberd; install the Debian package ejabberd (it brings Erlang)", name)
	return ""
}

// ejAppDir finds ejabberd's OTP application directory, which Debian puts
// outside Erlang's own lib directory (so ERL_LIBS must name its parent).
func ejAppDir(t testing.TB) string {
	t.Helper()
	var found []string
	for _, pat := range []string{
		"/usr/lib/*/ejabberd-[0-9]*/ebin/ejabberd.app",
		"/usr/lib/ejabberd-[0-9]*/ebin/ejabberd.app",
		"/usr/lib/erlang/lib/ejabberd-[0-9]*/ebin/ejabberd.app",
		"/usr/local/lib/ejabberd-[0-9]*/ebin/ejabberd.app",
	} {
		m, _ := filepath.Glob(pat)
		found = append(found, m...)
	}
	if len(found) == 0 {
		t.Fatalf("testenv: ejabberd's ebin/ejabberd.app not found under /usr/lib/*/ejabberd-*, /usr/lib/erlang/lib or " +
			"/usr/local/lib: the XMPP tests need a real ejabberd; install the Debian package ejabberd")
	}
	return filepath.Dir(filepath.Dir(found[len(found)-1]))
}

// repoEjabberdDir finds configs/ejabberd of this repository from this
// source file's location, so tests in any package load the module under
// test rather than an installed copy.
func repoEjabberdDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatalf("testenv: ejabberd: cannot locate the source file")
	}
	dir, err := filepath.Abs(filepath.Join(filepath.Dir(file), "..", "..", "configs", "ejabberd"))
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "mod_presencegw.erl"))
	}
	if err != nil {
		t.Fatalf("testenv: ejabberd: the overlay module: %v", err)
	}
	return dir
}

// buildModule compiles the overlay module with build.sh into
// <dir>/lib/mod_presencegw/ebin, an OTP-style library directory that
// ERL_LIBS finds. Any output (a warning) is fatal: the module must
// compile cleanly.
func (e *ejabberd) buildModule(t testing.TB) {
	t.Helper()
	src := repoEjabberdDir(t)
	out := filepath.Join(e.dir, "lib", "mod_presencegw", "ebin")
	cmd := exec.Command("sh", filepath.Join(src, "build.sh"), out)
	cmd.Env = append(os.Environ(), "EJABBERD_LIB="+e.appDir)
	b, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(b)) > 0 {
		t.Fatalf("testenv: ejabberd: building mod_presencegw (%s/build.sh): %v\n%s", src, err, b)
	}
}

func (e *ejabberd) writeCert(t testing.TB) {
	t.Helper()
	m, err := testTLS()
	if err != nil {
		t.Fatalf("testenv: ejabberd: generating TLS certificates: %v", err)
	}
	pem := append(append([]byte(nil), m.certPEM...), m.keyPEM...)
	if err := os.WriteFile(e.certPath(), pem, 0o600); err != nil {
		t.Fatalf("testenv: ejabberd: %v", err)
	}
}

func (e *ejabberd) certPath() string   { return filepath.Join(e.dir, "server.pem") }
func (e *ejabberd) configPath() string { return filepath.Join(e.dir, "ejabberd.yml") }
func (e *ejabberd) logPath() string    { return filepath.Join(e.dir, "logs", "ejabberd.log") }

// outPath is the VM's stdout and stderr: ejabberd's console log (the same
// lines as logPath) plus what the VM prints before the logger runs.
func (e *ejabberd) outPath() string  { return filepath.Join(e.dir, "erl.out") }
func (e *ejabberd) epmdPath() string { return filepath.Join(e.dir, "epmd.out") }

func (e *ejabberd) writeConfig() error {
	module := ""
	if !e.opts.NoModule {
		grace := ""
		switch g := e.opts.GracePeriod; {
		case g <= 0:
		case g%time.Second == 0:
			grace = fmt.Sprintf(", grace_period: %d", g/time.Second)
		default:
			grace = fmt.Sprintf(`, grace_period: "%d ms"`, g.Milliseconds())
		}
		if e.opts.WithoutScheduled {
			grace += ", scheduled: false"
		}
		module = "  mod_presencegw: {access: calendar_privileged" + grace + "}\n"
	}
	cfg := fmt.Sprintf(`# written by internal/testenv (StartEjabberd)
hosts: [%[1]s]
loglevel: info
language: en
certfiles: [%[2]q]
acme: {auto: false}
auth_method: internal
auth_password_format: plain
oauth_access: all
listen:
  - {port: %[3]d, ip: "127.0.0.1", module: ejabberd_c2s, starttls: true, starttls_required: false}
  - port: %[4]d
    ip: "127.0.0.1"
    module: ejabberd_service
    hosts: {%[6]s: {password: %[7]q}}
  - {port: %[5]d, ip: "127.0.0.1", module: ejabberd_http, request_handlers: {/api: mod_http_api}}
acl:
  calendar_component: {server: %[6]s}
access_rules:
  local: {allow: all}
  c2s: {allow: all}
  calendar_privileged: {allow: calendar_component}
api_permissions:
  "loopback admin api":
    from: [ejabberd_ctl, mod_http_api]
    who: {ip: 127.0.0.0/8}
    what: ["*"]
modules:
  mod_disco: {}
  mod_roster: {}
  mod_caps: {}
  mod_privacy: {}
  mod_blocking: {}
  mod_admin_extra: {}
  mod_http_api: {}
  mod_privilege:
    roster: {both: calendar_privileged}
    message: {outgoing: calendar_privileged}
    presence: {managed_entity: calendar_privileged}
%[8]s`, ejDomain, e.certPath(), e.c2sPort, e.componentPort, e.httpPort, ejComponent, e.secret, module)
	return os.WriteFile(e.configPath(), []byte(cfg), 0o600)
}

// env is the VM's environment: ours, less anything that would change how
// erl starts, plus ejabberd's paths.
func (e *ejabberd) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "ERL_"), strings.HasPrefix(k, "EJABBERD_"), k == "HOME", k == "CONTRIB_MODULES_PATH":
			continue
		}
		env = append(env, kv)
	}
	libs := filepath.Dir(e.appDir)
	if !e.opts.NoModule {
		libs += ":" + filepath.Join(e.dir, "lib")
	}
	return append(env,
		"HOME="+e.dir, // the Erlang cookie
		"ERL_LIBS="+libs,
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT="+strconv.Itoa(e.epmdPort),
		"ERL_CRASH_DUMP_BYTES=0",
		"EJABBERD_CONFIG_PATH="+e.configPath(),
		"EJABBERD_LOG_PATH="+e.logPath(),
		"CONTRIB_MODULES_PATH="+filepath.Join(e.dir, "ext_mod"),
	)
}

// launch starts epmd and the VM on the configured ports and waits until
// ejabberd is ready. On any error nothing is left running.
func (e *ejabberd) launch() error {
	if err := e.launchEpmd(); err != nil {
		return err
	}
	out, err := os.OpenFile(e.outPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		e.stopEpmd()
		return err
	}
	// The log's size marks where this run's lines start.
	var logStart int64
	if fi, err := os.Stat(e.logPath()); err == nil {
		logStart = fi.Size()
	}
	fmt.Fprintf(out, "=== testenv: %s starting ejabberd %s (c2s %d, component %d, http %d, epmd %d)\n",
		time.Now().Format(time.RFC3339Nano), e.node, e.c2sPort, e.componentPort, e.httpPort, e.epmdPort)
	cmd := exec.Command(e.erl,
		"-sname", e.node,
		"-noinput",
		"-start_epmd", "false",
		"-kernel", "inet_dist_use_interface", "{127,0,0,1}",
		"-mnesia", "dir", strconv.Quote(filepath.Join(e.dir, "spool")),
		"-s", "ejabberd")
	cmd.Dir = e.dir
	cmd.Env = e.env()
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: stop kills the VM's helpers (erl_child_setup,
	// inet_gethost) with it. Pdeathsig (kept across erl's execs of
	// erlexec and beam.smp) kills the VM if the test binary dies without
	// cleaning up, e.g. on a test timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	out.Close()
	if err != nil {
		e.stopEpmd()
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	e.mu.Lock()
	e.cmd, e.done = cmd, done
	e.mu.Unlock()
	if err := e.waitReady(done, logStart); err != nil {
		_ = e.stop()
		return err
	}
	return nil
}

// launchEpmd starts a private epmd in the foreground on epmdPort and
// waits until it accepts connections.
func (e *ejabberd) launchEpmd() error {
	out, err := os.OpenFile(e.epmdPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	var outStart int64
	if fi, err := out.Stat(); err == nil {
		outStart = fi.Size()
	}
	cmd := exec.Command(e.epmd, "-port", strconv.Itoa(e.epmdPort), "-address", "127.0.0.1")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	out.Close()
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	e.mu.Lock()
	e.epmdCmd, e.epmdDone = cmd, done
	e.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			b, _ := os.ReadFile(e.epmdPath())
			if int64(len(b)) >= outStart {
				b = b[outStart:]
			}
			e.stopEpmd()
			return fmt.Errorf("%w: epmd on port %d exited (%s): %s", errEjPortTaken, e.epmdPort, cmd.ProcessState, bytes.TrimSpace(b))
		case <-time.After(10 * time.Millisecond):
		}
		c, err := net.DialTimeout("tcp", ejAddr(e.epmdPort), time.Second)
		if err == nil {
			c.Close()
			// A port held by someone else accepts too; ours then exits.
			select {
			case <-done:
				continue
			case <-time.After(20 * time.Millisecond):
				return nil
			}
		}
		if time.Now().After(deadline) {
			e.stopEpmd()
			return fmt.Errorf("epmd on port %d not listening after 10s: %v", e.epmdPort, err)
		}
	}
}

// waitReady polls the log until ejabberd says it started on this node
// (and loaded the overlay module), then checks that the listeners accept
// connections and that /api/status names this node: another process
// may hold a port, in which case ejabberd logs that and does not start.
func (e *ejabberd) waitReady(done <-chan struct{}, logStart int64) error {
	want := []string{"is started in the node " + e.node}
	for _, port := range []int{e.c2sPort, e.componentPort, e.httpPort} {
		want = append(want, fmt.Sprintf("Start accepting TCP connections at %s for ", ejAddr(port)))
	}
	if !e.opts.NoModule {
		want = append(want, "mod_presencegw started for "+ejDomain)
	}
	deadline := time.After(ejStartTimeout)
	var missing []string
	for {
		select {
		case <-done:
			if strings.Contains(e.readLog(logStart), "address already in use") {
				return errEjPortTaken
			}
			return fmt.Errorf("%w during start-up (%v)", errEjExited, e.exitState())
		case <-deadline:
			return fmt.Errorf("not ready after %v; the log lacks %q", ejStartTimeout, missing)
		case <-time.After(25 * time.Millisecond):
		}
		log := e.readLog(logStart)
		if strings.Contains(log, "address already in use") {
			return errEjPortTaken
		}
		if strings.Contains(log, "Failed to start ejabberd application") {
			return errors.New("ejabberd failed to start (see the log)")
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
		for _, port := range []int{e.c2sPort, e.componentPort, e.httpPort} {
			c, err := net.DialTimeout("tcp", ejAddr(port), time.Second)
			if err != nil {
				return fmt.Errorf("port %d: %v", port, err)
			}
			c.Close()
		}
		status, err := e.api("status", map[string]any{})
		if err != nil {
			return fmt.Errorf("/api/status: %v", err)
		}
		if !strings.Contains(status, e.node) {
			return fmt.Errorf("%w: /api/status on %s answers %q, not node %s", errEjPortTaken, ejAddr(e.httpPort), status, e.node)
		}
		return nil
	}
}

// api calls a mod_http_api command and returns the body of a 200 reply.
func (e *ejabberd) api(command string, args any) (string, error) {
	body, err := json.Marshal(args)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ejAddr(e.httpPort)+"/api/"+command, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.httpc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return string(b), nil
}

func (e *ejabberd) readLog(from int64) string {
	b, err := os.ReadFile(e.logPath())
	if err != nil || int64(len(b)) < from {
		return ""
	}
	return string(b[from:])
}

func (e *ejabberd) exitState() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd == nil || e.cmd.ProcessState == nil {
		return "unknown status"
	}
	return e.cmd.ProcessState.String()
}

func (e *ejabberd) register(user, password string) error {
	_, err := e.api("register", map[string]string{"user": user, "host": ejDomain, "password": password})
	return err
}

func (e *ejabberd) start() error {
	e.mu.Lock()
	running := e.cmd != nil
	e.mu.Unlock()
	if running {
		return errors.New("already running")
	}
	deadline := time.Now().Add(restartWindow)
	var failures []string
	for attempt := 1; ; attempt++ {
		err := e.launch()
		if err == nil {
			return nil
		}
		failures = append(failures, fmt.Sprintf("attempt %d: %v", attempt, err))
		if !errors.Is(err, errEjPortTaken) && !errors.Is(err, errEjExited) || time.Now().After(deadline) {
			return errors.New(strings.Join(failures, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop shuts ejabberd down (SIGTERM: the VM runs init:stop, as
// /api/stop does), waits for it, kills the VM's process group after
// ejStopTimeout, and then stops epmd. It is a no-op when nothing runs.
func (e *ejabberd) stop() error {
	e.mu.Lock()
	cmd, done := e.cmd, e.done
	e.mu.Unlock()
	var err error
	if cmd != nil {
		select {
		case <-done:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(ejStopTimeout):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
				err = fmt.Errorf("ejabberd (pid %d) ignored SIGTERM for %v and was killed", cmd.Process.Pid, ejStopTimeout)
			}
		}
		// Anything of the VM's still in its group (helpers).
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		e.mu.Lock()
		e.cmd, e.done = nil, nil
		e.mu.Unlock()
	}
	e.stopEpmd()
	return err
}

func (e *ejabberd) stopEpmd() {
	e.mu.Lock()
	cmd, done := e.epmdCmd, e.epmdDone
	e.epmdCmd, e.epmdDone = nil, nil
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// log returns the last lines of the VM's output (ejabberd's console log
// and anything printed before its logger started).
func (e *ejabberd) log() string {
	b, err := os.ReadFile(e.outPath())
	if err != nil {
		return err.Error()
	}
	lines := strings.SplitAfter(string(b), "\n")
	var s strings.Builder
	if len(lines) > ejLogTail {
		fmt.Fprintf(&s, "[... %d earlier lines]\n", len(lines)-ejLogTail)
		lines = lines[len(lines)-ejLogTail:]
	}
	s.WriteString(strings.Join(lines, ""))
	return s.String()
}
