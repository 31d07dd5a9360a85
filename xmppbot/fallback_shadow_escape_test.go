package xmppbot

import "testing"

// TestShadowEscape: shadow JIDs escape the person's bare JID as XEP-0106
// does, and the escaping round-trips (mellium v0.22's jid.Unescape does
// not: it turns \40 into a wrong byte).
func TestShadowEscape(t *testing.T) {
	for _, tc := range []struct{ in, esc string }{
		{"alice@example.com", `alice\40example.com`},
		{"d'artagnan@example.com", `d\27artagnan\40example.com`},
		{`c:\net@example.com`, `c\3a\net\40example.com`},
		{`c:\5cnet@example.com`, `c\3a\5c5cnet\40example.com`},
		{"a b/c&d<e>f\"g@h", `a\20b\2fc\26d\3ce\3ef\22g\40h`},
		{"plain", "plain"},
	} {
		if got := escapeLocal(tc.in); got != tc.esc {
			t.Errorf("escapeLocal(%q) = %q, want %q", tc.in, got, tc.esc)
		}
		if got := unescapeLocal(tc.esc); got != tc.in {
			t.Errorf("unescapeLocal(%q) = %q, want %q", tc.esc, got, tc.in)
		}
	}
	if got := unescapeLocal(`ALICE\40Example.COM`); got != "ALICE@Example.COM" {
		t.Errorf("upper case: %q", got)
	}
}
