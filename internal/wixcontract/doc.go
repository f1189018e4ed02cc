// Package wixcontract holds the contract tests between groupflow's Wix REST
// client (internal/wix) and the Wix simulator (internal/wixsim). It has no
// non-test code.
//
// The two packages were written independently from the same reference of
// Wix's published API (https://dev.wix.com/docs/rest). The tests here
// run the real client (wix.New with the simulator's base URL) against the real
// simulator (wixsim.New(...).Start on a loopback port) over HTTP, and so prove
// that they agree with each other on:
//
//   - every endpoint the client offers: groups create/get/list/query/update/
//     delete, group members add/remove/list/query, members query (PUBLIC,
//     EXTENDED and FULL fieldsets return the documented fields) and get,
//     email subscriptions query, membership questions list/replace, list
//     answers, rules list/replace, contacts query; under both group path
//     prefixes (/social-groups-proxy/... and the legacy /social-groups/v2);
//   - offset paging across page boundaries (metadata count/offset/total) and
//     the client's page iterators;
//   - every documented limit: the client rejects over-limit input itself,
//     before any request, with a permanent wix.ErrInvalidInput; and when such
//     a request reaches the simulator anyway (the tests tamper with the wire
//     request), the simulator answers a 400 whose validationError names the
//     violated field, which the client parses into *wix.APIError;
//   - authentication: 401 without Authorization, 403 without wix-site-id,
//     app OAuth (client credentials → token → calls, one token for many
//     concurrent calls, renewal after the simulator expires the token);
//   - errors: 404 for an unknown group (wix.IsNotFound), and the permanent vs
//     transient classification the runtime relies on (failure.IsPermanent);
//   - rate limiting: a 429 burst is retried to success, a persistent 429 is a
//     transient error, and the client's adaptive per-site limiter, set to the
//     simulator's (scaled) rate, stops drawing 429s after its first
//     adaptation while 1,000 concurrent calls all succeed.
//
// BenchmarkLimiterUtilisation reports the achieved request rate as a
// fraction of the simulator's limit ("utilisation") and the 429s drawn.
package wixcontract
