#!/bin/sh
# Installs what vinz needs to build and test on Debian 12, idempotently: packages already
# present are left alone, and apt is not touched at all when nothing is missing.
set -eu
PKGS="build-essential cmake pkg-config git libgit2-dev libssh2-1-dev libcurl4-openssl-dev libzmq3-dev
libsqlite3-dev libyaml-dev libjansson-dev libmicrohttpd-dev libcmocka-dev libssl-dev openssh-server
openssh-client openssl clang libclang-rt-14-dev valgrind jq sqlite3 procps iproute2 passwd tar python3 python3-jinja2
ansible-core ansible rsync sudo"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "install-deps: everything is installed"
	exit 0
fi
echo "install-deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
