// Package mailer is groupmail, groupflow's reference downstream mailer: it
// consumes groups.evt.member_selected events with its own durable pull
// consumer, renders each email from the event's content (templateId +
// variables) with text/template and html/template, sends it over SMTP with
// go-mail, and announces the result with groups.evt.email_sent or
// groups.evt.email_failed.
//
// # Exactly once per event id
//
// An event is identified by its payload-derived id (MemberSelected.EventID,
// equal to the ce-id header), never by Nats-Msg-Id, which a dead-letter
// replay changes. The JetStream KV bucket GROUPMAIL_SENT holds one record per
// event id (and the clock probe, below), written only with compare-and-set
// on the entry's revision:
//
//  1. On every delivery, read the record. "sent" → acknowledge without
//     sending (and republish email_sent, deduplicated by its id).
//  2. Render the email (a template error is permanent: dead letter,
//     email_failed, ack; the record is not touched).
//  3. Claim: Create the record as "sending" (or Update a "failed" or stale
//     "sending" record at its revision). Losing the race means another
//     instance owns the event: nak and look again later.
//  4. Send over SMTP (4xx and connection errors retried with backoff; the
//     claim is refreshed, at its revision, before every retry, so a lost
//     claim stops the retries).
//  5. Update the record to "sent" at the claim's revision, publish
//     email_sent, acknowledge. A failed send updates the record to "failed"
//     (claimable again) and naks with a growing delay, or dead-letters.
//
// # The window where a mail can be sent twice
//
// SMTP gives no way to make a send and a KV write atomic, so one window is
// left: after the SMTP server accepted the message (DATA answered 250) and
// before step 5 stored "sent". It is kept small: the record is written right
// after the server's answer, before anything else; an SMTP attempt in
// progress is never interrupted by shutdown (only waits between attempts
// are), and the "sent" write is retried for a few seconds even during
// shutdown. A message the server accepted counts as sent even if the
// session then fails (RSET/QUIT), so it is not resent. If "sent" still
// cannot be stored (the broker is unreachable) the event is acknowledged
// anyway when possible, so no redelivery resends it.
//
// Only a crash (or a broker outage covering the write and the ack) inside
// that window leaves a "sending" claim behind. Such a stale claim is
// ambiguous: the mail may or may not have gone out. groupmail chooses
// delivery over silence: a redelivery that finds a "sending" claim older
// than Config.ClaimTimeout takes it over and sends again — a possible
// duplicate, never a loss. The Message-ID header is derived from the event
// id (MessageID), so such a duplicate carries the same Message-ID as the
// first copy and downstream systems (and most mail stores) can recognise
// it. A claim younger than ClaimTimeout belongs to a live instance (or a
// very recent crash): the delivery is nacked until the claim is resolved or
// stale; on the last delivery it is dead-lettered (reason claim_held) rather
// than dropped, and a replay is answered from the record.
//
// A claim's age is measured on the server's clock only: the time the stream
// stored the claim against the time it stores a probe written then
// (Store.ServerNow, on the bucket's one key ClockKey, overwritten by every
// probe). An instance's own clock plays no part, so a clock ahead of the
// server's by more than ClaimTimeout cannot take over a live claim (and send
// twice), nor a clock behind delay the take-over of a stale one. The probe
// is a write and a read, made only when a "sending" claim is found; if it
// fails, the delivery is retried as after any broker error, never sent on a
// guess. What remains assumed is that the servers that lead the bucket's
// stream in turn (a cluster's leader changes) roughly agree with each other.
//
// ClaimTimeout must exceed the longest send attempt (Config.SendTimeout plus
// the wait before the claim's next refresh, 1.5 × RetryMax), or a live but
// slow instance would lose its claim to a copy of the event, which would send
// it again: New refuses a shorter one. The default (5 minutes) is far above
// the defaults (60 s + 15 s).
//
// # Failures
//
// Permanent (dead letter on groups.dlq.member_selected with the reason,
// email_failed with Permanent true, ack): no or bad templateId, a missing
// template file, a template that does not parse, a missing variable
// (missingkey=error), an undeliverable address, an SMTP 5xx answer to MAIL,
// RCPT or DATA. Transient (retried in process with exponential backoff,
// then nacked with a growing delay, dead-lettered as exhausted with
// email_failed Permanent false on the last delivery): SMTP 4xx, connection,
// TLS and authentication errors, broker errors. Dead letters carry
// CommandType "member_selected", CommandID = the event id and
// OriginalSubject = the event subject, so `groupctl dlq replay` republishes
// the event; the record (never "sent" for a dead-lettered event) lets the
// replay send it. The last delivery is groupmail's to count
// (Config.MaxDeliver): the consumer allows 2 × MaxDeliver + 5 deliveries
// (runtime.ConsumerMaxDeliver, as groupflow's), so a last delivery given
// back by a shutdown or a crash, or whose dead letter could not be stored,
// is delivered again rather than dropped.
//
// Logs carry member, campaign and event ids; email addresses only at debug
// level, and SMTP error texts are stripped of the recipient's address.
package mailer
