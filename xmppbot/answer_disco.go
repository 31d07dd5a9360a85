package xmppbot

import (
	"encoding/xml"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"
)

// discoName is the component's name in service discovery.
const discoName = "Calendar presence"

// discoInfo answers disco#info (XEP-0030) on the component and on the
// XEP-0050 nodes.
func (b *Bot) discoInfo(w xmlstream.TokenWriter, r *iqRequest, p *payload) error {
	if r.typ != "get" {
		return b.fail(w, r, stanzaError(stanza.Modify, stanza.BadRequest, "disco#info is an IQ get"), nil)
	}
	node := p.attr("node")
	q := el(xml.Name{Space: nsDiscoInfo, Local: "query"}, attrs("node", node))
	identity := func(category, typ, name string) *element {
		return el(xml.Name{Local: "identity"}, attrs("category", category, "type", typ, "name", name))
	}
	feature := func(v string) *element { return el(xml.Name{Local: "feature"}, attrs("var", v)) }
	switch node {
	case "":
		q.add(identity("component", "presence", discoName),
			feature(nsDiscoInfo), feature(nsDiscoItems), feature(nsCommands))
		if b.cfg.Lookup != nil {
			q.add(feature(NSLookup))
		}
	case nsCommands:
		q.add(identity("automation", "command-list", "Commands"), feature(nsCommands))
	default:
		cmd := commandByNode(node)
		if cmd == nil {
			return b.fail(w, r, stanzaError(stanza.Cancel, stanza.ItemNotFound, ""), nil)
		}
		if !b.mayRun(r, cmd) {
			return b.fail(w, r, stanzaError(stanza.Auth, stanza.Forbidden, ""), nil)
		}
		q.add(identity("automation", "command-node", cmd.name), feature(nsCommands), feature(nsData))
	}
	return b.result(w, r, q.reader())
}

// discoItems answers disco#items: the component has no items; the
// commands node lists the commands the caller may run.
func (b *Bot) discoItems(w xmlstream.TokenWriter, r *iqRequest, p *payload) error {
	if r.typ != "get" {
		return b.fail(w, r, stanzaError(stanza.Modify, stanza.BadRequest, "disco#items is an IQ get"), nil)
	}
	node := p.attr("node")
	q := el(xml.Name{Space: nsDiscoItems, Local: "query"}, attrs("node", node))
	switch node {
	case "":
	case nsCommands:
		for i := range commands {
			if c := &commands[i]; b.mayRun(r, c) {
				q.add(el(xml.Name{Local: "item"}, attrs("jid", b.jid.String(), "node", c.node, "name", c.name)))
			}
		}
	default:
		return b.fail(w, r, stanzaError(stanza.Cancel, stanza.ItemNotFound, ""), nil)
	}
	return b.result(w, r, q.reader())
}

// mayRun reports whether the IQ's sender may run a command now.
func (b *Bot) mayRun(r *iqRequest, c *command) bool {
	return r.user && r.caller.local && (!c.admin || r.caller.admin) && c.available(b)
}
