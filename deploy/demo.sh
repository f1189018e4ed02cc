#!/usr/bin/env bash
# The full local demo: groupflow (embedded NATS + Wix simulator), groupmail,
# Mailpit and the demo's mail viewer (mailview, reading Mailpit's API: a
# Mailpit built with `go install` has no web UI) on loopback; sends a consent-checked campaign to the demo site's
# largest group and waits until every selected member's mail is in Mailpit.
# Run it with `make demo`; Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./bin
DATA=./data/demo
# Ports (make demo passes these through): loopback only.
SMTP_PORT=${SMTP_PORT:-1025}
MAILPIT_PORT=${MAILPIT_PORT:-8025}
NATS_PORT=${NATS_PORT:-4222}
ADMIN_PORT=${ADMIN_PORT:-8080}
WIXSIM_PORT=${WIXSIM_PORT:-8090}
GROUPMAIL_PORT=${GROUPMAIL_PORT:-8081}
MAILVIEW_PORT=${MAILVIEW_PORT:-8026}
export GROUPCTL_NATS_URL=nats://127.0.0.1:$NATS_PORT
rm -rf "$DATA"
mkdir -p "$DATA"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

await() { # await URL NAME
  for _ in $(seq 1 150); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "demo: $2 did not come up; see $DATA/*.log" >&2; exit 1
}

"$BIN/mailpit" --smtp 127.0.0.1:$SMTP_PORT --listen 127.0.0.1:$MAILPIT_PORT --database "$DATA/mailpit.db" \
  --smtp-disable-rdns --disable-version-check >"$DATA/mailpit.log" 2>&1 &
pids+=($!)
"$BIN/groupflow" --data-dir "$DATA/groupflow" --nats-listen 127.0.0.1:$NATS_PORT \
  --http-listen 127.0.0.1:$ADMIN_PORT --wix-sim-listen 127.0.0.1:$WIXSIM_PORT >"$DATA/groupflow.log" 2>&1 &
pids+=($!)
"$BIN/mailview" --mailpit http://127.0.0.1:$MAILPIT_PORT --listen 127.0.0.1:$MAILVIEW_PORT >"$DATA/mailview.log" 2>&1 &
pids+=($!)
await http://127.0.0.1:$MAILPIT_PORT/readyz mailpit
await http://127.0.0.1:$MAILVIEW_PORT/ mailview
await http://127.0.0.1:$ADMIN_PORT/readyz groupflow
GROUPMAIL_FROM='Demo Club <news@demo.example>' "$BIN/groupmail" --nats-url nats://127.0.0.1:$NATS_PORT \
  --smtp-host 127.0.0.1 --smtp-port $SMTP_PORT --smtp-tls none --templates deploy/templates \
  --unsubscribe-url 'https://demo.example/unsub?m={{.MemberID}}&c={{.CampaignID}}' \
  --http-listen 127.0.0.1:$GROUPMAIL_PORT --rate 50 >"$DATA/groupmail.log" 2>&1 &
pids+=($!)
await http://127.0.0.1:$GROUPMAIL_PORT/readyz groupmail

group=$(curl -s http://127.0.0.1:$WIXSIM_PORT/_sim/sites/demo-site/groups |
  python3 -c 'import json,sys; g=max(json.load(sys.stdin)["groups"], key=lambda g: g["membersCount"]); print(g["id"], g["name"], g["membersCount"], sep="\t")')
IFS=$'\t' read -r gid gname gcount <<<"$group"
echo "demo: campaign 'spring-demo' to \"$gname\" ($gcount members) on the simulated site demo-site"
event=$("$BIN/groupctl" send campaign --campaign-id spring-demo --group "$gid" --content @deploy/demo-content.json --wait --idle-timeout 2m)
echo "$event"
selected=$(sed -n 's/.*"selected": *\([0-9]*\).*/\1/p; s/.* selected=\([0-9]*\).*/\1/p' <<<"$event" | head -1)
echo "demo: waiting for ${selected:-the} mails in Mailpit"
for _ in $(seq 1 600); do
  total=$(curl -s 'http://127.0.0.1:'"$MAILPIT_PORT"'/api/v1/messages?limit=1' | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
  [ -n "$selected" ] && [ "$total" -ge "$selected" ] && break
  sleep 0.5
done
echo "demo: $total mails delivered. Open http://127.0.0.1:$MAILVIEW_PORT to read them (the ops console: http://127.0.0.1:$ADMIN_PORT/). Ctrl-C stops the demo."
wait
