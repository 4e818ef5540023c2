#!/usr/bin/env bash
# The README's main command and the CLI against the embedded default: vinz demo exits 0; vinz up
# with enqueue/status/builds; builds --json carries the documented fields; a failing job, a job
# timeout and usage/config errors give the documented exit codes and clear messages.
. "$(dirname "$0")/lib.sh"
vz_setup

"$VINZ" demo --dir "$T/demo" > "$T/demo.log" 2>&1 || { cat "$T/demo.log"; fail "vinz demo failed"; }
grep -q "demo passed" "$T/demo.log" || fail "demo did not say it passed"
ok "vinz demo exits 0 with the expected outcome"

"$VINZ" --version | grep -q '^vinz ' || fail "--version"
"$VINZ" --help | grep -q 'exit codes' || fail "--help lists exit codes"
for c in up scheduler executor enqueue status builds demo; do
	"$VINZ" help "$c" | grep -q "usage: vinz $c" || fail "vinz help $c"
	"$VINZ" "$c" --help | grep -q "usage: vinz $c" || fail "vinz $c --help"
done
set +e
"$VINZ" frobnicate 2>"$T/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q "no command 'frobnicate'" "$T/err" || fail "unknown command: rc $rc"
set +e; "$VINZ" enqueue --pipeline check 2>"$T/err"; rc=$?; set -e
[ $rc = 2 ] || fail "missing enqueue args should exit 2, got $rc"
printf 'scheduler:\n  lease: nope\nbogus: 1\n' > "$T/bad.yaml"
set +e; "$VINZ" up --config "$T/bad.yaml" 2>"$T/err"; rc=$?; set -e
[ $rc = 3 ] || fail "invalid config should exit 3, got $rc"
grep -q "bad.yaml:[0-9]*:[0-9]*: " "$T/err" || fail "config errors must read file:line:col: $(cat "$T/err")"
set +e; "$VINZ" status --admin "ipc://$T/nobody.sock" 2>"$T/err"; rc=$?; set -e
[ $rc = 4 ] && grep -q "no scheduler answered" "$T/err" || fail "unreachable scheduler: rc $rc"
ok "help, version, usage, config and unreachable errors"

make_repo "$T/repos/p.git"
port=$(free_port)
write_config "$T/vinz.yaml" "$port" 'sleep 1' 'test "$VINZ_CHANGE" != 2' 'test -f change-$VINZ_CHANGE' 'echo tested $VINZ_COMMIT'
sed -i 's/^  listen: .*/  listen: inproc:\/\/vinz-executors/' "$T/vinz.yaml"
"$VINZ" up --config "$T/vinz.yaml" >>"$T/up.log" 2>&1 & VZ_PIDS+=($!)
wait_until 10 vz status --json || fail "vinz up did not come up"
for i in 1 2 3; do vz enqueue --pipeline check --project p --ref refs/changes/$i --id $i >/dev/null; done
# again while it is still queued or running (its job sleeps 1 s): nothing new
out=$(vz enqueue --pipeline check --project p --ref refs/changes/3 --id 3)
grep -q "already in check" <<<"$out" || fail "a repeated enqueue should say the change is already there: $out"
wait_until 30 queue_empty || fail "items did not complete"
j=$(vz builds --json)
[ "$(jq length <<<"$j")" = 3 ] || fail "want 3 builds (the repeated enqueue changes nothing): $j"
for f in uuid pipeline project change changes job result start_time end_time log_url; do
	jq -e --arg f "$f" 'all(.[]; has($f) and .[$f] != null)' <<<"$j" >/dev/null || fail "builds --json lacks $f"
done
[ "$(jq -r '.[] | select(.change=="2") | .result' <<<"$j")" = FAILURE ] || fail "change 2 should fail"
[ "$(jq -r '[.[] | select(.result=="SUCCESS")] | length' <<<"$j")" = 2 ] || fail "changes 1 and 3 should pass"
c1=$(jq -r '.[] | select(.change=="1") | .commit' <<<"$j")
[ "$c1" = "$(git -C "$T/repos/p.git" rev-parse refs/changes/1)" ] || fail "build tested the wrong commit"
grep -q "tested $c1" "$(jq -r '.[] | select(.change=="1") | .log_url' <<<"$j")" || fail "log lacks the command output"
vz builds | grep -q FAILURE || fail "plain builds output"
vz status | grep -q "check (independent)" || fail "plain status output"
ok "vinz up: enqueue, status, builds (--json fields), pass and fail"
