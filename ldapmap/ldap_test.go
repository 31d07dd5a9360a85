package ldapmap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/internal/store"
	"github.com/presencegw/presencegw/internal/testenv"
)

// directories is the test world: an AD-like and an OpenLDAP-like slapd
// sharing the example.com domain, with the hard cases of testdata/.
type directories struct {
	ad, ol *testenv.Slapd
	cfg    *config.Config
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startDirectories starts both servers. The AD one also holds extra
// generated users, more than the server's 500-entry size limit, read in
// pages of 50.
func startDirectories(t *testing.T, extraUsers int) *directories {
	t.Helper()
	opts := testenv.SlapdOptions{LDIF: []string{readFile(t, "testdata/ad-seed.ldif")}}
	if extraUsers > 0 {
		opts.LDIFFiles = []string{usersFile(t, extraUsers, 20000)}
	}
	d := &directories{
		ad: testenv.StartSlapd(t, opts),
		ol: testenv.StartSlapd(t, testenv.SlapdOptions{Suffix: "dc=example,dc=net", LDIF: []string{readFile(t, "testdata/openldap-seed.ldif")}}),
	}
	d.cfg = parseConfig(t, d.configYAML(t))
	return d
}

// usersFile writes n generated AD users (testenv.GenerateUsersLDIF) to a
// temporary LDIF file for slapadd.
func usersFile(tb testing.TB, n, startUSN int) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "users.ldif")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := testenv.GenerateUsersLDIF(f, "dc=example,dc=com", n, startUSN); err != nil {
		tb.Fatal(err)
	}
	return path
}

func (d *directories) configYAML(t *testing.T) string {
	dir := t.TempDir()
	pw := filepath.Join(dir, "svc.password")
	if err := os.WriteFile(pw, []byte(d.ad.BindPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`
ldap:
  - name: ad
    priority: 10
    domains: [example.com, example.org]
    url: %s
    bind_dn: %s
    bind_password_file: %s
    base_dn: ou=Users,dc=example,dc=com
    user_filter: (objectClass=user)
    page_size: 50
    attributes:
      user_principal: userPrincipalName
    jid:
      template: "{{.sAMAccountName}}@chat.example.com"
  - name: ol
    priority: 5
    flavor: openldap
    domains: [example.com]
    url: [ldap://127.0.0.1:1, %s]
    bind_dn: %s
    bind_password_file: %s
    base_dn: ou=Users,dc=example,dc=net
    disabled_filter: (nsAccountLock=TRUE)
    jid:
      attribute: jabberID
`, d.ad.URL, d.ad.BindDN, pw, d.ol.URL, d.ol.BindDN, pw)
}

func parseConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "config.yaml"), []byte(yaml), CheckLDAPConfig)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// open makes a Directory over the configured sources and the store at
// path, as the gateway does at start-up.
func (d *directories) open(t *testing.T, storePath string) (*Directory, *store.DB) {
	t.Helper()
	st, err := store.Open(storePath)
	if err != nil {
		t.Fatal(err)
	}
	var sources []Source
	for _, l := range d.cfg.LDAP {
		s, err := NewLDAPSource(l, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, s)
	}
	dir, err := New(sources, st, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	return dir, st
}

type want struct {
	query   string
	status  Status
	jid     string
	attr    string // matched attribute
	raw     string // matched raw value
	source  string
	mailbox string
}

func checkResolve(t *testing.T, dir *Directory, tests []want) {
	t.Helper()
	for _, w := range tests {
		r := dir.Resolve(w.query)
		if r.Status != w.status || r.JID != w.jid {
			t.Errorf("Resolve(%q) = %s %q, want %s %q\n%s", w.query, r.Status, r.JID, w.status, w.jid, r)
			continue
		}
		if w.attr != "" && (r.Via == nil || r.Via.Attr != w.attr || r.Via.RawValue() != w.raw) {
			t.Errorf("Resolve(%q) matched %+v, want %s %q", w.query, r.Via, w.attr, w.raw)
		}
		if w.source != "" && (r.Person == nil || r.Person.Source != w.source) {
			t.Errorf("Resolve(%q) from %+v, want source %s", w.query, r.Person, w.source)
		}
		if w.mailbox != "" && (r.Person == nil || r.Person.MailboxID != w.mailbox) {
			t.Errorf("Resolve(%q) mailbox %+v, want %s", w.query, r.Person, w.mailbox)
		}
	}
}

func TestLDAPFullSync(t *testing.T) {
	d := startDirectories(t, 600)
	dir, _ := d.open(t, filepath.Join(t.TempDir(), "state.db"))
	var pages int
	results, err := dir.SyncFull(context.Background(), func(Progress) { pages++ })
	if err != nil {
		t.Fatalf("SyncFull: %v", err)
	}
	// 600 generated + 9 seeded entries in pages of 50: progress per page.
	if pages < 12 {
		t.Errorf("progress reported %d times, want once per page (>= 12)", pages)
	}
	ad, ol := results[0].Stats, results[1].Stats
	// AD: 600 generated (every 50th disabled: 12) + alice, carol, dave,
	// frank, henry, irene, zoe; bob disabled; gina has no mail.
	if ad.People != 588+7 || ad.Disabled != 12+1 || ad.NoMail != 1 {
		t.Errorf("ad stats = %+v, want 595 people, 13 disabled, 1 without mail", ad)
	}
	// OL: alice, dave, erin, kim; lou locked; max outside the domains.
	if ol.People != 4 || ol.Disabled != 1 || ol.OutsideDomains != 1 {
		t.Errorf("ol stats = %+v, want 4 people, 1 disabled, 1 outside domains", ol)
	}
	checkResolve(t, dir, []want{
		{query: "alice@example.com", status: StatusResolved, jid: "alice@chat.example.com", source: "ad", mailbox: "alice@example.com"},
		{query: "Alice.Smith@EXAMPLE.com", status: StatusResolved, jid: "alice@chat.example.com", attr: "proxyAddresses", raw: "smtp:alice.smith@example.com"},
		{query: "asmith@example.org", status: StatusResolved, jid: "alice@chat.example.com"},
		{query: "alice@corp.example.com", status: StatusNotFound}, // UPN domain not served
		{query: "alice.sip@example.com", status: StatusNotFound},  // SIP: proxy address is not mail
		{query: "bob@example.com", status: StatusNotFound},        // disabled
		{query: "robert.jones@example.com", status: StatusNotFound},
		{query: "carol@example.com", status: StatusResolved, jid: "carol@chat.example.com"},
		{query: "d.brown@example.com", status: StatusResolved, jid: "dave@chat.example.com", attr: "proxyAddresses", raw: "SMTP:d.brown@example.com", mailbox: "d.brown@example.com"},
		{query: "dave.brown@example.com", status: StatusResolved, jid: "dave@chat.example.com", attr: "msRTCSIP-PrimaryUserAddress", raw: "sip:dave.brown@example.com"},
		{query: "dave@example.com", status: StatusResolved, jid: "dave@chat.example.com", source: "ad"}, // ad's priority beats ol
		{query: "frank.miller@example.com", status: StatusResolved, jid: "frank@chat.example.com", attr: "proxyAddresses", raw: "SMTP:Frank.Miller@Example.COM"},
		{query: "FMiller@Example.com", status: StatusResolved, jid: "frank@chat.example.com", raw: "smtp:FMILLER@example.com", attr: "proxyAddresses"},
		{query: "shared@example.com", status: StatusConflict},
		{query: "o*brien@example.com", status: StatusResolved, jid: "zoe@chat.example.com"},
		{query: "erin@example.com", status: StatusResolved, jid: "erin@chat.example.com", source: "ol"},
		{query: "kim@example.com", status: StatusConflict},
		{query: "lou@example.com", status: StatusNotFound},
		{query: "max@other.example", status: StatusNotFound},
		{query: "user000599@example.com", status: StatusResolved, jid: "user000599@chat.example.com"},
		{query: "u.000001@example.com", status: StatusResolved, jid: "user000001@chat.example.com"},
	})
	zoe := dir.Resolve("o*brien@example.com").Person
	if zoe == nil || zoe.Name != "Zoë Ñúñez" || !strings.Contains(zoe.DN, `O*Brien\5C`) {
		t.Errorf("zoe = %+v, want non-ASCII name and the escaped DN", zoe)
	}
	conflicts := map[string]*Conflict{}
	for _, c := range dir.Conflicts() {
		conflicts[c.Address] = c
	}
	if c := conflicts["dave@example.com"]; c == nil || c.Resolution != "priority" || c.Claims[c.Winner].Source != "ad" {
		t.Errorf("dave conflict = %+v, want decided by ad's priority", c)
	}
	if c := conflicts["shared@example.com"]; c == nil || c.Winner != -1 || len(c.Claims) != 2 {
		t.Errorf("shared conflict = %+v, want two claims, unresolved", c)
	}
	if c := conflicts["kim@example.com"]; c == nil || c.Winner != -1 || !strings.Contains(c.Claims[0].Problem, "2 different values") {
		t.Errorf("kim conflict = %+v, want an unresolved two-JID problem", c)
	}
	if c := conflicts["alice@example.com"]; c != nil {
		t.Errorf("alice is in both directories with the same JID, yet conflict %+v", c)
	}
	if len(conflicts) != 3 {
		t.Errorf("conflicts = %v, want dave, kim, shared", conflicts)
	}
}

func TestLDAPIncrementalSync(t *testing.T) {
	d := startDirectories(t, 0)
	dir, _ := d.open(t, filepath.Join(t.TempDir(), "state.db"))
	if _, err := dir.SyncFull(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	// AD: alice gets an alias, carol is disabled, frank deleted (AD tracks
	// with uSNChanged, which a real DC bumps and this test sets).
	d.ad.Modify(t, `dn: cn=Alice Smith,ou=Users,dc=example,dc=com
changetype: modify
add: proxyAddresses
proxyAddresses: smtp:alice.new@example.com
-
replace: uSNChanged
uSNChanged: 13001

dn: cn=Carol White,ou=Users,dc=example,dc=com
changetype: modify
replace: userAccountControl
userAccountControl: 514
-
replace: uSNChanged
uSNChanged: 13002

dn: cn=Frank Miller,ou=Users,dc=example,dc=com
changetype: delete
`)
	// OpenLDAP: erin's mail changes (modifyTimestamp is maintained by slapd).
	d.ol.Modify(t, `dn: uid=erin,ou=Users,dc=example,dc=net
changetype: modify
replace: mail
mail: erin.green@example.com
`)
	results, err := dir.SyncIncremental(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Full {
			t.Errorf("%s: incremental sync fell back to a full one", r.Source)
		}
	}
	if results[0].Changed != 1 || results[0].Removed != 1 || results[1].Changed != 1 {
		t.Errorf("results = %+v, want ad: 1 changed 1 removed, ol: 1 changed", results)
	}
	checkResolve(t, dir, []want{
		{query: "alice.new@example.com", status: StatusResolved, jid: "alice@chat.example.com"},
		{query: "carol@example.com", status: StatusNotFound},
		{query: "erin.green@example.com", status: StatusResolved, jid: "erin@chat.example.com"},
		{query: "erin@example.com", status: StatusNotFound},
		// Deletions are only seen by a full sync.
		{query: "frank.miller@example.com", status: StatusResolved, jid: "frank@chat.example.com"},
	})
	// Nothing changed: nothing applied (the inclusive timestamp filter
	// re-reads erin, which must not count as a change).
	results, err = dir.SyncIncremental(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if results[0].Changed+results[0].Removed+results[1].Changed+results[1].Removed != 0 {
		t.Errorf("second incremental sync = %+v, want no changes", results)
	}
	results, err = dir.SyncFull(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if results[0].Removed != 1 {
		t.Errorf("full sync removed %d from ad, want 1 (frank)", results[0].Removed)
	}
	checkResolve(t, dir, []want{{query: "frank.miller@example.com", status: StatusNotFound}})
}

func TestLDAPRestartKeepsStateAndOverrides(t *testing.T) {
	d := startDirectories(t, 0)
	path := filepath.Join(t.TempDir(), "state.db")
	dir, st := d.open(t, path)
	if _, err := dir.SyncFull(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := dir.SetOverride(Override{Address: "Shared@Example.com", JID: "irene@chat.example.com", Note: "Irene runs the shared box"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dir.SetOverride(Override{Address: "carol@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dir.SetOverride(Override{Address: "bad address", JID: "x@y"}); err == nil {
		t.Error("override of an invalid address accepted")
	}
	if _, err := dir.SetOverride(Override{Address: "x@example.com", JID: "x@chat/res"}); err == nil {
		t.Error("override to a full JID accepted")
	}
	st.Close()

	// Restart: the index is back from the store before any sync, with the
	// directories down.
	d.ad.Stop(t)
	d.ol.Stop(t)
	dir, st = d.open(t, path)
	defer st.Close()
	after := []want{
		{query: "alice@example.com", status: StatusResolved, jid: "alice@chat.example.com"},
		{query: "shared@example.com", status: StatusResolved, jid: "irene@chat.example.com"},
		{query: "carol@example.com", status: StatusRemoved},
		{query: "erin@example.com", status: StatusResolved, jid: "erin@chat.example.com"},
	}
	checkResolve(t, dir, after)
	// Overrides also survive a resync.
	d.ad.Start(t)
	d.ol.Start(t)
	results, err := dir.SyncIncremental(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if results[0].Full || results[1].Full {
		t.Errorf("after restart the cursors were lost: %+v", results)
	}
	if _, err := dir.SyncFull(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	checkResolve(t, dir, after)
	if ok, err := dir.DeleteOverride("SHARED@example.com"); !ok || err != nil {
		t.Fatalf("DeleteOverride = %v, %v", ok, err)
	}
	checkResolve(t, dir, []want{{query: "shared@example.com", status: StatusConflict}})
}

// An override written by another process (the CLI, while the gateway runs)
// is picked up at the next sync.
func TestOverrideFromAnotherProcess(t *testing.T) {
	d := startDirectories(t, 0)
	path := filepath.Join(t.TempDir(), "state.db")
	gateway, st1 := d.open(t, path)
	defer st1.Close()
	if _, err := gateway.SyncFull(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	cli, st2 := d.open(t, path)
	if _, err := cli.SetOverride(Override{Address: "shared@example.com", JID: "henry@chat.example.com"}); err != nil {
		t.Fatal(err)
	}
	st2.Close()
	checkResolve(t, gateway, []want{{query: "shared@example.com", status: StatusConflict}})
	if _, err := gateway.SyncIncremental(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkResolve(t, gateway, []want{{query: "shared@example.com", status: StatusResolved, jid: "henry@chat.example.com"}})
}

func TestLDAPOutageKeepsLastGoodIndex(t *testing.T) {
	d := startDirectories(t, 600)
	dir, _ := d.open(t, filepath.Join(t.TempDir(), "state.db"))
	if _, err := dir.SyncFull(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	people, _ := dir.Index().Len()

	// The AD server goes away in the middle of a paged full sync.
	stopped := false
	_, err := dir.SyncFull(context.Background(), func(p Progress) {
		if p.Source == "ad" && !stopped && p.Entries >= 100 {
			stopped = true
			d.ad.Stop(t)
		}
	})
	if !stopped || err == nil {
		t.Fatalf("sync with the server stopped mid-way: stopped=%v err=%v, want an error", stopped, err)
	}
	if !strings.Contains(err.Error(), "ldap source ad") {
		t.Errorf("error %q does not name the source", err)
	}
	if now, _ := dir.Index().Len(); now != people {
		t.Errorf("index has %d people after a failed sync, want the last good %d", now, people)
	}
	checkResolve(t, dir, []want{
		{query: "alice@example.com", status: StatusResolved, jid: "alice@chat.example.com"},
		{query: "user000301@example.com", status: StatusResolved, jid: "user000301@chat.example.com"},
		{query: "erin@example.com", status: StatusResolved, jid: "erin@chat.example.com"}, // the other source was updated
	})
	var adHealth Health
	for _, h := range dir.Health() {
		if h.Source == "ad" {
			adHealth = h
		}
	}
	if adHealth.Error == "" || adHealth.People != people-4 {
		t.Errorf("ad health = %+v, want the error and the kept people", adHealth)
	}
	_, err = dir.SyncIncremental(context.Background())
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("incremental sync with the server down: %v, want ErrUnreachable", err)
	}

	// It comes back: Run's retry recovers it.
	d.ad.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		dir.Run(ctx, Schedule{Incremental: 50 * time.Millisecond, Full: time.Hour})
	}()
	deadline := 200
	for ; deadline > 0; deadline-- {
		h := dir.Health()
		if h[0].Error == "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	if deadline == 0 {
		t.Fatalf("the source did not recover: %+v", dir.Health())
	}
}

func TestLDAPLookupEscapesFilters(t *testing.T) {
	d := startDirectories(t, 0)
	s, err := NewLDAPSource(d.cfg.LDAP[0], quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		addr string
		dns  []string
	}{
		{"o*brien@example.com", []string{`cn=Zoë (Test) O*Brien\5C,ou=Users,dc=example,dc=com`}},
		{"ALICE.smith@example.com", []string{"cn=Alice Smith,ou=Users,dc=example,dc=com"}},
		{"dave.brown@example.com", []string{"cn=Dave Brown,ou=Users,dc=example,dc=com"}}, // via sip:
		// Unescaped, these would be wildcards or inject filter terms.
		{"*@example.com", nil},
		{"o*@example.com", nil},
		{"x)(mail=*)(x@example.com", nil},
		{`\2a@example.com`, nil},
		{"bob@example.com", nil}, // disabled
	}
	for _, tt := range tests {
		people, err := s.Lookup(ctx, tt.addr)
		if err != nil {
			t.Errorf("Lookup(%q): %v", tt.addr, err)
			continue
		}
		var dns []string
		for _, p := range people {
			dns = append(dns, p.DN)
		}
		if fmt.Sprint(dns) != fmt.Sprint(tt.dns) {
			t.Errorf("Lookup(%q) = %q, want %q", tt.addr, dns, tt.dns)
		}
	}
}

func TestLDAPCursorFromAnotherServer(t *testing.T) {
	d := startDirectories(t, 0)
	s, err := NewLDAPSource(d.cfg.LDAP[0], quietLog())
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Changes(context.Background(), Cursor{Mark: "12009", Server: "ldap://dc2.example.com"})
	if !errors.Is(err, ErrNeedFull) {
		t.Errorf("uSN cursor from another DC: %v, want ErrNeedFull", err)
	}
	d2, err := s.Changes(context.Background(), Cursor{Mark: "12008", Server: d.ad.URL})
	if err != nil || len(d2.Changed) != 1 || d2.Changed[0].Name != "Zoë Ñúñez" {
		t.Errorf("changes since 12008 = %+v, %v; want zoe (12009)", d2, err)
	}
}

func TestCheckLDAPConfig(t *testing.T) {
	yaml := `ldap:
  - name: bad
    url: ldap://127.0.0.1:389
    base_dn: "not a dn"
    user_filter: "(&(objectClass=user)"
    jid:
      template: "{{.sAMAccountName"
  - name: static
    url: ldap://127.0.0.1:389
    base_dn: dc=example,dc=com
    jid:
      template: "everyone@chat.example.com"
`
	_, err := config.Parse("cfg.yaml", []byte(yaml), CheckLDAPConfig)
	if err == nil {
		t.Fatal("bad LDAP config accepted")
	}
	for _, want := range []string{
		`cfg.yaml:4: ldap[0].base_dn: "not a dn" is not a DN`,
		`cfg.yaml:5: ldap[0].user_filter: "(&(objectClass=user)" is not a valid LDAP filter`,
		`cfg.yaml:7: ldap[0].jid.template: "{{.sAMAccountName"`,
		`cfg.yaml:12: ldap[1].jid.template: "everyone@chat.example.com" uses no attribute`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// JIDs can come from a template over any attribute (also hyphenated ones,
// with index), the primary address's local part, or a SIP attribute.
func TestLDAPJIDRules(t *testing.T) {
	d := startDirectories(t, 0)
	t.Setenv("PRESENCEGW_TEST_PW", d.ad.BindPW)
	tests := []struct {
		jid  string // the jid: block of the config
		want map[string]string
	}{
		{`template: "{{.localpart}}@chat.{{.domain}}"`, map[string]string{
			"alice@example.com": "alice@chat.example.com", "dave@example.com": "d.brown@chat.example.com",
			"fmiller@example.com": "frank.miller@chat.example.com"}},
		{`template: "{{index . \"msRTCSIP-PrimaryUserAddress\"}}"`, map[string]string{
			"alice@example.com": "alice@example.com", "dave@example.com": "dave.brown@example.com",
			"carol@example.com": ""}}, // carol has no SIP address: no JID, skipped
		{`attribute: msRTCSIP-PrimaryUserAddress`, map[string]string{
			"d.brown@example.com": "dave.brown@example.com", "carol@example.com": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.jid, func(t *testing.T) {
			cfg := parseConfig(t, fmt.Sprintf(`
ldap:
  - name: ad
    url: %s
    bind_dn: %s
    bind_password_env: PRESENCEGW_TEST_PW
    base_dn: ou=Users,dc=example,dc=com
    user_filter: (objectClass=user)
    jid:
      %s
`, d.ad.URL, d.ad.BindDN, tt.jid))
			s, err := NewLDAPSource(cfg.LDAP[0], quietLog())
			if err != nil {
				t.Fatal(err)
			}
			snap, err := s.Full(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			ix := buildIndex([]sourcePeople{{name: "ad", people: snap.People}}, nil)
			for addr, jid := range tt.want {
				if r := ix.Resolve(addr); r.JID != jid {
					t.Errorf("%s → %q, want %q", addr, r.JID, jid)
				}
			}
		})
	}
}

// Shutdown cancels a sync: it ends at once and changes nothing.
func TestLDAPSyncCancelled(t *testing.T) {
	d := startDirectories(t, 600)
	dir, _ := d.open(t, filepath.Join(t.TempDir(), "state.db"))
	if _, err := dir.SyncFull(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err := dir.SyncFull(ctx, func(p Progress) {
		if p.Entries >= 100 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled sync: %v, want context.Canceled", err)
	}
	checkResolve(t, dir, []want{{query: "user000301@example.com", status: StatusResolved, jid: "user000301@chat.example.com"}})
}

// A renamed entry (new DN, same entryUUID) replaces its old self at the
// next incremental sync instead of leaving a stale twin that would turn
// its addresses into a conflict.
func TestLDAPRename(t *testing.T) {
	d := startDirectories(t, 0)
	dir, _ := d.open(t, filepath.Join(t.TempDir(), "state.db"))
	if _, err := dir.SyncFull(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	d.ol.Modify(t, `dn: uid=erin,ou=Users,dc=example,dc=net
changetype: modrdn
newrdn: uid=erin.black
deleteoldrdn: 1
`)
	res, err := dir.SyncIncremental(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res[1].Full || res[1].Changed != 1 || res[1].Removed != 0 {
		t.Errorf("ol result = %+v, want one change, nothing removed", res[1])
	}
	r := dir.Resolve("erin@example.com")
	if r.Status != StatusResolved || r.Person.DN != "uid=erin.black,ou=Users,dc=example,dc=net" || r.Conflict != nil {
		t.Errorf("after rename: %s", r)
	}
}

// A paged search is no snapshot: an entry read on the first page and
// changed while later pages are read must still be seen by the next
// incremental sync, though a later page's entry changed after it.
func TestLDAPChangeDuringFullSync(t *testing.T) {
	d := startDirectories(t, 0)
	// Page through the OpenLDAP source one entry at a time.
	for i := range d.cfg.LDAP {
		d.cfg.LDAP[i].PageSize = 1
	}
	dir, _ := d.open(t, filepath.Join(t.TempDir(), "state.db"))
	changed := false
	_, err := dir.SyncFull(context.Background(), func(p Progress) {
		if p.Source != "ol" || changed {
			return
		}
		changed = true
		// alice is read first; change her, then (a second later) kim,
		// who is read later.
		d.ol.Modify(t, "dn: uid=alice,ou=Users,dc=example,dc=net\nchangetype: modify\nreplace: mail\nmail: alice.new@example.com\n")
		time.Sleep(1100 * time.Millisecond)
		d.ol.Modify(t, "dn: uid=max,ou=Users,dc=example,dc=net\nchangetype: modify\nreplace: mail\nmail: max@example.com\n")
	})
	if err != nil || !changed {
		t.Fatalf("full sync: %v (changed during it: %v)", err, changed)
	}
	if _, err := dir.SyncIncremental(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkResolve(t, dir, []want{
		{query: "alice.new@example.com", status: StatusResolved, jid: "alice@chat.example.com", source: "ol"},
		{query: "max@example.com", status: StatusResolved, jid: "max@chat.example.com"},
	})
}

// On AD the mark is the root DSE's highestCommittedUSN read before the
// search, and the cursor belongs to the domain controller named by
// dsServiceName: a round-robin host name landing on another DC forces a
// full read.
func TestLDAPADHighWaterMark(t *testing.T) {
	const dc1 = "CN=NTDS Settings,CN=DC1,CN=Servers,CN=Site,CN=Sites,CN=Configuration,DC=example,DC=com"
	const dc2 = "CN=NTDS Settings,CN=DC2,CN=Servers,CN=Site,CN=Sites,CN=Configuration,DC=example,DC=com"
	slapd := testenv.StartSlapd(t, testenv.SlapdOptions{
		LDIF:    []string{readFile(t, "testdata/ad-seed.ldif")},
		RootDSE: "highestCommittedUSN: 12009\ndsServiceName: " + dc1,
	})
	t.Setenv("PRESENCEGW_TEST_PW", slapd.BindPW)
	d := &directories{ad: slapd}
	d.cfg = parseConfig(t, fmt.Sprintf(`
ldap:
  - name: ad
    url: %s
    bind_dn: %s
    bind_password_env: PRESENCEGW_TEST_PW
    base_dn: ou=Users,dc=example,dc=com
    user_filter: (objectClass=user)
    page_size: 1
    jid:
      template: "{{.sAMAccountName}}@chat.example.com"
`, slapd.URL, slapd.BindDN))
	dir, _ := d.open(t, filepath.Join(t.TempDir(), "state.db"))
	changed := false
	res, err := dir.SyncFull(context.Background(), func(p Progress) {
		if changed {
			return
		}
		changed = true
		// alice was read on the first page; zoe, read last, changes after her.
		slapd.Modify(t, `dn: cn=Alice Smith,ou=Users,dc=example,dc=com
changetype: modify
add: proxyAddresses
proxyAddresses: smtp:alice.mid@example.com
-
replace: uSNChanged
uSNChanged: 12010
`)
		slapd.Modify(t, "dn:: Y249Wm/DqyAoVGVzdCkgTypCcmllblw1QyxvdT1Vc2VycyxkYz1leGFtcGxlLGRjPWNvbQ==\nchangetype: modify\nreplace: uSNChanged\nuSNChanged: 12011\n")
	})
	if err != nil || !changed {
		t.Fatalf("full sync: %v", err)
	}
	if res[0].Stats.People != 7 {
		t.Fatalf("full sync read %d people, want 7", res[0].Stats.People)
	}
	slapd.SetRootDSE(t, "highestCommittedUSN: 12011\ndsServiceName: "+dc1)
	res, err = dir.SyncIncremental(context.Background())
	if err != nil || res[0].Full {
		t.Fatalf("incremental: %+v, %v", res, err)
	}
	checkResolve(t, dir, []want{{query: "alice.mid@example.com", status: StatusResolved, jid: "alice@chat.example.com"}})

	// Same URL, another DC behind it: its uSNs mean nothing here.
	slapd.SetRootDSE(t, "highestCommittedUSN: 5\ndsServiceName: "+dc2)
	res, err = dir.SyncIncremental(context.Background())
	if err != nil || !res[0].Full {
		t.Errorf("incremental against another DC: %+v, %v; want a full read", res, err)
	}
}

// The calendar routing attribute is read per person, kept in the store's
// snapshot, and offered per mailbox by the index.
func TestLDAPCalendarRoute(t *testing.T) {
	slapd := testenv.StartSlapd(t, testenv.SlapdOptions{LDIF: []string{readFile(t, "testdata/ad-seed.ldif")}})
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(slapd.BindPW), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := parseConfig(t, fmt.Sprintf(`
ldap:
  - name: ad
    url: %s
    bind_dn: %s
    bind_password_file: %s
    base_dn: ou=Users,dc=example,dc=com
    user_filter: (objectClass=user)
    attributes:
      calendar_route: userAccountControl
    jid:
      template: "{{.sAMAccountName}}@chat.example.com"
`, slapd.URL, slapd.BindDN, pw))
	d := &directories{cfg: cfg}
	storePath := filepath.Join(t.TempDir(), "state.db")
	dir, st := d.open(t, storePath)
	if _, err := dir.SyncFull(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	routes := dir.Index().Routes()
	if routes["alice@example.com"] != "512" || routes["d.brown@example.com"] != "66048" {
		t.Errorf("routes = %v, want alice 512, dave 66048", routes)
	}
	if p := dir.Resolve("alice@example.com").Person; p == nil || p.RouteValue() != "512" {
		t.Errorf("alice = %+v", p)
	}
	// People with the same value share one copy.
	if a, b := dir.Resolve("alice@example.com").Person, dir.Resolve("carol@example.com").Person; a == nil || b == nil || a.Route != b.Route {
		t.Error("the same route value is held twice")
	}
	if sz := unsafe.Sizeof(Person{}); sz > 192 {
		t.Errorf("a Person takes %d bytes, more than its 192-byte size class", sz)
	}
	for mb, r := range routes {
		if r == "" {
			t.Errorf("%s listed without a route", mb)
		}
	}
	// A restart answers from the snapshot with the same routes.
	st.Close()
	again, _ := d.open(t, storePath)
	if got := again.Index().Routes(); fmt.Sprint(got) != fmt.Sprint(routes) {
		t.Errorf("after a restart: %v, want %v", got, routes)
	}
	if a, b := again.Resolve("alice@example.com").Person, dir.Resolve("alice@example.com").Person; a == nil || b == nil || a.Route != b.Route {
		t.Error("a value read from the snapshot is not shared")
	}
}
