package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencegw/presencegw/graph/ewstest"
	"github.com/presencegw/presencegw/graph/graphtest"
	"github.com/presencegw/presencegw/internal/testenv"
)

// routeLDIF is a hybrid organisation: employeeType stands in for
// msExchRecipientTypeDetails (1 on-premises mailbox, 2147483648 remote,
// i.e. online), as the test directory has no Exchange schema.
const routeLDIF = `dn: cn=Alice,ou=Users,dc=example,dc=com
objectClass: user
cn: Alice
sn: A
sAMAccountName: alice
mail: alice@example.com
employeeType: 1
uSNChanged: 100

dn: cn=Bob,ou=Users,dc=example,dc=com
objectClass: user
cn: Bob
sn: B
sAMAccountName: bob
mail: bob@example.com
employeeType: 2147483648
uSNChanged: 101

dn: cn=Carol,ou=Users,dc=example,dc=com
objectClass: user
cn: Carol
sn: C
sAMAccountName: carol
mail: carol@example.com
employeeType: 2147483648
uSNChanged: 102

dn: cn=Dave,ou=Users,dc=example,dc=com
objectClass: user
cn: Dave
sn: D
sAMAccountName: dave
mail: dave@onprem.example.com
uSNChanged: 103

dn: cn=Erin,ou=Users,dc=example,dc=com
objectClass: user
cn: Erin
sn: E
sAMAccountName: erin
mail: erin@example.com
employeeType: 128
uSNChanged: 104
`

// The whole chain with three sources: the directory's attribute sends
// alice to Exchange on premises (the fake EWS, over NTLM) and bob to
// Graph; carol's own rule sends her to an ICS feed (the map file's, not
// the template's); dave's domain sends him to EWS; erin's value (128) has
// no rule, so she falls to the default, none. Each must get their calendar state from their source, and
// no source may be asked for anyone else's mailbox.
func TestServeRoutesCalendars(t *testing.T) {
	now := time.Now().UTC()
	start, end := now.Add(-10*time.Minute).Truncate(time.Minute), now.Add(time.Hour).Truncate(time.Minute)

	ews := ewstest.New(t)
	ews.SetMailbox("alice@example.com", ewstest.Mailbox{Events: []ewstest.Event{{Start: start, End: end, BusyType: "Busy", Subject: "Budget", IsMeeting: true}}})
	ews.SetMailbox("dave@onprem.example.com", ewstest.Mailbox{OOF: &ewstest.OOF{Message: "On leave until Monday."}})

	gfake := graphtest.New(t)
	gfake.SetMailbox("bob@example.com", graphtest.Mailbox{AutoReply: &graphtest.AutoReply{Message: "<p>Back on Monday.</p>"}})

	var feedMu sync.Mutex
	var feedPaths []string
	feeds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		feedMu.Lock()
		feedPaths = append(feedPaths, r.URL.Path)
		feedMu.Unlock()
		if r.URL.Path != "/secret/7f3a/carol.ics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/calendar")
		fmt.Fprintf(w, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:1@test\r\nDTSTAMP:20240101T000000Z\r\n"+
			"DTSTART:%s\r\nDTEND:%s\r\nSUMMARY:Standup\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", start.Format("20060102T150405Z"), end.Format("20060102T150405Z"))
	}))
	t.Cleanup(feeds.Close)

	slapd := testenv.StartSlapd(t, testenv.SlapdOptions{LDIF: []string{routeLDIF}})
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ldap.password", slapd.BindPW)
	write("ews.password", ews.Password)
	write("feeds.csv", "mailbox,url\ncarol@example.com,"+feeds.URL+"/secret/7f3a/carol.ics\n")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(dir, "config.yaml")
	write("config.yaml", fmt.Sprintf(`listen: %s
store: state.db
ldap:
  - name: ad
    url: %s
    bind_dn: %s
    bind_password_file: ldap.password
    base_dn: ou=Users,dc=example,dc=com
    user_filter: (objectClass=user)
    jid:
      template: "{{.sAMAccountName}}@chat.example.com"
%sews:
  url: %s
  username: %s
  domain: %s
  password_file: ews.password
  sending_as: svc-presence@example.com
  ca_file: %s
ics:
  url_template: %s/public/{{.localpart}}.ics
  url_map_file: feeds.csv
calendar:
  # Four batches (one per route) spread over the interval: 2.5 s apart.
  poll_interval: 10s
  auto_reply_interval: 10s
  routing:
    default: none
    attribute: employeeType
    values:
      1: ews
      2147483648: graph
    domains:
      onprem.example.com: ews
    mailboxes:
      carol@example.com: ics
`, addr, slapd.URL, slapd.BindDN, graphFiles(t, dir, gfake),
		ews.EWSURL(), ews.Username, ews.Domain, ews.CAFile(t), feeds.URL))

	ctx, cancel := context.WithCancel(context.Background())
	var logs testenv.Buffer
	done := make(chan int)
	go func() { done <- run(ctx, []string{"serve", "-c", cfg}, io.Discard, &logs) }()
	wants := []string{
		`msg="presence changed" mailbox=alice@example.com state=busy status="In a meeting until `,
		`msg="presence changed" mailbox=bob@example.com state=oof status="Out of office: Back on Monday."`,
		`msg="presence changed" mailbox=carol@example.com state=busy status="In a meeting until `,
		`msg="presence changed" mailbox=dave@onprem.example.com state=oof status="Out of office: On leave until Monday."`,
	}
	l := waitLogLines(t, &logs, wants, 45*time.Second) // generous: CI machines are shared
	if strings.Contains(l, "mailbox=erin@example.com state=busy") || strings.Contains(l, "mailbox=erin@example.com state=oof") {
		t.Errorf("erin has no calendar, yet:\n%s", l)
	}

	// Each source was asked for its own people only.
	asked := map[string]bool{}
	for _, r := range ews.Requests() {
		for _, mb := range r.Mailboxes {
			asked[mb] = true
			if mb != "alice@example.com" && mb != "dave@onprem.example.com" {
				t.Errorf("EWS %s asked for %s", r.Operation, mb)
			}
		}
		if r.Auth != "NTLM" {
			t.Errorf("EWS request authenticated by %q, want NTLM", r.Auth)
		}
	}
	if !asked["alice@example.com"] || !asked["dave@onprem.example.com"] {
		t.Errorf("EWS was asked for %v, want alice and dave", asked)
	}
	for _, r := range gfake.Requests() {
		for _, mb := range r.Mailboxes {
			if mb != "bob@example.com" {
				t.Errorf("Graph %s asked for %s", r.Path, mb)
			}
		}
	}
	feedMu.Lock()
	if slices.ContainsFunc(feedPaths, func(p string) bool { return p != "/secret/7f3a/carol.ics" }) || len(feedPaths) == 0 {
		t.Errorf("feeds fetched: %v, want carol's mapped feed only", feedPaths)
	}
	feedMu.Unlock()

	if code, body := getText(addr, "/readyz"); code != http.StatusOK {
		t.Errorf("readyz = %d %s, want ready: every source has read its people", code, body)
	}
	_, metrics := getText(addr, "/metrics")
	for _, want := range []string{
		`presencegw_calendar_routed_mailboxes{source="ews"} 2`,
		`presencegw_calendar_routed_mailboxes{source="graph"} 1`,
		`presencegw_calendar_routed_mailboxes{source="ics"} 1`,
		`presencegw_calendar_routed_mailboxes{source="none"} 1`,
		`presencegw_calendar_source_calls_total{kind="schedules",result="ok",source="ews"}`,
		`presencegw_ews_requests_total{operation="GetUserAvailability"}`,
		`presencegw_graph_requests_total{status="200"}`,
		`presencegw_ics_requests_total{result="ok"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exited %d:\n%s", code, l)
	}

	// resolve says which source serves a person, and why.
	for addr, want := range map[string]string{
		"alice@example.com":       `calendar:   ews (employeeType is "1")`,
		"carol@example.com":       `calendar:   ics (calendar.routing.mailboxes names carol@example.com)`,
		"dave@onprem.example.com": `calendar:   ews (the domain of dave@onprem.example.com)`,
		"erin@example.com":        `calendar:   none (the default: no rule for employeeType "128")`,
	} {
		var out, errOut strings.Builder
		run(context.Background(), []string{"resolve", "-c", cfg, addr}, &out, &errOut)
		if !strings.Contains(out.String(), want) {
			t.Errorf("resolve %s lacks %q:\n%s%s", addr, want, out.String(), errOut.String())
		}
	}

	// doctor says where everyone goes and reaches every source.
	var out, errOut strings.Builder
	code := run(context.Background(), []string{"doctor", "-c", cfg}, &out, &errOut)
	o := out.String()
	t.Logf("doctor:\n%s", o)
	for _, want := range []string{
		"calendar routing: 5 mailboxes; default none, attribute employeeType (2 values), 1 domain, 1 single mailbox\n",
		"calendar routing → graph: 1 mailbox (attribute 1)\n",
		"calendar routing → ews: 2 mailboxes (attribute 1, domain 1)\n",
		"calendar routing → ics: 1 mailbox (mailbox 1)\n",
		"calendar routing → none: 1 mailbox (default 1)\n",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, o)
		}
	}
	// Erin's value (128, a mail user in Exchange terms) has no rule: she
	// falls to the default, and doctor says which values did.
	if want := `calendar routing: employeeType values no rule names, routed by domain or default: "128" (1)` + "\n"; !strings.Contains(o, want) {
		t.Errorf("doctor output lacks %q:\n%s", want, o)
	}
	for _, want := range []string{"calendar graph at 127.0.0.1:", "calendar ews at 127.0.0.1:", "calendar ics: ok (schedule and automatic reply of carol@example.com read, 1 event in the next hour)"} {
		if !strings.Contains(o, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, o)
		}
	}
	if strings.Count(o, ": ok (schedule and automatic reply of") != 3 {
		t.Errorf("doctor did not reach all three sources:\n%s", o)
	}
	// doctor fails only for the XMPP part here (none configured: ok).
	if code != 0 {
		t.Errorf("doctor exited %d:\n%s\n%s", code, o, errOut.String())
	}
}
