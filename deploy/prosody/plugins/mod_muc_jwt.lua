-- mod_muc_jwt: the token's rules for meeting rooms.
--
-- Load it on the meetings' MUC component (modules_enabled = { "muc_jwt" }).
-- It acts on occupants who signed in on the token host (the option
--
--   muc_jwt_host = "meet.example.com"
--
-- default: the component's parent domain, conference.D -> D), and only
-- when that host uses `authentication = "jwt"` (mod_auth_jwt). With any
-- other authentication on the token host the module does nothing, so the
-- config can load it in both modes.
--
-- For a token user, on room creation and on every join:
--
-- * The room's name must match the token's "room" claim (case does not
--   matter; "*" matches every room). Otherwise the presence is answered
--   with <error type="auth"><forbidden/><text>this token is for room X</text>,
--   and no room is created.
-- * "moderator": true makes the user's bare JID an owner of the room before
--   the join completes: the joiner's own presence, and everyone else's view
--   of it, already say affiliation "owner", role "moderator".
-- * Nothing else makes a token user owner: the XEP-0045 rule that a room's
--   creator becomes its owner is undone for token users without
--   "moderator": true (they create the room as a plain participant).
--
-- Occupants from other hosts (service accounts on auth.D, recorders on
-- recorder.D) are not touched.

local jid = require "util.jid";
local st = require "util.stanza";
local nodeprep = require "util.encodings".stringprep.nodeprep;
local configmanager = require "core.configmanager";

local token_host = module:get_option_string("muc_jwt_host", (module.host:gsub("^[^%.]+%.", "")));
local mode = configmanager.get(token_host, "authentication");

if mode ~= "jwt" then
	module:log("debug", "%s signs in with %q, not tokens: room access is not restricted",
		token_host, tostring(mode));
	return;
end
module:log("debug", "rooms follow the tokens of users from %s", token_host);

-- nil: the sender is not a token user (another host); false: a token user
-- without claims (cannot happen after a token login); else the claims.
local function claims_of(stanza)
	local from = stanza.attr.from;
	if jid.host(from) ~= token_host then
		return nil;
	end
	local session = prosody.full_sessions[from];
	return session and session.jwt_claims or false;
end

local function allows(claims, room)
	local want = claims.room;
	return want == "*" or nodeprep(want) == jid.node(room.jid);
end

local function refuse(event, text)
	event.origin.send(st.error_reply(event.stanza, "auth", "forbidden", text, event.room.jid));
	return true;
end

-- The room check, shared by creation and joins. Returns the claims of a
-- token user allowed in, nil for users of other hosts; refuses the rest.
local function check(event)
	local claims = claims_of(event.stanza);
	if claims == nil then
		return nil;
	elseif not claims then
		return nil, refuse(event, "no token on this session");
	elseif not allows(claims, event.room) then
		return nil, refuse(event, "this token is for room " .. claims.room);
	end
	return claims;
end

-- After mod_muc's room-defaults hook (1) and its creator-is-owner hook
-- (-1); before the room is registered (-1000), so a refusal leaves nothing.
module:hook("muc-room-pre-create", function(event)
	local claims, refused = check(event);
	if refused then
		return true;
	end
	if claims and not claims.moderator then
		event.room:set_affiliation(true, jid.bare(event.stanza.attr.from), "none");
	end
end, -2);

-- Before mod_muc's own join checks (nick, ban: priorities 2 to -10).
module:hook("muc-occupant-pre-join", function(event)
	local _, refused = check(event);
	if refused then
		return true;
	end
end, 100);

-- After every other join check passed: grant ownership to moderators.
module:hook("muc-occupant-pre-join", function(event)
	local claims = claims_of(event.stanza);
	if not (claims and claims.moderator) then
		return;
	end
	local room, bare = event.room, jid.bare(event.stanza.attr.from);
	if room:get_affiliation(bare) ~= "owner" then
		local ok, err_type, condition = room:set_affiliation(true, bare, "owner", "moderator token");
		if not ok then
			module:log("warn", "could not make %s owner of %s: %s/%s", bare, room.jid,
				tostring(err_type), tostring(condition));
			return;
		end
	end
	-- The occupant was built with the role of its old affiliation.
	event.occupant.role = room:get_default_role("owner");
end, -100);
