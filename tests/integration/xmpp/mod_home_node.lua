-- IM and Presence's user assignment, for tests/integration/test_multicluster.py: Prosody plays one node of
-- the central IM&P cluster. Every user is assigned to one node (home_nodes_file, re-read on each sign-in:
-- lines "<user> <node>", and "takeover <node>" while this node serves a failed peer's users, as the backup of
-- a presence redundancy group does). A user homed on another node is answered, instead of <success/>, with
-- the RFC 6120 redirect <see-other-host>node</see-other-host>: edgepair's assumed form of IM&P's home-node
-- hint (docs/PROTOCOL-FACTS.md). Each outcome is logged as "home_node: accepted <user>" or
-- "home_node: redirected <user> to <node>" for the test to read.
local st = require "util.stanza";

local self_node = module:get_option_string("home_node_self");
local file = module:get_option_string("home_nodes_file");

local function read_map()
	local homes, takeover = {}, {};
	local f = io.open(file, "r");
	if not f then return homes, takeover; end
	for line in f:lines() do
		local a, b = line:match("^%s*(%S+)%s+(%S+)%s*$");
		if a == "takeover" then
			takeover[b] = true;
		elseif a then
			homes[a] = b;
		end
	end
	f:close();
	return homes, takeover;
end

module:hook("authentication-success", function(event)
	local session = event.session;
	local user = session.username;
	local homes, takeover = read_map();
	local home = homes[user];
	if home and home ~= self_node and not takeover[home] then
		module:log("info", "home_node: redirected %s to %s", user, home);
		session:close(st.stanza("stream:error")
			:tag("see-other-host", { xmlns = "urn:ietf:params:xml:ns:xmpp-streams" }):text(home));
		return true;
	end
	module:log("info", "home_node: accepted %s", user);
end, 10);
