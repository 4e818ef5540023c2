#!/usr/bin/env bash
# Executor zones (issue 6, Zuul's executor zones): node na is in zone "a", node nb in none. The
# zone-a executor runs only na's builds, the unzoned executor only nb's; with the unzoned
# executor gone nb's build waits (the zone-a executor does not take it) until a zone-a executor
# that allows unzoned builds comes; then it runs there. The status lists each executor's zone.
. "$(dirname "$0")/lib.sh"
vz_setup
make_repo "$T/repos/p.git"
port=$(free_port)
cat > "$T/vinz.yaml" <<YAML
state_dir: state
scheduler:
  listen: tcp://127.0.0.1:$port
  admin: ipc://$T/admin.sock
  lease: 2
  heartbeat: 0.2
executor:
  name: exu
connections:
  - name: g
    driver: git
    baseurl: repos
nodes:
  - name: na
    connection: local
    labels: [la]
    zone: a
    max_parallel: 4
  - name: nb
    connection: local
    labels: [lb]
    max_parallel: 4
pipelines:
  - name: check
    manager: independent
jobs:
  - name: ja
    label: la
    run: ['echo ran-ja']
  - name: jb
    label: lb
    run: ['echo ran-jb']
projects:
  - name: p
    connection: g
    check:
      jobs: [ja, jb]
YAML
sed -e 's/name: exu/name: exa\n  zone: a\n  work_dir: exa-work/' "$T/vinz.yaml" > "$T/exa.yaml"
sed -e 's/name: exu/name: exa2\n  zone: a\n  allow_unzoned: true\n  work_dir: exa2-work/' "$T/vinz.yaml" > "$T/exa2.yaml"
start_scheduler
wait_until 10 vz status --json || fail "scheduler did not come up"
start_executor; EXU=$EXEC_PID
"$VINZ" executor --config "$T/exa.yaml" >>"$T/exa.log" 2>&1 & EXA=$!; VZ_PIDS+=("$EXA")
wait_until 10 bash -c "[ \$('$VINZ' status --json --config '$T/vinz.yaml' | jq '[.executors[] | select(.connected)] | length') = 2 ]" ||
	fail "both executors should connect"
vz status --json | jq -e '.executors[] | select(.name == "exa") | .zone == "a"' >/dev/null || fail "status should show exa's zone"

vz enqueue --pipeline check --project p --ref refs/changes/1 --id 1 >/dev/null
wait_until 30 queue_empty || fail "change 1 did not complete"
j=$(builds_json 1)
[ "$(jq -r '.[] | select(.job == "ja") | .executor | split("/")[0]' <<<"$j")" = exa ] || fail "ja (node na, zone a) should run on exa: $j"
[ "$(jq -r '.[] | select(.job == "jb") | .executor | split("/")[0]' <<<"$j")" = exu ] || fail "jb (unzoned node nb) should run on exu: $j"
[ "$(jq -r '[.[] | select(.result == "SUCCESS")] | length' <<<"$j")" = 2 ] || fail "both builds should pass: $j"
ok "a zoned node's build runs on its zone's executor, an unzoned node's on the unzoned executor"

kill -9 "$EXU"; wait "$EXU" 2>/dev/null || true
exu_gone() { vz status --json | jq -e '[.executors[] | select(.name == "exu" and .connected)] | length == 0'; }
wait_until 10 exu_gone || fail "the scheduler should notice exu is gone after its lease"
vz enqueue --pipeline check --project p --ref refs/changes/2 --id 2 >/dev/null
jb_state() { builds_json 2 | jq -r '[.[] | select(.job == "jb") | .state] | join(",")'; }
ja_done() { builds_json 2 | jq -e '.[] | select(.job == "ja") | .result == "SUCCESS"'; }
wait_until 30 ja_done || fail "ja of change 2 should run on exa"
sleep 3 # several dispatch rounds and heartbeats with exa idle
[ "$(jb_state)" = queued ] || fail "jb must wait for an executor that reaches unzoned nodes, is $(jb_state)"
"$VINZ" executor --config "$T/exa2.yaml" >>"$T/exa2.log" 2>&1 & VZ_PIDS+=($!)
wait_until 30 queue_empty || fail "change 2 did not complete once a zoned executor allowing unzoned came"
[ "$(builds_json 2 | jq -r '.[] | select(.job == "jb") | .executor | split("/")[0]')" = exa2 ] || fail "jb should run on exa2: $(builds_json 2)"
ok "with no unzoned executor the unzoned node's build waits, and runs on a zoned executor with allow_unzoned"
