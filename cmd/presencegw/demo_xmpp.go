package main

// presencegw demo --xmpp: the demo with a chat server to look at it from.
// A private Prosody runs as a child process in a temporary directory, with
// the demo people as users who are each other's contacts, the overlay
// module and the gateway's component; every demo person is also logged
// in by the demo (resource "demo"), so whoever logs in with a real client
// sees the others' calendar states.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/presencegw/presencegw/configs"
	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/xmppbot"

	"github.com/presencegw/presencegw/internal/xmppbind"
)

const (
	// demoChatDomain is the demo people's XMPP domain (demo-people.yaml).
	demoChatDomain = "chat.example.com"
	// demoChatComponent is the gateway's component on it.
	demoChatComponent = "calendar." + demoChatDomain
	// demoResource is the resource the demo logs each person in with.
	demoResource = "demo"
	// prosodyNobody is the uid/gid Prosody runs as when presencegw runs
	// as root: Prosody refuses to run as root.
	prosodyNobody = 65534
)

var (
	// prosodyStartTimeout bounds Prosody's start-up (a few hundred ms
	// on a laptop).
	prosodyStartTimeout = 30 * time.Second
	// prosodyStopTimeout is how long Prosody gets after SIGTERM before
	// it is killed.
	prosodyStopTimeout = 5 * time.Second
	// prosodyBinDir is where Prosody's programs are looked for when they
	// are not on PATH (sbin is not on every user's PATH).
	prosodyBinDir = "/usr/bin"
	// prosodyModuleDirs are where mod_privilege is looked for; Debian's
	// prosody-modules installs into the first.
	prosodyModuleDirs = []string{"/usr/lib/prosody/modules", "/usr/local/lib/prosody/modules"}
)

// prosodyPackages is what to install, in every error about a missing part.
const prosodyPackages = "install the Debian packages prosody and prosody-modules (sudo apt install prosody prosody-modules)"

// demoChatter is a demo person with a chat account.
type demoChatter struct {
	User       string // local part, also the password
	JID        string // bare
	Name       string
	Department string
}

// demoChatters lists the enabled demo people on demoChatDomain, in the
// directory's order.
func demoChatters() ([]demoChatter, error) {
	var f struct {
		People []struct {
			JID        string `yaml:"jid"`
			Name       string `yaml:"name"`
			Department string `yaml:"department"`
			Disabled   bool   `yaml:"disabled"`
		} `yaml:"people"`
	}
	if err := yaml.Unmarshal(demoPeople, &f); err != nil {
		return nil, fmt.Errorf("demo-people.yaml: %w", err)
	}
	var out []demoChatter
	for _, p := range f.People {
		user, domain, ok := strings.Cut(strings.ToLower(p.JID), "@")
		if p.Disabled || !ok || domain != demoChatDomain || user == "" {
			continue
		}
		out = append(out, demoChatter{User: user, JID: user + "@" + domain, Name: p.Name, Department: p.Department})
	}
	if len(out) == 0 {
		return nil, errors.New("demo-people.yaml: nobody on " + demoChatDomain)
	}
	return out, nil
}

// runDemoXMPP is 'presencegw demo --xmpp': Prosody, the demo people
// logged in, then the demo gateway with its XMPP component, until ctx
// ends or Prosody dies. Prosody is stopped and its directory removed
// on the way out.
func runDemoXMPP(ctx context.Context, listen string, c2sPort int, out, errOut io.Writer) error {
	cfg := config.Defaults()
	log := newLogger(errOut, cfg.Log.Format, cfg.Log.Level)
	people, err := demoChatters()
	if err != nil {
		return err
	}
	p, err := startDemoProsody(ctx, c2sPort, people, log)
	if err != nil {
		if ctx.Err() != nil {
			log.Info("stopped while prosody was starting")
			return nil
		}
		return err
	}
	defer p.close(log)
	cfg.XMPP = &config.XMPP{
		Server:       p.componentAddr,
		JID:          demoChatComponent,
		SecretFile:   p.secretPath(),
		Hosts:        []string{demoChatDomain},
		Admins:       demoJIDs(people), // everyone may try resolve and sync
		SendRate:     200,
		Burst:        50,
		ReconnectMax: config.Duration(5 * time.Second),
		Grace:        config.Duration(2 * time.Minute),
		Visibility:   "status",
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-p.done:
			cancel(fmt.Errorf("prosody exited (%s)\n%s", p.exitState(), p.logTail()))
		case <-ctx.Done():
		}
	}()
	bots := make(chan *xmppbot.Bot, 1)
	served := make(chan error, 1)
	go func() {
		served <- serveConfig(ctx, cfg, true, listen, log, func(b *xmppbot.Bot) { bots <- b })
	}()
	// The people log in once the component is connected: they are then
	// news to it, as people who come online later are.
	var residents *demoResidents
	select {
	case err := <-served:
		return demoXMPPResult(ctx, err)
	case b := <-bots:
		waitConnected(ctx, b, demoConnectTimeout, log)
		var err error
		if residents, err = loginDemoPeople(ctx, p.c2sAddr, people, log); err != nil {
			if ctx.Err() != nil {
				return demoXMPPResult(ctx, <-served) // stopped meanwhile
			}
			cancel(err)
			<-served
			return err
		}
	}
	printDemoXMPPHelp(out, c2sPort, people, p)
	err = <-served
	residents.close()
	return demoXMPPResult(ctx, err)
}

// demoConnectTimeout bounds the wait for the component's first connect
// before the demo people log in anyway.
var demoConnectTimeout = 15 * time.Second

// waitConnected waits until the component is connected, ctx ends or
// timeout passes.
func waitConnected(ctx context.Context, b *xmppbot.Bot, timeout time.Duration, log *slog.Logger) {
	deadline := time.Now().Add(timeout)
	for !b.Status().Connected {
		if ctx.Err() != nil {
			return
		}
		if time.Now().After(deadline) {
			log.Warn("the xmpp component did not connect; logging the demo people in anyway", "after", timeout)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// demoXMPPResult is the demo's outcome: err, else why ctx ended when it
// was not a plain stop (Prosody died, a login failed).
func demoXMPPResult(ctx context.Context, err error) error {
	if c := context.Cause(ctx); err == nil && c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

// printDemoXMPPHelp tells a newcomer how to log in.
func printDemoXMPPHelp(w io.Writer, port int, people []demoChatter, p *demoProsody) {
	fmt.Fprintf(w, `
presencegw demo --xmpp: a private Prosody for %[1]s runs on 127.0.0.1:%[2]d.

Log in with any XMPP client as
    account:  bob@%[1]s    password: bob
    server:   127.0.0.1, port %[2]d  (%[1]s is not a real domain: set the server by hand)
and see alice as dnd "In a meeting until …". Every demo person is a user (%[3]s;
password = the name), online here as NAME@%[1]s/%[4]s, and everyone's contact.
The calendar: alice in meetings, bob out of office, dave tentative, erin all day, frank private, carol free.
Chat with the gateway, %[7]s: send "help", "status" or "resolve alice@example.com".

    profanity:      /connect bob@%[1]s server 127.0.0.1 port %[2]d tls trust
    Gajim:          add the account, then Advanced: custom host 127.0.0.1, port %[2]d; accept the certificate
    Conversations:  adb reverse tcp:%[2]d tcp:%[2]d, then hostname 127.0.0.1, port %[2]d (extended connection
                    settings); accept the certificate
    Dino:           has no server field and trusts only the system's CAs: needs "127.0.0.1 %[1]s" in
                    /etc/hosts and %[5]s in the system trust store

The server listens on 127.0.0.1 only, so it allows plain-text passwords without TLS; STARTTLS is
offered with a self-signed certificate made for this run (%[5]s).
Prosody's log: %[6]s. Everything is removed when the demo stops (Ctrl-C).

`, demoChatDomain, port, strings.Join(demoUsers(people), ", "), demoResource, p.certPath(), p.logPath(), demoChatComponent)
}

// demoProsody is the private Prosody of 'demo --xmpp'.
type demoProsody struct {
	bin, ctl      string
	moduleDir     string // where mod_privilege is
	asNobody      bool
	dir           string
	c2sPort       int
	compPort      int
	secret        string
	c2sAddr       string
	componentAddr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when Prosody has exited
}

// startDemoProsody writes Prosody's configuration, users and rosters to
// a new temporary directory and starts it, returning when it accepts
// clients on 127.0.0.1:c2sPort and the component on a random loopback
// port. On error nothing is left running or on disk.
func startDemoProsody(ctx context.Context, c2sPort int, people []demoChatter, log *slog.Logger) (_ *demoProsody, err error) {
	if c2sPort < 1 || c2sPort > 65535 {
		return nil, fmt.Errorf("%w: --xmpp-port %d is not a port number", errUsage, c2sPort)
	}
	p := &demoProsody{asNobody: os.Geteuid() == 0, c2sPort: c2sPort, secret: rand.Text()}
	p.c2sAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(c2sPort))
	if p.bin, err = prosodyBinary("prosody"); err != nil {
		return nil, err
	}
	if p.ctl, err = prosodyBinary("prosodyctl"); err != nil {
		return nil, err
	}
	for _, d := range prosodyModuleDirs {
		if _, err := os.Stat(filepath.Join(d, "mod_privilege", "mod_privilege.lua")); err == nil {
			p.moduleDir = d
			break
		}
	}
	if p.moduleDir == "" {
		return nil, fmt.Errorf("--xmpp: Prosody's mod_privilege (XEP-0356) is not in %s: %s", strings.Join(prosodyModuleDirs, " or "), prosodyPackages)
	}
	if p.asNobody {
		if _, err := exec.LookPath("setpriv"); err != nil {
			return nil, fmt.Errorf("--xmpp: running as root needs setpriv (util-linux) to run Prosody as nobody, since Prosody refuses root: %v", err)
		}
	}
	if err := portFree(p.c2sAddr); err != nil {
		return nil, c2sPortTaken(c2sPort, err)
	}

	p.dir, err = os.MkdirTemp("", "presencegw-demo-xmpp-")
	if err != nil {
		return nil, fmt.Errorf("--xmpp: %w", err)
	}
	defer func() {
		if err != nil {
			p.stop()
			os.RemoveAll(p.dir)
		}
	}()
	if err := p.writeFiles(); err != nil {
		return nil, fmt.Errorf("--xmpp: %w", err)
	}
	for attempt := 1; ; attempt++ {
		if p.compPort, err = freeLoopbackPort(); err != nil {
			return nil, fmt.Errorf("--xmpp: choosing the component port: %w", err)
		}
		p.componentAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.compPort))
		if err := p.writeConfig(); err != nil {
			return nil, fmt.Errorf("--xmpp: %w", err)
		}
		if attempt == 1 {
			if err := p.addPeople(ctx, people); err != nil {
				return nil, fmt.Errorf("--xmpp: %w", err)
			}
		}
		err = p.launch(ctx)
		var taken *portTakenError
		switch {
		case err == nil:
			log.Info("prosody started", "c2s", p.c2sAddr, "component", p.componentAddr, "dir", p.dir, "pid", p.cmd.Process.Pid)
			return p, nil
		case errors.As(err, &taken) && taken.port == c2sPort:
			return nil, c2sPortTaken(c2sPort, err)
		case errors.As(err, &taken) && attempt < 3:
			log.Debug("prosody: component port taken, trying another", "port", taken.port)
			continue // someone took the component port between choosing and binding
		}
		return nil, fmt.Errorf("--xmpp: prosody did not start: %w\n%s", err, p.logTail())
	}
}

// prosodyBinary finds a Prosody program on PATH or in prosodyBinDir.
func prosodyBinary(name string) (string, error) {
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	path := filepath.Join(prosodyBinDir, name)
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return path, nil
	}
	return "", fmt.Errorf("demo --xmpp runs a private Prosody, but %s is not on PATH nor in %s: %s", name, prosodyBinDir, prosodyPackages)
}

// portFree reports whether addr can be listened on now.
func portFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

func c2sPortTaken(port int, err error) error {
	return fmt.Errorf("--xmpp: 127.0.0.1:%d, the client port, is in use (%v). Is the system's Prosody running? "+
		"Installing the Debian package starts one: stop it (sudo systemctl disable --now prosody), or pick another port "+
		"with --xmpp-port (and use that port in the client)", port, err)
}

// freeLoopbackPort is a TCP port on 127.0.0.1 that was free a moment ago.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (p *demoProsody) cfgPath() string    { return filepath.Join(p.dir, "prosody.cfg.lua") }
func (p *demoProsody) logPath() string    { return filepath.Join(p.dir, "prosody.log") }
func (p *demoProsody) stderrPath() string { return filepath.Join(p.dir, "prosody.stderr") }
func (p *demoProsody) certPath() string   { return filepath.Join(p.dir, demoChatDomain+".crt") }
func (p *demoProsody) keyPath() string    { return filepath.Join(p.dir, demoChatDomain+".key") }
func (p *demoProsody) secretPath() string { return filepath.Join(p.dir, "component.secret") }
func (p *demoProsody) pluginDir() string  { return filepath.Join(p.dir, "plugins") }
func (p *demoProsody) dataDir() string    { return filepath.Join(p.dir, "data") }

// writeFiles puts everything but the config into the directory: the
// overlay module, a self-signed certificate, the component secret (for
// the gateway) and the data directory.
func (p *demoProsody) writeFiles() error {
	if err := os.Mkdir(p.pluginDir(), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(p.pluginDir(), "mod_presencegw.lua"), configs.ProsodyModule, 0o644); err != nil {
		return err
	}
	if err := os.Mkdir(p.dataDir(), 0o700); err != nil {
		return err
	}
	certPEM, keyPEM, err := selfSignedCert(demoChatDomain)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p.certPath(), certPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(p.keyPath(), keyPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(p.secretPath(), []byte(p.secret+"\n"), 0o600)
}

// selfSignedCert makes a certificate for name and 127.0.0.1, valid for
// a month: clients that offer to accept an unknown certificate can then
// use STARTTLS.
func selfSignedCert(name string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"presencegw demo"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(0, 1, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{name},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// luaString quotes s as a Lua string literal: UTF-8 passes as is,
// quotes, backslashes and control characters are escaped.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeConfig writes prosody.cfg.lua for the current ports.
func (p *demoProsody) writeConfig() error {
	q := luaString
	cfg := fmt.Sprintf(`-- Written by 'presencegw demo --xmpp' for this run only.
data_path = %[1]s
log = { info = %[2]s }
plugin_paths = { %[3]s, %[4]s }
certificates = %[5]s
pidfile = %[6]s

-- Loopback only: nothing here is reachable from another machine, which
-- is why plain-text passwords are allowed without TLS. STARTTLS is
-- offered, with a self-signed certificate, to clients that insist on it.
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { %[7]d }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = {}
legacy_ssl_ports = {}
component_ports = { %[8]d }
component_interfaces = { "127.0.0.1" }
s2s_ports = {}
http_ports = {}
https_ports = {}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
storage = "internal"
allow_registration = false

modules_enabled = {
	"roster"; "saslauth"; "tls"; "disco"; "ping"; "blocklist"; "carbons"; "pep";
	"private"; "vcard4"; "vcard_legacy"; "smacks"; "csi_simple"; "version"; "time"; "uptime";
}
modules_disabled = { "s2s" }

VirtualHost %[9]s
	ssl = { certificate = %[10]s; key = %[11]s }
	modules_enabled = { "privilege"; "presencegw" }
	privileged_entities = {
		[%[12]s] = { presence = "managed_entity"; roster = "get" };
	}
	presencegw_components = { %[12]s }

Component %[12]s
	component_secret = %[13]s
	modules_enabled = { "privilege" }
`,
		q(p.dataDir()), q(p.logPath()), q(p.pluginDir()), q(p.moduleDir), q(p.dir), q(filepath.Join(p.dir, "prosody.pid")),
		p.c2sPort, p.compPort,
		q(demoChatDomain), q(p.certPath()), q(p.keyPath()),
		q(demoChatComponent), q(p.secret))
	return os.WriteFile(p.cfgPath(), []byte(cfg), 0o600)
}

// command runs a Prosody program, as nobody when we are root. Its own
// process group keeps a terminal's Ctrl-C away from it: the demo stops it
// after the gateway, in order. It gets SIGTERM if the demo dies first.
func (p *demoProsody) command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	if p.asNobody {
		id := strconv.Itoa(prosodyNobody)
		// setpriv's credential change clears the parent-death signal;
		// --pdeathsig sets it again.
		args = append([]string{"--reuid=" + id, "--regid=" + id, "--clear-groups", "--pdeathsig=TERM", bin}, args...)
		bin = "setpriv"
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Dir = p.dir
	return cmd
}

// chownAll gives the directory to nobody when Prosody runs as nobody.
func (p *demoProsody) chownAll() error {
	if !p.asNobody {
		return nil
	}
	return filepath.Walk(p.dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, prosodyNobody, prosodyNobody)
	})
}

// addPeople registers every person (password = user name) with
// prosodyctl, then writes their rosters: everyone is everyone's contact.
func (p *demoProsody) addPeople(ctx context.Context, people []demoChatter) error {
	if err := p.chownAll(); err != nil {
		return err
	}
	for _, c := range people {
		out, err := p.command(ctx, p.ctl, "--config", p.cfgPath(), "register", c.User, demoChatDomain, c.User).CombinedOutput()
		if err != nil {
			return fmt.Errorf("prosodyctl register %s: %v\n%s", c.User, err, bytes.TrimSpace(dropProsodyNotice(out)))
		}
	}
	// prosodyctl made the host's store directory; the rosters go next
	// to its accounts.
	host := filepath.Join(p.dataDir(), prosodyEncode(demoChatDomain))
	if _, err := os.Stat(filepath.Join(host, "accounts", prosodyEncode(people[0].User)+".dat")); err != nil {
		return fmt.Errorf("prosodyctl register left no account where the rosters must go: %w", err)
	}
	rosters := filepath.Join(host, "roster")
	if err := os.MkdirAll(rosters, 0o750); err != nil {
		return err
	}
	for _, c := range people {
		if err := os.WriteFile(filepath.Join(rosters, prosodyEncode(c.User)+".dat"), prosodyRoster(c, people), 0o640); err != nil {
			return err
		}
	}
	return p.chownAll()
}

// prosodyEncode is how Prosody's internal storage names files and
// directories (util.datamanager's encode): every byte other than a
// letter, digit or underscore as %xx.
func prosodyEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

// prosodyRoster is owner's roster file for Prosody 0.12's internal
// storage: every other person with subscription both, named, in their
// department's group, as the roster of two users who accepted each
// other's subscription requests is stored.
func prosodyRoster(owner demoChatter, people []demoChatter) []byte {
	q := luaString
	var b strings.Builder
	b.WriteString("return {\n\t[false] = {\n\t\t[\"version\"] = 1;\n\t\t[\"pending\"] = {};\n\t};\n")
	for _, c := range people {
		if c.JID == owner.JID {
			continue
		}
		fmt.Fprintf(&b, "\t[%s] = {\n\t\t[\"subscription\"] = \"both\";\n", q(c.JID))
		if c.Name != "" {
			fmt.Fprintf(&b, "\t\t[\"name\"] = %s;\n", q(c.Name))
		}
		b.WriteString("\t\t[\"groups\"] = {")
		if c.Department != "" {
			fmt.Fprintf(&b, "\n\t\t\t[%s] = true;\n\t\t", q(c.Department))
		}
		b.WriteString("};\n\t};\n")
	}
	b.WriteString("};\n")
	return []byte(b.String())
}

// portTakenError is a start where Prosody could not bind a port: it logs
// that and runs on without it, so the start is abandoned.
type portTakenError struct{ port int }

func (e *portTakenError) Error() string { return fmt.Sprintf("port %d on 127.0.0.1 is taken", e.port) }

var failedPortRE = regexp.MustCompile(`Failed to open server port (\d+)`)

// launch starts Prosody and waits until it is ready. On error it is not
// running afterwards.
func (p *demoProsody) launch(ctx context.Context) error {
	if err := p.chownAll(); err != nil {
		return err
	}
	errf, err := os.OpenFile(p.stderrPath(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	os.Remove(p.logPath()) // the log of a failed attempt
	// Not tied to ctx: the demo stops Prosody itself, after the gateway.
	cmd := p.command(context.Background(), p.bin, "--config", p.cfgPath(), "-F")
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
	if err := p.waitReady(ctx); err != nil {
		p.stop()
		return err
	}
	return nil
}

// waitReady polls Prosody's log until it shows both ports bound by this
// Prosody (a connect alone could reach another process) and the overlay
// module loaded, then checks that the ports accept connections.
func (p *demoProsody) waitReady(ctx context.Context) error {
	want := []string{
		fmt.Sprintf("Activated service 'c2s' on [127.0.0.1]:%d", p.c2sPort),
		fmt.Sprintf("Activated service 'component' on [127.0.0.1]:%d", p.compPort),
		demoChatDomain + ":presencegw\tinfo\tpresence overlay for",
	}
	deadline := time.After(prosodyStartTimeout)
	var missing []string
	for {
		select {
		case <-p.done:
			return fmt.Errorf("prosody exited during start-up (%s)", p.exitState())
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-deadline:
			return fmt.Errorf("not ready after %v; its log lacks %q", prosodyStartTimeout, missing)
		case <-time.After(25 * time.Millisecond):
		}
		b, _ := os.ReadFile(p.logPath())
		log := string(b)
		if m := failedPortRE.FindStringSubmatch(log); m != nil {
			port, _ := strconv.Atoi(m[1])
			return &portTakenError{port: port}
		}
		for _, bad := range []string{"Unable to load module", "Error loading module", "Error initializing module", "Failed to load module"} {
			if strings.Contains(log, bad) {
				return fmt.Errorf("a module failed to load (%q in its log)", bad)
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
		for _, addr := range []string{p.c2sAddr, p.componentAddr} {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return err
			}
			c.Close()
		}
		return nil
	}
}

func (p *demoProsody) exitState() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.ProcessState == nil {
		return "unknown status"
	}
	return p.cmd.ProcessState.String()
}

// stop sends SIGTERM, then SIGKILL after prosodyStopTimeout, and waits.
func (p *demoProsody) stop() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(prosodyStopTimeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("prosody (pid %d) ignored SIGTERM for %v and was killed", cmd.Process.Pid, prosodyStopTimeout)
	}
}

// close stops Prosody and removes its directory.
func (p *demoProsody) close(log *slog.Logger) {
	select {
	case <-p.done: // it died: runDemoXMPP says so
	default:
		if err := p.stop(); err != nil {
			log.Warn("stopping prosody", "err", err)
		} else {
			log.Info("prosody stopped")
		}
	}
	if err := os.RemoveAll(p.dir); err != nil {
		log.Warn("removing prosody's directory", "dir", p.dir, "err", err)
	}
}

// logTail is what Prosody printed and the end of its log, for errors.
func (p *demoProsody) logTail() string {
	var b strings.Builder
	if e, err := os.ReadFile(p.stderrPath()); err == nil {
		if e = bytes.TrimSpace(dropProsodyNotice(e)); len(e) > 0 {
			b.WriteString("--- prosody's output:\n")
			b.Write(e)
			b.WriteString("\n")
		}
	}
	if l, err := os.ReadFile(p.logPath()); err == nil {
		lines := strings.SplitAfter(strings.TrimRight(string(l), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		b.WriteString("--- prosody's log (end):\n")
		b.WriteString(strings.Join(lines, ""))
	}
	return b.String()
}

// dropProsodyNotice removes the boxed "Prosody was unable to find
// lua-unbound" notice Debian 12's Prosody prints at every start.
func dropProsodyNotice(b []byte) []byte {
	const box = "**************************"
	i := bytes.Index(b, []byte(box))
	if i < 0 {
		return b
	}
	j := bytes.Index(b[i+len(box):], []byte(box))
	if j < 0 || !bytes.Contains(b[i:i+len(box)+j], []byte("lua-unbound")) {
		return b
	}
	return append(b[:i:i], b[i+2*len(box)+j:]...)
}

// demoResidents are the demo people's own sessions (NAME/demo): online,
// available, so that their contacts see the calendar states the overlay
// module puts on their presence. They ignore what they receive.
type demoResidents struct {
	sessions []*xmpp.Session
	done     []chan struct{}
}

// loginDemoPeople logs every person in at addr as NAME@domain/demo and
// sends their initial presence.
func loginDemoPeople(ctx context.Context, addr string, people []demoChatter, log *slog.Logger) (*demoResidents, error) {
	r := &demoResidents{}
	for _, c := range people {
		s, err := demoLogin(ctx, addr, c.JID, c.User, demoResource)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("--xmpp: logging %s in: %w", c.JID, err)
		}
		done := make(chan struct{})
		r.sessions, r.done = append(r.sessions, s), append(r.done, done)
		go func() {
			defer close(done)
			// Unanswered IQs (disco, version) get service-unavailable.
			err := s.Serve(xmpp.HandlerFunc(func(xmlstream.TokenReadEncoder, *xml.StartElement) error { return nil }))
			if err != nil && ctx.Err() == nil {
				log.Warn("demo xmpp session ended", "jid", s.LocalAddr().String(), "err", err)
			}
		}()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = s.Send(sctx, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "presence"}}))
		cancel()
		if err != nil {
			r.close()
			return nil, fmt.Errorf("--xmpp: presence of %s: %w", c.JID, err)
		}
	}
	log.Info("demo people online", "resource", demoResource, "count", len(people))
	return r, nil
}

// close ends every session (the server then tells the contacts that they
// went offline).
func (r *demoResidents) close() {
	for i, s := range r.sessions {
		_ = s.Close()
		select {
		case <-r.done[i]:
		case <-time.After(2 * time.Second):
		}
		_ = s.Conn().Close()
	}
}

// demoLogin logs bareJID/resource in over plain TCP on loopback (the
// demo's Prosody allows PLAIN without TLS there).
func demoLogin(ctx context.Context, addr, bareJID, password, resource string) (*xmpp.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	full, err := jid.Parse(bareJID + "/" + resource)
	if err != nil {
		return nil, err
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	s, err := xmpp.NewSession(ctx, full.Domain(), full, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
			xmpp.SASL("", password, sasl.Plain),
			xmppbind.Feature(resource),
		}}
	}))
	if err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// demoJIDs is the people's bare JIDs.
func demoJIDs(people []demoChatter) []string {
	var out []string
	for _, c := range people {
		out = append(out, c.JID)
	}
	return out
}

// demoUsers is the people's user names, for messages.
func demoUsers(people []demoChatter) []string {
	var out []string
	for _, c := range people {
		out = append(out, c.User)
	}
	return out
}
