package configs

import (
	"strings"
	"testing"

	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/ldapmap"
)

// The example must be valid except for what only a real host has: the
// certificate and password files and the environment variable.
func TestExampleConfigIsValid(t *testing.T) {
	_, err := config.Load("presencegw.yaml", ldapmap.CheckLDAPConfig)
	if err == nil {
		t.Fatal("want the host-specific problems (missing files, unset variable) reported")
	}
	if !strings.Contains(err.Error(), "xmpp.secret_file") {
		t.Error("the example has no xmpp section (or it is not checked)")
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.Contains(line, "no such file or directory") && (strings.Contains(line, ".ca_file") || strings.Contains(line, ".bind_password_file") || strings.Contains(line, "graph.client_secret_file") || strings.Contains(line, "ews.password_file") || strings.Contains(line, "web.kopano.secret_file") || strings.Contains(line, "xmpp.secret_file")) {
			continue
		}
		if strings.Contains(line, "environment variable LAB_LDAP_PASSWORD is not set") {
			continue
		}
		t.Errorf("example config: %s", line)
	}
}
