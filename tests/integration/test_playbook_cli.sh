#!/usr/bin/env bash
# vinz playbook from the command line on the local connection: ansible-playbook's exit codes
# for bad usage and bad playbooks, hostile output (huge, endless, binary), include loops,
# the run timeout killing the command, the untrusted mode's refusals, no_log kept out of every
# output, job-output.txt/json and zuul_return. The SSH side is covered by test_playbook_oracle.
source "$(dirname "$0")/lib.sh"
vz_setup

P=$T/pb
mkdir -p "$P" "$T/logs"
cat > "$T/inv" <<INV
[nodes]
n1 ansible_connection=local
n2 ansible_connection=local
INV

run() { # run EXPECTED_EXIT ARGS...: runs vinz playbook, output in $T/out, $T/err
	local want=$1; shift
	set +e
	"$VINZ" playbook "$@" > "$T/out" 2> "$T/err"
	local got=$?
	set -e
	[ "$got" = "$want" ] || { cat "$T/out" "$T/err"; fail "vinz playbook $* exited $got, expected $want"; }
}

# --- usage and parse errors: ansible-playbook 2.14's codes
run 0 --help
grep -q "usage: vinz playbook" "$T/out" || fail "--help prints the usage"
run 2
run 2 --bogus x.yml
run 1 -i "$T/inv" "$P/missing.yml"
grep -q "could not be found" "$T/err" || fail "missing playbook named"
printf -- '- hosts: all\n  tasks:\n    - command: [\n' > "$P/yaml.yml"
run 4 -i "$T/inv" "$P/yaml.yml"
grep -q "yaml.yml:4:1" "$T/err" || fail "YAML error gives file:line: $(cat "$T/err")"
printf -- '- hosts: all\n  tasks:\n    - name: nope\n      fancy_module: x=1\n' > "$P/mod.yml"
run 4 -i "$T/inv" "$P/mod.yml"
grep -q "mod.yml:4:7: task 'nope': couldn't resolve module/action 'fancy_module'" "$T/err" || fail "unknown module: $(cat "$T/err")"
run 4 -i "$T/inv" --syntax-check "$P/mod.yml"
run 1 -i "$T/inv" -e @"$T/nothere.yml" "$P/mod.yml"
run 4 -i "$T/inv" -e '{bad' "$P/mod.yml"
ok "exit codes of usage and parse errors"

# --- hostile output
cat > "$P/output.yml" <<'YML'
- hosts: n1
  gather_facts: false
  tasks:
    - name: huge but finite
      shell: head -c 3000000 /dev/zero | tr '\0' 'x'
      register: huge
    - debug: msg="{{ huge.stdout | length }} {{ huge.warnings }}"
    - name: binary
      shell: head -c 4096 /dev/urandom; printf '\377\376'
    - name: endless
      command: yes
YML
start=$(date +%s)
run 2 -i "$T/inv" --json "$P/output.yml"
[ $(( $(date +%s) - start )) -lt 60 ] || fail "endless output was not stopped quickly"
jq -e '.plays[0].tasks[1].hosts.n1.msg | startswith("1048576 ")' "$T/out" >/dev/null || fail "huge output kept at the 1 MiB cap: $(jq -c '.plays[0].tasks[1].hosts' "$T/out")"
jq -e '.plays[0].tasks[2].hosts.n1.failed != true' "$T/out" >/dev/null || fail "binary output is fine"
jq -e '.plays[0].tasks[3].hosts.n1.msg | test("printed more than .* and was killed")' "$T/out" >/dev/null || fail "endless output: clear message"
ok "huge output capped, binary output valid JSON, endless output killed with a clear message"

# --- include loops and deep nesting
printf -- '- include_tasks: self.yml\n' > "$P/self.yml"
printf -- '- hosts: n1\n  gather_facts: false\n  tasks:\n    - include_tasks: self.yml\n' > "$P/incloop.yml"
run 2 -i "$T/inv" "$P/incloop.yml"
grep -q "deeper than" "$T/out" || fail "include loop detected: $(tail -5 "$T/out")"
ok "include loop stopped"

# --- the run timeout kills the command on the node
printf -- '- hosts: nodes\n  gather_facts: false\n  tasks:\n    - command: sleep 31337\n    - debug: msg=never\n' > "$P/slow.yml"
start=$(date +%s)
run 2 -i "$T/inv" --timeout 2 "$P/slow.yml"
[ $(( $(date +%s) - start )) -lt 20 ] || fail "--timeout did not stop the run"
sleep 0.5
if pgrep -f "sleep 31337" >/dev/null; then fail "the timed-out command still runs"; fi
ok "run timeout kills the command"

# --- untrusted mode
cat > "$P/untrusted.yml" <<'YML'
- hosts: n1
  gather_facts: false
  tasks:
    - command: echo on the executor
      delegate_to: localhost
      ignore_errors: true
    - include_vars: /etc/os-release
      ignore_errors: true
    - command: echo local connection
YML
run 2 -i "$T/inv" --untrusted --json "$P/untrusted.yml"
jq -e '.plays[0].tasks[0].hosts.n1.msg | test("delegate_to: localhost is refused")' "$T/out" >/dev/null || fail "delegate_to localhost refused"
jq -e '.plays[0].tasks[1].hosts.n1.msg | test("outside the playbook.s project")' "$T/out" >/dev/null || fail "include_vars outside refused: $(jq -c '.plays[0].tasks[1]' "$T/out")"
jq -e '.plays[0].tasks[2].hosts.n1.msg | test("local connection is refused")' "$T/out" >/dev/null || fail "local connection refused"
ok "untrusted: localhost, local connection and executor files refused"

# --- no_log, job-output.txt/json, zuul_return
cat > "$P/log.yml" <<'YML'
- hosts: nodes
  gather_facts: false
  tasks:
    - name: visible
      shell: echo line-one; echo line-two >&2
    - name: hidden
      command: echo TOPSECRET-{{ inventory_hostname }}
      no_log: true
      register: s
    - name: hidden failure
      shell: echo TOPSECRET-fail; exit 1
      no_log: true
      ignore_errors: true
    - zuul_return:
        data:
          child: {x: "{{ inventory_hostname }}"}
      run_once: true
YML
run 0 -i "$T/inv" --log-dir "$T/logs" "$P/log.yml"
if grep -rq TOPSECRET "$T/out" "$T/err" "$T/logs"; then fail "no_log output leaked"; fi
run 0 -i "$T/inv" --json --log-dir "$T/logs2" "$P/log.yml"
if grep -rq TOPSECRET "$T/out" "$T/logs2"; then fail "no_log output leaked into --json"; fi
grep -Eq '^[0-9-]+ [0-9:.]+ \| n1 \| line-one$' "$T/logs/job-output.txt" || fail "streamed host lines in job-output.txt"
grep -Eq '\| TASK \[visible\]$' "$T/logs/job-output.txt" || fail "task header in job-output.txt"
grep -q "PLAY RECAP" "$T/logs/job-output.txt" || fail "recap in job-output.txt"
jq -e '.[0].plays[0].tasks[0].hosts.n2.stdout == "line-one"' "$T/logs/job-output.json" >/dev/null || fail "job-output.json record"
jq -e '.data.child.x == "n1"' "$T/logs/results.json" >/dev/null || fail "zuul_return wrote results.json"
ok "no_log never in any output; job-output.txt/json; zuul_return"

# --- undefined variables name the variable; YAML inventories and host lists
cat > "$T/inv.yml" <<'YML'
all:
  children:
    nodes:
      hosts:
        y1: {ansible_connection: local, who: yaml}
YML
printf -- '- hosts: nodes\n  gather_facts: false\n  tasks:\n    - debug: msg="{{ who }}"\n    - command: echo {{ nope }}\n' > "$P/undef.yml"
run 2 -i "$T/inv.yml" --json "$P/undef.yml"
jq -e '.plays[0].tasks[0].hosts.y1.msg == "yaml"' "$T/out" >/dev/null || fail "YAML inventory variables"
jq -e '.plays[0].tasks[1].hosts.y1.msg | test("The error was: .nope. is undefined")' "$T/out" >/dev/null || fail "undefined variable named: $(jq -c '.plays[0].tasks[1]' "$T/out")"
printf -- '- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: msg="{{ inventory_hostname }}"\n' > "$P/list.yml"
run 0 -i "localhost," --json "$P/list.yml"
jq -e '.stats.localhost.ok == 1' "$T/out" >/dev/null || fail "host list inventory"
ok "undefined variables named; YAML inventory; host list"

# --- untrusted: no escape from the playbook's directory through .. or a symlink
mkdir -p "$P/esc/sub" "$T/outside"
printf -- '- debug: msg=outside\n' > "$T/outside/t.yml"
ln -sf "$T/outside/t.yml" "$P/esc/sub/link.yml"
for inc in ../../../outside/t.yml link.yml; do
	printf -- '- hosts: n1\n  gather_facts: false\n  tasks:\n    - include_tasks: %s\n' "$inc" > "$P/esc/sub/pb.yml"
	# as ansible-core 2.14, a file that cannot be included fails the host
	run 2 -i "$T/inv" --untrusted --json "$P/esc/sub/pb.yml"
	jq -e '.plays[0].tasks[0].hosts.n1.msg | test("outside the playbook")' "$T/out" >/dev/null ||
		fail "include of $inc refused: $(jq -c . "$T/out")"
done
printf -- '- hosts: n1\n  gather_facts: false\n  vars_files: [../../../outside/t.yml]\n  tasks: []\n' > "$P/esc/sub/vf.yml"
run 1 -i "$T/inv" --untrusted "$P/esc/sub/vf.yml"
grep -q "outside the playbook" "$T/out" || fail "vars_files escape refused: $(cat "$T/out")"
ok "untrusted: .. and symlinks do not escape"
