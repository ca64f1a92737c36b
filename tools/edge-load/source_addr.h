#pragma once
// Client source addresses for edge-load: --source-range spreads connections over many 127/8 addresses, so
// that a run can open more connections than one address has ephemeral ports to one target (about 28,000
// with Linux's default ip_local_port_range) and so that whatever a server limits per client address sees
// that many different clients. One owner for the round robin and for the bind-before-connect.

#include <cstdint>
#include <memory>
#include <string>

#include <openssl/ssl.h>

#include "common/core/loop.h"
#include "common/net/address.h"
#include "common/net/connection.h"

namespace edgepair::load {

struct Options;

// The source address of connection number `n` (IPv4, host order): --source-range round robin, or 0 (the
// kernel's choice) without one.
uint32_t source_for(const Options& o, uint64_t n);

// A non-blocking connect like net::Connection::connect, from `source` (0 = the kernel's choice) when the
// target is IPv4. Takes ownership of `ssl` (freed on failure).
std::unique_ptr<net::Connection> connect_from(core::Loop& loop, const net::SockAddr& to, uint32_t source,
                                              SSL* ssl, std::string* err);

} // namespace edgepair::load
