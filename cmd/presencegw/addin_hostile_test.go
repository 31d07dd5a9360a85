package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/presencegw/presencegw/graph"
)

// TestAddinHostileText loads the pane with a mail whose names and
// addresses were written to attack it, and a presence stream (answered by
// the browser's request interception, as a compromised or buggy upstream
// would) whose names, status texts and JIDs carry markup and URI syntax:
// everything shows as text, no element or script comes of it, and the
// chat and mail links keep the values inside their own URI part.
func TestAddinHostileText(t *testing.T) {
	src := &browserSource{Demo: graph.NewDemo(time.Now(), time.UTC)}
	base, _, _ := browserGateway(t, src, nil)

	const (
		evilName   = `<img src=x onerror="window.__xss='name'">Mallory`
		evilStatus = `<b>In a meeting</b><script>window.__xss='status'</script>`
		// A JID with a query ("?message;body=…" would prefill a message), a
		// fragment, and a character beyond U+FFFF.
		evilJID = "carol?message;body=pwned@example.com/\U0001D4D2#x"
		// Outlook passes on what the mail's header says (one @: an address
		// the gateway takes, with URI syntax in its local part).
		evilAddress = "mallory?bcc=all&subject=x@example.com"
	)
	item := map[string]any{"itemType": "message",
		"from": addr{"carol@example.com", `<svg onload="window.__xss='from'">`},
		"to":   []addr{{evilAddress, `"><script>window.__xss='to'</script>`}}}
	event := func(email, name, state, status, jid string) string {
		b, _ := json.Marshal(map[string]any{"email": email, "name": name, "state": state, "status": status, "jid": jid, "source": "xmpp"})
		return "id: e-1\nevent: presence\ndata: " + string(b) + "\n\n"
	}
	stream := event("carol@example.com", evilName, "dnd", evilStatus, evilJID) +
		event(evilAddress, "", "available", "", "mallory@chat.example.com")
	ctx := browser(t, func() []byte { return fakeOffice(item, nil) }, interception{
		pattern: "*/api/v1/presence/stream*",
		match:   func(u string) bool { return strings.Contains(u, "/api/v1/presence/stream") },
		ctype:   "text/event-stream",
		body:    func() []byte { return []byte(stream) },
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/addin/taskpane.html")); err != nil {
		t.Fatal(err)
	}
	paneWait(t, ctx, "rendered", `document.querySelectorAll("li.person").length === 2 &&
		!document.querySelector('li.person[data-state="pending"]')`, 30*time.Second)

	if xss := eval[string](t, ctx, `String(window.__xss ?? "")`); xss != "" {
		t.Errorf("script from the %s ran", xss)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#people img, #people script, #people b, #people svg[onload]").length`); n != 0 {
		t.Errorf("%d elements made from text", n)
	}
	rows := eval[[]paneRow](t, ctx, readRows)
	byEmail := map[string]paneRow{}
	for _, r := range rows {
		byEmail[r.Email] = r
	}
	carol, mallory := byEmail["carol@example.com"], byEmail[evilAddress]
	if carol.Name != evilName || carol.Status != evilStatus || carol.State != "dnd" {
		t.Errorf("carol's row %+v: want the name and status as text", carol)
	}
	wantChat := "xmpp:carol%3Fmessage;body=pwned@example.com/" + url.PathEscape("\U0001D4D2") + "%23x"
	if carol.Chat != wantChat {
		t.Errorf("chat link %q, want %q (query and fragment escaped, the JID whole)", carol.Chat, wantChat)
	}
	if mallory.State != "available" || mallory.Name != `"><script>window.__xss='to'</script>` {
		t.Errorf("mallory's row %+v", mallory)
	}
	if want := "mailto:mallory%3Fbcc%3Dall%26subject%3Dx@example.com"; mallory.Mail != want {
		t.Errorf("mail link %q, want %q (no header fields from the address)", mallory.Mail, want)
	}
	if h := eval[string](t, ctx, `document.querySelector('section[data-group="from"] li.person .name').textContent`); h != evilName {
		t.Errorf("from name %q", h)
	}
}
