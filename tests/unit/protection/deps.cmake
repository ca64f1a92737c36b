# Exemptions are net::Network (common/net/network.h).
target_link_libraries(unit_protection PRIVATE ep_net)
