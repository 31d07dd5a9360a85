package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCalendarConfig(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "graph.secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	good := `graph:
  tenant_id: 11111111-2222-3333-4444-555555555555
  client_id: presencegw
  client_secret_file: graph.secret
calendar:
  poll_interval: 2m
policy:
  automatic: [oof]
  tentative: free
  texts:
    meeting: "Besprechung bis {{.Until}}"
`
	c, err := Parse(filepath.Join(dir, "c.yaml"), []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Graph.ClientSecretFile != secret || c.Graph.BaseURL != "https://graph.microsoft.com/v1.0" || c.Graph.MailTipsBatch != 50 {
		t.Errorf("graph = %+v", c.Graph)
	}
	if c.Calendar.PollInterval.D() != 2*time.Minute || c.Calendar.AutoReplyInterval.D() != 15*time.Minute || c.Calendar.LookAhead.D() != 8*time.Hour {
		t.Errorf("calendar = %+v", c.Calendar)
	}
	bad := `graph:
  client_id: presencegw
  client_secret_file: graph.secret
  client_secret_env: GRAPH_SECRET
  base_url: http://graph.example
calendar:
  poll_interval: 5s
  look_ahead: 63d
policy:
  automatic: [meetings, holidays]
  tentative: maybe
  all_day: sometimes
  texts:
    weekdays: [So, Mo]
`
	_, err = Parse("c.yaml", []byte(bad))
	if err == nil {
		t.Fatal("bad calendar config accepted")
	}
	for _, want := range []string{
		`c.yaml:8: "63d" is not a duration like 90s, 5m or 6h`,
		`c.yaml:7: calendar.poll_interval: must be at least 10s`,
		`c.yaml:10: policy.automatic: item 1: "holidays": use meetings and/or oof`,
		`c.yaml:11: policy.tentative: must be busy or free, not "maybe"`,
		`c.yaml:12: policy.all_day: must be ignore or respect, not "sometimes"`,
		`c.yaml:14: policy.texts.weekdays: needs 7 names (Sunday first), not 2`,
		`c.yaml:1: graph.tenant_id: is required`,
		`c.yaml:1: graph: set exactly one of client_secret_file, client_secret_env, certificate_file`,
		`c.yaml:5: graph.base_url: "http://graph.example" must be an https:// URL`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}

// calendarSources writes the files the source sections name and returns
// the directory.
func calendarSources(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"graph.secret", "ews.password", "ews.token", "feeds.csv", "ca.pem"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const graphSection = `graph:
  tenant_id: t
  client_id: c
  client_secret_file: graph.secret
`

const ldapSection = `ldap:
  - name: ad
    url: ldaps://dc.example.com
    base_dn: dc=example,dc=com
    jid:
      template: "{{.sAMAccountName}}@chat.example.com"
`

func TestCalendarSourcesGood(t *testing.T) {
	dir := calendarSources(t)
	t.Setenv("EWS_TOKEN", "tok")
	cases := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{"graph alone, as before", graphSection, func(t *testing.T, c *Config) {
			if got := c.CalendarSources(); len(got) != 1 || got[0] != "graph" {
				t.Errorf("sources = %v", got)
			}
			if c.Calendar.Routing.Default != "graph" {
				t.Errorf("default route = %q, want graph (the only source)", c.Calendar.Routing.Default)
			}
		}},
		{"hybrid", graphSection + ldapSection + `ews:
  url: https://mail.example.com/EWS/Exchange.asmx
  username: svc-presence
  domain: EXAMPLE
  password_file: ews.password
  sending_as: svc-presence@example.com
  ca_file: ca.pem
calendar:
  routing:
    default: graph
    attribute: msExchRecipientTypeDetails
    values:
      1: ews
      2147483648: graph
    domains:
      Legacy.Example.com: ews
    mailboxes:
      room-1@example.com: none
`, func(t *testing.T, c *Config) {
			e := c.EWS
			if e.Auth != "ntlm" || e.ServerVersion != "Exchange2013_SP1" || e.AvailabilityBatch != 100 || e.MailTipsBatch != 50 ||
				e.Concurrency != 4 || e.Timeout.D() != time.Minute || e.PasswordFile != filepath.Join(dir, "ews.password") || e.CAFile != filepath.Join(dir, "ca.pem") {
				t.Errorf("ews = %+v", e)
			}
			r := c.Calendar.Routing
			if r.Values["1"] != "ews" || r.Values["2147483648"] != "graph" || r.Mailboxes["room-1@example.com"] != "none" {
				t.Errorf("routing = %+v", r)
			}
			if a := c.LDAP[0].Attributes.CalendarRoute; a != "msExchRecipientTypeDetails" {
				t.Errorf("ldap reads %q for routing", a)
			}
		}},
		{"a directory reads another attribute", graphSection + ldapSection + `    attributes:
      calendar_route: extensionAttribute7
  - name: lab
    url: ldaps://lab.example.com
    base_dn: dc=lab,dc=example,dc=com
    jid:
      attribute: jabberID
calendar:
  routing:
    attribute: msExchRecipientTypeDetails
    values: {"1": graph, "onprem": graph}
`, func(t *testing.T, c *Config) {
			if a, b := c.LDAP[0].Attributes.CalendarRoute, c.LDAP[1].Attributes.CalendarRoute; a != "extensionAttribute7" || b != "msExchRecipientTypeDetails" {
				t.Errorf("directories read %q and %q", a, b)
			}
		}},
		{"ics with a map", `ics:
  url_template: https://cloud.example.com/remote.php/dav/public-calendars/{{.localpart}}?export
  url_map_file: feeds.csv
`, func(t *testing.T, c *Config) {
			i := c.ICS
			if i.MaxBytes != 10<<20 || i.Timeout.D() != 30*time.Second || i.Concurrency != 8 || i.Batch != 10 || i.URLMapFile != filepath.Join(dir, "feeds.csv") {
				t.Errorf("ics = %+v", i)
			}
			if c.Calendar.Routing.Default != "ics" {
				t.Errorf("default = %q", c.Calendar.Routing.Default)
			}
		}},
		{"ews bearer from the environment", `ews:
  url: https://mail.example.com/EWS/Exchange.asmx
  auth: bearer
  token_env: EWS_TOKEN
  impersonate: svc@example.com
  server_version: Exchange2016
  availability_batch: 50
`, func(t *testing.T, c *Config) {
			if c.EWS.AvailabilityBatch != 50 || c.EWS.ServerVersion != "Exchange2016" {
				t.Errorf("ews = %+v", c.EWS)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(filepath.Join(dir, "c.yaml"), []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestCalendarSourcesBad(t *testing.T) {
	dir := calendarSources(t)
	cases := []struct {
		name string
		yaml string
		want []string // every problem, in order
	}{
		{"routing without a source", `calendar:
  routing:
    default: ews
`, []string{"c.yaml:2: calendar.routing: no calendar source is configured (graph, ews or ics)"}},
		{"several sources, no default", graphSection + `ics:
  url_map_file: feeds.csv
`, []string{"c.yaml: calendar.routing.default: is required with several calendar sources: name one of graph, ics, or none"}},
		{"unknown targets and bad keys", graphSection + ldapSection + `ics:
  url_map_file: feeds.csv
calendar:
  routing:
    default: exchange
    attribute: "msExch RecipientTypeDetails"
    values:
      "1": ews
    domains:
      "@example.com": ics
      onprem.example.com: graph
      OnPrem.example.com: ics
    mailboxes:
      nobody: none
`, []string{
			`c.yaml:15: calendar.routing.default: "exchange" is not a configured calendar source (graph, ics or none)`,
			`c.yaml:16: calendar.routing.attribute: "msExch RecipientTypeDetails" is not an LDAP attribute name`,
			`c.yaml:18: calendar.routing.values.1: "ews" is not a configured calendar source (graph, ics or none)`,
			`c.yaml:20: calendar.routing.domains.@example.com: "@example.com" is not a mail domain`,
			`c.yaml:21: calendar.routing.domains.onprem.example.com: "onprem.example.com" is listed twice (as "OnPrem.example.com" too)`,
			`c.yaml:24: calendar.routing.mailboxes.nobody: "nobody" is not a mail address`,
		}},
		{"attribute without values", graphSection + `calendar:
  routing:
    attribute: msExchRecipientTypeDetails
`, []string{
			"c.yaml:6: calendar.routing.values: is required with attribute: which value goes to which source",
		}},
		{"values without attribute", graphSection + `calendar:
  routing:
    values: {"1": graph}
`, []string{"c.yaml:6: calendar.routing.attribute: is required with values: the LDAP attribute they are values of"}},
		{"attribute without ldap", graphSection + `calendar:
  routing:
    attribute: msExchRecipientTypeDetails
    values: {"1": graph}
`, []string{"c.yaml:7: calendar.routing.attribute: only LDAP directories carry attributes, and none is configured"}},
		{"ews everything wrong", `ews:
  url: http://user:pw@mail.example.com/EWS/Exchange.asmx
  auth: kerberos
  password_file: missing.password
  password_env: EWS_PW_NOT_SET
  server_version: Exchange2007
  concurrency: 100
  availability_batch: 101
  mail_tips_batch: -1
  timeout: 10ms
  impersonate: svc
`, []string{
			`c.yaml:2: ews.url: "http://user:pw@mail.example.com/EWS/Exchange.asmx" must be an https:// URL (credentials and calendars travel in it)`,
			`c.yaml:3: ews.auth: must be ntlm, basic or bearer, not "kerberos"`,
			`c.yaml:4: ews.password_file: set password_file or password_env, not both`,
			"c.yaml:4: ews.password_file: stat " + filepath.Join(dir, "missing.password") + ": no such file or directory",
			"c.yaml:5: ews.password_env: environment variable EWS_PW_NOT_SET is not set",
			`c.yaml:11: ews.impersonate: "svc" is not a mail address`,
			`c.yaml:6: ews.server_version: "Exchange2007": use Exchange2010 or later (Exchange2010_SP2, Exchange2013_SP1 …)`,
			"c.yaml:10: ews.timeout: must be at least 1s",
			"c.yaml:7: ews.concurrency: must be between 1 and 27 (Exchange's EWSMaxConcurrency)",
			"c.yaml:8: ews.availability_batch: must be between 1 and 100 (GetUserAvailability's limit)",
			"c.yaml:9: ews.mail_tips_batch: must be between 1 and 100",
		}},
		{"ews ntlm incomplete", `ews:
  url: https://mail.example.com/EWS/Exchange.asmx
  domain: EXAMPLE
  token_file: ews.token
`, []string{
			"c.yaml:1: ews.username: is required for ntlm auth",
			"c.yaml:1: ews: ntlm auth needs password_file or password_env",
			"c.yaml:1: ews: token_file and token_env are for auth: bearer, not ntlm",
			"c.yaml:1: ews.sending_as: is required: GetMailTips evaluates automatic replies for a sender, the service account's mail address (or set impersonate)",
		}},
		{"ews bearer with a password", `ews:
  url: https://mail.example.com/EWS/Exchange.asmx
  auth: bearer
  username: EXAMPLE\svc
  domain: EXAMPLE
  password_file: ews.password
  sending_as: svc@example.com
`, []string{
			"c.yaml:1: ews: bearer auth needs token_file or token_env",
			"c.yaml:1: ews: password_file, password_env and domain are for ntlm and basic auth, not bearer",
			`c.yaml:5: ews.domain: give the domain either here or in username ("EXAMPLE\\svc"), not both`,
		}},
		{"ics", `ics:
  username: reader
  max_bytes: 10
  concurrency: 0
  batch: 5000
  timeout: 1ms
  min_interval: -1m
`, []string{
			"c.yaml:1: ics: set url_template, url_map_file or both (the map wins)",
			"c.yaml:2: ics.username: needs password_file or password_env",
			"c.yaml:3: ics.max_bytes: must be between 1024 and 1073741824",
			"c.yaml:6: ics.timeout: must be at least 1s",
			"c.yaml:5: ics.batch: must be between 1 and 1000",
			"c.yaml:7: ics.min_interval: must not be negative",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(filepath.Join(dir, "c.yaml"), []byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			got := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator)+"c.yaml", "c.yaml")
			if want := strings.Join(tc.want, "\n"); got != want {
				t.Errorf("problems:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
