package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestXMPPDefaults(t *testing.T) {
	if Defaults().XMPP != nil {
		t.Error("an XMPP component is configured by default")
	}
	c, err := Parse("c.yaml", lines("listen: 127.0.0.1:8080"))
	if err != nil || c.XMPP != nil {
		t.Errorf("without an xmpp section: %+v, %v", c.XMPP, err)
	}
	dir := t.TempDir()
	secret := writeFile(t, dir, "secrets/xmpp.secret", "s3cret\n")
	c, err = Parse(filepath.Join(dir, "c.yaml"), lines(
		"xmpp:",
		"  server: 127.0.0.1:5347",
		"  jid: calendar.example.com",
		"  secret_file: secrets/xmpp.secret",
	))
	if err != nil {
		t.Fatal(err)
	}
	want := &XMPP{Server: "127.0.0.1:5347", JID: "calendar.example.com", SecretFile: secret,
		Hosts: []string{"example.com"}, SendRate: 200, Burst: 50,
		ReconnectMax: Duration(time.Minute), Grace: Duration(2 * time.Minute), Visibility: "status"}
	if !reflect.DeepEqual(c.XMPP, want) {
		t.Errorf("xmpp = %+v\nwant %+v", c.XMPP, want)
	}
	// Single-label parents the component accepts: localhost and *test.
	for jid, host := range map[string]string{"calendar.localhost": "localhost", "gw.example.test": "example.test", "cal.test": "test"} {
		c, err := Parse(filepath.Join(dir, "c.yaml"), lines("xmpp:", "  server: localhost:5347", "  jid: "+jid, "  secret_file: secrets/xmpp.secret"))
		if err != nil || !reflect.DeepEqual(c.XMPP.Hosts, []string{host}) {
			t.Errorf("jid %s: hosts %v, %v; want [%s]", jid, c.XMPP.Hosts, err, host)
		}
	}
}

func TestXMPPEverySetting(t *testing.T) {
	t.Setenv("PRESENCEGW_TEST_XMPP_SECRET", "s3cret")
	ca := writeFile(t, t.TempDir(), "ca.pem", "-----BEGIN CERTIFICATE-----\n")
	c, err := Parse("/etc/presencegw/c.yaml", lines(
		"xmpp:",
		"  server: '[::1]:5275'",
		"  jid: presence.chat.example.com",
		"  secret_env: PRESENCEGW_TEST_XMPP_SECRET",
		"  hosts: [chat.example.com, lab.example.com]",
		"  admins: [it-ops@chat.example.com, Ann@lab.example.com]",
		"  send_rate: 12.5",
		"  burst: 5",
		"  reconnect_max: 30s",
		"  grace: 5m",
		"  visibility: calendar",
		"  sessions_api: http://127.0.0.1:5280/api",
		"  client_server: 127.0.0.1:5223",
		"  client_ca_file: "+ca,
		"  client_tls_name: chat.example.com",
		"  shadow_contacts: true",
		"  scheduled_overlays: false",
	))
	if err != nil {
		t.Fatal(err)
	}
	want := &XMPP{Server: "[::1]:5275", JID: "presence.chat.example.com", SecretEnv: "PRESENCEGW_TEST_XMPP_SECRET",
		Hosts: []string{"chat.example.com", "lab.example.com"}, Admins: []string{"it-ops@chat.example.com", "Ann@lab.example.com"},
		SendRate: 12.5, Burst: 5, ReconnectMax: Duration(30 * time.Second), Grace: Duration(5 * time.Minute), Visibility: "calendar",
		SessionsAPI: "http://127.0.0.1:5280/api", ClientServer: "127.0.0.1:5223", ClientCAFile: ca,
		ClientTLSName: "chat.example.com", ShadowContacts: true, ScheduledOverlays: new(bool)}
	if !reflect.DeepEqual(c.XMPP, want) {
		t.Errorf("xmpp = %+v\nwant %+v", c.XMPP, want)
	}
}

func TestXMPPProblems(t *testing.T) {
	const cfg = "/etc/presencegw/config.yaml"
	t.Setenv("PRESENCEGW_TEST_XMPP_SECRET", "s3cret")
	// base is a valid section; each case adds or replaces lines.
	base := []string{
		"xmpp:",
		"  server: 127.0.0.1:5347",
		"  jid: calendar.example.com",
		"  secret_env: PRESENCEGW_TEST_XMPP_SECRET",
	}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	tests := []struct {
		name string
		src  []string
		want []string
	}{
		{
			name: "empty section",
			src:  []string{"xmpp:"},
			want: []string{`F:1: xmpp: is empty: set server, jid and secret_file or secret_env, or remove the section`},
		},
		{
			name: "required settings",
			src:  []string{"xmpp: {}"},
			want: []string{
				`F:1: xmpp.server: is required: the XMPP server's component port as host:port, e.g. 127.0.0.1:5347`,
				`F:1: xmpp.jid: is required: the component's address, e.g. calendar.example.com`,
				`F:1: xmpp: set secret_file or secret_env (one of them): the component's handshake secret`,
			},
		},
		{
			name: "server without port",
			src:  []string{"xmpp:", "  server: xmpp.example.com", "  jid: calendar.example.com", "  secret_env: PRESENCEGW_TEST_XMPP_SECRET"},
			want: []string{`F:2: xmpp.server: "xmpp.example.com" must be host:port (the component port, e.g. 127.0.0.1:5347)`},
		},
		{
			name: "server URL",
			src:  []string{"xmpp:", "  server: xmpp://xmpp.example.com:5347", "  jid: calendar.example.com", "  secret_env: PRESENCEGW_TEST_XMPP_SECRET"},
			want: []string{`F:2: xmpp.server: "xmpp://xmpp.example.com:5347" must be host:port (the component port, e.g. 127.0.0.1:5347)`},
		},
		{
			name: "server without host",
			src:  []string{"xmpp:", "  server: ':5347'", "  jid: calendar.example.com", "  secret_env: PRESENCEGW_TEST_XMPP_SECRET"},
			want: []string{`F:2: xmpp.server: ":5347" has no host`},
		},
		{
			name: "server port out of range",
			src:  []string{"xmpp:", "  server: localhost:65536", "  jid: calendar.example.com", "  secret_env: PRESENCEGW_TEST_XMPP_SECRET"},
			want: []string{`F:2: xmpp.server: port "65536" is not a port number`},
		},
		{
			name: "server port by name",
			src:  []string{"xmpp:", "  server: localhost:xmpp-component", "  jid: calendar.example.com", "  secret_env: PRESENCEGW_TEST_XMPP_SECRET"},
			want: []string{`F:2: xmpp.server: port "xmpp-component" is not a port number`},
		},
		{
			name: "jid with a local part",
			src:  []string{"xmpp:", "  server: localhost:5347", "  jid: bot@calendar.example.com", "  secret_env: PRESENCEGW_TEST_XMPP_SECRET"},
			want: []string{`F:3: xmpp.jid: "bot@calendar.example.com" must be a bare domain such as calendar.example.com (no @ or /)`},
		},
		{
			name: "jid with a resource",
			src:  []string{"xmpp:", "  server: localhost:5347", "  jid: calendar.example.com/gw", "  secret_env: PRESENCEGW_TEST_XMPP_SECRET"},
			want: []string{`F:3: xmpp.jid: "calendar.example.com/gw" must be a bare domain such as calendar.example.com (no @ or /)`},
		},
		{
			name: "jid not a domain",
			src:  []string{"xmpp:", "  server: localhost:5347", "  jid: cal_endar.example.com", "  secret_env: PRESENCEGW_TEST_XMPP_SECRET"},
			want: []string{`F:3: xmpp.jid: "cal_endar.example.com" is not a domain: '_' is not allowed`},
		},
		{
			name: "jid with an empty label",
			src:  []string{"xmpp:", "  server: localhost:5347", "  jid: calendar..example.com", "  secret_env: PRESENCEGW_TEST_XMPP_SECRET"},
			want: []string{`F:3: xmpp.jid: "calendar..example.com" is not a domain: empty label`},
		},
		{
			name: "jid label with a hyphen at its end",
			src:  []string{"xmpp:", "  server: localhost:5347", "  jid: calendar-.example.com", "  secret_env: PRESENCEGW_TEST_XMPP_SECRET"},
			want: []string{`F:3: xmpp.jid: "calendar-.example.com" is not a domain: a label starts or ends with '-'`},
		},
		{
			name: "hosts cannot be derived",
			src:  []string{"xmpp:", "  server: localhost:5347", "  jid: calendar.intranet", "  secret_env: PRESENCEGW_TEST_XMPP_SECRET"},
			want: []string{`F:1: xmpp.hosts: is required: the users' domain cannot be derived from jid "calendar.intranet"`},
		},
		{
			name: "single-label jid",
			src:  []string{"xmpp:", "  server: localhost:5347", "  jid: calendar", "  secret_env: PRESENCEGW_TEST_XMPP_SECRET"},
			want: []string{`F:1: xmpp.hosts: is required: the users' domain cannot be derived from jid "calendar"`},
		},
		{
			name: "both secrets",
			src:  with("  secret_file: /nonexistent/xmpp.secret"),
			want: []string{
				`F:1: xmpp: set secret_file or secret_env (one of them): the component's handshake secret`,
				`F:5: xmpp.secret_file: stat /nonexistent/xmpp.secret: no such file or directory`,
			},
		},
		{
			name: "secret file missing",
			src:  []string{"xmpp:", "  server: localhost:5347", "  jid: calendar.example.com", "  secret_file: xmpp.secret"},
			want: []string{`F:4: xmpp.secret_file: stat /etc/presencegw/xmpp.secret: no such file or directory`},
		},
		{
			name: "secret variable unset",
			src:  []string{"xmpp:", "  server: localhost:5347", "  jid: calendar.example.com", "  secret_env: PRESENCEGW_TEST_UNSET_VARIABLE"},
			want: []string{`F:4: xmpp.secret_env: environment variable PRESENCEGW_TEST_UNSET_VARIABLE is not set`},
		},
		{
			name: "empty hosts",
			src:  with("  hosts: []"),
			want: []string{`F:5: xmpp.hosts: is empty: list the users' domains, or remove the key for jid's parent domain`},
		},
		{
			name: "bad hosts",
			src:  with("  hosts:", "    - example.com", "    - chat example.com", "    - Example.COM", "    - calendar.example.com", "    - alice@example.com"),
			want: []string{
				`F:7: xmpp.hosts[1]: "chat example.com" is not a domain: ' ' is not allowed`,
				`F:8: xmpp.hosts[2]: "Example.COM" is already listed as xmpp.hosts[0]`,
				`F:9: xmpp.hosts[3]: "calendar.example.com" is the component's own jid: hosts are the users' domains`,
				`F:10: xmpp.hosts[4]: "alice@example.com" is not a domain: '@' is not allowed`,
			},
		},
		{
			name: "bad admins",
			src: with("  admins:",
				"    - it-ops@example.com",
				"    - example.com",
				"    - it-ops@example.com/laptop",
				"    - it ops@example.com",
				"    - it-ops@example..com",
				"    - IT-Ops@Example.com",
				"    - '@example.com'"),
			want: []string{
				`F:7: xmpp.admins[1]: "example.com" is not a bare JID (like admin@example.com): no local part`,
				`F:8: xmpp.admins[2]: "it-ops@example.com/laptop" is not a bare JID (like admin@example.com): a resource is not allowed`,
				`F:9: xmpp.admins[3]: "it ops@example.com" is not a bare JID (like admin@example.com): forbidden character in the local part`,
				`F:10: xmpp.admins[4]: "it-ops@example..com" is not a bare JID (like admin@example.com): domain: empty label`,
				`F:11: xmpp.admins[5]: "IT-Ops@Example.com" is already listed as xmpp.admins[0]`,
				`F:12: xmpp.admins[6]: "@example.com" is not a bare JID (like admin@example.com): no local part`,
			},
		},
		{
			name: "explicit zeros",
			src:  with("  send_rate: 0", "  burst: 0", "  reconnect_max: 0s", "  grace: 0s"),
			want: []string{
				`F:5: xmpp.send_rate: must be a number of overlay requests per second above 0 (default 200)`,
				`F:6: xmpp.burst: must be at least 1 (default 50)`,
				`F:7: xmpp.reconnect_max: must be between 1s and 1h (default 1m)`,
				`F:8: xmpp.grace: must be between 1s and 1h (default 2m)`,
			},
		},
		{
			name: "out of range",
			src:  with("  send_rate: -5", "  burst: -1", "  reconnect_max: 2h", "  grace: 500ms"),
			want: []string{
				`F:5: xmpp.send_rate: must be a number of overlay requests per second above 0 (default 200)`,
				`F:6: xmpp.burst: must be at least 1 (default 50)`,
				`F:7: xmpp.reconnect_max: must be between 1s and 1h (default 1m)`,
				`F:8: xmpp.grace: must be between 1s and 1h (default 2m)`,
			},
		},
		{
			name: "infinite send rate",
			src:  with("  send_rate: .inf"),
			want: []string{`F:5: xmpp.send_rate: must be a number of overlay requests per second above 0 (default 200)`},
		},
		{
			name: "send rate not a number",
			src:  with("  send_rate: .nan"),
			want: []string{`F:5: xmpp.send_rate: must be a number of overlay requests per second above 0 (default 200)`},
		},
		{
			name: "grace not a duration",
			src:  with("  grace: 2 minutes"),
			want: []string{
				`F:5: "2 minutes" is not a duration like 90s, 5m or 6h`,
				`F:5: xmpp.grace: must be between 1s and 1h (default 2m)`,
			},
		},
		{
			name: "bad visibility",
			src:  with("  visibility: everything"),
			want: []string{`F:5: xmpp.visibility: must be state, status or calendar, not "everything"`},
		},
		{
			name: "sessions_api not a URL",
			src:  with("  sessions_api: 127.0.0.1:5280"),
			want: []string{`F:5: xmpp.sessions_api: "127.0.0.1:5280" must be an http(s) URL, e.g. http://127.0.0.1:5280/api`},
		},
		{
			name: "client_server without a port",
			src:  with("  sessions_api: http://127.0.0.1:5280/api", "  client_server: chat.example.com"),
			want: []string{`F:6: xmpp.client_server: "chat.example.com" must be host:port, e.g. 127.0.0.1:5222`},
		},
		{
			name: "client_server port out of range",
			src:  with("  sessions_api: http://127.0.0.1:5280/api", "  client_server: chat.example.com:70000"),
			want: []string{`F:6: xmpp.client_server: "chat.example.com:70000": port must be 1-65535`},
		},
		{
			name: "calendar-session settings without sessions_api",
			src:  with("  client_server: 127.0.0.1:5222", "  client_tls_name: chat.example.com"),
			want: []string{
				`F:5: xmpp.client_server: is only used by the ejabberd calendar sessions, which need sessions_api`,
				`F:6: xmpp.client_tls_name: is only used by the ejabberd calendar sessions, which need sessions_api`,
			},
		},
		{
			name: "client_ca_file missing, client_tls_name not a domain",
			src:  with("  sessions_api: http://127.0.0.1:5280/api", "  client_ca_file: /nonexistent/ca.pem", "  client_tls_name: a..b"),
			want: []string{
				`F:6: xmpp.client_ca_file: stat /nonexistent/ca.pem: no such file or directory`,
				`F:7: xmpp.client_tls_name: "a..b" is not a domain: empty label`,
			},
		},
		{
			name: "scheduled_overlays not a boolean",
			src:  with("  scheduled_overlays: later"),
			want: []string{"F:5: cannot unmarshal !!str `later` into bool"},
		},
		{
			name: "shadow_contacts not a boolean",
			src:  with("  shadow_contacts: sometimes"),
			want: []string{"F:5: cannot unmarshal !!str `sometimes` into bool"},
		},
		{
			name: "sessions_api with credentials",
			src:  with("  sessions_api: http://admin:pw@127.0.0.1:5280/api"),
			want: []string{`F:5: xmpp.sessions_api: must not carry credentials in the URL`},
		},
		{
			name: "unknown field",
			src:  with("  port: 5347"),
			want: []string{`F:5: field port not found in type config.XMPP`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(cfg, lines(tt.src...))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = strings.Replace(w, "F:", cfg+":", 1)
			}
			if got := err.(*Problems).List(); !reflect.DeepEqual(got, want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
