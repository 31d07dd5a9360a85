package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/presencegw/presencegw/internal/testenv"
	"github.com/presencegw/presencegw/web"
)

// cli runs the command line in-process and returns exit code and output.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpOnEveryCommand(t *testing.T) {
	for _, c := range commands {
		code, _, errOut := cli(t, c.name, "--help")
		if code != 0 || !strings.Contains(errOut, "usage: presencegw "+c.name) {
			t.Errorf("%s --help: exit %d, output %q", c.name, code, errOut)
		}
	}
	if code, _, errOut := cli(t); code != 2 || !strings.Contains(errOut, "resolve") {
		t.Errorf("no command: exit %d, %q", code, errOut)
	}
	if code, _, errOut := cli(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
	if code, out, _ := cli(t, "version"); code != 0 || !strings.HasPrefix(out, "presencegw ") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestResolveDemo(t *testing.T) {
	code, out, errOut := cli(t, "resolve", "A.Smith@Example.com")
	if code != 0 || !strings.Contains(out, "a.smith@example.com → alice@chat.example.com") || !strings.Contains(out, `matched:    aliases "a.smith@example.com"`) {
		t.Errorf("resolve: exit %d\n%s%s", code, out, errOut)
	}
	// Not found and conflicts exit 1, so scripts can tell.
	code, out, _ = cli(t, "resolve", "--json", "grace@example.com", "support@example.com")
	if code != 1 {
		t.Errorf("unresolved addresses: exit %d, want 1", code)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var statuses []string
	for dec.More() {
		var r struct{ Status string }
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, r.Status)
	}
	if fmt.Sprint(statuses) != "[not_found conflict]" {
		t.Errorf("statuses = %v", statuses)
	}
	if code, _, errOut := cli(t, "resolve"); code != 2 || !strings.Contains(errOut, "give at least one address") {
		t.Errorf("resolve without address: %d %q", code, errOut)
	}
	// The demo calendar drives presence.
	code, out, _ = cli(t, "resolve", "alice@example.com", "bob@example.com", "carol@example.com", "frank@example.com")
	for _, want := range []string{
		"presence:   busy · In a meeting until ",
		"presence:   oof · Out of office until Mon ",
		"presence:   available (calendar)",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("demo presence lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Design review") {
		t.Errorf("meeting subjects shown without the policy allowing it:\n%s", out)
	}
	if code, out, _ := cli(t, "optout", "alice@example.com"); code != 0 || !strings.Contains(out, "alice@example.com (mailbox alice@example.com): calendar states apply") {
		t.Errorf("optout show: %d %q", code, out)
	}
	if code, _, errOut := cli(t, "optout", "nobody@example.com", "on"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("optout of an unknown address: %d %q", code, errOut)
	}
	if code, out, _ := cli(t, "conflicts"); code != 0 || !strings.Contains(out, "support@example.com: unresolved conflict") {
		t.Errorf("conflicts: %d %q", code, out)
	}
}

func TestBadConfigReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	os.WriteFile(path, []byte(`listen: 127.0.0.1:8080
store: state.db
ldap:
  - name: corp
    url: http://dc1.example.com
    base_dn: dc=example,dc=com
    user_filter: "(objectClass=user"
    jid:
      attribute: jabberID
`), 0o600)
	code, _, errOut := cli(t, "serve", "-c", path)
	for _, want := range []string{
		path + ":5: ldap[0].url: scheme must be ldap or ldaps, not \"http\"",
		path + ":7: ldap[0].user_filter:",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("serve with a bad config: exit %d, output lacks %q:\n%s", code, want, errOut)
		}
	}
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
}

// writeConfig writes a config over a real slapd and returns its path.
func writeConfig(t *testing.T, slapd *testenv.Slapd, listen string) string {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pw"), []byte(slapd.BindPW), 0o600)
	path := filepath.Join(dir, "config.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`listen: %s
store: state.db
directory:
  incremental_interval: 1s
ldap:
  - name: corp
    url: %s
    bind_dn: %s
    bind_password_file: pw
    base_dn: ou=Users,dc=example,dc=com
    user_filter: (objectClass=user)
    page_size: 100
    jid:
      template: "{{.sAMAccountName}}@chat.example.com"
`, listen, slapd.URL, slapd.BindDN)), 0o600)
	return path
}

func usersLDIF(t *testing.T, n int) string {
	var b bytes.Buffer
	if err := testenv.GenerateUsersLDIF(&b, "dc=example,dc=com", n, 1); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestSyncResolveOverride(t *testing.T) {
	slapd := testenv.StartSlapd(t, testenv.SlapdOptions{LDIF: []string{usersLDIF(t, 250)}})
	cfg := writeConfig(t, slapd, "127.0.0.1:0")

	code, _, errOut := cli(t, "resolve", "-c", cfg, "user000001@example.com")
	if code != 1 || !strings.Contains(errOut, "never synced") || !strings.Contains(errOut, "presencegw sync -c") {
		t.Errorf("resolve before sync: %d %q", code, errOut)
	}
	code, out, errOut := cli(t, "sync", "-c", cfg)
	// 250 users, every 50th disabled.
	if code != 0 || !regexpMatch(`corp\s+245\s+735\s+5\s`, out) || !strings.Contains(out, "index: 245 people, 735 addresses, 0 conflicts") {
		t.Errorf("sync: exit %d\n%s%s", code, out, errOut)
	}
	if !regexpMatch(`(?m)^corp: 100 entries, \d+/s, [\d.]+m?s$`, errOut) {
		t.Errorf("sync progress missing (entries, rate, elapsed):\n%s", errOut)
	}
	code, out, _ = cli(t, "resolve", "-c", cfg, "U.000007@example.com")
	if code != 0 || !strings.Contains(out, "u.000007@example.com → user000007@chat.example.com") || !strings.Contains(out, "dn:         cn=User 000007,ou=Users,dc=example,dc=com") {
		t.Errorf("resolve: %d\n%s", code, out)
	}
	code, out, _ = cli(t, "resolve", "-c", cfg, "--live", "user000007@example.com")
	if code != 0 || !strings.Contains(out, "live:       corp: cn=User 000007,ou=Users,dc=example,dc=com → user000007@chat.example.com") {
		t.Errorf("resolve --live: %d\n%s", code, out)
	}
	if code, out, errOut := cli(t, "override", "-c", cfg, "--note", "renamed", "set", "user000007@example.com", "seven@chat.example.com"); code != 0 {
		t.Fatalf("override set: %d %s %s", code, out, errOut)
	}
	code, out, _ = cli(t, "resolve", "-c", cfg, "user000007@example.com")
	if code != 0 || !strings.Contains(out, "→ seven@chat.example.com") || !strings.Contains(out, `"renamed"`) {
		t.Errorf("resolve after override: %d\n%s", code, out)
	}
	if code, out, _ := cli(t, "override", "-c", cfg, "list"); code != 0 || !strings.Contains(out, "user000007@example.com → seven@chat.example.com") {
		t.Errorf("override list: %d %q", code, out)
	}
	if code, _, errOut := cli(t, "override", "-c", cfg, "set", "user000007@example.com", "bad jid/with resource"); code != 1 || !strings.Contains(errOut, "not a bare JID") {
		t.Errorf("override with bad JID: %d %q", code, errOut)
	}
	if code, _, _ := cli(t, "override", "-c", cfg, "delete", "user000007@example.com"); code != 0 {
		t.Errorf("override delete: %d", code)
	}
	if code, out, _ := cli(t, "doctor", "-c", cfg); code != 0 || !strings.Contains(out, "ldap corp: ok") {
		t.Errorf("doctor: %d %q", code, out)
	}
	slapd.Stop(t)
	if code, out, _ := cli(t, "doctor", "-c", cfg); code != 1 || !strings.Contains(out, "ldap corp: FAILED") {
		t.Errorf("doctor with slapd down: %d %q", code, out)
	}
}

// getText is an HTTP GET of a running gateway's path: the status and
// body, or 0 and the error.
func getText(addr, path string) (int, string) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitLogLines waits until the logs hold every one of wants, at most
// within, and reports each that is missing then; it returns the logs.
func waitLogLines(t *testing.T, logs *testenv.Buffer, wants []string, within time.Duration) string {
	t.Helper()
	all := func() bool {
		for _, w := range wants {
			if !strings.Contains(logs.String(), w) {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(within); time.Now().Before(deadline) && !all(); {
		time.Sleep(50 * time.Millisecond)
	}
	l := logs.String()
	for _, want := range wants {
		if !strings.Contains(l, want) {
			t.Errorf("logs lack %q:\n%s", want, l)
		}
	}
	return l
}

func TestServeHealthAndGracefulShutdown(t *testing.T) {
	slapd := testenv.StartSlapd(t, testenv.SlapdOptions{LDIF: []string{usersLDIF(t, 20)}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := writeConfig(t, slapd, addr)
	ctx, cancel := context.WithCancel(context.Background())
	var logs testenv.Buffer
	done := make(chan int)
	go func() { done <- run(ctx, []string{"serve", "-c", cfg}, io.Discard, &logs) }()

	get := func(path string) (int, string) { return getText(addr, path) }
	var code int
	var body string
	for i := 0; i < 100; i++ {
		if code, body = get("/readyz"); code == http.StatusOK {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != http.StatusOK {
		t.Fatalf("/readyz = %d %s\nlogs:\n%s", code, body, logs.String())
	}
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "presencegw_directory_people 20") {
		t.Errorf("/metrics = %d, lacks the people gauge:\n%.500s", code, body)
	}
	if code, body := get("/nope"); code != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("/nope = %d %s", code, body)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d after SIGTERM-like cancel\n%s", code, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not shut down")
	}
	for _, want := range []string{"msg=\"presencegw listening\"", "msg=\"directory full sync done\" source=corp people=20", "msg=\"shutting down\"", "msg=stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
}

func TestDemoServes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs testenv.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"demo", "--listen", addr}, io.Discard, &logs) }()
	ok := false
	for i := 0; i < 100 && !ok; i++ {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			ok = resp.StatusCode == 200
			resp.Body.Close()
		}
		time.Sleep(30 * time.Millisecond)
	}
	if !ok {
		t.Fatalf("demo never became ready:\n%s", logs.String())
	}
	// The demo opens its presence API to anonymous callers; the calendar
	// is read within a couple of seconds of the start.
	var resp *http.Response
	var body []byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r, err := http.Get("http://" + addr + "/api/v1/presence?email=alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		resp, body = r, nil
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
		if strings.Contains(string(body), `"state":"busy"`) {
			break
		}
	}
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"state":"busy"`) || !strings.Contains(string(body), `"status":"In a meeting until `) {
		t.Errorf("demo lookup: %d %s", resp.StatusCode, body)
	}
	// The Openfire endpoint is public in the demo and finds alice by JID.
	r, err := http.Get("http://" + addr + "/plugins/presence/status?jid=Alice@Chat.Example.com/laptop&type=xml")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(r.Body)
	r.Body.Close()
	if !regexpMatch(`^<presence from="alice@chat\.example\.com"><show>dnd</show><status>In a meeting until [^<]+</status></presence>\n$`, string(body)) {
		t.Errorf("demo Openfire lookup: %d %q", r.StatusCode, body)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("demo exited %d", code)
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

func TestToken(t *testing.T) {
	code, out, _ := cli(t, "token", "--api-key", "intranet")
	m := regexp.MustCompile(`key \(give it to the service, it is shown once\): (\S+)\n(?s:.*)sha256: ([0-9a-f]{64})`).FindStringSubmatch(out)
	if code != 0 || m == nil || web.HashKey(m[1]) != m[2] {
		t.Fatalf("api key: %d %q", code, out)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kopano.secret"), []byte("GEHEIM\n"), 0o600)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("web:\n  kopano:\n    secret_file: kopano.secret\n"), 0o600)
	code, out, errOut := cli(t, "token", "-c", cfg, "markd@kopano.com")
	parts := strings.Split(strings.TrimSpace(out), ":")
	if code != 0 || len(parts) != 3 || parts[1] != "markd@kopano.com" {
		t.Fatalf("kopano token: %d %q %s", code, out, errOut)
	}
	sec, _ := strconv.ParseInt(parts[0], 10, 64)
	if want := web.KopanoToken([]byte("GEHEIM"), "markd@kopano.com", time.Unix(sec, 0)); strings.TrimSpace(out) != want {
		t.Errorf("token %q, want %q", out, want)
	}
}
