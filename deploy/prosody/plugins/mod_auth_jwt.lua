-- mod_auth_jwt: sign-in with HS256 JSON Web Tokens.
--
-- An authentication provider: set `authentication = "jwt"` on the
-- participants' VirtualHost. The client logs in with SASL PLAIN whose
-- password is the token (strophe.js: connect(jid, token)); the user name
-- it sends is ignored. Every login gets a fresh random JID, as with
-- anonymous login, so no two people share a bare JID and a room affiliation
-- granted to one token's holder never reaches anyone else.
--
-- Options (on the VirtualHost):
--
--   jwt_secret   = "..."   the shared HS256 key; without it every login is
--                          refused ("token login is not configured")
--   jwt_issuer   = "..."   if not empty, the token's "iss" must equal it
--   jwt_audience = "..."   if not empty, the token's "aud" must equal it
--                          (or, if "aud" is an array, contain it)
--   jwt_leeway   = 30      seconds of clock skew allowed on "exp" and "nbf"
--
-- A token is accepted when its signature verifies (alg HS256 only), "exp"
-- (required) has not passed, "nbf" (optional) has, "iss" and "aud" match
-- when configured, and "room" is a non-empty string. Otherwise the answer
-- is SASL <not-authorized/> with one of these texts:
--
--   token login is not configured     no jwt_secret on this host
--   malformed token                   not three base64url parts of JSON, or
--                                     claims of the wrong type
--   unsupported token algorithm       "alg" is not HS256
--   bad token signature               signed with another key, or altered
--   token has no expiry               no numeric "exp"
--   token expired                     now > exp + leeway
--   token not valid yet               now < nbf - leeway
--   token for another issuer          "iss" differs from jwt_issuer
--   token for another audience        "aud" differs from jwt_audience
--   token names no room               "room" missing or empty
--
-- On success the session carries what the rooms need:
--
--   session.jwt_claims = { room = "alpha" or "*", moderator = true/false,
--                          name = "Ada" or nil }
--
-- mod_muc_jwt (on the conference component) reads it on every join. Tokens
-- and the secret are never logged. There are no passwords and no accounts:
-- registration and password changes are refused, and nothing is stored for
-- the host's users (like anonymous users).

local jwt = require "util.jwt";
local new_sasl = require "util.sasl".new;
local new_uuid = require "util.uuid".generate;
local datamanager = require "util.datamanager";

local secret = module:get_option_string("jwt_secret", "");
local issuer = module:get_option_string("jwt_issuer", "");
local audience = module:get_option_string("jwt_audience", "");
local leeway = module:get_option_number("jwt_leeway", 30);

if secret == "" then
	module:log("error", "jwt_secret is empty: every login on %s is refused", module.host);
end

local function audience_matches(aud)
	if type(aud) == "string" then
		return aud == audience;
	elseif type(aud) == "table" then
		for _, one in ipairs(aud) do
			if one == audience then return true; end
		end
	end
	return false;
end

-- The display name from context.user.name, if the token has one.
local function user_name(payload)
	local context = payload.context;
	local user = type(context) == "table" and context.user;
	local name = type(user) == "table" and user.name;
	return type(name) == "string" and name or nil;
end

-- Claims of a valid token, or nil and the reason it is refused.
local function check_token(token, now)
	if secret == "" then
		return nil, "token login is not configured";
	end
	-- util.jwt checks the shape, the algorithm and the signature only.
	local ran, valid, payload = pcall(jwt.verify, secret, token);
	if not ran then
		return nil, "malformed token";
	elseif valid == false then
		return nil, "bad token signature";
	elseif not valid then
		if payload == "unsupported-algorithm" then
			return nil, "unsupported token algorithm";
		end
		return nil, "malformed token";
	elseif type(payload) ~= "table" then
		return nil, "malformed token";
	end

	local exp, nbf = payload.exp, payload.nbf;
	if exp == nil then
		return nil, "token has no expiry";
	elseif type(exp) ~= "number" or (nbf ~= nil and type(nbf) ~= "number") then
		return nil, "malformed token";
	elseif now > exp + leeway then
		return nil, "token expired";
	elseif nbf and now < nbf - leeway then
		return nil, "token not valid yet";
	end
	if issuer ~= "" and payload.iss ~= issuer then
		return nil, "token for another issuer";
	end
	if audience ~= "" and not audience_matches(payload.aud) then
		return nil, "token for another audience";
	end
	local room = payload.room;
	if room == nil or room == "" then
		return nil, "token names no room";
	elseif type(room) ~= "string" then
		return nil, "malformed token";
	end
	return {
		room = room;
		moderator = payload.moderator == true;
		name = user_name(payload);
	};
end

-- A SASL handler offering PLAIN only. util.sasl's PLAIN answers every
-- refusal with the same text; this handler puts the reason in instead.
local function new_handler()
	local handler = new_sasl(module.host, {
		-- The user name is replaced below, so it need not be a valid node.
		nodeprep = false;
		plain_test = function(sasl, _, token)
			local claims, reason = check_token(token, os.time());
			if not claims then
				sasl.jwt_refusal = reason;
				return false, true;
			end
			sasl.username = new_uuid();
			sasl.jwt_claims = claims;
			return true, true;
		end;
	});
	local process = handler.process;
	function handler.process(self, message)
		self.jwt_refusal = nil;
		local status, condition, text = process(self, message);
		if status == "failure" and condition == "not-authorized" and self.jwt_refusal then
			text = self.jwt_refusal;
		end
		return status, condition, text;
	end
	handler.clean_clone = new_handler;
	return handler;
end

local provider = {};

function provider.get_sasl_handler()
	return new_handler();
end

function provider.test_password()
	return nil, "token login only";
end

function provider.get_password()
	return nil, "token login only";
end

function provider.set_password()
	return nil, "token login only: there are no passwords";
end

function provider.create_user()
	return nil, "token login only: accounts cannot be created";
end

function provider.delete_user()
	return nil, "token login only: there are no accounts";
end

-- A user exists while it is signed in.
function provider.user_exists(username)
	return prosody.hosts[module.host].sessions[username] ~= nil;
end

function provider.users()
	return next, prosody.hosts[module.host].sessions, nil;
end

module:provides("auth", provider);

-- mod_saslauth fires this while the handler is still on the session.
module:hook("authentication-success", function(event)
	local session = event.session;
	local claims = session.sasl_handler and session.sasl_handler.jwt_claims;
	if claims then
		session.jwt_claims = claims;
		session.log("info", "signed in with a token for room %q%s", claims.room,
			claims.moderator and " as moderator" or "");
	end
end);

module:hook("authentication-failure", function(event)
	if event.condition == "not-authorized" and event.text then
		event.session.log("info", "token refused: %s", event.text);
	end
end);

-- Nothing is written to disk for this host's (random, one-off) users.
local function no_storage(username, host, datastore, data)
	if host == module.host then
		return false;
	end
	return username, host, datastore, data;
end

function module.load()
	datamanager.add_callback(no_storage);
end

function module.unload()
	datamanager.remove_callback(no_storage);
end
