-- mod_muc_service_only: a MUC service that only service accounts may use.
--
-- Load it on a "muc" component (modules_enabled = { "muc_service_only" }).
-- A presence that would create a room or join one is refused with
-- <error type="auth"><forbidden/></error> unless the host of the sender's
-- real JID is listed in the component option
--
--   muc_service_only_hosts = { "auth.example.com" }
--
-- When the option is absent the default is "auth." followed by the
-- component's parent domain (internal.meet.test -> auth.meet.test).
--
-- We use it on internal.DOMAIN, the breweries (recorders@, gateways@,
-- bridges@): a guest on DOMAIN can neither join a brewery nor create one.
-- Messages and IQs from non-occupants are already refused by mod_muc, and
-- rooms there are hidden from disco#items by default, so refusing the join
-- is enough to keep guests out.

local jid_host = require "util.jid".host;
local st = require "util.stanza";

local parent = module.host:gsub("^[^%.]+%.", "");
local allowed_hosts = module:get_option_set("muc_service_only_hosts", { "auth." .. parent });

module:log("info", "Only JIDs of %s may create or join rooms on %s", tostring(allowed_hosts), module.host);

local function refuse_foreign(event)
	local stanza = event.stanza;
	local host = jid_host(stanza.attr.from);
	if host and allowed_hosts:contains(host) then
		return; -- let mod_muc handle it
	end
	module:log("info", "Refused %s from %s to %s: host not allowed", event.room and event.room.jid or "?",
		tostring(stanza.attr.from), tostring(stanza.attr.to));
	local reply = st.error_reply(stanza, "auth", "forbidden", "This service is reserved for service accounts",
		event.room and event.room.jid or module.host);
	event.origin.send(reply);
	return true; -- handled: mod_muc does not see it
end

-- Room creation runs "muc-room-pre-create" and then "muc-occupant-pre-join";
-- joining an existing room runs only the latter. A high priority puts us
-- before mod_muc's own handlers (defaults at 1, room tracking at -1000).
module:hook("muc-room-pre-create", refuse_foreign, 100);
module:hook("muc-occupant-pre-join", refuse_foreign, 100);
