// Package config holds presencegw's one configuration struct and turns a
// YAML file into it. Every problem in a file is reported at once, each with
// the file, line and field it concerns, so an operator fixes a config in one
// round instead of one error per restart.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration of one gateway process.
type Config struct {
	// Listen is the HTTP listen address. Default "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// Store is the path of the embedded state database (SQLite). It keeps
	// what a restart must not lose: directory snapshot, overrides, cursors.
	Store string `yaml:"store"`
	// Log configures structured logging.
	Log Log `yaml:"log"`
	// Directory holds settings shared by all directory sources.
	Directory Directory `yaml:"directory"`
	// LDAP lists the LDAP directories (Active Directory, OpenLDAP, FreeIPA).
	LDAP []LDAP `yaml:"ldap"`
	// Files lists file directories (YAML or CSV), for small sites and demos.
	Files []File `yaml:"files"`
	// Calendar configures polling and which source serves whom (routing);
	// Graph (Exchange Online), EWS (Exchange on premises) and ICS (feeds)
	// are the calendar sources, each absent unless configured (no calendar
	// at all when none is); Policy what calendars do to presence.
	Calendar Calendar `yaml:"calendar"`
	Graph    *Graph   `yaml:"graph"`
	EWS      *EWS     `yaml:"ews"`
	ICS      *ICS     `yaml:"ics"`
	Policy   Policy   `yaml:"policy"`
	// Web configures the HTTP API: who may ask, and what they see.
	Web Web `yaml:"web"`
	// XMPP configures the XMPP component; none runs when absent.
	XMPP *XMPP `yaml:"xmpp"`

	// path is the file the config came from; lines maps field paths
	// ("ldap[0].url") to their line there. Both feed error messages of
	// checks that run after Load, such as the directory mapper's.
	path  string
	lines map[string]int
}

// Log configures log/slog output.
type Log struct {
	// Format is "text" (default) or "json".
	Format string `yaml:"format"`
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
}

// Directory holds the sync schedule shared by every directory source.
type Directory struct {
	// IncrementalInterval is how often changed entries are fetched. Default 1m.
	IncrementalInterval Duration `yaml:"incremental_interval"`
	// FullInterval is how often everything is re-read, which is when
	// deletions are noticed. Default 6h.
	FullInterval Duration `yaml:"full_interval"`
}

// LDAP configures one LDAP directory source.
type LDAP struct {
	// Name identifies the source in explanations, logs and the store.
	Name string `yaml:"name"`
	// Priority decides conflicts between directories: higher wins.
	Priority int `yaml:"priority"`
	// Domains are the mail domains this directory answers for. Empty means
	// every domain.
	Domains []string `yaml:"domains"`
	// URL is one URL or a list tried in order for failover:
	// ldap://host[:port] (with StartTLS if start_tls is set) or ldaps://.
	URL URLs `yaml:"url"`
	// StartTLS upgrades ldap:// connections with StartTLS.
	StartTLS bool `yaml:"start_tls"`
	// AllowInsecureBind allows a bind over plain ldap:// to a host that is
	// not loopback, which sends the password in clear text.
	AllowInsecureBind bool `yaml:"allow_insecure_bind"`
	// CAFile is a PEM bundle of CAs trusted for the server certificate.
	CAFile string `yaml:"ca_file"`
	// BindDN and its password (from a file or an environment variable,
	// never from the config itself) authenticate the gateway.
	BindDN           string `yaml:"bind_dn"`
	BindPasswordFile string `yaml:"bind_password_file"`
	BindPasswordEnv  string `yaml:"bind_password_env"`
	// BaseDN is where users are searched (subtree).
	BaseDN string `yaml:"base_dn"`
	// Flavor picks defaults: "ad" (default), "openldap" or "freeipa".
	Flavor string `yaml:"flavor"`
	// UserFilter selects people. Default per flavor.
	UserFilter string `yaml:"user_filter"`
	// DisabledFilter matches disabled accounts, which are excluded.
	// Default per flavor (AD: userAccountControl bit 2).
	DisabledFilter string `yaml:"disabled_filter"`
	// PageSize is the paged-results page size. Default 500.
	PageSize int `yaml:"page_size"`
	// Timeout bounds connecting and each request. Default 10s.
	Timeout Duration `yaml:"timeout"`
	// ChangeAttribute is the high-water mark for incremental sync
	// (uSNChanged on AD, modifyTimestamp elsewhere).
	ChangeAttribute string `yaml:"change_attribute"`
	// Attributes names the attributes addresses and facts come from.
	Attributes LDAPAttributes `yaml:"attributes"`
	// JID says how a person's JID is made: from an attribute, or a template.
	JID JIDRule `yaml:"jid"`
}

// LDAPAttributes names the directory attributes the mapper reads. An empty
// string switches that source of addresses off.
type LDAPAttributes struct {
	Mail           []string `yaml:"mail"`            // default [mail]
	ProxyAddresses string   `yaml:"proxy_addresses"` // default proxyAddresses (AD)
	UserPrincipal  string   `yaml:"user_principal"`  // default none; userPrincipalName on AD if wanted
	SIP            string   `yaml:"sip"`             // default msRTCSIP-PrimaryUserAddress (AD)
	Mailbox        string   `yaml:"mailbox"`         // default: the primary SMTP address
	DisplayName    string   `yaml:"display_name"`    // default displayName
	Title          string   `yaml:"title"`           // default title
	Department     string   `yaml:"department"`      // default department (AD) / ou / departmentNumber
	// CalendarRoute is read and kept per person to choose their calendar
	// source (calendar.routing.values). Default calendar.routing.attribute.
	CalendarRoute string `yaml:"calendar_route"`
	// ID is the entry's stable identity, which survives renames. Default
	// per flavor: objectGUID (AD), entryUUID (OpenLDAP), ipaUniqueID
	// (FreeIPA); "dn" keys entries by DN.
	ID string `yaml:"id"`
}

// JIDRule says where a person's JID comes from: exactly one of Attribute
// or Template.
type JIDRule struct {
	// Attribute holds the JID (e.g. jabberID), or a SIP URI ("sip:" is
	// stripped) such as msRTCSIP-PrimaryUserAddress.
	Attribute string `yaml:"attribute"`
	// Template is a Go text/template over the entry's attributes
	// ({{.sAMAccountName}}) plus {{.localpart}} and {{.domain}} of the
	// primary address, e.g. "{{.sAMAccountName}}@chat.example.com".
	Template string `yaml:"template"`
}

// File configures one file directory source (YAML or CSV).
type File struct {
	Name     string   `yaml:"name"`
	Priority int      `yaml:"priority"`
	Domains  []string `yaml:"domains"`
	// Path of the file; ".csv" is read as CSV, ".yaml"/".yml" as YAML.
	// Relative paths are relative to the config file.
	Path string `yaml:"path"`
}

// Duration is a time.Duration written as "90s", "5m", "6h" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		// A *yaml.TypeError lets the decoder go on with the other fields;
		// any other error would stop it half-way.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration like 90s, 5m or 6h", n.Line, s)}}
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// URLs is one URL or a list of them.
type URLs []string

// UnmarshalYAML accepts a scalar or a sequence.
func (u *URLs) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*u = URLs{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*u = l
	return nil
}

// Path returns the file the config was loaded from ("" for defaults).
func (c *Config) Path() string { return c.path }

// Problems is every problem found in one configuration. Its Error lists
// them one per line, "file:line: field: message".
type Problems struct {
	file  string
	lines map[string]int
	list  []string
}

// Add records a problem with the field at path (as "ldap[0].url").
func (p *Problems) Add(path, format string, args ...any) {
	msg := oneLine(fmt.Sprintf(format, args...))
	loc := p.file
	if line := p.line(path); line > 0 {
		loc = fmt.Sprintf("%s:%d", p.file, line)
	}
	if loc == "" {
		loc = "config"
	}
	p.list = append(p.list, fmt.Sprintf("%s: %s: %s", loc, path, msg))
}

// line finds the line of path, or of its nearest parent that is in the file.
func (p *Problems) line(path string) int {
	for path != "" {
		if l, ok := p.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// Err returns nil when nothing was added, else the Problems.
func (p *Problems) Err() error {
	if len(p.list) == 0 {
		return nil
	}
	return p
}

// Error lists every problem, one per line.
func (p *Problems) Error() string { return strings.Join(p.list, "\n") }

// List returns the problems, one string each.
func (p *Problems) List() []string { return slices.Clone(p.list) }

// NewProblems starts a problem list for c, so checks outside this package
// (a package that can judge its own settings better) report in the same
// format with the same line numbers.
func (c *Config) NewProblems() *Problems {
	return &Problems{file: c.path, lines: c.lines}
}

// Check is an extra validation run by Load after its own, for settings
// only another package can judge (LDAP filter syntax, templates).
type Check func(c *Config, p *Problems)

// Load reads, parses and validates the YAML file at path, then runs the
// extra checks; it returns every problem found in one error.
func Load(path string, checks ...Check) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, checks...)
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// Parse is Load on bytes already read; path is only used in messages and to
// resolve relative file paths.
func Parse(path string, data []byte, checks ...Check) (*Config, error) {
	c := &Config{path: path, lines: map[string]int{}}
	p := c.NewProblems()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		addYAMLError(p, path, err)
		return nil, p
	}
	walkLines(&root, "", c.lines)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		addYAMLError(p, path, err)
		// yaml.v3 drops a list item it cannot decode: the checks below
		// would then name the next item, and its line, for this one's.
		if c.lines[fmt.Sprintf("ldap[%d]", len(c.LDAP))] > 0 || c.lines[fmt.Sprintf("files[%d]", len(c.Files))] > 0 {
			return nil, p
		}
	}
	c.applyDefaults()
	c.validate(p)
	for _, check := range checks {
		check(c, p)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// addYAMLError turns yaml.v3's "line N: msg" errors into "file:N: msg".
func addYAMLError(p *Problems, path string, err error) {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	for _, m := range msgs {
		m = oneLine(m)
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			p.list = append(p.list, fmt.Sprintf("%s:%s: %s", path, sm[1], sm[2]))
		} else {
			p.list = append(p.list, fmt.Sprintf("%s: %s", path, strings.TrimPrefix(m, "yaml: ")))
		}
	}
}

// oneLine escapes line breaks, which values quoted from the file can hold,
// so that Error keeps one problem per line.
func oneLine(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// walkLines records the line of every mapping key and sequence item under
// its field path.
func walkLines(n *yaml.Node, path string, lines map[string]int) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walkLines(c, path, lines)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			lines[p] = k.Line
			walkLines(v, p, lines)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			lines[p] = c.Line
			walkLines(c, p, lines)
		}
	}
}

// Defaults returns the configuration used when no file is given (the demo).
func Defaults() *Config {
	c := &Config{lines: map[string]int{}}
	c.applyDefaults()
	return c
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Directory.IncrementalInterval == 0 {
		c.Directory.IncrementalInterval = Duration(time.Minute)
	}
	if c.Directory.FullInterval == 0 {
		c.Directory.FullInterval = Duration(6 * time.Hour)
	}
	for i := range c.LDAP {
		c.LDAP[i].applyDefaults()
	}
	c.applyCalendarDefaults()
	c.applyWebDefaults()
	c.applyXMPPDefaults()
	base := filepath.Dir(c.path)
	for i := range c.Files {
		if c.Files[i].Path != "" && !filepath.IsAbs(c.Files[i].Path) && c.path != "" {
			c.Files[i].Path = filepath.Join(base, c.Files[i].Path)
		}
	}
	if c.Store != "" && !filepath.IsAbs(c.Store) && c.path != "" {
		c.Store = filepath.Join(base, c.Store)
	}
	for i := range c.LDAP {
		l := &c.LDAP[i]
		for _, f := range []*string{&l.CAFile, &l.BindPasswordFile} {
			if *f != "" && !filepath.IsAbs(*f) && c.path != "" {
				*f = filepath.Join(base, *f)
			}
		}
	}
}

// Flavors of LDAP directory, each with its own defaults.
const (
	FlavorAD       = "ad"
	FlavorOpenLDAP = "openldap"
	FlavorFreeIPA  = "freeipa"
)

func (l *LDAP) applyDefaults() {
	if l.Flavor == "" {
		l.Flavor = FlavorAD
	}
	if l.PageSize == 0 {
		l.PageSize = 500
	}
	if l.Timeout == 0 {
		l.Timeout = Duration(10 * time.Second)
	}
	a := &l.Attributes
	if a.Mail == nil {
		a.Mail = []string{"mail"}
	}
	if a.DisplayName == "" {
		a.DisplayName = "displayName"
	}
	if a.Title == "" {
		a.Title = "title"
	}
	switch l.Flavor {
	case FlavorAD:
		def(&l.UserFilter, "(&(objectClass=user)(objectCategory=person))")
		def(&l.DisabledFilter, "(userAccountControl:1.2.840.113556.1.4.803:=2)")
		def(&l.ChangeAttribute, "uSNChanged")
		def(&a.ProxyAddresses, "proxyAddresses")
		def(&a.SIP, "msRTCSIP-PrimaryUserAddress")
		def(&a.Department, "department")
		def(&a.ID, "objectGUID")
	case FlavorFreeIPA:
		def(&l.UserFilter, "(objectClass=person)")
		def(&l.DisabledFilter, "(nsAccountLock=TRUE)")
		def(&l.ChangeAttribute, "modifyTimestamp")
		def(&a.Department, "ou")
		def(&a.ID, "ipaUniqueID")
	default:
		def(&l.UserFilter, "(objectClass=inetOrgPerson)")
		def(&l.ChangeAttribute, "modifyTimestamp")
		def(&a.Department, "departmentNumber")
		def(&a.ID, "entryUUID")
	}
	if a.ID == "dn" {
		a.ID = ""
	}
}

func def(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

func (c *Config) validate(p *Problems) {
	c.validateCalendar(p)
	c.validateWeb(p)
	c.validateXMPP(p)
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		p.Add("listen", "must be host:port: %v", err)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		p.Add("log.format", "must be text or json, not %q", c.Log.Format)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.Add("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	if c.Directory.IncrementalInterval.D() < time.Second {
		p.Add("directory.incremental_interval", "must be at least 1s")
	}
	if c.Directory.FullInterval.D() < c.Directory.IncrementalInterval.D() {
		p.Add("directory.full_interval", "must not be shorter than incremental_interval")
	}
	names := map[string]string{}
	uniqueName := func(path, name string) {
		if name == "" {
			p.Add(path+".name", "is required")
			return
		}
		if !validName.MatchString(name) {
			p.Add(path+".name", "%q: use letters, digits, '-', '_' and '.'", name)
		}
		if prev, ok := names[name]; ok {
			p.Add(path+".name", "%q is already used by %s", name, prev)
		}
		names[name] = path
	}
	for i := range c.LDAP {
		l := &c.LDAP[i]
		path := fmt.Sprintf("ldap[%d]", i)
		uniqueName(path, l.Name)
		validateDomains(p, path, l.Domains)
		l.validate(p, path)
	}
	for i, f := range c.Files {
		path := fmt.Sprintf("files[%d]", i)
		uniqueName(path, f.Name)
		validateDomains(p, path, f.Domains)
		switch {
		case f.Path == "":
			p.Add(path+".path", "is required")
		case !slices.Contains([]string{".csv", ".yaml", ".yml"}, strings.ToLower(filepath.Ext(f.Path))):
			p.Add(path+".path", "%q: must end in .csv, .yaml or .yml", f.Path)
		default:
			if _, err := os.Stat(f.Path); err != nil {
				p.Add(path+".path", "%v", err)
			}
		}
	}
}

// attrName is an LDAP attribute description (RFC 4512): a name or an OID,
// with options.
var attrName = regexp.MustCompile(`^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)(?:;[A-Za-z0-9-]+)*$`)

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func validateDomains(p *Problems, path string, domains []string) {
	for j, d := range domains {
		if d == "" || strings.ContainsAny(d, "@ /") || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") {
			p.Add(fmt.Sprintf("%s.domains[%d]", path, j), "%q is not a mail domain", d)
		}
	}
}

func (l *LDAP) validate(p *Problems, path string) {
	if len(l.URL) == 0 {
		p.Add(path+".url", "is required (ldap://host or ldaps://host, or a list for failover)")
	}
	for j, raw := range l.URL {
		f := path + ".url"
		if len(l.URL) > 1 {
			f = fmt.Sprintf("%s.url[%d]", path, j)
		}
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			p.Add(f, "%v", err)
		case u.Scheme != "ldap" && u.Scheme != "ldaps":
			p.Add(f, "scheme must be ldap or ldaps, not %q", u.Scheme)
		case u.Host == "":
			p.Add(f, "%q has no host", raw)
		case u.Scheme == "ldaps" && l.StartTLS:
			p.Add(f, "start_tls is for ldap:// URLs; ldaps:// is already TLS")
		case u.User != nil:
			p.Add(f, "must not hold credentials: use bind_dn and bind_password_file")
		case u.Path != "" && u.Path != "/" || u.RawQuery != "":
			p.Add(f, "%q: put the base DN in base_dn, not in the URL", raw)
		case u.Scheme == "ldap" && !l.StartTLS && l.BindDN != "" && !l.AllowInsecureBind && !isLoopback(u.Hostname()):
			p.Add(f, "binding over plain ldap:// sends the password in clear text: use ldaps://, start_tls: true, or allow_insecure_bind: true")
		}
		if u != nil && u.Port() != "" {
			if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
				p.Add(f, "port %q is out of range", u.Port())
			}
		}
	}
	// Attribute names go into filters and cannot be escaped there.
	type named struct{ field, name string }
	attrs := []named{{"change_attribute", l.ChangeAttribute}}
	for j, m := range l.Attributes.Mail {
		attrs = append(attrs, named{fmt.Sprintf("attributes.mail[%d]", j), m})
	}
	a := l.Attributes
	attrs = append(attrs, named{"attributes.proxy_addresses", a.ProxyAddresses},
		named{"attributes.user_principal", a.UserPrincipal}, named{"attributes.sip", a.SIP},
		named{"attributes.mailbox", a.Mailbox}, named{"attributes.display_name", a.DisplayName},
		named{"attributes.title", a.Title}, named{"attributes.department", a.Department},
		named{"attributes.id", a.ID}, named{"jid.attribute", l.JID.Attribute})
	for _, at := range attrs {
		if at.name != "" && !attrName.MatchString(at.name) {
			p.Add(path+"."+at.field, "%q is not an LDAP attribute name", at.name)
		}
	}
	checkFile(p, path+".ca_file", l.CAFile)
	if l.BindDN != "" && l.BindPasswordFile == "" && l.BindPasswordEnv == "" {
		p.Add(path+".bind_dn", "needs bind_password_file or bind_password_env")
	}
	if l.BindPasswordFile != "" && l.BindPasswordEnv != "" {
		p.Add(path+".bind_password_file", "set bind_password_file or bind_password_env, not both")
	}
	checkFile(p, path+".bind_password_file", l.BindPasswordFile)
	checkEnv(p, path+".bind_password_env", l.BindPasswordEnv)
	if l.BaseDN == "" {
		p.Add(path+".base_dn", "is required")
	}
	if !slices.Contains([]string{FlavorAD, FlavorOpenLDAP, FlavorFreeIPA}, l.Flavor) {
		p.Add(path+".flavor", "must be ad, openldap or freeipa, not %q", l.Flavor)
	}
	if l.PageSize < 1 || l.PageSize > 100000 {
		p.Add(path+".page_size", "must be between 1 and 100000")
	}
	if l.Timeout.D() < 100*time.Millisecond {
		p.Add(path+".timeout", "must be at least 100ms")
	}
	switch {
	case l.JID.Attribute == "" && l.JID.Template == "":
		p.Add(path+".jid", "set attribute (e.g. jabberID) or template (e.g. \"{{.sAMAccountName}}@chat.example.com\")")
	case l.JID.Attribute != "" && l.JID.Template != "":
		p.Add(path+".jid", "set attribute or template, not both")
	}
}

// Secret reads a secret from a file (trailing newline trimmed) or an
// environment variable; secrets never sit in the config file itself.
func Secret(file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read secret: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		return v, nil
	}
	return "", nil
}
