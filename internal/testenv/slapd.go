// Package testenv starts real servers as child processes for tests.
//
// StartSlapd runs a throwaway OpenLDAP slapd with an Active-Directory-like
// schema, so that the LDAP code is tested against a real directory server
// rather than a mock. The package talks to the server only through the
// ldap-utils binaries (ldapmodify, ldapsearch): the product package ldapmap is
// the only importer of github.com/go-ldap/ldap, so that its tests exercise the
// product's own client code and not a second copy in the harness.
//
// A missing slapd, slapadd or ldap-utils makes the test fail, never skip: a
// CI machine without the server must not report green. On Debian, install the
// packages slapd and ldap-utils (.ci/run does).
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

//go:embed testdata/adlike-schema.ldif testdata/config.ldif.in
var testdata embed.FS

const (
	defaultSuffix = "dc=example,dc=com"
	rootPW        = "admin-secret"
	svcPW         = "svc-secret"

	// startTimeout bounds how long one start attempt waits for slapd to
	// answer (see waitReady).
	startTimeout = 10 * time.Second
	// portAttempts is how many random ports StartSlapd tries when slapd exits
	// during start-up (most likely because another process took the port
	// between choosing and binding it).
	portAttempts = 5
	// restartWindow is how long Start keeps retrying the same port.
	restartWindow = 5 * time.Second
	// stopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	stopTimeout = 10 * time.Second
)

// suffixRE accepts the two-component dc=X,dc=Y suffixes StartSlapd can build
// base entries for (dcObject needs the first dc value).
var suffixRE = regexp.MustCompile(`^(?i:dc)=([A-Za-z0-9][A-Za-z0-9-]*),(?i:dc)=([A-Za-z0-9][A-Za-z0-9-]*)$`)

// SlapdOptions configures StartSlapd. The zero value gives a directory with
// only the base entries under dc=example,dc=com.
type SlapdOptions struct {
	// Suffix is the naming context, default "dc=example,dc=com". It must be
	// of the form dc=X,dc=Y. StartSlapd creates the base entries itself: the
	// suffix, ou=Users, ou=Groups, ou=Service and the service account
	// cn=svc-presence,ou=Service,<suffix> (password svc-secret), so LDIF must
	// not contain them.
	Suffix string
	// LDIF holds LDIF content records loaded offline with slapadd -q -n1
	// before slapd starts, after the base entries, in order. Offline loading
	// is much faster than ldapadd and leaves no window where a test could see
	// a half-seeded directory.
	LDIF []string
	// LDIFFiles are LDIF files loaded the same way, after LDIF. Use them for
	// big generated data sets (see GenerateUsersLDIF) to avoid holding the
	// text in memory.
	LDIFFiles []string
	// TLS makes slapd also serve TLS: StartTLS on URL and LDAPS on a second
	// port, LDAPSURL, with a server certificate for IP 127.0.0.1 and DNS
	// localhost issued by a throwaway CA (Slapd.CAFile). Clients must trust
	// CAFile, and must not trust WrongCAFile, an unrelated CA for negative
	// tests. The certificates are RSA 2048, generated once per test binary
	// and shared by all its TLS slapds; they are valid for a week. Client
	// certificates are not requested.
	TLS bool
	// RootDSE holds extra attributes for slapd's root DSE (the entry with
	// the empty DN, read with base "" and scope base), as LDIF attribute
	// lines without a dn: line, for example
	// "highestCommittedUSN: 30000\ndsServiceName: CN=NTDS Settings,...".
	// slapd reads them when it starts from the file that cn=config's
	// olcRootDSE names; SetRootDSE changes them. The AD-like schema defines
	// highestCommittedUSN (INTEGER) and dsServiceName (DN) for this. They
	// are user attributes, returned for "*" (and when no attributes are
	// requested) as on AD, to anyone, anonymous included. slapd does not
	// validate the values against the schema, and silently drops an
	// attribute the schema lacks; StartSlapd and SetRootDSE make that
	// fatal by checking that slapd shows every attribute.
	RootDSE string

	// editConfig, if set, rewrites the generated cn=config LDIF; tests use
	// it to compare timings without some indexes.
	editConfig func(string) string
}

// Slapd is a running throwaway slapd listening on 127.0.0.1. Its fields tell
// the code under test where and how to connect; Stop and Start let a test
// simulate the directory going away and coming back.
type Slapd struct {
	// URL is ldap://127.0.0.1:PORT. It does not change across Stop/Start.
	// With SlapdOptions.TLS it also accepts StartTLS.
	URL string
	// LDAPSURL is ldaps://127.0.0.1:PORT2, a second port where slapd speaks
	// TLS from the first byte, if SlapdOptions.TLS is set; otherwise it is
	// empty. It does not change across Stop/Start.
	LDAPSURL string
	// CAFile is the PEM file of the CA that issued slapd's certificate, for
	// a client's trusted roots (ca_file, LDAPTLS_CACERT), if
	// SlapdOptions.TLS is set; otherwise it is empty.
	CAFile string
	// WrongCAFile is the PEM file of another CA, which did not issue slapd's
	// certificate: a client trusting only it must refuse the server. It is
	// set only with SlapdOptions.TLS.
	WrongCAFile string
	// Suffix is the naming context (SlapdOptions.Suffix or the default).
	Suffix string
	// RootDN and RootPW (cn=admin,<suffix> / admin-secret) are the
	// unrestricted root credentials, used by Modify and Search.
	RootDN, RootPW string
	// BindDN and BindPW (cn=svc-presence,ou=Service,<suffix> / svc-secret)
	// are a read-only service account, as the gateway would use in
	// production. It is subject to the 500-entry size limit like a normal
	// user, except that size.prtotal=unlimited lets paged searches go past it.
	BindDN, BindPW string
	// Dir is the temporary directory holding slapd.d (config), data (the
	// mdb database) and slapd.log (slapd's stderr, kept across restarts).
	Dir string

	port      int
	marker    string // unique value of the suffix entry's description
	slapdPath string
	bins      map[string]string

	// loadTime and startTime are how long slapadd and the first start took,
	// for the benchmarks in the tests.
	loadTime, startTime time.Duration

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil when stopped
	done chan struct{} // closed when cmd has been waited for
}

// StartSlapd creates a temporary slapd configuration and database, loads the
// base entries and opts' LDIF with slapadd, starts slapd on a random
// 127.0.0.1 port (two with opts.TLS: ldap:// and ldaps://) and waits until it
// answers on the ldap:// one. slapd is stopped by t.Cleanup. Any failure,
// including a missing slapd binary, is fatal.
func StartSlapd(t testing.TB, opts SlapdOptions) *Slapd {
	t.Helper()
	suffix := opts.Suffix
	if suffix == "" {
		suffix = defaultSuffix
	}
	m := suffixRE.FindStringSubmatch(suffix)
	if m == nil {
		t.Fatalf("testenv: SlapdOptions.Suffix %q: want the form dc=X,dc=Y", suffix)
	}

	bins := make(map[string]string)
	for _, name := range []string{"slapd", "slapadd", "ldapsearch", "ldapmodify"} {
		bins[name] = lookPath(t, name)
	}
	moduleDir := findDir(t, "back_mdb.so", "/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap", "/usr/libexec/openldap", "/usr/local/libexec/openldap")
	schemaDir := findDir(t, "core.ldif", "/etc/ldap/schema", "/etc/openldap/schema", "/usr/local/etc/openldap/schema")

	s := &Slapd{
		Suffix:    suffix,
		RootDN:    "cn=admin," + suffix,
		RootPW:    rootPW,
		BindDN:    "cn=svc-presence,ou=Service," + suffix,
		BindPW:    svcPW,
		Dir:       t.TempDir(),
		slapdPath: bins["slapd"],
		marker:    "testenv slapd " + rand.Text(),
		bins:      bins,
	}
	for _, d := range []string{"slapd.d", "data"} {
		if err := os.Mkdir(filepath.Join(s.Dir, d), 0o700); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	schema, err := testdata.ReadFile("testdata/adlike-schema.ldif")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	tmpl, err := testdata.ReadFile("testdata/config.ldif.in")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	tlsAttrs := ""
	if opts.TLS {
		tlsAttrs = s.writeTLS(t)
	}
	config := strings.NewReplacer(
		"@TLS@\n", tlsAttrs,
		"@DIR@", s.Dir,
		"@MODULEDIR@", moduleDir,
		"@SCHEMADIR@", schemaDir,
		"@SUFFIX@", suffix,
		"@ROOTDN@", s.RootDN,
		"@ROOTPW@", s.RootPW,
		"@SVCDN@", s.BindDN,
	).Replace(string(tmpl))
	if opts.editConfig != nil {
		config = opts.editConfig(config)
	}
	s.writeFile(t, "adlike-schema.ldif", string(schema))
	s.writeFile(t, "config.ldif", config)
	s.writeFile(t, "base.ldif", baseLDIF(suffix, m[1], s.BindDN, s.marker))
	// Every slapadd reads cn=config, olcRootDSE's file included, before the
	// schema and, unlike slapd, fails on an attribute not yet defined
	// ("str2ad(highestCommittedUSN): attribute type undefined"). So slapadd
	// gets an empty root DSE; the real file is written after the loads.
	rootDSE, rootDSEAttrs := rootDSELDIF(t, "SlapdOptions.RootDSE", opts.RootDSE)
	s.writeFile(t, rootDSEFile, "dn:\n")

	loadStart := time.Now()
	s.slapadd(t, 0, "config.ldif", filepath.Join(s.Dir, "config.ldif"))
	s.slapadd(t, 1, "base entries", filepath.Join(s.Dir, "base.ldif"))
	for i, text := range opts.LDIF {
		name := fmt.Sprintf("seed-%d.ldif", i)
		s.writeFile(t, name, text)
		s.slapadd(t, 1, fmt.Sprintf("SlapdOptions.LDIF[%d]", i), filepath.Join(s.Dir, name))
	}
	for i, f := range opts.LDIFFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatalf("testenv: SlapdOptions.LDIFFiles[%d]: %v", i, err)
		}
		s.slapadd(t, 1, fmt.Sprintf("SlapdOptions.LDIFFiles[%d] (%s)", i, f), abs)
	}
	s.loadTime = time.Since(loadStart)
	s.writeFile(t, rootDSEFile, rootDSE)

	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("testenv: stopping slapd: %v", err)
		}
	})

	launchStart := time.Now()
	var failures []string
	for attempt := 1; attempt <= portAttempts; attempt++ {
		n := 1
		if opts.TLS {
			n = 2
		}
		ports, err := freePorts(n)
		if err != nil {
			t.Fatalf("testenv: choosing a port: %v", err)
		}
		s.setPorts(ports)
		err = s.launch(startTimeout)
		if err == nil {
			s.startTime = time.Since(launchStart)
			s.checkRootDSE(t, "SlapdOptions.RootDSE", rootDSEAttrs)
			return s
		}
		failures = append(failures, fmt.Sprintf("attempt %d on %s: %v", attempt, s.urls(), err))
		if !errors.Is(err, errExited) {
			break // a hang or timeout will not be fixed by another port
		}
	}
	t.Fatalf("testenv: slapd did not start:\n%s\n--- %s:\n%s",
		strings.Join(failures, "\n"), filepath.Join(s.Dir, "slapd.log"), s.log())
	return nil
}

// Stop terminates slapd (SIGTERM, then waits for it to exit; SIGKILL after
// 10s) so a test can simulate the directory going away. The data stays in
// Dir for Start. Stop is idempotent.
func (s *Slapd) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("testenv: stopping slapd: %v", err)
	}
}

// Start starts a stopped slapd again on the same port (both ports, with TLS)
// with the same data, to test recovery. If a port is briefly unavailable
// (another process took it, or the old socket lingers) it retries for about
// 5 seconds. Calling Start while slapd is running is a test bug and fatal.
func (s *Slapd) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		t.Fatalf("testenv: Start: slapd at %s is already running", s.URL)
	}
	deadline := time.Now().Add(restartWindow)
	var failures []string
	for attempt := 1; ; attempt++ {
		err := s.launch(startTimeout)
		if err == nil {
			return
		}
		failures = append(failures, fmt.Sprintf("attempt %d: %v", attempt, err))
		if !errors.Is(err, errExited) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("testenv: slapd did not restart on %s:\n%s\n--- %s:\n%s", s.urls(),
		strings.Join(failures, "\n"), filepath.Join(s.Dir, "slapd.log"), s.log())
}

// SetRootDSE replaces the extra root DSE attributes (see
// SlapdOptions.RootDSE; "" removes them) with attrs and restarts slapd (Stop,
// then Start on the same ports, with the same data) for slapd to read them,
// so a test can, say, move highestCommittedUSN forward. Clients see the
// restart: their connections are closed. If slapd is stopped, SetRootDSE
// only rewrites the file and the next Start uses it.
func (s *Slapd) SetRootDSE(t testing.TB, attrs string) {
	t.Helper()
	ldif, names := rootDSELDIF(t, "SetRootDSE", attrs)
	s.writeFile(t, rootDSEFile, ldif)
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		s.Stop(t)
		s.Start(t)
		s.checkRootDSE(t, "SetRootDSE", names)
	}
}

// Modify applies LDIF change records (changetype: add, modify, delete or
// modrdn) with ldapmodify bound as the root DN, so tests can change the
// directory while the code under test watches it. Records are applied in
// order and the first error is fatal, with ldapmodify's output.
func (s *Slapd) Modify(t testing.TB, ldif string) {
	t.Helper()
	s.ldapmodify(t, strings.NewReader(ldif), "")
}

// ModifyFile is Modify reading the change records from a file, for change
// sets too large to build in memory.
func (s *Slapd) ModifyFile(t testing.TB, path string) {
	t.Helper()
	s.ldapmodify(t, nil, path)
}

// Search runs ldapsearch -LLL (no line wrapping) bound as the root DN, which
// bypasses ACLs and size limits, and returns its LDIF output for debugging and
// assertions. An empty filter means (objectClass=*); attrs default to all user
// attributes. Any ldapsearch error, including noSuchObject for a missing base,
// is fatal: to assert that an entry is absent, search its parent.
func (s *Slapd) Search(t testing.TB, base, filter string, attrs ...string) string {
	t.Helper()
	if filter == "" {
		filter = "(objectClass=*)"
	}
	args := []string{"-x", "-LLL", "-o", "ldif-wrap=no", "-H", s.URL,
		"-D", s.RootDN, "-w", s.RootPW, "-b", base, filter}
	args = append(args, attrs...)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(s.bins["ldapsearch"], args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("testenv: ldapsearch -b %q %q: %v\n%s%s", base, filter, err, stderr.String(), stdout.String())
	}
	return stdout.String()
}

// GenerateUsersLDIF writes n Active-Directory-like users (objectClass user)
// under ou=Users,<suffix> as LDIF content records, for StartSlapd's LDIFFiles
// in benchmarks and paging tests. Users are numbered k = 1..n; with NNNNNN =
// k zero-padded to six digits, user k is cn=User NNNNNN,ou=Users,<suffix>
// with sAMAccountName userNNNNNN, mail userNNNNNN@example.com,
// proxyAddresses SMTP:userNNNNNN@example.com, smtp:u.NNNNNN@example.com,
// smtp:userNNNNNN@example.org and X500:/o=Example/cn=Recipients/cn=userNNNNNN,
// msRTCSIP-PrimaryUserAddress sip:userNNNNNN@example.com, userPrincipalName
// userNNNNNN@corp.example.com, a deterministic objectGUID, uSNChanged
// startUSN+k-1 and whenChanged 2024-01-01 08:00:00 UTC plus k-1 seconds.
// Names, titles and departments vary (some names are non-ASCII, written
// base64 as LDIF requires), giving realistic entry sizes: about 680 bytes of
// LDIF and 2 KB of database per user. Every 50th user (k%50 == 0) is disabled
// (userAccountControl 514); the others have 512.
func GenerateUsersLDIF(w io.Writer, suffix string, n int, startUSN int) error {
	if n < 0 {
		return fmt.Errorf("testenv: GenerateUsersLDIF: negative n %d", n)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	base := time.Date(2024, 1, 1, 8, 0, 0, 0, time.UTC)
	guid := make([]byte, 16)
	attr := func(name, value string) { writeAttr(bw, name, value) }
	for k := 1; k <= n; k++ {
		id := fmt.Sprintf("%06d", k)
		i := k - 1
		given := givenNames[i%len(givenNames)]
		sn := surnames[(i/len(givenNames))%len(surnames)]
		uac := 512
		if k%50 == 0 {
			uac = 514
		}
		// A deterministic objectGUID: "presencegw" marker + the user number.
		copy(guid, "presencegw\x00\x00")
		guid[12], guid[13], guid[14], guid[15] = byte(k>>24), byte(k>>16), byte(k>>8), byte(k)
		attr("dn", "cn=User "+id+",ou=Users,"+suffix)
		attr("objectClass", "user")
		attr("cn", "User "+id)
		attr("givenName", given)
		attr("sn", sn)
		attr("displayName", given+" "+sn)
		attr("title", titles[i%len(titles)])
		attr("department", departments[(i/7)%len(departments)])
		attr("telephoneNumber", "+1 555 "+id)
		attr("mail", "user"+id+"@example.com")
		attr("proxyAddresses", "SMTP:user"+id+"@example.com")
		attr("proxyAddresses", "smtp:u."+id+"@example.com")
		attr("proxyAddresses", "smtp:user"+id+"@example.org")
		attr("proxyAddresses", "X500:/o=Example/cn=Recipients/cn=user"+id)
		attr("msRTCSIP-PrimaryUserAddress", "sip:user"+id+"@example.com")
		attr("sAMAccountName", "user"+id)
		attr("userPrincipalName", "user"+id+"@corp.example.com")
		attr("userAccountControl", strconv.Itoa(uac))
		attr("objectGUID", string(guid))
		attr("uSNChanged", strconv.Itoa(startUSN+i))
		attr("whenChanged", base.Add(time.Duration(i)*time.Second).Format("20060102150405.0Z"))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// writeAttr writes one LDIF attribute line, base64-encoding values that are
// not an RFC 2849 SAFE-STRING (non-ASCII names, binary objectGUIDs).
func writeAttr(w *bufio.Writer, name, value string) {
	w.WriteString(name)
	if safeString(value) {
		w.WriteString(": ")
		w.WriteString(value)
	} else {
		w.WriteString(":: ")
		w.WriteString(base64.StdEncoding.EncodeToString([]byte(value)))
	}
	w.WriteByte('\n')
}

func safeString(v string) bool {
	if v == "" {
		return true
	}
	if v[0] == ' ' || v[0] == ':' || v[0] == '<' || v[len(v)-1] == ' ' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == 0 || c == '\n' || c == '\r' || c >= 0x80 {
			return false
		}
	}
	return true
}

var (
	givenNames = []string{"Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi",
		"Ivan", "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent",
		"Victor", "Walter", "Zoe", "Amélie", "Björn", "Chloé", "Dmitri", "Øyvind"}
	surnames = []string{"Smith", "Jones", "White", "Brown", "Miller", "Garcia", "Nguyen",
		"Müller", "O'Brien", "Kowalski", "Rossi", "Dubois", "Tanaka", "Svensson", "Novak",
		"Fernández", "Andersen", "Schmidt", "Kim", "Okafor", "Martin", "Silva", "Cohen"}
	titles = []string{"Software Engineer", "Senior Software Engineer", "Account Manager",
		"Sales Representative", "HR Business Partner", "Financial Analyst",
		"Head of Customer Success", "Support Engineer", "Product Manager", "Office Manager"}
	departments = []string{"Engineering", "Sales", "Human Resources", "Finance",
		"Customer Success", "Support", "Product", "Facilities", "Legal", "Marketing"}
)

// errExited marks a start attempt where slapd exited by itself, which is
// worth retrying (typically the port was taken).
var errExited = errors.New("slapd exited")

// lookPath finds a server or client binary. slapd and slapadd live in
// /usr/sbin, which is often not in a non-root PATH, hence the fallbacks.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("testenv: %s not found in PATH, /usr/sbin or /usr/bin: the LDAP tests need a real OpenLDAP server; "+
		"install the Debian packages slapd and ldap-utils (see .ci/run)", name)
	return ""
}

// findDir returns the first of dirs that contains file.
func findDir(t testing.TB, file string, dirs ...string) string {
	t.Helper()
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, file)); err == nil {
			return d
		}
	}
	t.Fatalf("testenv: %s not found in any of %v: is OpenLDAP (Debian packages slapd, ldap-utils) installed?", file, dirs)
	return ""
}

// baseLDIF is the skeleton every test directory starts with.
// The suffix entry's description carries marker, see waitReady.
func baseLDIF(suffix, dc, svcDN, marker string) string {
	return fmt.Sprintf(`dn: %[1]s
objectClass: dcObject
objectClass: organization
dc: %[2]s
o: %[2]s
description: %[5]s

dn: ou=Users,%[1]s
objectClass: organizationalUnit
ou: Users

dn: ou=Groups,%[1]s
objectClass: organizationalUnit
ou: Groups

dn: ou=Service,%[1]s
objectClass: organizationalUnit
ou: Service

dn: %[3]s
objectClass: person
cn: svc-presence
sn: service
description: read-only service account of the presence gateway
userPassword: %[4]s
`, suffix, dc, svcDN, svcPW, marker)
}

func (s *Slapd) writeFile(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.Dir, name), []byte(content), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// rootDSEFile is the LDIF file in Dir that olcRootDSE names (see
// config.ldif.in).
const rootDSEFile = "rootdse.ldif"

// attrLineRE matches the start of an LDIF attribute line: a description
// (name and options) and ":", "::" (base64) or ":<" (URL).
var attrLineRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*(;[A-Za-z0-9-]+)*:[:<]?( |$)`)

// rootDSELDIF returns the content of rootDSEFile, the entry with the empty
// DN holding attrs (SlapdOptions.RootDSE syntax), and the attribute
// descriptions in it. A malformed line is fatal here: slapd would exit at
// start-up, leaving only its log to explain why.
func rootDSELDIF(t testing.TB, what, attrs string) (ldif string, names []string) {
	t.Helper()
	attrs = strings.Trim(strings.ReplaceAll(attrs, "\r\n", "\n"), "\n")
	if attrs == "" {
		return "dn:\n", nil
	}
	for i, line := range strings.Split(attrs, "\n") {
		if i > 0 && strings.HasPrefix(line, " ") { // a continuation
			continue
		}
		name, _, _ := strings.Cut(line, ":")
		if !attrLineRE.MatchString(line) || strings.EqualFold(name, "dn") || strings.EqualFold(name, "changetype") {
			t.Fatalf("testenv: %s: line %d %q: want LDIF attribute lines (name: value) of one entry, without dn: or blank lines",
				what, i+1, line)
		}
		if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, name) }) {
			names = append(names, name)
		}
	}
	return "dn:\n" + attrs + "\n", names
}

// checkRootDSE fails the test unless the running slapd's root DSE shows
// every attribute in names: slapd silently drops root DSE attributes that
// the schema lacks.
func (s *Slapd) checkRootDSE(t testing.TB, what string, names []string) {
	t.Helper()
	if len(names) == 0 {
		return
	}
	args := append([]string{"-x", "-LLL", "-o", "ldif-wrap=no", "-H", s.URL, "-D", s.RootDN, "-w", s.RootPW,
		"-s", "base", "-b", "", "(objectClass=*)"}, names...)
	out, err := exec.Command(s.bins["ldapsearch"], args...).CombinedOutput()
	if err != nil {
		t.Fatalf("testenv: %s: reading the root DSE: %v\n%s", what, err, out)
	}
	shown := make(map[string]bool)
	for line := range strings.Lines(string(out)) {
		if name, _, ok := strings.Cut(line, ":"); ok {
			shown[strings.ToLower(name)] = true
		}
	}
	for _, n := range names {
		if !shown[strings.ToLower(n)] {
			t.Fatalf("testenv: %s: slapd does not show %s in the root DSE: is it in the schema (testdata/adlike-schema.ldif)?\n%s",
				what, n, out)
		}
	}
}

// slapadd loads an LDIF file into database n (0 = cn=config, 1 = mdb) while
// slapd is not running.
func (s *Slapd) slapadd(t testing.TB, n int, what, path string) {
	t.Helper()
	out, err := exec.Command(s.bins["slapadd"], "-q", "-n", strconv.Itoa(n),
		"-F", filepath.Join(s.Dir, "slapd.d"), "-l", path).CombinedOutput()
	if err != nil {
		hint := ""
		if n == 1 && bytes.Contains(out, []byte("already exists")) {
			hint = "\n(StartSlapd creates the suffix entry, ou=Users, ou=Groups, ou=Service and the service account itself: leave them out of the LDIF)"
		}
		t.Fatalf("testenv: slapadd of %s failed: %v\n%s%s", what, err, out, hint)
	}
}

func (s *Slapd) ldapmodify(t testing.TB, stdin io.Reader, path string) {
	t.Helper()
	args := []string{"-x", "-H", s.URL, "-D", s.RootDN, "-w", s.RootPW}
	if path != "" {
		args = append(args, "-f", path)
	}
	cmd := exec.Command(s.bins["ldapmodify"], args...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		what := "LDIF"
		if path != "" {
			what = path
		}
		t.Fatalf("testenv: ldapmodify of %s failed: %v\n%s", what, err, out)
	}
}

// writeTLS writes the certificate material into s.Dir, sets CAFile and
// WrongCAFile, and returns the cn=config attribute lines that point slapd at
// it.
func (s *Slapd) writeTLS(t testing.TB) string {
	t.Helper()
	m, err := testTLS()
	if err != nil {
		t.Fatalf("testenv: generating TLS certificates: %v", err)
	}
	// slapd runs without -u, as the user running the test, who owns these
	// files: 0600 lets it read the key and keeps others out. (GnuTLS, unlike
	// ssh, does not insist on any particular mode.)
	for _, f := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{"ca.pem", m.caPEM, 0o644},
		{"wrong-ca.pem", m.wrongCAPEM, 0o644},
		{"server.pem", m.certPEM, 0o644},
		{"server.key", m.keyPEM, 0o600},
	} {
		if err := os.WriteFile(filepath.Join(s.Dir, f.name), f.data, f.perm); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	s.CAFile = filepath.Join(s.Dir, "ca.pem")
	s.WrongCAFile = filepath.Join(s.Dir, "wrong-ca.pem")
	return "olcTLSCACertificateFile: " + s.CAFile + "\n" +
		"olcTLSCertificateFile: " + filepath.Join(s.Dir, "server.pem") + "\n" +
		"olcTLSCertificateKeyFile: " + filepath.Join(s.Dir, "server.key") + "\n"
}

// setPorts sets the ldap:// port and URL from ports[0] and, if there is a
// second port (TLS), the ldaps:// URL from ports[1].
func (s *Slapd) setPorts(ports []int) {
	s.port = ports[0]
	s.URL = "ldap://127.0.0.1:" + strconv.Itoa(ports[0])
	if len(ports) > 1 {
		s.LDAPSURL = "ldaps://127.0.0.1:" + strconv.Itoa(ports[1])
	}
}

// urls is the list of URLs slapd listens on, for slapd -h and messages.
func (s *Slapd) urls() string {
	u := s.URL + "/"
	if s.LDAPSURL != "" {
		u += " " + s.LDAPSURL + "/"
	}
	return u
}

// freePorts asks the kernel for n distinct free ports, holding them all
// open until the last is chosen. Another process may take one before slapd
// binds it; StartSlapd retries on other ports in that case.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// launch starts slapd on s.urls() and waits until it answers a rootDSE search.
// If slapd exits meanwhile the error wraps errExited; on any error slapd is
// not running afterwards.
func (s *Slapd) launch(timeout time.Duration) error {
	logPath := filepath.Join(s.Dir, "slapd.log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== testenv: %s starting slapd on %s\n", time.Now().Format(time.RFC3339Nano), s.urls())
	// Any -d keeps slapd in the foreground (it does not fork), so the
	// child's PID is slapd's own and Wait reaps it. "-d none" rather than
	// "-d 0": with 0, slapd prints nothing at all, not even "bind(6) failed
	// errno=98 (Address already in use)"; with none it prints only such
	// unconditional messages, not per-operation logs.
	cmd := exec.Command(s.slapdPath, "-d", "none", "-h", s.urls(), "-F", filepath.Join(s.Dir, "slapd.d"))
	cmd.Stdout, cmd.Stderr = logf, logf
	err = cmd.Start()
	logf.Close() // the child has its own copy
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status is read from cmd.ProcessState after done
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	if err := s.waitReady(done, timeout); err != nil {
		_ = s.stop()
		return err
	}
	return nil
}

// waitReady polls until slapd accepts TCP connections and answers a search
// for the suffix entry carrying s.marker, or exits, or timeout passes.
// Checking the marker, rather than just any rootDSE answer, makes sure the
// server answering is this slapd and not another process (say, another
// test's slapd) that took the port: in that case this slapd exits with
// "Address already in use" and the attempt fails with errExited.
func (s *Slapd) waitReady(done <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	want := []byte("\ndescription: " + s.marker + "\n")
	var last string
	for {
		select {
		case <-done:
			return fmt.Errorf("%w during start-up (%v)", errExited, s.exitState())
		case <-ctx.Done():
			return fmt.Errorf("no answer after %v (last: %s)", timeout, last)
		case <-time.After(10 * time.Millisecond):
		}
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err != nil {
			last = err.Error()
			continue
		}
		c.Close()
		// Abandon the search as soon as slapd exits: whatever holds the
		// port may accept connections and never answer.
		sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
		searched := make(chan struct{})
		go func() {
			select {
			case <-done:
				scancel()
			case <-searched:
			}
		}()
		out, err := exec.CommandContext(sctx, s.bins["ldapsearch"], "-x", "-LLL", "-o", "ldif-wrap=no",
			"-H", s.URL, "-D", s.RootDN, "-w", s.RootPW, "-s", "base", "-b", s.Suffix, "description").CombinedOutput()
		close(searched)
		scancel()
		if err == nil && bytes.Contains(out, want) {
			return nil
		}
		last = fmt.Sprintf("ldapsearch: %v: %s", err, bytes.TrimSpace(out))
	}
}

func (s *Slapd) exitState() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.ProcessState == nil {
		return "unknown status"
	}
	return s.cmd.ProcessState.String()
}

// stop sends SIGTERM and waits for slapd to exit, escalating to SIGKILL after
// stopTimeout. It is a no-op when slapd is not running.
func (s *Slapd) stop() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	var err error
	select {
	case <-done:
	default:
		// An error here means it has exited meanwhile; done will be closed.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-done
			err = fmt.Errorf("slapd (pid %d) ignored SIGTERM for %v and was killed", cmd.Process.Pid, stopTimeout)
		}
	}
	s.mu.Lock()
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	return err
}

// log returns slapd.log for failure messages.
func (s *Slapd) log() string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "slapd.log"))
	if err != nil {
		return err.Error()
	}
	return string(b)
}
