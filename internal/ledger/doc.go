// Package ledger records, in a JetStream Key-Value bucket, what each command
// has done, and is the command lifecycle: who works on it (a lease), what it
// has done so far (checkpoints), and how it ended (the outcome event, or a
// dead letter). A redelivered, replayed or re-sent command reads its record
// and resumes or answers from it, so Wix side effects happen once.
//
// # The lifecycle
//
// Every write to a command's record is a compare-and-set on its revision
// (a concurrent writer makes it fail or retry, never lose an update). The
// operations are the protocol:
//
//	Ledger.Acquire(claim)  -> *Lease | completed *Record | *HeldError | *CollisionError
//	Lease.Renew            extend the lease (the runtime, while the handler works)
//	Lease.Checkpoint       save a step's progress (and extend the lease): one write
//	Lease.Load             read a step's progress back after a redelivery
//	Lease.Unsure           may an earlier attempt have sent a side effect it left no checkpoint of?
//	Lease.Acting           this attempt sends one (memory only: no write)
//	Lease.Hold             renew only if under half the term is left (before an unfenced side effect)
//	Lease.Complete         record the outcome event and give the lease up
//	Lease.Fail             count a failed attempt and give the lease up (if still its)
//	Lease.Release          give the lease up (shutdown: no failure; if still its)
//	Ledger.Fail            count a failed attempt of a message that never acquired the command
//	Ledger.DeadLetter      mark the command dead-lettered (its dead letter is stored)
//
// States and transitions, for a claim by owner O of message seq S
// ("other" = another owner; "live" is on the server's clock, see below):
//
//	state of the record                 Acquire                              Renew/Checkpoint/Complete by O's lease
//	----------------------------------  -----------------------------------  -------------------------------------
//	none                                create: processing(O,S), Fresh       -
//	processing, other, live, seq S      *HeldError (nack until it expires)   ErrLost
//	processing, other, live, seq != S   *HeldError{DuplicateCopy} (ack)      ErrLost
//	processing, other, expired          take over: processing(O,S)           ErrLost
//	(other's lease: a probe of the      a failed probe: transient error      -
//	server's clock, see below)
//	processing, O (a retry) or no owner take: processing(O,S)                ok (revision moves on)
//	dead_lettered (a replay)            take, failures cleared,              -
//	                                    checkpoints kept
//	completed, with its event           the record: answer from it, no write ErrLost
//	another command's record            *CollisionError (permanent)          -
//	concurrent write during Acquire     *HeldError (another instance)        -
//
//	Lease.Fail     still its lease -> failures+1, owner cleared, Sure kept
//	               another lease live, or another message holds it -> unchanged (Sure only lowered, never beside a live lease)
//	               otherwise (a stale lease, nobody holds it) -> failures+1
//	Lease.Release  still its lease -> owner cleared, Sure kept              (otherwise unchanged)
//	Ledger.Fail(S) none -> processing, failures 1, LastSeq S (refused before acquire)
//	               a live lease, or another message than S holds it -> unchanged
//	               otherwise -> failures+1, LastSeq S if it named none, no owner change
//	DeadLetter(S, lease)  any but completed/foreign/held by another message than S/another live lease
//	               -> dead_lettered, owner cleared
//	Complete       processing(O) -> completed, owner cleared, checkpoints dropped
//	(completed and foreign records: unchanged by all of them)
//
// Whose clock: a lease is judged by its owner on its own clock (Lease.Hold:
// its own LeaseUntil against its own now, an elapsed time on one clock),
// and by anyone else on the server's clock alone: it runs for its term,
// LeaseUntil minus UpdatedAt (Record.Term: both the owner's readings, in
// the same write — every write that sets LeaseUntil is the lease's own),
// from the server's time of the record's revision (Record.Stored, the
// entry's stamp) — live while the server's now (Ledger.ServerNow: a probe
// written to ClockKey and read back) is before that end. So no instance's
// clock is compared with another's or the server's, and one whose clock
// runs minutes ahead neither takes a live lease over early nor, behind,
// late. The probe (one write, one read) is made only when the record
// holds another owner's lease that may be live (an owner, a term left):
// a fresh command's Acquire, a retry of O's own, a released or completed
// record cost what they did. A failed probe is a transient error, never
// "not live". A write outside a lease that keeps an expired lease's owner
// (Ledger.Fail, no owner change) stamps UpdatedAt no earlier than its
// LeaseUntil, so the term it leaves is spent and the lease stays expired.
//
//	reader                     decides by                     costs
//	the owner (Hold, keeper)   its LeaseUntil vs its clock    nothing
//	another: Acquire, Fail,    Stored + Term vs ServerNow      one write + one read (ClockKey),
//	DeadLetter, Live,                                          only beside another owner's lease
//	HeldByAnotherDelivery
//
// "Still its lease": the record is at the revision the lease last wrote,
// or carries the lease's id (Record.LeaseID, random per Acquire: a write
// stored, its reply lost). A lease gives itself up by its id, never by its
// owner's name: two deliveries or copies of a command can be leased one
// after the other in one instance, and the first one's late Fail must not
// free the second's live lease. "Held by another message than S": a processing record with a live
// lease of another message, or whose last acquirer (Record.LastSeq, kept
// after the lease is given up) was another message. So a message that
// never acquired the command — an invalid or forged copy — changes nothing
// of a command in progress on behalf of another copy, and a dead letter of
// it does not mark the command dead-lettered.

// Every write through a Lease that finds the revision moved re-reads the
// record: if it still carries the lease's id and is processing, the move was
// the lease's own earlier write stored with its reply lost, and the write is
// made on the record's current revision. Otherwise (another owner acquired
// the command, or it ended) it returns ErrLost, and so does every later one:
// the holder stops, and the new owner resumes from the checkpoints.
//
// Checkpoints up to InlineStepLimit bytes live in the record itself, so a
// checkpoint costs one write that also renews the lease. Larger ones get a
// step key of their own, written only while the record is at the lease's
// revision and by a compare-and-set on that key's revision: a stale owner
// cannot overwrite a newer owner's state. One larger than half the
// broker's max payload is kept in parts, the step key naming them, and
// deleted once replaced (see storeParts); Prune, after the event is out,
// deletes the step keys the lease read or wrote. The record also keeps
// the command's Wix call count (Lease.Calls), updated by each write.
//
// Unsure replaces a checkpoint written only to say "a side effect may have
// been sent": it is true after a crash, a failover or a replay (a handler
// then asks Wix, allowing for its answers lagging), and false on a fresh
// command, on an in-process retry (Claim.After) that follows attempts
// of this process which marked no Acting and nobody else's write, and on a
// redelivery or replay after such attempts gave the lease up (Lease.Fail,
// Lease.Release keep it in the write they make anyway: Record.Sure):
//
//	Acquire   fresh (created)  Record.Sure  took over, Claim.After wrote last   took over, otherwise
//	Unsure    false            false        After.Unsure || After acted         true
//
// A one-person provision_group costs: Acquire (create) and Complete — two
// ledger writes — and the event.
package ledger
