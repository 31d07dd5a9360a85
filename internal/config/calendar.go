package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Calendar configures how calendars are polled.
type Calendar struct {
	// PollInterval bounds how late a calendar change is noticed (meeting
	// boundaries already known flip on time regardless). Default 5m.
	PollInterval Duration `yaml:"poll_interval"`
	// AutoReplyInterval bounds how late an out-of-office change is
	// noticed. Default 15m.
	AutoReplyInterval Duration `yaml:"auto_reply_interval"`
	// LookAhead is how far ahead schedules are read. Default 8h.
	LookAhead Duration `yaml:"look_ahead"`
	// MailboxRetry is the wait before asking again for a mailbox that
	// failed alone (not found, access denied). Default 30m.
	MailboxRetry Duration `yaml:"mailbox_retry"`
	// Routing chooses each person's calendar source when several are
	// configured (a hybrid Exchange: EWS on premises, Graph online).
	Routing Routing `yaml:"routing"`
}

// Routing chooses the calendar source of each mailbox. The most specific
// rule wins: Mailboxes (one person), then Values (the directory
// attribute), then Domains (the mailbox's domain), then Default. A source
// is named by its section (graph, ews, ics); "none" means no calendar.
type Routing struct {
	// Default serves every mailbox no rule names. Required with several
	// sources; with one it is that one.
	Default string `yaml:"default"`
	// Attribute is the LDAP attribute read per person for Values (for
	// Exchange hybrid: msExchRecipientTypeDetails, 1 = on-premises user
	// mailbox, 2147483648 = remote, i.e. online, user mailbox). Each LDAP
	// directory reads it unless its attributes.calendar_route says another.
	Attribute string `yaml:"attribute"`
	// Values maps the attribute's value (exact, as the directory holds
	// it) to a source.
	Values map[string]string `yaml:"values"`
	// Domains maps a mail domain (of the mailbox id) to a source.
	Domains map[string]string `yaml:"domains"`
	// Mailboxes maps single mailboxes to a source.
	Mailboxes map[string]string `yaml:"mailboxes"`
}

// Calendar source names, as routing refers to them.
const (
	SourceGraph = "graph"
	SourceEWS   = "ews"
	SourceICS   = "ics"
	// SourceNone routes a mailbox to no calendar: its presence comes from
	// chat alone, and nothing is asked for it.
	SourceNone = "none"
)

// CalendarSources names the configured calendar sources, in a fixed order.
func (c *Config) CalendarSources() []string {
	var out []string
	if c.Graph != nil {
		out = append(out, SourceGraph)
	}
	if c.EWS != nil {
		out = append(out, SourceEWS)
	}
	if c.ICS != nil {
		out = append(out, SourceICS)
	}
	return out
}

// EWS configures the Exchange Web Services source, for mailboxes on
// on-premises Exchange (2016, 2019, Subscription Edition), which Graph
// does not reach.
type EWS struct {
	// URL is the endpoint, https://mail.example.com/EWS/Exchange.asmx.
	URL string `yaml:"url"`
	// Auth is ntlm (default), basic or bearer (OAuth, hybrid modern auth).
	Auth string `yaml:"auth"`
	// Username and Domain (sent as DOMAIN\username) with a password from
	// a file or the environment, for ntlm and basic.
	Username     string `yaml:"username"`
	Domain       string `yaml:"domain"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// TokenFile (re-read whenever it changes, so a token refresher can
	// rewrite it) or TokenEnv hold the access token for bearer.
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// Impersonate is the address sent in ExchangeImpersonation with
	// GetMailTips (ApplicationImpersonation role); SendingAs the sender
	// mail tips are evaluated for (default Impersonate, else Username when
	// it is an address).
	Impersonate string `yaml:"impersonate"`
	SendingAs   string `yaml:"sending_as"`
	// ServerVersion is the RequestServerVersion. Default Exchange2013_SP1.
	ServerVersion string `yaml:"server_version"`
	// CAFile is a PEM bundle trusted besides the system's (internal CA).
	CAFile string `yaml:"ca_file"`
	// Timeout of one request, answer included. Default 60s.
	Timeout Duration `yaml:"timeout"`
	// Concurrency bounds requests in flight. Default 4.
	Concurrency int `yaml:"concurrency"`
	// AvailabilityBatch is the mailboxes per GetUserAvailability (at most
	// and by default 100); MailTipsBatch the recipients per GetMailTips
	// (default 50, Exchange's MaxRecipientsPerGetMailTipsRequest).
	AvailabilityBatch int `yaml:"availability_batch"`
	MailTipsBatch     int `yaml:"mail_tips_batch"`
	// MaxBackOff is the longest ErrorServerBusy back-off waited for.
	// Default 5m.
	MaxBackOff Duration `yaml:"max_back_off"`
}

// ICS configures the iCalendar feed source (Nextcloud, Google's secret
// address, Fastmail, any CalDAV server's export): one feed per person.
type ICS struct {
	// URLTemplate makes a mailbox's feed URL, a Go template over
	// {{.mailbox}}, {{.localpart}} and {{.domain}} (path-escaped).
	URLTemplate string `yaml:"url_template"`
	// URLMapFile lists feeds per mailbox, which win over the template: a
	// CSV file with the columns mailbox,url or a YAML mapping. Feed URLs
	// are often secrets, which is why they live in a file of their own.
	URLMapFile string `yaml:"url_map_file"`
	// Username and a password (file or environment) are sent as Basic
	// credentials to feeds whose URL holds none (a service account that
	// may read everyone's export).
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// CAFile is a PEM bundle trusted besides the system's.
	CAFile string `yaml:"ca_file"`
	// MaxBytes bounds a feed. Default 10 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// Timeout bounds one request. Default 30s.
	Timeout Duration `yaml:"timeout"`
	// Concurrency bounds requests in flight. Default 8.
	Concurrency int `yaml:"concurrency"`
	// Batch is the mailboxes per poll step (each feed is a request of its
	// own; this sets how finely requests spread). Default 10.
	Batch int `yaml:"batch"`
	// MinInterval skips feeds read this recently. Default 0.
	MinInterval Duration `yaml:"min_interval"`
}

// Graph configures the Microsoft Graph calendar source (client
// credentials of an Entra ID app with Calendars.Read and, for automatic
// replies, Mail.Read application permissions).
type Graph struct {
	TenantID string `yaml:"tenant_id"`
	ClientID string `yaml:"client_id"`
	// The client secret (file or environment) or a PEM file with the
	// certificate and its private key.
	ClientSecretFile string `yaml:"client_secret_file"`
	ClientSecretEnv  string `yaml:"client_secret_env"`
	CertificateFile  string `yaml:"certificate_file"`
	// BaseURL and AuthorityHost select the cloud (national clouds).
	BaseURL       string `yaml:"base_url"`
	AuthorityHost string `yaml:"authority_host"`
	// CAFile is a PEM bundle trusted for Graph and the login host, for a
	// TLS-inspecting proxy; default the system's roots.
	CAFile string `yaml:"ca_file"`
	// AutoReplies: mailtips (default; getMailTips, 50 mailboxes a request,
	// needs Mail.Read) or mailbox_settings ($batch of mailboxSettings, one
	// request per mailbox, needs only MailboxSettings.Read).
	AutoReplies string `yaml:"auto_replies"`
	// MailTipsBatch is the number of mailboxes per getMailTips request.
	MailTipsBatch int `yaml:"mail_tips_batch"`
	// Concurrency bounds requests in flight. Default 4.
	Concurrency int `yaml:"concurrency"`
}

// Policy is the organisation's calendar-presence policy.
type Policy struct {
	// Automatic lists the calendar states applied: meetings, oof. Default both.
	Automatic []string `yaml:"automatic"`
	// Tentative meetings count as busy or free. Default busy.
	Tentative string `yaml:"tentative"`
	// AllDay events: ignore (default; out-of-office ones still count) or respect.
	AllDay string `yaml:"all_day"`
	// MergeGap merges meetings this close into one "until". Default 0.
	MergeGap Duration `yaml:"merge_gap"`
	// ShowSubject puts a non-private meeting's subject in the status.
	ShowSubject bool `yaml:"show_subject"`
	// Texts override the status texts (see rules.Texts).
	Texts Texts `yaml:"texts"`
}

// Texts are the status templates and date names.
type Texts struct {
	Meeting     string   `yaml:"meeting"`
	MeetingWith string   `yaml:"meeting_with"`
	OOF         string   `yaml:"oof"`
	Elsewhere   string   `yaml:"elsewhere"`
	TimeLayout  string   `yaml:"time_layout"`
	DateLayout  string   `yaml:"date_layout"`
	Weekdays    []string `yaml:"weekdays"`
	Months      []string `yaml:"months"`
}

func (c *Config) applyCalendarDefaults() {
	d := func(v *Duration, def time.Duration) {
		if *v == 0 {
			*v = Duration(def)
		}
	}
	d(&c.Calendar.PollInterval, 5*time.Minute)
	d(&c.Calendar.AutoReplyInterval, 15*time.Minute)
	d(&c.Calendar.LookAhead, 8*time.Hour)
	d(&c.Calendar.MailboxRetry, 30*time.Minute)
	if c.Policy.Automatic == nil {
		c.Policy.Automatic = []string{"meetings", "oof"}
	}
	def(&c.Policy.Tentative, "busy")
	def(&c.Policy.AllDay, "ignore")
	if g := c.Graph; g != nil {
		def(&g.BaseURL, "https://graph.microsoft.com/v1.0")
		def(&g.AuthorityHost, "https://login.microsoftonline.com/")
		def(&g.AutoReplies, "mailtips")
		if g.MailTipsBatch == 0 {
			g.MailTipsBatch = 50
		}
		if g.Concurrency == 0 {
			g.Concurrency = 4
		}
		c.relative(&g.ClientSecretFile, &g.CertificateFile, &g.CAFile)
	}
	if e := c.EWS; e != nil {
		def(&e.Auth, "ntlm")
		def(&e.ServerVersion, "Exchange2013_SP1")
		d(&e.Timeout, 60*time.Second)
		d(&e.MaxBackOff, 5*time.Minute)
		defInt(&e.Concurrency, 4)
		defInt(&e.AvailabilityBatch, 100)
		defInt(&e.MailTipsBatch, 50)
		c.relative(&e.PasswordFile, &e.TokenFile, &e.CAFile)
	}
	if i := c.ICS; i != nil {
		if i.MaxBytes == 0 {
			i.MaxBytes = 10 << 20
		}
		d(&i.Timeout, 30*time.Second)
		defInt(&i.Concurrency, 8)
		defInt(&i.Batch, 10)
		c.relative(&i.URLMapFile, &i.PasswordFile, &i.CAFile)
	}
	r := &c.Calendar.Routing
	if srcs := c.CalendarSources(); r.Default == "" && len(srcs) == 1 {
		r.Default = srcs[0]
	}
	for i := range c.LDAP {
		def(&c.LDAP[i].Attributes.CalendarRoute, r.Attribute)
	}
}

// relative makes file paths relative to the config file's directory.
func (c *Config) relative(files ...*string) {
	if c.path == "" {
		return
	}
	for _, f := range files {
		if *f != "" && !filepath.IsAbs(*f) {
			*f = filepath.Join(filepath.Dir(c.path), *f)
		}
	}
}

func defInt(v *int, d int) {
	if *v == 0 {
		*v = d
	}
}

func (c *Config) validateCalendar(p *Problems) {
	cal := c.Calendar
	if cal.PollInterval.D() < 10*time.Second {
		p.Add("calendar.poll_interval", "must be at least 10s")
	}
	if cal.AutoReplyInterval.D() < cal.PollInterval.D() {
		p.Add("calendar.auto_reply_interval", "must not be shorter than poll_interval")
	}
	if cal.LookAhead.D() < 2*cal.PollInterval.D() || cal.LookAhead.D() > 61*24*time.Hour {
		p.Add("calendar.look_ahead", "must be at least twice poll_interval and under 62 days (Graph's getSchedule limit)")
	}
	for i, a := range c.Policy.Automatic {
		if a != "meetings" && a != "oof" {
			p.Add("policy.automatic", "item %d: %q: use meetings and/or oof", i, a)
		}
	}
	if !slices.Contains([]string{"busy", "free"}, c.Policy.Tentative) {
		p.Add("policy.tentative", "must be busy or free, not %q", c.Policy.Tentative)
	}
	if !slices.Contains([]string{"ignore", "respect"}, c.Policy.AllDay) {
		p.Add("policy.all_day", "must be ignore or respect, not %q", c.Policy.AllDay)
	}
	if n := len(c.Policy.Texts.Weekdays); n != 0 && n != 7 {
		p.Add("policy.texts.weekdays", "needs 7 names (Sunday first), not %d", n)
	}
	if n := len(c.Policy.Texts.Months); n != 0 && n != 12 {
		p.Add("policy.texts.months", "needs 12 names, not %d", n)
	}
	c.validateEWS(p)
	c.validateICS(p)
	c.validateRouting(p)
	g := c.Graph
	if g == nil {
		return
	}
	if g.TenantID == "" {
		p.Add("graph.tenant_id", "is required")
	}
	if g.ClientID == "" {
		p.Add("graph.client_id", "is required")
	}
	n := 0
	for _, s := range []string{g.ClientSecretFile, g.ClientSecretEnv, g.CertificateFile} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		p.Add("graph", "set exactly one of client_secret_file, client_secret_env, certificate_file")
	}
	checkFile(p, "graph.client_secret_file", g.ClientSecretFile)
	checkFile(p, "graph.certificate_file", g.CertificateFile)
	checkFile(p, "graph.ca_file", g.CAFile)
	checkEnv(p, "graph.client_secret_env", g.ClientSecretEnv)
	for field, raw := range map[string]string{"graph.base_url": g.BaseURL, "graph.authority_host": g.AuthorityHost} {
		if u, err := url.Parse(raw); err != nil || u.Scheme != "https" || u.Host == "" {
			p.Add(field, "%q must be an https:// URL", raw)
		}
	}
	if g.AutoReplies != "mailtips" && g.AutoReplies != "mailbox_settings" {
		p.Add("graph.auto_replies", "must be mailtips or mailbox_settings, not %q", g.AutoReplies)
	}
	if g.MailTipsBatch < 1 || g.MailTipsBatch > 100 {
		p.Add("graph.mail_tips_batch", "must be between 1 and 100")
	}
	if g.Concurrency < 1 || g.Concurrency > 16 {
		p.Add("graph.concurrency", "must be between 1 and 16")
	}
}

// ewsVersion is what graph.NewEWS accepts as RequestServerVersion.
var ewsVersion = regexp.MustCompile(`^(Exchange20(1\d|[2-9]\d)(_SP\d)?|V20\d\d_\d\d_\d\d)$`)

func (c *Config) validateEWS(p *Problems) {
	e := c.EWS
	if e == nil {
		return
	}
	if u, err := url.Parse(e.URL); e.URL == "" {
		p.Add("ews.url", "is required (https://mail.example.com/EWS/Exchange.asmx)")
	} else if err != nil || u.Scheme != "https" || u.Host == "" {
		p.Add("ews.url", "%q must be an https:// URL (credentials and calendars travel in it)", e.URL)
	} else if u.User != nil {
		p.Add("ews.url", "must not hold credentials: use username and password_file")
	}
	password := e.PasswordFile != "" || e.PasswordEnv != ""
	token := e.TokenFile != "" || e.TokenEnv != ""
	switch e.Auth {
	case "ntlm", "basic":
		if e.Username == "" {
			p.Add("ews.username", "is required for %s auth", e.Auth)
		}
		if !password {
			p.Add("ews", "%s auth needs password_file or password_env", e.Auth)
		}
		if token {
			p.Add("ews", "token_file and token_env are for auth: bearer, not %s", e.Auth)
		}
	case "bearer":
		if !token {
			p.Add("ews", "bearer auth needs token_file or token_env")
		}
		if password || e.Domain != "" {
			p.Add("ews", "password_file, password_env and domain are for ntlm and basic auth, not bearer")
		}
	default:
		p.Add("ews.auth", "must be ntlm, basic or bearer, not %q", e.Auth)
	}
	if e.PasswordFile != "" && e.PasswordEnv != "" {
		p.Add("ews.password_file", "set password_file or password_env, not both")
	}
	if e.TokenFile != "" && e.TokenEnv != "" {
		p.Add("ews.token_file", "set token_file or token_env, not both")
	}
	if e.Domain != "" && strings.ContainsAny(e.Username, `\@`) {
		p.Add("ews.domain", "give the domain either here or in username (%q), not both", e.Username)
	}
	checkFile(p, "ews.password_file", e.PasswordFile)
	checkFile(p, "ews.token_file", e.TokenFile)
	checkFile(p, "ews.ca_file", e.CAFile)
	checkEnv(p, "ews.password_env", e.PasswordEnv)
	checkEnv(p, "ews.token_env", e.TokenEnv)
	for field, a := range map[string]string{"ews.impersonate": e.Impersonate, "ews.sending_as": e.SendingAs} {
		if a != "" && !isAddress(a) {
			p.Add(field, "%q is not a mail address", a)
		}
	}
	if e.SendingAs == "" && e.Impersonate == "" && (!isAddress(e.Username) || e.Domain != "") {
		p.Add("ews.sending_as", "is required: GetMailTips evaluates automatic replies for a sender, the service account's mail address (or set impersonate)")
	}
	if !ewsVersion.MatchString(e.ServerVersion) {
		p.Add("ews.server_version", "%q: use Exchange2010 or later (Exchange2010_SP2, Exchange2013_SP1 …)", e.ServerVersion)
	}
	if e.Timeout.D() < time.Second {
		p.Add("ews.timeout", "must be at least 1s")
	}
	if e.Concurrency < 1 || e.Concurrency > 27 {
		p.Add("ews.concurrency", "must be between 1 and 27 (Exchange's EWSMaxConcurrency)")
	}
	if e.AvailabilityBatch < 1 || e.AvailabilityBatch > 100 {
		p.Add("ews.availability_batch", "must be between 1 and 100 (GetUserAvailability's limit)")
	}
	if e.MailTipsBatch < 1 || e.MailTipsBatch > 100 {
		p.Add("ews.mail_tips_batch", "must be between 1 and 100")
	}
	if e.MaxBackOff.D() < time.Second {
		p.Add("ews.max_back_off", "must be at least 1s")
	}
}

func (c *Config) validateICS(p *Problems) {
	i := c.ICS
	if i == nil {
		return
	}
	if i.URLTemplate == "" && i.URLMapFile == "" {
		p.Add("ics", "set url_template, url_map_file or both (the map wins)")
	}
	checkFile(p, "ics.url_map_file", i.URLMapFile)
	switch {
	case i.Username != "" && i.PasswordFile == "" && i.PasswordEnv == "":
		p.Add("ics.username", "needs password_file or password_env")
	case i.Username == "" && (i.PasswordFile != "" || i.PasswordEnv != ""):
		p.Add("ics.username", "is required with a password")
	case i.PasswordFile != "" && i.PasswordEnv != "":
		p.Add("ics.password_file", "set password_file or password_env, not both")
	}
	checkFile(p, "ics.password_file", i.PasswordFile)
	checkEnv(p, "ics.password_env", i.PasswordEnv)
	checkFile(p, "ics.ca_file", i.CAFile)
	if i.MaxBytes < 1024 || i.MaxBytes > 1<<30 {
		p.Add("ics.max_bytes", "must be between 1024 and 1073741824")
	}
	if i.Timeout.D() < time.Second {
		p.Add("ics.timeout", "must be at least 1s")
	}
	if i.Concurrency < 1 || i.Concurrency > 64 {
		p.Add("ics.concurrency", "must be between 1 and 64")
	}
	if i.Batch < 1 || i.Batch > 1000 {
		p.Add("ics.batch", "must be between 1 and 1000")
	}
	if i.MinInterval < 0 {
		p.Add("ics.min_interval", "must not be negative")
	}
}

func (c *Config) validateRouting(p *Problems) {
	r := c.Calendar.Routing
	srcs := c.CalendarSources()
	used := r.Default != "" || r.Attribute != "" || len(r.Values)+len(r.Domains)+len(r.Mailboxes) > 0
	if len(srcs) == 0 {
		if used {
			p.Add("calendar.routing", "no calendar source is configured (graph, ews or ics)")
		}
		return
	}
	target := func(field, name string) {
		if name != SourceNone && !slices.Contains(srcs, name) {
			p.Add(field, "%q is not a configured calendar source (%s or none)", name, strings.Join(srcs, ", "))
		}
	}
	if r.Default == "" {
		p.Add("calendar.routing.default", "is required with several calendar sources: name one of %s, or none", strings.Join(srcs, ", "))
	} else {
		target("calendar.routing.default", r.Default)
	}
	switch {
	case r.Attribute != "" && !attrName.MatchString(r.Attribute):
		p.Add("calendar.routing.attribute", "%q is not an LDAP attribute name", r.Attribute)
	case r.Attribute != "" && len(r.Values) == 0:
		p.Add("calendar.routing.values", "is required with attribute: which value goes to which source")
	case r.Attribute == "" && len(r.Values) > 0:
		p.Add("calendar.routing.attribute", "is required with values: the LDAP attribute they are values of")
	case r.Attribute != "" && len(c.LDAP) == 0:
		p.Add("calendar.routing.attribute", "only LDAP directories carry attributes, and none is configured")
	}
	for i := range c.LDAP {
		if a := c.LDAP[i].Attributes.CalendarRoute; a != "" && a != r.Attribute && !attrName.MatchString(a) {
			p.Add(fmt.Sprintf("ldap[%d].attributes.calendar_route", i), "%q is not an LDAP attribute name", a)
		}
	}
	for _, k := range sortedKeys(r.Values) {
		target("calendar.routing.values."+k, r.Values[k])
	}
	seen := map[string]string{}
	for _, k := range sortedKeys(r.Domains) {
		f := "calendar.routing.domains." + k
		if k == "" || strings.ContainsAny(k, "@ /") || strings.HasPrefix(k, ".") || strings.HasSuffix(k, ".") {
			p.Add(f, "%q is not a mail domain", k)
		}
		if prev, dup := seen[strings.ToLower(k)]; dup {
			p.Add(f, "%q is listed twice (as %q too)", k, prev)
		}
		seen[strings.ToLower(k)] = k
		target(f, r.Domains[k])
	}
	seen = map[string]string{}
	for _, k := range sortedKeys(r.Mailboxes) {
		f := "calendar.routing.mailboxes." + k
		if !isAddress(k) {
			p.Add(f, "%q is not a mail address", k)
		}
		if prev, dup := seen[strings.ToLower(k)]; dup {
			p.Add(f, "%q is listed twice (as %q too)", k, prev)
		}
		seen[strings.ToLower(k)] = k
		target(f, r.Mailboxes[k])
	}
}

// isAddress is a light check for local@domain (the directory normalizes
// addresses fully; this only catches a wrong kind of value).
func isAddress(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && strings.Count(s, "@") == 1 && !strings.ContainsAny(s, " \t\r\n<>,/\\")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkFile reports a configured file that cannot be found.
func checkFile(p *Problems, field, path string) {
	if path == "" {
		return
	}
	if _, err := os.Stat(path); err != nil {
		p.Add(field, "%v", err)
	}
}

// checkEnv reports a configured environment variable that is not set.
func checkEnv(p *Problems, field, name string) {
	if name == "" {
		return
	}
	if _, ok := os.LookupEnv(name); !ok {
		p.Add(field, "environment variable %s is not set", name)
	}
}
