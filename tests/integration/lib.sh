# Shared helpers for the shell integration tests. Every wait is bounded; every process started
# is killed by the EXIT trap set in vz_setup.
set -euo pipefail
: "${VINZ:?VINZ must point at the vinz binary}"
command -v jq >/dev/null || { echo "jq is required (contrib/install-deps.sh installs it)"; exit 1; }

VZ_PIDS=()      # killed with SIGKILL at exit
VZ_TERM_PIDS=() # stopped with SIGTERM at exit, after those (test sshds: they clean up after themselves)
vz_cleanup() {
	local p
	for p in "${VZ_PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
	for p in "${VZ_PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
	for p in "${VZ_TERM_PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
	for p in "${VZ_TERM_PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
	if [ "${VZ_KEEP:-0}" = 1 ] || [ "${VZ_FAILED:-0}" = 1 ]; then
		echo "(kept $T)"
		for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }; done
	else
		rm -rf "$T"
	fi
}

vz_setup() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/vz-it-XXXXXX")
	trap 'VZ_FAILED=1' ERR
	trap vz_cleanup EXIT
}

fail() { VZ_FAILED=1; echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

# A tcp port on 127.0.0.1 that nothing listens on.
free_port() {
	local p i
	for i in $(seq 1 50); do
		p=$(( 20000 + (RANDOM % 30000) ))
		ss -ltn 2>/dev/null | awk '{print $4}' | grep -q ":$p\$" || { echo "$p"; return; }
	done
	fail "no free port"
}

# wait_until SECONDS CMD...: runs CMD every 0.1 s until it succeeds.
wait_until() {
	local limit=$1; shift
	local end=$(( $(date +%s%N) / 1000000 + limit * 1000 ))
	while (( $(date +%s%N) / 1000000 < end )); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	return 1
}

# make_repo DIR: bare repo DIR with master and refs/changes/1..3.
make_repo() {
	local bare=$1 w
	w=$(mktemp -d "$T/work-XXXXXX")
	git -C "$w" init -q -b master
	git -C "$w" config user.email t@vinz.invalid
	git -C "$w" config user.name test
	echo base > "$w/README"
	git -C "$w" add README && git -C "$w" commit -qm base
	for i in 1 2 3; do
		git -C "$w" checkout -q -b c$i master
		echo "$i" > "$w/change-$i"
		git -C "$w" add "change-$i" && git -C "$w" commit -qm "change $i"
	done
	git init -q --bare "$bare"
	git -C "$w" push -q "$bare" master
	for i in 1 2 3; do git -C "$w" push -q "$bare" "c$i:refs/changes/$i"; done
	rm -rf "$w"
}

# write_config FILE PORT JOBCMD...: a two-process setup over tcp loopback with a local node.
write_config() {
	local f=$1 port=$2; shift 2
	{
		echo "state_dir: state"
		echo "log_level: info"
		echo "scheduler:"
		echo "  listen: tcp://127.0.0.1:$port"
		echo "  admin: ipc://$T/admin.sock"
		echo "  lease: 2"
		echo "  heartbeat: 0.2"
		echo "executor:"
		echo "  name: ex1"
		echo "  capacity: 2"
		echo "connections:"
		echo "  - name: g"
		echo "    driver: git"
		echo "    baseurl: repos"
		echo "nodes:"
		echo "  - name: local"
		echo "    connection: local"
		echo "    labels: [local]"
		echo "    max_parallel: 4"
		echo "pipelines:"
		echo "  - name: check"
		echo "    manager: independent"
		echo "jobs:"
		echo "  - name: slow"
		echo "    label: local"
		echo "    attempts: 3"
		echo "    run:"
		local c
		for c in "$@"; do printf '      - %s\n' "$c"; done
		echo "projects:"
		echo "  - name: p"
		echo "    connection: g"
		echo "    check:"
		echo "      jobs: [slow]"
	} > "$f"
}

# start_node NAME: a real sshd on loopback (tests/tools/vz-test-sshd) as node NAME; its settings go
# to $T/NAME.env (NODE_PORT, NODE_USER, NODE_KEY, NODE_KNOWN_HOSTS, NODE_SSHD_PID) and its pid to
# NODE_PID_<NAME>. kill -USR1 that pid kills the node's sshd and sessions (the node dies).
start_node() {
	local name=$1
	: "${VZ_TEST_SSHD:?VZ_TEST_SSHD must point at the vz-test-sshd tool}"
	"$VZ_TEST_SSHD" "$T/$name.env" >>"$T/$name.log" 2>&1 &
	VZ_TERM_PIDS+=($!)
	printf -v "NODE_PID_$name" '%s' "$!"
	wait_until 20 test -f "$T/$name.env" || fail "node $name (sshd) did not start: $(cat "$T/$name.log")"
}
# node_yaml NAME LABEL MAX_PARALLEL: the site-config entry of node NAME started by start_node.
node_yaml() {
	(
		. "$T/$1.env"
		printf '  - name: %s\n    connection: ssh\n    host: 127.0.0.1\n    port: %s\n    user: %s\n' "$1" "$NODE_PORT" "$NODE_USER"
		printf '    key: %s\n    known_hosts: %s\n    labels: [%s]\n    max_parallel: %s\n' "$NODE_KEY" "$NODE_KNOWN_HOSTS" "$2" "$3"
	)
}

# use_nodes FILE LABEL NODE...: the site config FILE (from write_config) gets the sshd nodes started
# by start_node instead of its local node, each with LABEL and max_parallel 4 (1 for the first
# form of node names ending in ':1', e.g. n1:1), and its job asks for LABEL.
use_nodes() {
	local f=$1 label=$2; shift 2
	local nodes="" n par
	for n in "$@"; do
		par=4; [[ "$n" == *:1 ]] && { par=1; n=${n%:1}; }
		nodes+="$(node_yaml "$n" "$label" "$par")"$'\n'
	done
	awk -v nodes="$nodes" '
		/^nodes:/ { print; printf "%s", nodes; skip = 1; next }
		skip && /^[a-z]/ { skip = 0 }
		!skip { print }' "$f" | sed "s/label: local/label: $label/" > "$f.tmp"
	mv "$f.tmp" "$f"
}

start_scheduler() { "$VINZ" scheduler --config "$T/vinz.yaml" >>"$T/scheduler.log" 2>&1 & SCHED_PID=$!; VZ_PIDS+=("$SCHED_PID"); }
start_executor() { "$VINZ" executor --config "$T/vinz.yaml" >>"$T/executor.log" 2>&1 & EXEC_PID=$!; VZ_PIDS+=("$EXEC_PID"); }
vz() { "$VINZ" "$@" --config "$T/vinz.yaml"; }
builds_json() { vz builds --json --change "$1"; }
# true when the change's newest build has started on a node
build_started() { builds_json "$1" | jq -e '.[0].start_time != null and .[0].state == "running"'; }
# true when no item is left in any pipeline
queue_empty() { vz status --json | jq -e '[.pipelines[].items[]] | length == 0'; }
