package config

import (
	"reflect"
	"strings"
	"testing"
)

const (
	testTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	testAPI    = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
)

func TestWebEntraDefaults(t *testing.T) {
	c, err := Parse("/etc/presencegw/config.yaml", lines(
		"web:",
		"  entra:",
		"    tenants: ["+testTenant+"]",
		"    audiences: ["+testAPI+"]",
	))
	if err != nil {
		t.Fatal(err)
	}
	want := &Entra{Tenants: []string{testTenant}, Audiences: []string{testAPI}, Scope: "access_as_user",
		Authority: "https://login.microsoftonline.com", Visibility: "status"}
	if !reflect.DeepEqual(c.Web.Entra, want) {
		t.Errorf("entra = %+v, want %+v", c.Web.Entra, want)
	}
	if d := Defaults(); d.Web.Entra != nil {
		t.Errorf("Entra ID tokens are accepted by default: %+v", d.Web.Entra)
	}
}

// checkProblems parses src as the file cfg and checks that it fails with
// exactly the problems want, in order, "F:" in want standing for "cfg:".
func checkProblems(t *testing.T, cfg string, src, want []string) {
	t.Helper()
	_, err := Parse(cfg, lines(src...))
	if err == nil {
		t.Fatal("Parse succeeded, want an error")
	}
	full := make([]string, len(want))
	for i, w := range want {
		full[i] = strings.Replace(w, "F:", cfg+":", 1)
	}
	if got := err.(*Problems).List(); !reflect.DeepEqual(got, full) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(full, "\n"))
	}
}

func TestWebEntraProblems(t *testing.T) {
	const cfg = "/etc/presencegw/config.yaml"
	tests := []struct {
		name string
		src  []string
		want []string
	}{
		{
			name: "empty section",
			src:  []string{"web:", "  entra:"},
			want: []string{`F:2: web.entra: is empty: set tenants and audiences, or remove the section`},
		},
		{
			name: "required lists",
			src:  []string{"web:", "  entra: {}"},
			want: []string{
				`F:2: web.entra.tenants: is required: the tenant IDs whose users may ask (GUIDs)`,
				`F:2: web.entra.audiences: is required: the API's application (client) ID, which v2.0 tokens carry in aud (GUIDs)`,
			},
		},
		{
			name: "every field wrong",
			src: []string{
				"web:",
				"  entra:",
				"    tenants:",
				"      - " + testTenant,
				"      - contoso.onmicrosoft.com",
				"    audiences: [api://presence.example.com/" + testAPI + "]",
				"    scope: access_as_user Presence.Read",
				"    authority: http://login.microsoftonline.com",
				"    client_apps: [outlook-addin]",
				"    visibility: everything",
			},
			want: []string{
				`F:5: web.entra.tenants[1]: "contoso.onmicrosoft.com" is not a GUID (the tenant IDs whose users may ask)`,
				`F:6: web.entra.audiences[0]: "api://presence.example.com/` + testAPI + `" is not a GUID (the API's application (client) ID, which v2.0 tokens carry in aud)`,
				`F:9: web.entra.client_apps[0]: "outlook-addin" is not a GUID (the client applications' (add-ins') client IDs)`,
				`F:7: web.entra.scope: "access_as_user Presence.Read": give one scope name, such as access_as_user`,
				`F:8: web.entra.authority: "http://login.microsoftonline.com" must be an https:// URL of the sign-in host, such as https://login.microsoftonline.com`,
				`F:10: web.entra.visibility: must be state, status or calendar, not "everything"`,
			},
		},
		{
			name: "authority with a tenant path",
			src: []string{
				"web:",
				"  entra:",
				"    tenants: [" + testTenant + "]",
				"    audiences: [" + testAPI + "]",
				"    authority: https://login.microsoftonline.com/" + testTenant + "/v2.0",
			},
			want: []string{`F:5: web.entra.authority: "https://login.microsoftonline.com/` + testTenant + `/v2.0" must be an https:// URL of the sign-in host, such as https://login.microsoftonline.com`},
		},
		{
			name: "unknown field",
			src:  []string{"web:", "  entra:", "    tenants: [" + testTenant + "]", "    audiences: [" + testAPI + "]", "    tenant: x"},
			want: []string{`F:5: field tenant not found in type config.Entra`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, cfg, tt.src, tt.want) })
	}
}

func TestWebOpenfire(t *testing.T) {
	if d := Defaults().Web.Openfire; d.Mode != "subscribed" || d.UnavailableText != "Unavailable" || d.ImageHosts != nil {
		t.Errorf("defaults = %+v", d)
	}
	c, err := Parse("/etc/presencegw/config.yaml", lines(
		"web:",
		"  anonymous: [openfire]",
		"  openfire:",
		"    mode: public",
		"    unavailable_text: Nicht da",
	))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Web.Openfire; got.Mode != "public" || got.UnavailableText != "Nicht da" || got.ImageHosts != nil {
		t.Errorf("openfire = %+v", got)
	}
	const cfg = "/etc/presencegw/config.yaml"
	tests := []struct {
		name string
		src  []string
		want []string
	}{
		{
			name: "bad mode and text",
			src: []string{
				"web:",
				"  openfire:",
				"    mode: Public",
				`    unavailable_text: "gone\nhome"`,
			},
			want: []string{
				`F:3: web.openfire.mode: must be subscribed or public, not "Public"`,
				`F:4: web.openfire.unavailable_text: must be one line of at most 200 characters`,
			},
		},
		{
			name: "text too long",
			src:  []string{"web:", "  openfire: {unavailable_text: " + strings.Repeat("x", 201) + "}"},
			want: []string{`F:2: web.openfire.unavailable_text: must be one line of at most 200 characters`},
		},
		{
			name: "unknown group",
			src:  []string{"web:", "  anonymous: [presence, plugins]"},
			want: []string{`F:2: web.anonymous[1]: "plugins": the endpoint groups are presence, stream, badge and openfire`},
		},
		{
			name: "unknown field",
			src:  []string{"web:", "  openfire:", "    public: true"},
			want: []string{`F:3: field public not found in type config.Openfire`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, cfg, tt.src, tt.want) })
	}
}
