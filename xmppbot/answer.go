package xmppbot

import (
	"encoding/xml"

	"mellium.im/xmlstream"
)

// handleIQ answers IQs addressed to the component. Unanswered get/set
// IQs get service-unavailable from the session.
func (b *Bot) handleIQ(rw xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	return nil
}

// handleChat answers a chat message (commands).
func (b *Bot) handleChat(rw xmlstream.TokenReadEncoder, from, typ, body string) error {
	return nil
}
