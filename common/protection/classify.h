#pragma once
// Which failures count in which category: pure functions of what the sessions see, kept in one place so
// that HTTP/1.1 and HTTP/2 (and, later, any other detector) count the same things.
#include <optional>
#include <string_view>

#include "common/protection/category.h"

namespace edgepair::protection {

// A request edge-e refused itself (the gate, the HTTP/1.1 parser, the HTTP/2 request checks), by its status
// and reason label:
//   400, 414, 431, 501, 505 (malformed heads, smuggling, look-alike and duplicate fields, path tricks the
//   normaliser refuses)                                                    -> http-ce-intrusion
//   404, 405 and 403 "blocked" (unknown domain or service, off the allow list, a method the resource has not)
//                                                                          -> http-ce-access
//   401, 403 (any other)                                                   -> http-ce-auth
// Never counted: 408 (slow head), 413 (large body), 429 (rate limits), 502-504 (our own trouble): a client
// that meets them has not shown hostile intent, and the rate limits answer floods already.
std::optional<Category> refusal_category(int status, std::string_view reason);

// An answer edge-c (or the origin behind it) gave: 401, 403, 407 -> http-ce-auth (edge-c's credential and
// token checks, the origin's own authorization); 404 -> http-ce-access. edge-c's 403 for a path off its allow
// list also lands in http-ce-auth: the answer does not say why, and edge-e's gate refuses the same paths
// first with the same allow list, so this only happens while the two edges' snapshots differ.
std::optional<Category> answer_category(int status);

// SIP: a final response edge-c relays to the client. `method` is the CSeq method; `had_credentials` whether
// the request it answers carried Authorization or Proxy-Authorization. A 401/407 to a request without them
// is the ordinary digest challenge (RFC 3261 22.2), never a failure; with them it is a wrong password (or
// token); 403 is always a refusal. Only REGISTER and INVITE count (issue #17).
bool sip_auth_failure(int status, std::string_view method, bool had_credentials);

} // namespace edgepair::protection
