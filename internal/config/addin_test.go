package config

import (
	"reflect"
	"testing"
)

func TestAddinDefaults(t *testing.T) {
	if Defaults().Web.Addin != nil {
		t.Error("the add-in is served by default")
	}
	c, err := Parse("/etc/presencegw/config.yaml", lines(
		"web:",
		"  entra:",
		"    tenants: ["+testTenant+"]",
		"    audiences: ["+testAPI+"]",
		"  addin:",
		"    base_url: https://gw.example.com/presence/",
		"    client_id: 0f4a5b6c-1d2e-4f30-8a9b-c0d1e2f3a4b5",
	))
	if err != nil {
		t.Fatal(err)
	}
	want := &Addin{BaseURL: "https://gw.example.com/presence", ClientID: "0f4a5b6c-1d2e-4f30-8a9b-c0d1e2f3a4b5",
		Tenant: testTenant, Scope: "api://" + testAPI + "/access_as_user"}
	if !reflect.DeepEqual(c.Web.Addin, want) {
		t.Errorf("addin = %+v, want %+v", c.Web.Addin, want)
	}
	// Anonymous presence (a demo, an intranet): no client id needed, and
	// the tenant falls back to organizations.
	c, err = Parse("/etc/presencegw/config.yaml", lines(
		"web:",
		"  anonymous: [presence, stream]",
		"  addin:",
		"    base_url: http://127.0.0.1:8080",
		"    id: 8A3B6F0E-52C4-4B7D-9E1A-2F6C8D0B4E71",
		"    chat_url: https://chat.example.com/#/converse/chats?jid={jid}",
		"    frame_ancestors: [https://mail.example.com]",
	))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Web.Addin; a.Tenant != "organizations" || a.Scope != "" || a.ClientID != "" {
		t.Errorf("anonymous addin = %+v", a)
	}
}

func TestAddinProblems(t *testing.T) {
	const cfg = "/etc/presencegw/config.yaml"
	tests := []struct {
		name string
		src  []string
		want []string
	}{
		{
			name: "empty section",
			src:  []string{"web:", "  addin:"},
			want: []string{`F:2: web.addin: is empty: set base_url, or remove the section`},
		},
		{
			name: "nothing set",
			src:  []string{"web:", "  addin: {}"},
			want: []string{
				`F:2: web.addin.base_url: is required: the URL Outlook reaches the gateway at, such as https://gw.example.com`,
				`F:2: web.addin.client_id: is required (the add-in's Entra application ID, for its token to the API) unless web.anonymous opens presence and stream`,
			},
		},
		{
			name: "client id without entra",
			src:  []string{"web:", "  addin:", "    base_url: https://gw.example.com", "    client_id: " + testAPI},
			want: []string{
				`F:4: web.addin.client_id: the API accepts no Entra ID tokens: add a web.entra section (tenants, audiences) for the add-in's tokens`,
				`F:2: web.addin.scope: is required with client_id: the API scope the add-in asks for, such as api://API-CLIENT-ID/access_as_user`,
			},
		},
		{
			name: "every field wrong",
			src: []string{
				"web:",
				"  anonymous: [presence]",
				"  addin:",
				"    base_url: http://gw.example.com",
				"    id: presence-addin",
				"    client_id: outlook",
				"    tenant: Contoso Ltd",
				"    scope: api://x/a api://x/b",
				"    chat_url: https://chat.example.com/{user}",
				"    frame_ancestors: [https://mail.example.com, 'http://owa.example.com', https://x.example.com/owa]",
			},
			want: []string{
				`F:4: web.addin.base_url: "http://gw.example.com" must be https: Outlook loads add-ins over https only (http only for localhost)`,
				`F:5: web.addin.id: "presence-addin" is not a GUID (the add-in's id in the manifest; leave it out for one derived from base_url)`,
				`F:6: web.addin.client_id: "outlook" is not a GUID (the add-in's Entra application (client) ID)`,
				`F:7: web.addin.tenant: "contoso ltd" must be a tenant ID (GUID), a verified domain such as contoso.onmicrosoft.com, or organizations`,
				`F:8: web.addin.scope: "api://x/a api://x/b": give one scope, such as api://API-CLIENT-ID/access_as_user`,
				`F:9: web.addin.chat_url: "https://chat.example.com/{user}" must contain {jid} or {email}`,
				`F:10: web.addin.frame_ancestors[1]: "http://owa.example.com" must be an https:// origin, such as https://mail.example.com`,
				`F:10: web.addin.frame_ancestors[2]: "https://x.example.com/owa" must be an https:// origin, such as https://mail.example.com`,
			},
		},
		{
			name: "base url with a query, chat url not a URL",
			src: []string{
				"web:",
				"  anonymous: [presence, stream]",
				"  addin:",
				"    base_url: https://gw.example.com/?x=1",
				"    chat_url: 'javascript:alert({jid})'",
			},
			want: []string{
				`F:4: web.addin.base_url: "https://gw.example.com/?x=1" must have no query or fragment`,
				`F:5: web.addin.chat_url: "javascript:alert({jid})" must be an https:// URL`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, cfg, tt.src, tt.want) })
	}
}
