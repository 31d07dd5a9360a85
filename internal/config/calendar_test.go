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
