// Package messages is groupflow's public message contract: the commands
// upstream systems publish, the events groupflow publishes in return, the
// subjects both travel on, and an AsyncAPI 3.0 document (AsyncAPI) that
// describes them all. It depends on nothing but the standard library.
//
// # Subjects
//
// With the default prefix "groups" (see Subjects):
//
//	groups.cmd.<command type>   commands, stream GROUPS_COMMANDS   e.g. groups.cmd.provision_group
//	groups.evt.<event type>     events,   stream GROUPS_EVENTS     e.g. groups.evt.group_provisioned
//	groups.dlq.<command type>   dead letters, stream GROUPS_DLQ    e.g. groups.dlq.provision_group
//
// Command bodies are JSON objects with camelCase fields (see ProvisionGroup,
// SendCampaign, SetMembershipQuestions, PropagateRules, GenerateReport).
// Unknown fields are ignored, so producers may send fields a newer contract
// defines. Decode parses, applies defaults and validates a body; its errors
// are permanent: an invalid command is dead-lettered at once with a
// CommandFailed event, never retried.
//
// Events are JSON bodies with CloudEvents 1.0 headers in binary mode
// (ce-specversion, ce-id, ce-type "groupflow.<event type>", ce-source,
// ce-time, ce-subject, content-type).
//
// # Ids
//
// A command's id comes from the body's "id", else the Nats-Msg-Id header,
// else one is generated. Every event has a deterministic id (EventID), used
// both as ce-id and as Nats-Msg-Id, so a command delivered twice publishes
// its events once within the stream's duplicate window. Completion events
// derive their id from the command id; MemberSelected derives it from the
// campaign id and member id, so resending a campaign does not select a member
// twice. Reuse a command id only to mean "the same command".
//
// # Ordering
//
// Commands are independent and may be handled concurrently and out of
// order. A producer that needs one command to follow another waits for the
// first one's completion event (or CommandFailed), matched by commandId or
// correlationId, before publishing the next.
package messages
