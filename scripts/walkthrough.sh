#!/usr/bin/env bash
# Runs the README's local walkthrough, command by command as written, on a
# fresh clone: make build, then groupflow as `make run` starts it (embedded
# NATS and simulator), then the groupctl commands of "Send a command, watch
# its events". Exits non-zero at the first command that fails.
#
#   scripts/walkthrough.sh            # in a fresh clone (it clones HEAD into a temp dir)
#   WALKTHROUGH_IN_PLACE=1 scripts/walkthrough.sh   # in this checkout
#
# Ports: NATS_PORT (default 14222), ADMIN_PORT (18080), WIXSIM_PORT (18090),
# so a running `make run` is not disturbed.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${WALKTHROUGH_IN_PLACE:-}" ]; then
  work=$(mktemp -d)
  trap 'kill "${gf:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
  git clone -q "$src" "$work/groupflow"
  cd "$work/groupflow"
else
  cd "$src"
  trap 'kill "${gf:-}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
fi
NATS_PORT=${NATS_PORT:-14222} ADMIN_PORT=${ADMIN_PORT:-18080} WIXSIM_PORT=${WIXSIM_PORT:-18090}
export NATS_URL=nats://127.0.0.1:$NATS_PORT   # groupctl reads the nats CLI's variable

step() { echo "+ $*" >&2; "$@"; }

step make build
export PATH=$PWD/bin:$PATH
data=$(mktemp -d)
groupflow --data-dir "$data" --nats-listen 127.0.0.1:$NATS_PORT --http-listen 127.0.0.1:$ADMIN_PORT \
  --wix-sim-listen 127.0.0.1:$WIXSIM_PORT >"$data/groupflow.log" 2>&1 &
gf=$!
for _ in $(seq 1 150); do curl -sf http://127.0.0.1:$ADMIN_PORT/readyz >/dev/null && break; sleep 0.2; done
curl -sf http://127.0.0.1:$ADMIN_PORT/readyz >/dev/null || { echo "groupflow did not start:"; cat "$data/groupflow.log"; exit 1; }

step groupctl --version
step groupctl groups ls --limit 5
yoga=$(groupctl groups ls --prefix Yoga --limit 1 | awk 'NR==2 {print $1}')
big=$(groupctl groups ls --limit 1000 --json | python3 -c 'import json,sys; print(max(json.load(sys.stdin)["groups"], key=lambda g: g["membersCount"])["id"])')
step groupctl groups show "$big"
step groupctl groups ls --with-questions --limit 3

rid=$(groupctl send report --top 10 --idle 10 --idle-days 30 --wait | sed -n 1p)
echo "report command: $rid"
step groupctl report get "$rid" --format html -o "$data/report.html"
cat >"$data/roster.csv" <<'CSV'
First Name,Last Name,Email,Phone,Class
,,maria.tanaka@mail.example.com,,Yoga
,,,(201) 555-0101,Yoga
Charlotte,Martinez,,,Yoga
,,nobody@nowhere.example,,Yoga
,,not-an-email,,Yoga
,,MARIA.TANAKA@mail.example.com,,Yoga
CSV
step groupctl send provision --name "Yoga Monday" --roster "$data/roster.csv" --privacy PRIVATE --wait
step groupctl send provision --name "Yoga Monday" --privacy PRIVATE --update-settings --wait
step groupctl send campaign --campaign-id spring --group "$big" --content '{"templateId":"spring-offer"}' --wait
step groupctl send campaign --campaign-id pilates --group "$big" --keywords 'pilates,"hot yoga"' --match any
step groupctl send questions --group "${yoga:-$big}" --question "Which classes interest you?" --required-question "Do you have an injury we should know about?" --wait
rules_src=$(groupctl groups ls --with-rules --limit 1 | awk 'NR==2 {print $1}')   # a source with rules
step groupctl send rules --source "$rules_src" --prefix Yoga --dry-run --wait
step groupctl events tail --type campaign_completed --since 1h --count 1
cid=$(groupctl send campaign --campaign-id walk --group "$big")
step groupctl status "$cid"
step groupctl dlq ls
if groupctl dlq lst 2>/dev/null; then echo "dlq lst should fail" >&2; exit 1; fi
echo "walkthrough: every command worked" >&2
