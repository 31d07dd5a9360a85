-- mod_presencegw: the presence overlay of docs/overlay-protocol.md
-- (urn:presencegw:overlay:0) for Prosody 0.12. Load it on the VirtualHost.
--
-- The gateway's component asks us to show a calendar state (dnd "In a
-- meeting until 14:30") to a person's roster contacts. We rewrite the
-- presence each of the person's own resources sends to those contacts, so
-- every client shows it whatever rule it uses to pick among resources.
-- session.presence and the original stanza are never modified: the person's
-- own resources and the component (XEP-0356 via mod_privilege) keep seeing
-- the real presence.

local st = require "util.stanza";
local jid = require "util.jid";
local now = require "util.time".now;
local user_exists = require "core.usermanager".user_exists;

local NS = "urn:presencegw:overlay:0";
local host = module.host;
local hosts, bare_sessions = prosody.hosts, prosody.bare_sessions;
local core_post_stanza = prosody.core_post_stanza;

local components = module:get_option_set("presencegw_components", {});
local grace_period = module:get_option_number("presencegw_grace_period", 120);
-- Scheduled overlays (the since attribute). Off, the module behaves as one
-- from before them: no #since feature, since ignored (an overlay applies at
-- once). For tests of gateways facing such a module.
local scheduled_on = module:get_option_boolean("presencegw_scheduled", true);

-- bare JID -> { show, status, expires (Unix time of `until`, or nil), owner, timer }.
-- Shared so that a module reload keeps them; a restart loses them, and the
-- gateway sets them again after every (re)connect.
local overlays = module:shared("overlays");
-- bare JID -> { show, status, expires, since (Unix time), owner, timer }:
-- the one scheduled overlay per person, promoted by a timer at `since`.
local pending = module:shared("pending");
local grace_timers = {}; -- component host -> pending withdrawal timer

module:add_feature(NS);
if scheduled_on then module:add_feature(NS .. "#since"); end -- scheduled overlays
module:log("info", "presence overlay for %s, grace period %gs", tostring(components), grace_period);

local function subscribed(roster, contact)
	local item = roster and roster[contact];
	return item and (item.subscription == "both" or item.subscription == "from");
end

-- The overlaid version of a presence: a copy without the person's show,
-- status and delay, with the overlay's. The broadcast loops (mod_presence's
-- and ours) send one stanza object to every recipient, changing only
-- attr.to: so one copy serves a whole loop. It is kept on the overlay,
-- keyed by the original object (a new overlay is a new table, so it starts
-- afresh), and marked so that our hook lets it pass.
local function overlaid(ov, stanza)
	if ov.src == stanza then return ov.copy; end
	local copy = st.clone(stanza);
	copy:remove_children("show");
	copy:remove_children("status");
	-- A stored presence carries the time it was sent; the overlay is current.
	copy:remove_children("delay", "urn:xmpp:delay");
	copy:text_tag("show", ov.show);
	if ov.status then copy:text_tag("status", ov.status); end
	copy.presencegw = true;
	ov.src, ov.copy = stanza, copy;
	return copy;
end

-- Whether a presence from a person with overlay ov is overlaid: available,
-- with no show set by hand (the person wins).
local function applies(ov, stanza)
	if not ov or stanza.attr.type then return false; end
	local show = stanza:get_child_text("show");
	return not show or show == "chat";
end

-- Priority -100: returning true stops the handlers below us, so we must run
-- after all others (blocklist, privacy lists, mod_presence's directed
-- presence bookkeeping), and re-post without pre-events.
local function overlay_presence(event)
	local origin, stanza = event.origin, event.stanza;
	if stanza.presencegw or stanza.attr.type or origin.type ~= "c2s" or not origin.username then return; end
	local user = origin.username .. "@" .. origin.host;
	local ov = overlays[user];
	local to = stanza.attr.to; -- nil for the presence to the user's own bare JID
	if not ov or not to then return; end
	local contact = jid.bare(to);
	if contact == user or not subscribed(origin.roster, contact) or not applies(ov, stanza) then return; end
	-- Never change the original: it may be session.presence, and the
	-- person's own resources and the component get it as it is.
	local copy = overlaid(ov, stanza);
	copy.attr.to = to;
	core_post_stanza(origin, copy);
	return true;
end
module:hook("pre-presence/bare", overlay_presence, -100);
module:hook("pre-presence/full", overlay_presence, -100);

-- Send each available resource's stored presence to the contacts again (not
-- to the person's own resources), overlaid if an overlay applies. With
-- pre-events, so a block still wins; the hook above lets the overlaid copy
-- pass (it is marked), so each copy goes through the hooks once.
local function rebroadcast(user)
	local sessions = bare_sessions[user];
	local ov = overlays[user];
	for _, session in pairs(sessions and sessions.sessions or {}) do
		local pres = session.presence;
		if pres then
			if applies(ov, pres) then
				pres = overlaid(ov, pres);
			else
				pres = st.clone(pres);
			end
			for contact in pairs(session.roster or {}) do
				if contact and contact ~= user and subscribed(session.roster, contact) then
					pres.attr.to = contact;
					core_post_stanza(session, pres, true);
				end
			end
			pres.attr.to = nil;
		end
	end
end

local function remove(user)
	local ov = overlays[user];
	if not ov then return; end
	if ov.timer then ov.timer:stop(); end
	overlays[user] = nil;
	rebroadcast(user);
end

local promote;

-- Expiry makes a gateway that dies mid-meeting leave nothing stale. A
-- scheduled overlay due when this one ends (back-to-back meetings) takes
-- over at once, so contacts do not see the person's own presence flash
-- between the two.
local function arm(user, ov)
	if not ov.expires then return; end
	ov.timer = module:add_timer(math.max(ov.expires - now(), 0), function()
		if overlays[user] ~= ov then return; end
		local p = pending[user];
		if p and p.since <= ov.expires and p.since - now() < 1 then
			promote(user, p);
		else
			remove(user);
		end
	end);
end

-- Make ov the person's overlay now (replacing any) and re-broadcast; an
-- overlay whose until has passed clears instead.
local function activate(user, ov)
	if ov.expires and ov.expires <= now() then
		remove(user);
		return;
	end
	if overlays[user] and overlays[user].timer then overlays[user].timer:stop(); end
	overlays[user] = ov;
	arm(user, ov);
	rebroadcast(user);
end

local function cancel_pending(user)
	local p = pending[user];
	if not p then return; end
	if p.timer then p.timer:stop(); end
	pending[user] = nil;
end

-- At `since` a scheduled overlay becomes exactly what a set at that moment
-- would have made.
function promote(user, p)
	if pending[user] ~= p then return; end
	cancel_pending(user);
	activate(user, { show = p.show, status = p.status, owner = p.owner, expires = p.expires });
end

local function arm_pending(user, p)
	p.timer = module:add_timer(math.max(p.since - now(), 0), function() promote(user, p); end);
end

-- XEP-0082 date-time to Unix time, or nil. Not util.datetime.parse: it
-- accepts out-of-range fields and depends on the local time zone.
local function parse_datetime(s)
	local y, mo, d, h, mi, sec, frac, tz =
		s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$");
	if not y or frac == "." then return nil; end
	y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec);
	local mdays = { 31, (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) and 29 or 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if mo < 1 or mo > 12 or d < 1 or d > mdays[mo] or h > 23 or mi > 59 or sec > 60 then return nil; end
	local offset = 0;
	if tz ~= "Z" then
		local sign, oh, om = tz:match("^([+-])(%d%d):(%d%d)$");
		if not sign or tonumber(oh) > 23 or tonumber(om) > 59 then return nil; end
		offset = (sign == "-" and -1 or 1) * (tonumber(oh) * 3600 + tonumber(om) * 60);
	end
	local yy = mo <= 2 and y - 1 or y; -- days since the epoch, H. Hinnant's days_from_civil
	local era = yy // 400;
	local yoe = yy - era * 400;
	local doy = (153 * ((mo + 9) % 12) + 2) // 5 + d - 1;
	local days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468;
	return days * 86400 + h * 3600 + mi * 60 + sec + (tonumber("0" .. frac) or 0) - offset;
end

-- Unix time to XEP-0082, with milliseconds when not a whole second.
local function format_datetime(t)
	local whole = math.floor(t);
	local ms = math.floor((t - whole) * 1000 + 0.5);
	if ms == 0 then return os.date("!%Y-%m-%dT%H:%M:%SZ", whole); end
	if ms == 1000 then return os.date("!%Y-%m-%dT%H:%M:%SZ", whole + 1); end
	return os.date("!%Y-%m-%dT%H:%M:%S", whole) .. string.format(".%03dZ", ms);
end

local function list_item(reply, user, ov)
	reply:tag("overlay", { jid = user, show = ov.show,
		["until"] = ov.expires and format_datetime(ov.expires) or nil,
		since = ov.since and format_datetime(ov.since) or nil });
	if ov.status then reply:text_tag("status", ov.status); end
	reply:up();
end

local function handle_request(origin, stanza, req)
	local kind = stanza.attr.type .. " " .. req.name;
	if kind == "get overlays" then
		local reply = st.reply(stanza):tag("overlays", { xmlns = NS });
		for user, ov in pairs(overlays) do
			if ov.owner == origin.host then list_item(reply, user, ov); end
		end
		for user, p in pairs(pending) do
			if p.owner == origin.host then list_item(reply, user, p); end
		end
		return reply;
	elseif kind ~= "set overlay" and kind ~= "set clear" then
		return st.error_reply(stanza, "cancel", "feature-not-implemented");
	end
	local node, jhost, resource = jid.prepped_split(req.attr.jid or "");
	if not node or resource or jhost ~= host then
		return st.error_reply(stanza, "modify", "bad-request", "jid must be a bare JID on " .. host);
	end
	local user = node .. "@" .. host;
	local ov;
	if req.name == "overlay" then
		local show, status, until_s = req.attr.show, req:get_child_text("status"), req.attr["until"];
		if show ~= "dnd" and show ~= "away" and show ~= "xa" then
			return st.error_reply(stanza, "modify", "bad-request", "show must be dnd, away or xa");
		end
		if status and utf8.len(status) > 1024 then
			return st.error_reply(stanza, "modify", "bad-request", "status is longer than 1024 characters");
		end
		ov = { show = show, status = status, owner = origin.host, expires = until_s and parse_datetime(until_s) };
		if until_s and not ov.expires then
			return st.error_reply(stanza, "modify", "bad-request", "until must be a XEP-0082 date-time");
		end
		local since_s = scheduled_on and req.attr.since or nil;
		if since_s then
			ov.since = parse_datetime(since_s);
			if not ov.since then
				return st.error_reply(stanza, "modify", "bad-request", "since must be a XEP-0082 date-time");
			end
			if ov.expires and ov.expires <= ov.since then
				return st.error_reply(stanza, "modify", "bad-request", "until must be after since");
			end
			if ov.since <= now() then ov.since = nil; end -- due: a plain set
		end
	end
	local scheduled = req.name == "clear" and req.attr.scheduled;
	if scheduled and scheduled ~= "true" and scheduled ~= "1" and scheduled ~= "false" and scheduled ~= "0" then
		return st.error_reply(stanza, "modify", "bad-request", "scheduled must be a boolean");
	end
	scheduled = scheduled == "true" or scheduled == "1";
	-- An existing overlay of a deleted account can still be cleared. A
	-- person with a session exists: the account lookup reads storage.
	local held = scheduled and pending[user] or not scheduled and overlays[user];
	if not (req.name == "clear" and held) and not bare_sessions[user] and not user_exists(node, host) then
		return st.error_reply(stanza, "cancel", "item-not-found");
	end
	if ov and ov.since then -- a scheduled overlay: replaces the pending one
		cancel_pending(user);
		pending[user] = ov;
		arm_pending(user, ov);
	elseif ov then -- a set (or an until already past: a clear)
		activate(user, ov);
	elseif scheduled then
		cancel_pending(user);
	else
		remove(user);
	end
	return st.reply(stanza);
end

-- Priority 1: before mod_iq, so that every type and child in our namespace
-- gets an answer from us.
module:hook("iq/host", function(event)
	local origin, stanza = event.origin, event.stanza;
	local req = stanza.tags[1];
	if not req or req.attr.xmlns ~= NS then return; end
	if stanza.attr.type ~= "get" and stanza.attr.type ~= "set" then return true; end
	if origin.type ~= "component" or not components:contains(origin.host) then
		origin.send(st.error_reply(stanza, "auth", "forbidden"));
	else
		origin.send(handle_request(origin, stanza, req));
	end
	return true;
end, 1);

-- Grace period: a quick reconnect keeps the overlays (no flapping); a gateway
-- that stays away must not leave people stuck in dnd.
local function disconnected(comp)
	if grace_timers[comp] then grace_timers[comp]:stop(); end
	grace_timers[comp] = module:add_timer(grace_period, function()
		grace_timers[comp] = nil;
		module:log("info", "%s stayed disconnected for %gs, withdrawing its overlays", comp, grace_period);
		for user, ov in pairs(overlays) do
			if ov.owner == comp then remove(user); end
		end
		for user, p in pairs(pending) do
			if p.owner == comp then cancel_pending(user); end
		end
	end);
end

local function reconnected(comp)
	if grace_timers[comp] then grace_timers[comp]:stop(); grace_timers[comp] = nil; end
end

-- mod_component fires these on the component's host, which may be activated
-- after this VirtualHost: attach when it appears.
local function watch(comp)
	local h = hosts[comp];
	if not (components:contains(comp) and h and h.type == "component") then return; end
	module:hook_object_event(h.events, "component-disconnected", function(event)
		-- Also fired for rejected handshakes (a wrong secret, a second
		-- connection): only the loss of the authenticated one counts.
		if event.session.type == "component" then disconnected(comp); end
	end);
	module:hook_object_event(h.events, "component-authenticated", function() reconnected(comp); end);
end
for comp in components do watch(comp); end
module:hook_global("host-activated", watch);

-- After a reload: re-arm the expiry timers (the old ones died with the old
-- instance) and the grace period for owners that are not connected.
local function rearm(ov, fn)
	fn();
	local comp = hosts[ov.owner] and hosts[ov.owner].modules.component;
	if not (comp and comp.connected) and not grace_timers[ov.owner] then disconnected(ov.owner); end
end
for user, ov in pairs(overlays) do rearm(ov, function() arm(user, ov); end); end
for user, p in pairs(pending) do rearm(p, function() arm_pending(user, p); end); end
