package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// lines joins YAML lines, so a test can count them.
func lines(l ...string) []byte { return []byte(strings.Join(l, "\n") + "\n") }

// writeFile writes content to dir/name (making parent directories) and
// returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// exported returns c without its unexported bookkeeping, for comparisons.
func exported(c *Config) Config {
	v := *c
	v.path, v.lines = "", nil
	return v
}

func TestLoadValidFull(t *testing.T) {
	dir := t.TempDir()
	pwFile := writeFile(t, dir, "secrets/ldap.pw", "s3cret\n")
	peopleFile := writeFile(t, dir, "people/extra.csv", "mail,jid\n")
	caFile := writeFile(t, dir, "ca.pem", "not checked here\n")
	cfgPath := writeFile(t, dir, "presencegw.yaml", string(lines(
		"# the gateway",
		"store: state/presencegw.db",
		"log:",
		"  format: json",
		"  level: debug",
		"directory:",
		"  incremental_interval: 30s",
		"  full_interval: 2h",
		"ldap:",
		"  - name: corp",
		"    priority: 10",
		"    domains: [example.com, example.org]",
		"    url:",
		"      - ldaps://dc1.example.com",
		"      - ldaps://dc2.example.com:636",
		"    ca_file: ca.pem",
		"    bind_dn: CN=svc-presence,OU=Service,DC=example,DC=com",
		"    bind_password_file: secrets/ldap.pw",
		"    base_dn: DC=example,DC=com",
		"    timeout: 5s",
		"    jid:",
		"      attribute: msRTCSIP-PrimaryUserAddress",
		"  - name: lab",
		"    flavor: openldap",
		"    url: ldap://ldap.lab.example.net:389",
		"    start_tls: true",
		"    base_dn: dc=lab,dc=example,dc=net",
		"    page_size: 200",
		"    attributes:",
		"      mail: [mail, mailAlternateAddress]",
		"    jid:",
		"      template: \"{{.uid}}@chat.example.net\"",
		"files:",
		"  - name: extra",
		"    priority: -1",
		"    path: people/extra.csv",
	)))

	c, err := Load(cfgPath)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Path() != cfgPath {
		t.Errorf("Path() = %q, want %q", c.Path(), cfgPath)
	}
	want := Config{
		Listen: "127.0.0.1:8080",
		Store:  filepath.Join(dir, "state/presencegw.db"),
		Log:    Log{Format: "json", Level: "debug"},
		Directory: Directory{
			IncrementalInterval: Duration(30 * time.Second),
			FullInterval:        Duration(2 * time.Hour),
		},
		LDAP: []LDAP{{
			Name:             "corp",
			Priority:         10,
			Domains:          []string{"example.com", "example.org"},
			URL:              URLs{"ldaps://dc1.example.com", "ldaps://dc2.example.com:636"},
			CAFile:           caFile,
			BindDN:           "CN=svc-presence,OU=Service,DC=example,DC=com",
			BindPasswordFile: pwFile,
			BaseDN:           "DC=example,DC=com",
			Flavor:           FlavorAD,
			UserFilter:       "(&(objectClass=user)(objectCategory=person))",
			DisabledFilter:   "(userAccountControl:1.2.840.113556.1.4.803:=2)",
			PageSize:         500,
			Timeout:          Duration(5 * time.Second),
			ChangeAttribute:  "uSNChanged",
			Attributes: LDAPAttributes{
				Mail:           []string{"mail"},
				ProxyAddresses: "proxyAddresses",
				SIP:            "msRTCSIP-PrimaryUserAddress",
				DisplayName:    "displayName",
				Title:          "title",
				Department:     "department",
				ID:             "objectGUID",
			},
			JID: JIDRule{Attribute: "msRTCSIP-PrimaryUserAddress"},
		}, {
			Name:            "lab",
			URL:             URLs{"ldap://ldap.lab.example.net:389"},
			StartTLS:        true,
			BaseDN:          "dc=lab,dc=example,dc=net",
			Flavor:          FlavorOpenLDAP,
			UserFilter:      "(objectClass=inetOrgPerson)",
			PageSize:        200,
			Timeout:         Duration(10 * time.Second),
			ChangeAttribute: "modifyTimestamp",
			Attributes: LDAPAttributes{
				Mail:        []string{"mail", "mailAlternateAddress"},
				DisplayName: "displayName",
				Title:       "title",
				Department:  "departmentNumber",
				ID:          "entryUUID",
			},
			JID: JIDRule{Template: "{{.uid}}@chat.example.net"},
		}},
		Files: []File{{Name: "extra", Priority: -1, Path: peopleFile}},
		Calendar: Calendar{PollInterval: Duration(5 * time.Minute), AutoReplyInterval: Duration(15 * time.Minute),
			LookAhead: Duration(8 * time.Hour), MailboxRetry: Duration(30 * time.Minute)},
		Policy: Policy{Automatic: []string{"meetings", "oof"}, Tentative: "busy", AllDay: "ignore"},
		Web: Web{AnonymousVisibility: "state", MaxBatch: 500, RatePerSecond: 50, Burst: 100,
			Openfire: Openfire{Mode: "subscribed", UnavailableText: "Unavailable"}},
	}
	if got := exported(c); !reflect.DeepEqual(got, want) {
		t.Errorf("Load gave\n%+v\nwant\n%+v", got, want)
	}
	if got := c.Directory.FullInterval.D(); got != 2*time.Hour {
		t.Errorf("FullInterval.D() = %v, want 2h", got)
	}
	// The password is read through Secret from the resolved path.
	if pw, err := Secret(c.LDAP[0].BindPasswordFile, c.LDAP[0].BindPasswordEnv); err != nil || pw != "s3cret" {
		t.Errorf("Secret(bind_password_file) = %q, %v; want \"s3cret\", nil", pw, err)
	}
}

func TestParseFlavorDefaults(t *testing.T) {
	tests := []struct {
		flavor                                string
		userFilter, disabledFilter, changeAtt string
		department, proxy, sip                string
	}{
		{"", "(&(objectClass=user)(objectCategory=person))", "(userAccountControl:1.2.840.113556.1.4.803:=2)", "uSNChanged", "department", "proxyAddresses", "msRTCSIP-PrimaryUserAddress"},
		{"ad", "(&(objectClass=user)(objectCategory=person))", "(userAccountControl:1.2.840.113556.1.4.803:=2)", "uSNChanged", "department", "proxyAddresses", "msRTCSIP-PrimaryUserAddress"},
		{"openldap", "(objectClass=inetOrgPerson)", "", "modifyTimestamp", "departmentNumber", "", ""},
		{"freeipa", "(objectClass=person)", "(nsAccountLock=TRUE)", "modifyTimestamp", "ou", "", ""},
	}
	for _, tt := range tests {
		t.Run("flavor="+tt.flavor, func(t *testing.T) {
			src := []string{
				"ldap:",
				"  - name: d",
				"    url: ldap://dir.example.com",
				"    base_dn: dc=example,dc=com",
				"    jid: {attribute: jabberID}",
			}
			if tt.flavor != "" {
				src = append(src, "    flavor: "+tt.flavor)
			}
			c, err := Parse("/etc/presencegw/config.yaml", lines(src...))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			l := c.LDAP[0]
			wantFlavor := tt.flavor
			if wantFlavor == "" {
				wantFlavor = FlavorAD
			}
			got := []string{l.Flavor, l.UserFilter, l.DisabledFilter, l.ChangeAttribute, l.Attributes.Department, l.Attributes.ProxyAddresses, l.Attributes.SIP}
			want := []string{wantFlavor, tt.userFilter, tt.disabledFilter, tt.changeAtt, tt.department, tt.proxy, tt.sip}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("flavor/filters/attributes = %q, want %q", got, want)
			}
			if l.PageSize != 500 || l.Timeout.D() != 10*time.Second {
				t.Errorf("page_size %d, timeout %v; want 500, 10s", l.PageSize, l.Timeout.D())
			}
			if !reflect.DeepEqual(l.Attributes.Mail, []string{"mail"}) || l.Attributes.DisplayName != "displayName" || l.Attributes.Title != "title" {
				t.Errorf("attributes = %+v, want mail/displayName/title defaults", l.Attributes)
			}
		})
	}
}

func TestParseKeepsExplicitSettings(t *testing.T) {
	c, err := Parse("/srv/gw/config.yaml", lines(
		"listen: \":9000\"",
		"store: /var/lib/presencegw/state.db",
		"ldap:",
		"  - name: d",
		"    url: ldap://dir.example.com",
		"    base_dn: dc=example,dc=com",
		"    user_filter: (objectClass=employee)",
		"    change_attribute: whenChanged",
		"    attributes:",
		"      mail: []",
		"      proxy_addresses: \"\"",
		"    jid: {attribute: jabberID}",
	))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	l := c.LDAP[0]
	checks := []struct{ name, got, want string }{
		{"listen", c.Listen, ":9000"},
		{"store (absolute, not resolved)", c.Store, "/var/lib/presencegw/state.db"},
		{"user_filter", l.UserFilter, "(objectClass=employee)"},
		{"change_attribute", l.ChangeAttribute, "whenChanged"},
		{"disabled_filter (default)", l.DisabledFilter, "(userAccountControl:1.2.840.113556.1.4.803:=2)"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if l.Attributes.Mail == nil || len(l.Attributes.Mail) != 0 {
		t.Errorf("attributes.mail = %#v, want an empty (not defaulted) list", l.Attributes.Mail)
	}
	// An empty string cannot be told from "unset", so the AD default comes back.
	if l.Attributes.ProxyAddresses != "proxyAddresses" {
		t.Errorf("attributes.proxy_addresses = %q", l.Attributes.ProxyAddresses)
	}
}

func TestParseBad(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "ldap.pw", "pw\n")
	writeFile(t, dir, "people.csv", "mail,jid\n")
	const unset = "PRESENCEGW_TEST_SURELY_UNSET_VARIABLE"
	t.Setenv(unset, "")
	os.Unsetenv(unset)
	cfg := filepath.Join(dir, "bad.yaml")

	// ldap returns a valid LDAP source starting on line 2 (after
	// "ldap:" on line 1), with extra lines inserted after line 4.
	ldap := func(extra ...string) []string {
		l := []string{
			"ldap:",
			"  - name: corp",
			"    url: ldaps://dc.example.com",
			"    base_dn: dc=example,dc=com",
		}
		l = append(l, extra...)
		return append(l, "    jid: {attribute: jabberID}")
	}
	tests := []struct {
		name string
		src  []string
		want []string // "F" stands for the config file, "D" for its directory
	}{
		{
			name: "url scheme",
			src: []string{
				"ldap:",
				"  - name: corp",
				"    url: http://dc.example.com",
				"    base_dn: dc=example,dc=com",
				"    jid: {attribute: jabberID}",
			},
			want: []string{`F:3: ldap[0].url: scheme must be ldap or ldaps, not "http"`},
		},
		{
			name: "url list item",
			src: []string{
				"ldap:",
				"  - name: corp",
				"    url:",
				"      - ldap://dc1.example.com",
				"      - ftp://dc2.example.com",
				"      - ldaps://",
				"      - ldap://dc3.example.com:70000",
				"    base_dn: dc=example,dc=com",
				"    jid: {attribute: jabberID}",
			},
			want: []string{
				`F:5: ldap[0].url[1]: scheme must be ldap or ldaps, not "ftp"`,
				`F:6: ldap[0].url[2]: "ldaps://" has no host`,
				`F:7: ldap[0].url[3]: port "70000" is out of range`,
			},
		},
		{
			name: "url unparsable",
			src: []string{
				"ldap:",
				"  - name: corp",
				"    url: ldap://dc.example.com:x",
				"    base_dn: dc=example,dc=com",
				"    jid: {attribute: jabberID}",
			},
			want: []string{`F:3: ldap[0].url: parse "ldap://dc.example.com:x": invalid port ":x" after host`},
		},
		{
			name: "url missing",
			src: []string{
				"ldap:",
				"  - name: corp",
				"    base_dn: dc=example,dc=com",
				"    jid: {attribute: jabberID}",
			},
			want: []string{`F:2: ldap[0].url: is required (ldap://host or ldaps://host, or a list for failover)`},
		},
		{
			name: "unknown field",
			src:  ldap("    foo: bar"),
			want: []string{`F:5: field foo not found in type config.LDAP`},
		},
		{
			name: "unknown top-level field",
			src:  []string{"listen: 127.0.0.1:80", "ldpa: []"},
			want: []string{`F:2: field ldpa not found in type config.Config`},
		},
		{
			name: "bad duration",
			src:  ldap("    timeout: 5"),
			want: []string{`F:5: "5" is not a duration like 90s, 5m or 6h`},
		},
		{
			// The bad value must not stop decoding: the LDAP source after
			// it is still read and checked.
			name: "bad duration before other problems",
			src: []string{
				"directory:",
				"  incremental_interval: soon",
				"ldap:",
				"  - name: corp",
				"    url: http://dc.example.com",
				"    base_dn: dc=example,dc=com",
				"    jid: {attribute: jabberID}",
			},
			want: []string{
				`F:2: "soon" is not a duration like 90s, 5m or 6h`,
				`F:5: ldap[0].url: scheme must be ldap or ldaps, not "http"`,
			},
		},
		{
			name: "wrong type",
			src:  ldap("    page_size: many"),
			want: []string{"F:5: cannot unmarshal !!str `many` into int"},
		},
		{
			name: "interval too short",
			src:  []string{"directory:", "  incremental_interval: 500ms", "  full_interval: 1s"},
			want: []string{`F:2: directory.incremental_interval: must be at least 1s`},
		},
		{
			name: "full interval shorter than incremental",
			src:  []string{"directory:", "  incremental_interval: 10m", "  full_interval: 5m"},
			want: []string{`F:3: directory.full_interval: must not be shorter than incremental_interval`},
		},
		{
			name: "missing name",
			src: []string{
				"ldap:",
				"  - url: ldap://dc.example.com",
				"    base_dn: dc=example,dc=com",
				"    jid: {attribute: jabberID}",
			},
			want: []string{`F:2: ldap[0].name: is required`},
		},
		{
			name: "bad name",
			src: []string{
				"files:",
				"  - name: my people",
				"    path: people.csv",
			},
			want: []string{`F:2: files[0].name: "my people": use letters, digits, '-', '_' and '.'`},
		},
		{
			name: "duplicate names",
			src: append(ldap(),
				"  - name: corp",
				"    url: ldap://dc2.example.com",
				"    base_dn: dc=example,dc=com",
				"    jid: {attribute: jabberID}",
				"files:",
				"  - name: corp",
				"    path: people.csv",
			),
			want: []string{
				`F:6: ldap[1].name: "corp" is already used by ldap[0]`,
				`F:11: files[0].name: "corp" is already used by ldap[1]`,
			},
		},
		{
			name: "bad domains",
			src:  ldap(`    domains: [example.com, "@example.com", .example.com, "example.com.", "a b"]`),
			want: []string{
				`F:5: ldap[0].domains[1]: "@example.com" is not a mail domain`,
				`F:5: ldap[0].domains[2]: ".example.com" is not a mail domain`,
				`F:5: ldap[0].domains[3]: "example.com." is not a mail domain`,
				`F:5: ldap[0].domains[4]: "a b" is not a mail domain`,
			},
		},
		{
			name: "plain-text bind to a remote host",
			src: []string{
				"ldap:",
				"  - name: corp",
				"    url: [ldap://127.0.0.1:389, ldap://dc.example.com, ldap://dc2.example.com]",
				"    start_tls: false",
				"    bind_dn: cn=svc",
				"    bind_password_file: ldap.pw",
				"    base_dn: dc=example,dc=com",
				"    jid: {attribute: jabberID}",
			},
			want: []string{
				`F:3: ldap[0].url[1]: binding over plain ldap:// sends the password in clear text: use ldaps://, start_tls: true, or allow_insecure_bind: true`,
				`F:3: ldap[0].url[2]: binding over plain ldap:// sends the password in clear text: use ldaps://, start_tls: true, or allow_insecure_bind: true`,
			},
		},
		{
			name: "credentials or base DN in the url",
			src: []string{
				"ldap:",
				"  - name: corp",
				"    url: [ldaps://svc:secret@dc.example.com, \"ldaps://dc2.example.com/dc=example,dc=com\"]",
				"    base_dn: dc=example,dc=com",
				"    jid: {attribute: jabberID}",
			},
			want: []string{
				`F:3: ldap[0].url[0]: must not hold credentials: use bind_dn and bind_password_file`,
				`F:3: ldap[0].url[1]: "ldaps://dc2.example.com/dc=example,dc=com": put the base DN in base_dn, not in the URL`,
			},
		},
		{
			name: "attribute names",
			src: ldap("    change_attribute: \"uSNChanged)(x=*\"", "    attributes:",
				"      mail: [mail, \"mail=*\"]", "      sip: 1.2.840.113556.1.4.8;binary", "      title: \"ti tle\""),
			want: []string{
				`F:5: ldap[0].change_attribute: "uSNChanged)(x=*" is not an LDAP attribute name`,
				`F:7: ldap[0].attributes.mail[1]: "mail=*" is not an LDAP attribute name`,
				`F:9: ldap[0].attributes.title: "ti tle" is not an LDAP attribute name`,
			},
		},
		{
			name: "bind_dn without password",
			src:  ldap("    bind_dn: cn=svc,dc=example,dc=com"),
			want: []string{`F:5: ldap[0].bind_dn: needs bind_password_file or bind_password_env`},
		},
		{
			name: "bind password file and env",
			src:  ldap("    bind_dn: cn=svc", "    bind_password_file: ldap.pw", "    bind_password_env: HOME"),
			want: []string{`F:6: ldap[0].bind_password_file: set bind_password_file or bind_password_env, not both`},
		},
		{
			name: "bind password file missing",
			src:  ldap("    bind_dn: cn=svc", "    bind_password_file: missing.pw"),
			want: []string{`F:6: ldap[0].bind_password_file: stat D/missing.pw: no such file or directory`},
		},
		{
			name: "bind_password_env unset",
			src:  ldap("    bind_dn: cn=svc", "    bind_password_env: "+unset),
			want: []string{`F:6: ldap[0].bind_password_env: environment variable ` + unset + ` is not set`},
		},
		{
			name: "ca_file missing",
			src:  ldap("    ca_file: /nonexistent/ca.pem"),
			want: []string{`F:5: ldap[0].ca_file: stat /nonexistent/ca.pem: no such file or directory`},
		},
		{
			name: "jid attribute and template",
			src: []string{
				"ldap:",
				"  - name: corp",
				"    url: ldap://dc.example.com",
				"    base_dn: dc=example,dc=com",
				"    jid:",
				"      attribute: jabberID",
				"      template: \"{{.uid}}@chat.example.com\"",
			},
			want: []string{`F:5: ldap[0].jid: set attribute or template, not both`},
		},
		{
			name: "jid missing",
			src: []string{
				"ldap:",
				"  - name: corp",
				"    url: ldap://dc.example.com",
				"    base_dn: dc=example,dc=com",
			},
			want: []string{`F:2: ldap[0].jid: set attribute (e.g. jabberID) or template (e.g. "{{.sAMAccountName}}@chat.example.com")`},
		},
		{
			name: "start_tls with ldaps",
			src: []string{
				"ldap:",
				"  - name: corp",
				"    url: ldaps://dc.example.com",
				"    start_tls: true",
				"    base_dn: dc=example,dc=com",
				"    jid: {attribute: jabberID}",
			},
			want: []string{`F:3: ldap[0].url: start_tls is for ldap:// URLs; ldaps:// is already TLS`},
		},
		{
			name: "base_dn, flavor, page_size, timeout",
			src: []string{
				"ldap:",
				"  - name: corp",
				"    url: ldap://dc.example.com",
				"    flavor: novell",
				"    page_size: -1",
				"    timeout: 10ms",
				"    jid: {attribute: jabberID}",
			},
			want: []string{
				`F:2: ldap[0].base_dn: is required`,
				`F:4: ldap[0].flavor: must be ad, openldap or freeipa, not "novell"`,
				`F:5: ldap[0].page_size: must be between 1 and 100000`,
				`F:6: ldap[0].timeout: must be at least 100ms`,
			},
		},
		{
			name: "files path extension",
			src:  []string{"files:", "  - name: people", "    path: people.txt"},
			want: []string{`F:3: files[0].path: "D/people.txt": must end in .csv, .yaml or .yml`},
		},
		{
			name: "files path missing",
			src:  []string{"files:", "  - name: people", "    path: nobody.yaml"},
			want: []string{`F:3: files[0].path: stat D/nobody.yaml: no such file or directory`},
		},
		{
			name: "files path empty",
			src:  []string{"files:", "  - name: people"},
			want: []string{`F:2: files[0].path: is required`},
		},
		{
			name: "log format",
			src:  []string{"log:", "  format: xml"},
			want: []string{`F:2: log.format: must be text or json, not "xml"`},
		},
		{
			name: "log level",
			src:  []string{"log:", "  level: verbose"},
			want: []string{`F:2: log.level: must be debug, info, warn or error, not "verbose"`},
		},
		{
			name: "listen",
			src:  []string{"listen: 8080"},
			want: []string{`F:1: listen: must be host:port: address 8080: missing port in address`},
		},
		{
			name: "not a mapping",
			src:  []string{"- listen"},
			want: []string{`F:1: cannot unmarshal !!seq into config.Config`},
		},
		{
			// yaml.v3 drops the whole item; its fields must not be
			// reported as missing.
			name: "duplicate key",
			src: []string{
				"ldap:",
				"  - name: corp",
				"    name: corp2",
				"    url: ldap://dc.example.com",
				"    base_dn: dc=example,dc=com",
				"    jid: {attribute: jabberID}",
			},
			want: []string{`F:3: mapping key "name" already defined at line 2`},
		},
		{
			// yaml.v3 drops ldap[0]: the http URL of ldap[1] must not be
			// reported as ldap[0]'s, on ldap[0]'s line.
			name: "undecodable item before a bad one",
			src: []string{
				"ldap:",
				"  - name: a",
				"    name: b",
				"    url: ldap://dc.example.com",
				"    base_dn: dc=example,dc=com",
				"    jid: {attribute: jabberID}",
				"  - name: c",
				"    url: http://dc.example.com",
				"    base_dn: dc=example,dc=com",
				"    jid: {attribute: jabberID}",
			},
			want: []string{`F:3: mapping key "name" already defined at line 2`},
		},
		{
			name: "files item not a mapping",
			src:  []string{"files:", "  - people.csv", "  - name: x", "    path: people.txt"},
			want: []string{"F:2: cannot unmarshal !!str `people.csv` into config.File"},
		},
		{
			// An unknown field or a bad value keeps the item: its other
			// problems are reported with it.
			name: "type errors and checks together",
			src: []string{
				"ldap:",
				"  - name: corp",
				"    url: http://dc.example.com",
				"    timeout: 1 minute",
				"    base_dn: dc=example,dc=com",
				"    jid: {attribute: jabberID}",
				"    color: blue",
			},
			want: []string{
				`F:4: "1 minute" is not a duration like 90s, 5m or 6h`,
				`F:7: field color not found in type config.LDAP`,
				`F:3: ldap[0].url: scheme must be ldap or ldaps, not "http"`,
			},
		},
		{
			// A value with a line break must not split its problem in two.
			name: "line break in value",
			src:  []string{`listen: "a\nb"`, `"x\ny": 1`},
			want: []string{
				`F:2: field x\ny not found in type config.Config`,
				`F:1: listen: must be host:port: address a\nb: missing port in address`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(cfg, lines(tt.src...))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want an error", exported(c))
			}
			if c != nil {
				t.Errorf("Parse returned a config with its error")
			}
			var probs *Problems
			if !errors.As(err, &probs) {
				t.Fatalf("error is %T, want *Problems: %v", err, err)
			}
			r := strings.NewReplacer("F:", cfg+":", "D/", dir+"/")
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = r.Replace(w)
			}
			if got := probs.List(); !reflect.DeepEqual(got, want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if got := err.Error(); got != strings.Join(want, "\n") {
				t.Errorf("Error() = %q, want the problems one per line", got)
			}
		})
	}
}

// TestParseSeveralProblems checks that every problem is reported at once,
// in file order.
func TestParseSeveralProblems(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "presencegw.yaml")
	src := lines(
		"listen: localhost",                 // 1
		"log:",                              // 2
		"  format: xml",                     // 3
		"  level: info",                     // 4
		"ldap:",                             // 5
		"  - name: corp",                    // 6
		"    url: http://dc.example.com",    // 7
		"    bind_dn: cn=svc",               // 8
		"    base_dn: dc=example,dc=com",    // 9
		"    jid:",                          // 10
		"      attribute: jabberID",         // 11
		"      template: \"{{.uid}}@chat\"", // 12
		"  - url: ldaps://dc2.example.com",  // 13
		"    start_tls: true",               // 14
		"    jid: {attribute: jabberID}",    // 15
		"files:",                            // 16
		"  - name: corp",                    // 17
		"    path: people.txt",              // 18
	)
	_, err := Parse(cfg, src)
	if err == nil {
		t.Fatal("Parse succeeded, want problems")
	}
	var probs *Problems
	if !errors.As(err, &probs) {
		t.Fatalf("error is %T, want *Problems: %v", err, err)
	}
	want := []string{
		cfg + `:1: listen: must be host:port: address localhost: missing port in address`,
		cfg + `:3: log.format: must be text or json, not "xml"`,
		cfg + `:7: ldap[0].url: scheme must be ldap or ldaps, not "http"`,
		cfg + `:8: ldap[0].bind_dn: needs bind_password_file or bind_password_env`,
		cfg + `:10: ldap[0].jid: set attribute or template, not both`,
		cfg + `:13: ldap[1].name: is required`,
		cfg + `:13: ldap[1].url: start_tls is for ldap:// URLs; ldaps:// is already TLS`,
		cfg + `:13: ldap[1].base_dn: is required`,
		cfg + `:17: files[0].name: "corp" is already used by ldap[0]`,
		cfg + `:18: files[0].path: "` + filepath.Join(dir, "people.txt") + `": must end in .csv, .yaml or .yml`,
	}
	if got := probs.List(); !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("Error() does not list the problems one per line:\n%s", got)
	}
	// List returns a copy.
	l := probs.List()
	l[0] = "changed"
	if probs.List()[0] == "changed" {
		t.Error("List returned the internal slice")
	}
}

func TestParseEmpty(t *testing.T) {
	for _, src := range []string{"", "\n\n", "# nothing configured yet\n", "---\n"} {
		c, err := Parse("/etc/presencegw/presencegw.yaml", []byte(src))
		if err != nil {
			t.Errorf("Parse(%q): %v", src, err)
			continue
		}
		if got, want := exported(c), exported(Defaults()); !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q) = %+v, want the defaults %+v", src, got, want)
		}
	}
	d := Defaults()
	if d.Listen != "127.0.0.1:8080" || d.Log.Format != "text" || d.Log.Level != "info" ||
		d.Directory.IncrementalInterval.D() != time.Minute || d.Directory.FullInterval.D() != 6*time.Hour ||
		d.Path() != "" || len(d.LDAP) != 0 || len(d.Files) != 0 || d.Store != "" {
		t.Errorf("Defaults() = %+v", exported(d))
	}
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name string
		src  []string
		want string
	}{
		{"key dedented", []string{"log:", "  format: json", " level: debug"}, "F:2: did not find expected key"},
		{"key over-indented", []string{"log:", "  format: json", "    level: debug"}, "F:3: mapping values are not allowed in this context"},
		{"tab", []string{"listen: a", "\tlog: x"}, "F:2: found a tab character that violates indentation"},
		{"unclosed flow", []string{"ldap: [", ""}, "F:2: did not find expected node content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("conf/gw.yaml", lines(tt.src...))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", exported(c))
			}
			if want := strings.Replace(tt.want, "F:", "conf/gw.yaml:", 1); err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PRESENCEGW_TEST_SECRET", "from-env")
	t.Setenv("PRESENCEGW_TEST_EMPTY", "")
	const unset = "PRESENCEGW_TEST_SECRET_UNSET"
	t.Setenv(unset, "")
	os.Unsetenv(unset)
	tests := []struct {
		name    string
		content *string // file content; nil: no file argument
		missing bool    // pass a file name that does not exist
		env     string
		want    string
		wantErr string
	}{
		{name: "trailing newline", content: ptr("s3cret\n"), want: "s3cret"},
		{name: "trailing CRLF", content: ptr("s3cret\r\n"), want: "s3cret"},
		{name: "several trailing newlines", content: ptr("s3cret\n\n"), want: "s3cret"},
		{name: "no newline", content: ptr("s3cret"), want: "s3cret"},
		{name: "spaces kept", content: ptr(" s3 cret \n"), want: " s3 cret "},
		{name: "inner newline kept", content: ptr("line1\nline2\n"), want: "line1\nline2"},
		{name: "file wins over env", content: ptr("file\n"), env: "PRESENCEGW_TEST_SECRET", want: "file"},
		{name: "env", env: "PRESENCEGW_TEST_SECRET", want: "from-env"},
		{name: "env set but empty", env: "PRESENCEGW_TEST_EMPTY", want: ""},
		{name: "env unset", env: unset, wantErr: "environment variable " + unset + " is not set"},
		{name: "file missing", missing: true, wantErr: "read secret: open "},
		{name: "nothing", want: ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var file string
			switch {
			case tt.content != nil:
				file = writeFile(t, dir, "secret"+string(rune('a'+i)), *tt.content)
			case tt.missing:
				file = filepath.Join(dir, "missing.pw")
			}
			got, err := Secret(file, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("Secret = %q, %v; want error starting %q", got, err, tt.wantErr)
				}
				if tt.missing && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("error %v does not wrap fs.ErrNotExist", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Secret = %q, %v; want %q, nil", got, err, tt.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestCheck(t *testing.T) {
	const file = "/etc/presencegw/presencegw.yaml"
	src := lines(
		"ldap:",                              // 1
		"  - name: corp",                     // 2
		"    url: ldap://dc.example.com",     // 3
		"    base_dn: dc=example,dc=com",     // 4
		"    user_filter: (objectClass=user", // 5
		"    jid:",                           // 6
		"      template: \"{{.uid@chat\"",    // 7
		"    attributes:",                    // 8
		"      mail: [mail, otherMailbox]",   // 9
	)
	var seen *Config
	checks := []Check{
		func(c *Config, p *Problems) {
			seen = c
			p.Add("ldap[0].user_filter", "unbalanced parentheses in %q", c.LDAP[0].UserFilter)
			p.Add("ldap[0].jid.template", "unclosed action")
		},
		func(c *Config, p *Problems) {
			p.Add("ldap[0].disabled_filter", "not in the file: its source's line")
			p.Add("ldap[0].attributes.mail[1]", "a sequence item")
			p.Add("ldap[0].attributes.sip", "nearest parent")
			p.Add("files[3].path", "nothing in the file")
		},
	}
	c, err := Parse(file, src, checks...)
	if c != nil || err == nil {
		t.Fatalf("Parse = %v, %v; want the checks' problems", c, err)
	}
	if seen == nil || seen.LDAP[0].PageSize != 500 || seen.Path() != file {
		t.Errorf("the check did not get the parsed config with defaults: %+v", seen)
	}
	want := []string{
		file + `:5: ldap[0].user_filter: unbalanced parentheses in "(objectClass=user"`,
		file + `:7: ldap[0].jid.template: unclosed action`,
		file + `:2: ldap[0].disabled_filter: not in the file: its source's line`,
		file + `:9: ldap[0].attributes.mail[1]: a sequence item`,
		file + `:8: ldap[0].attributes.sip: nearest parent`,
		file + `: files[3].path: nothing in the file`,
	}
	var probs *Problems
	if !errors.As(err, &probs) {
		t.Fatalf("error is %T", err)
	}
	if got := probs.List(); !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A check that adds nothing lets a valid config through.
	called := 0
	c, err = Parse(file, src, func(*Config, *Problems) { called++ })
	if err != nil || c == nil || called != 1 {
		t.Errorf("Parse with a silent check = %v, %v (called %d times)", c, err, called)
	}

	// Problems of a config that has no file (the demo) say "config".
	p := Defaults().NewProblems()
	if p.Err() != nil {
		t.Error("empty Problems.Err() != nil")
	}
	p.Add("ldap[0].url", "bad %s", "thing")
	if got, want := p.Error(), "config: ldap[0].url: bad thing"; got != want {
		t.Errorf("Problems without a file: %q, want %q", got, want)
	}
	if p.Err() == nil {
		t.Error("Problems.Err() = nil after Add")
	}
}

func TestProblemsLine(t *testing.T) {
	p := &Problems{file: "f.yaml", lines: map[string]int{
		"ldap":                 1,
		"ldap[0]":              2,
		"ldap[0].url":          3,
		"ldap[0].url[1]":       5,
		"ldap[0].jid":          9,
		"ldap[0].jid.template": 10,
	}}
	tests := []struct {
		path string
		want int
	}{
		{"ldap[0].url[1]", 5},
		{"ldap[0].url[2]", 3},
		{"ldap[0].url", 3},
		{"ldap[0].jid.template", 10},
		{"ldap[0].jid.attribute", 9},
		{"ldap[0].base_dn", 2},
		{"ldap[1].url", 1},
		{"ldap", 1},
		{"files[0].path", 0},
		{"", 0},
	}
	for _, tt := range tests {
		if got := p.line(tt.path); got != tt.want {
			t.Errorf("line(%q) = %d, want %d", tt.path, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"listen: 127.0.0.1:8080\nlog: {format: json, level: debug}\n",
		"directory:\n  incremental_interval: 1m\n  full_interval: 6h\n",
		"ldap:\n  - name: corp\n    url: [ldap://a, ldaps://b:636]\n    base_dn: dc=x\n    bind_dn: cn=svc\n    bind_password_env: HOME\n    jid: {attribute: jabberID}\n",
		"ldap:\n  - name: corp\n    url: http://a\n    timeout: x\n    foo: 1\n    jid: {attribute: a, template: b}\nfiles:\n  - name: corp\n    path: p.txt\n",
		"files:\n  - name: f\n    path: people.csv\n    domains: [example.com, \"@x\"]\n",
		"log:\n  format: json\n level: debug\n",
		"a: &x [1, 2]\nb: *x\n",
		"\"k\\ney\": 1\nlisten: \"a\\nb\"\n",
		"- 1\n- 2\n",
		"log: 1\nlog: 2\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	const file = "/nonexistent/presencegw/fuzz.yaml"
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse(file, []byte(src))
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one of config and error", c, err)
		}
		if err == nil {
			if c.Listen == "" || c.Log.Format == "" || c.Directory.IncrementalInterval == 0 {
				t.Errorf("config without defaults: %+v", exported(c))
			}
			return
		}
		for _, l := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(l, file+":") {
				t.Errorf("error line does not start with the file name: %q", l)
			}
		}
	})
}
