-- Example Prosody 0.12 configuration for a site that runs presencegw.
--
-- A complete server config for one XMPP domain, example.com, whose people
-- get their calendar state (dnd "In a meeting until 14:30", xa with the
-- out-of-office text) shown to their roster contacts. The gateway connects
-- as the XEP-0114 component calendar.example.com. Replace the names, the
-- secret and the certificate paths; see README.md next to this file for the
-- steps. `prosodyctl check config` passes on it with Debian 12's prosody
-- 0.12.3; the tests run the same module settings (internal/testenv).

---------- Server-wide settings ----------

admins = { "admin@example.com" }

-- Where Prosody looks for modules. mod_presencegw.lua goes into the first
-- directory; Debian's prosody-modules package (mod_privilege) installs into
-- /usr/lib/prosody/modules, which Debian's Prosody already searches, but
-- listing it keeps the config working when copied to other systems.
plugin_paths = { "/usr/local/lib/prosody/modules", "/usr/lib/prosody/modules" }

modules_enabled = {
	"disco";        -- the gateway checks for the overlay feature in disco#info
	"roster";       -- the overlay is shown only to roster contacts
	"saslauth";
	"tls";
	"dialback";
	"blocklist";    -- a block still wins over the overlay
	"carbons";
	"pep";
	"private";
	"smacks";
	"vcard4";
	"vcard_legacy";
	"csi_simple";
	"ping";
	"time";
	"uptime";
	"version";
	"admin_shell";  -- prosodyctl shell, to reload modules without a restart
	"posix";
}

pidfile = "/run/prosody/prosody.pid"
authentication = "internal_hashed"
storage = "internal"

c2s_require_encryption = true
s2s_secure_auth = true

log = {
	info = "/var/log/prosody/prosody.log";
	error = "/var/log/prosody/prosody.err";
}

-- Certificates: prosodyctl cert import /etc/letsencrypt/live puts them into
-- /etc/prosody/certs, which this names. Prosody finds
-- example.com.crt/.key (or fullchain.pem/privkey.pem in a per-domain
-- directory) by host name.
certificates = "/etc/prosody/certs"

-- The component port. Components authenticate with a shared secret only
-- (XEP-0114 has no TLS), so keep it off the public network: loopback when
-- the gateway runs on this machine, otherwise a private interface plus a
-- firewall rule. (Prosody binds it to loopback by default already.)
component_ports = { 5347 }
component_interfaces = { "127.0.0.1" }

---------- The XMPP domain ----------

VirtualHost "example.com"
	-- Prosody picks /etc/prosody/certs/example.com.crt and .key; name them
	-- explicitly if yours are elsewhere:
	-- ssl = {
	-- 	certificate = "/etc/prosody/certs/example.com.crt";
	-- 	key = "/etc/prosody/certs/example.com.key";
	-- }

	modules_enabled = {
		-- XEP-0356: the gateway learns the presence people really set
		-- (never the overlaid one) and reads rosters.
		"privilege";
		-- The presence overlay (docs/overlay-protocol.md).
		"presencegw";
	}

	privileged_entities = {
		["calendar.example.com"] = {
			-- "managed_entity": presence of this host's users only, which
			-- is all the gateway needs. "roster" would also forward the
			-- presence of every remote contact.
			presence = "managed_entity";
			-- "both" instead lets the gateway fall back to shadow contacts
			-- ("Alice (calendar)" in each contact's roster) where this
			-- module cannot be loaded, with shadow_contacts: true in its
			-- xmpp section (xmppbot/README.md); with the module, "get".
			roster = "get";
		};
	}

	-- Components allowed to set, clear and list overlays on this host.
	-- Anyone else gets auth/forbidden.
	presencegw_components = { "calendar.example.com" }

	-- Seconds the component may stay disconnected before its overlays are
	-- withdrawn (default 120). A gateway restart within this keeps people's
	-- contacts from seeing them flap between dnd and available.
	presencegw_grace_period = 120

---------- The gateway ----------

Component "calendar.example.com"
	-- The gateway's XMPP component authenticates with this secret. Use a
	-- long random value (openssl rand -base64 32) and give the gateway the
	-- same one.
	component_secret = "change-me-to-a-long-random-secret"

	-- Required: mod_privilege grants the permissions when the component
	-- authenticates, an event of this host. Without it the gateway
	-- receives no presence at all.
	modules_enabled = { "privilege" }
