// Package wixsim is an in-memory simulator of the Wix REST APIs that
// groupflow uses: Groups, Group Members, Membership Questions, Group Rules,
// Members v1, Email Subscriptions, Contacts v4 (query only) and the app OAuth
// token endpoint.
//
// It follows Wix's published REST API (https://dev.wix.com/docs/rest): the same paths (groups
// and group members under both /social-groups-proxy/... and the legacy
// /social-groups/v2/...), camelCase proto3-style JSON, offset paging with
// metadata {count, offset, total}, Wix-shaped error bodies, per-site token
// bucket rate limiting (200 requests/minute by default) and API-key or OAuth
// authentication. It is an independent implementation of the published API so
// that groupflow's Wix client can be contract-tested against it.
//
// Every site id gets its own deterministic, isolated data set, seeded from
// Options.Seed mixed with the site id. Faults (latency, error rates, hangs,
// connection resets, 429 bursts) can be switched on at runtime through the Go
// API (Server.SetFaults) or the control endpoints under /_sim/.
//
// Where the reference marks behaviour as UNCONFIRMED, the simulator picks one
// documented choice; those choices are listed on the relevant functions.
package wixsim
