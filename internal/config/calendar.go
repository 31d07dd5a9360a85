package config

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
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
		base := filepath.Dir(c.path)
		for _, f := range []*string{&g.ClientSecretFile, &g.CertificateFile, &g.CAFile} {
			if *f != "" && !filepath.IsAbs(*f) && c.path != "" {
				*f = filepath.Join(base, *f)
			}
		}
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
