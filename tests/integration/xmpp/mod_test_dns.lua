-- Test-only: every DNS look-up of this Prosody goes to `test_dns_server` (an IP; port 53) instead of the
-- servers in /etc/resolv.conf, so each test Prosody sees its own side's DNS (tests/integration/test_federation.py).
local adns = require "net.adns";
local server = module:get_option_string("test_dns_server");
if server and not adns._edgepair_test_dns then
	local original = adns.resolver;
	adns._edgepair_test_dns = true;
	adns.resolver = function(...)
		local r = original(...);
		r._resolver.server = { server };
		r._resolver.best_server = 1;
		return r;
	end
	module:log("info", "DNS look-ups go to %s", server);
end
