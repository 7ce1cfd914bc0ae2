#!/usr/bin/env bash
# scripts/build-deb.sh: build the Debian package with cargo-deb, install it on this machine, run the
# daemon the way the packaged systemd unit would, check it serves, stop it, purge the package.
#
#   scripts/build-deb.sh            (as root; Debian/Ubuntu; about 1-3 min once cargo-deb is installed)
#   KEEP_DEB_INSTALLED=1 ...        leave the package installed at the end
#   BUILD_DEB_NO_BUILD=1 ...        package an existing target/release/impostor (cargo deb --no-build)
#
# systemd does not run here, so the unit is emulated: its ExecStartPre and ExecStart command lines
# are read from the installed unit file and run as its User= (setpriv, which execs like systemd
# does: no extra process), exactly as written.
#   1. cargo-deb installed if missing (cargo install cargo-deb --locked)
#   2. cargo deb --locked -> target/debian/impostor_*.deb; contents, conffiles, maintainer scripts
#   3. dpkg -i: binary, conffile, man pages, snippets, unit, system user impostor
#   4. unit emulation: ExecStartPre + ExecStart as User=impostor with the packaged config;
#      listening on the packaged socket (ss -ltn), metrics answer, SIGTERM -> exit 0
#   5. as root with a copy of the config that sets user = "impostor": binds, then drops privileges
#   6. one message through a private Postfix (tests/e2e/lib.sh) to the packaged daemon: headers added
#   2b. lintian on the .deb when it is installed (apt-get install lintian): no error (E:) tag
#   7. dpkg --purge: binary, config gone; the system user impostor stays (Debian Policy 9.2.2)
# Prints ok/not ok per check, "N passed, M failed"; exits non-zero on failure. Stops what it starts
# by PID. Ports: the packaged ones (7357, 9357) must be free; Postfix/sink use PF_PORT/SINK_PORT
# (default 3625/3626 here, so the e2e harness defaults stay free).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
export PF_PORT=${PF_PORT:-3625} SINK_PORT=${SINK_PORT:-3626}
# shellcheck source=tests/e2e/lib.sh
. tests/e2e/lib.sh
T0=$(date +%s)
[ "$(id -u)" -eq 0 ] || die "must run as root (dpkg -i, a system user)"
command -v dpkg >/dev/null || die "not a Debian system"

# refuse to touch an impostor installed by someone else
if dpkg -s impostor >/dev/null 2>&1 && [ -z "${BUILD_DEB_REPLACE:-}" ]; then
  die "package impostor is already installed here; purge it first or set BUILD_DEB_REPLACE=1"
fi
if [ -e /usr/sbin/impostor ] && ! dpkg -S /usr/sbin/impostor >/dev/null 2>&1; then
  die "/usr/sbin/impostor exists and belongs to no package; not overwriting it"
fi

# ---------------------------------------------------------------------------------------------
say "== 1. cargo-deb"
if ! command -v cargo-deb >/dev/null 2>&1; then
  t=$(date +%s)
  cargo install cargo-deb --locked || die "cargo install cargo-deb failed"
  say "cargo install cargo-deb took $(($(date +%s) - t)) s"
fi
say "$(cargo deb --version 2>&1)"

say "== 2. cargo deb"
t=$(date +%s)
deb_args=(--locked)
[ -n "${BUILD_DEB_NO_BUILD:-}" ] && deb_args+=(--no-build)
DEB=$(cargo deb "${deb_args[@]}" 2>"${TMPDIR:-/tmp}/build-deb.$$.err" | grep -E '\.deb$' | grep -v dbgsym | tail -1)
if [ ! -f "$DEB" ]; then cat "${TMPDIR:-/tmp}/build-deb.$$.err" >&2; rm -f "${TMPDIR:-/tmp}/build-deb.$$.err"; die "cargo deb failed"; fi
rm -f "${TMPDIR:-/tmp}/build-deb.$$.err"
say "built $DEB ($(du -h "$DEB" | cut -f1)) in $(($(date +%s) - t)) s"
e2e_init                              # run directory + EXIT trap (stops impostor, Postfix, sink by PID)
RUN_DEB=$RUN/deb; mkdir -p "$RUN_DEB"
dpkg-deb -I "$DEB" >"$RUN_DEB/info.txt"; dpkg-deb -c "$DEB" >"$RUN_DEB/contents.txt"
dpkg-deb -e "$DEB" "$RUN_DEB/control"
awk '{print "#   " $1 " " $NF}' "$RUN_DEB/contents.txt"
has() { grep -qE " \./$1\$" "$RUN_DEB/contents.txt"; }
for f in usr/sbin/impostor etc/impostor/impostor.toml 'usr/share/man/man8/impostor\.8(\.gz)?' 'usr/share/man/man5/impostor\.toml\.5(\.gz)?' \
  usr/share/doc/impostor/postfix-main.cf.snippet usr/share/doc/impostor/sendmail.mc.snippet usr/share/doc/impostor/copyright \
  usr/share/doc/impostor/changelog.Debian.gz \
  '(usr/)?lib/systemd/system/impostor\.service'; do
  check "package contains /$f" "$(grep -cE '' "$RUN_DEB/contents.txt") entries" has "$f"
done
check "/etc/impostor/impostor.toml is a conffile" "$(cat "$RUN_DEB/control/conffiles" 2>&1)" grep -qx /etc/impostor/impostor.toml "$RUN_DEB/control/conffiles"
check "postinst creates the impostor user and has the systemd snippet" "$(head -40 "$RUN_DEB/control/postinst")" \
  eval 'grep -q "adduser --system" "$RUN_DEB/control/postinst" && grep -q "deb-systemd-helper" "$RUN_DEB/control/postinst"'

if command -v lintian >/dev/null 2>&1; then
  lintian --tag-display-limit 0 "$DEB" >"$RUN_DEB/lintian.txt" 2>&1
  say "lintian: $(grep -c '^E:' "$RUN_DEB/lintian.txt") errors, $(grep -c '^W:' "$RUN_DEB/lintian.txt") warnings"
  check "lintian reports no error" "$(cat "$RUN_DEB/lintian.txt")" eval '! grep -q "^E:" "$RUN_DEB/lintian.txt"'
else
  say "lintian not installed: skipped (apt-get install lintian)"
fi

# ---------------------------------------------------------------------------------------------
say "== 3. dpkg -i"
purge() { dpkg --purge impostor >"$RUN_DEB/purge.txt" 2>&1; }
# purge on any exit from here on, unless asked to keep it
deb_cleanup() { local rc=$?; [ -n "${KEEP_DEB_INSTALLED:-}" ] || { dpkg -s impostor >/dev/null 2>&1 && purge; }; (exit "$rc"); e2e_cleanup; }
trap deb_cleanup EXIT
if dpkg -i "$DEB" >"$RUN_DEB/install.txt" 2>&1; then pass "dpkg -i $(basename "$DEB")"; else fail "dpkg -i $(basename "$DEB")" "$(tail -20 "$RUN_DEB/install.txt")"; summary; exit 1; fi
check "dpkg reports impostor installed" "$(dpkg -s impostor 2>&1 | head -3)" eval 'dpkg -s impostor | grep -q "^Status: install ok installed"'
check "system user impostor exists (no login shell, no home)" "$(getent passwd impostor)" \
  eval 'getent passwd impostor | grep -qE ":/nonexistent:/usr/sbin/nologin$"'
check "/usr/sbin/impostor is stripped (symbols in the -dbgsym .ddeb)" "$(file -L /usr/sbin/impostor; ls -la "$(dirname "$DEB")")" \
  eval '! file -L /usr/sbin/impostor | grep -q "with debug_info"'
check "/usr/sbin/impostor --version" "$(/usr/sbin/impostor --version 2>&1)" eval '/usr/sbin/impostor --version | grep -q "^impostor "'
check "packaged config passes impostor config check" "$(/usr/sbin/impostor config check -c /etc/impostor/impostor.toml 2>&1)" \
  /usr/sbin/impostor config check -c /etc/impostor/impostor.toml
check "man impostor and man 5 impostor.toml are found" "$(man -w impostor 2>&1; man -w 5 impostor.toml 2>&1)" \
  eval 'man -w 8 impostor >/dev/null 2>&1 && man -w 5 impostor.toml >/dev/null 2>&1'
UNIT=$(dpkg -L impostor | grep -E '/systemd/system/impostor\.service$' | head -1)
check "unit installed ($UNIT)" "dpkg -L: $(dpkg -L impostor | grep systemd)" [ -f "${UNIT:-/nonexistent}" ]
if command -v systemd-analyze >/dev/null 2>&1; then
  check "systemd-analyze verify accepts the unit" "$(systemd-analyze verify "$UNIT" 2>&1 | tail -5)" eval 'systemd-analyze verify "$UNIT" >/dev/null 2>&1'
fi

# ---------------------------------------------------------------------------------------------
# The unit's lines, as systemd would run them (no environment expansion is used in them)
unit_value() { sed -n "s/^$1=//p" "$UNIT" | tail -1; }
EXEC_START=$(unit_value ExecStart); EXEC_PRE=$(unit_value ExecStartPre); UNIT_USER=$(unit_value User)
say "unit: User=$UNIT_USER ExecStartPre=$EXEC_PRE ExecStart=$EXEC_START"
read -r -a START_ARGV <<<"$EXEC_START"
read -r -a PRE_ARGV <<<"$EXEC_PRE"
check "ExecStart runs the packaged binary with the packaged config" "ExecStart=$EXEC_START" \
  [ "$EXEC_START" = "/usr/sbin/impostor serve -c /etc/impostor/impostor.toml" ]
PKG_SOCK=$(/usr/sbin/impostor config show -c /etc/impostor/impostor.toml | sed -n 's/^socket = "\(.*\)"/\1/p' | head -1)
PKG_METRICS=$(/usr/sbin/impostor config show -c /etc/impostor/impostor.toml | sed -n '/^\[metrics\]/,/^\[/s/^listen = "\(.*\)"/\1/p' | head -1)
PKG_PORT=${PKG_SOCK##*:}; MET_PORT=${PKG_METRICS##*:}
say "packaged socket $PKG_SOCK, metrics $PKG_METRICS"
# the packaged ports may be in use by an e2e run with default ports: wait a little
for ((i = 0; i < 60; i++)); do port_listening "$PKG_PORT" || port_listening "$MET_PORT" || break; sleep 1; done
port_free "$PKG_PORT" && port_free "$MET_PORT" || die "the packaged ports $PKG_PORT/$MET_PORT stay busy"

# as_user USER ARGV...: exec ARGV with USER's uid, gid and groups (systemd's User=)
as_user() { local u=$1; shift; setpriv --reuid="$u" --regid="$(id -gn "$u")" --init-groups -- "$@"; }
# run_daemon AS_USER ARGV...: start like systemd (stdin /dev/null, stderr to a log; setpriv execs, so $! is
# the daemon itself), pid in $RUN/impostor.pid
run_daemon() {
  local who=$1; shift
  echo "--- $(date +%T) as $who: $*" >>"$RUN/impostor.log"
  if [ "$who" = root ]; then "$@" </dev/null >>"$RUN/impostor.log" 2>&1 &
  else setpriv --reuid="$who" --regid="$(id -gn "$who")" --init-groups -- "$@" </dev/null >>"$RUN/impostor.log" 2>&1 & fi
  echo $! >"$RUN/impostor.pid"
}
serving_checks() {
  local what=$1 want_user=$2 pid m
  pid=$(cat "$RUN/impostor.pid")
  if ! wait_socket "inet:127.0.0.1:$PKG_PORT" "$pid"; then fail "$what: listening on $PKG_SOCK" "$(tail -5 "$RUN/impostor.log")"; return 1; fi
  check "$what: listening on $PKG_SOCK (ss -ltn)" "$(ss -ltnp 2>/dev/null | grep ":$PKG_PORT ")" \
    eval 'ss -ltnpH "sport = :$PKG_PORT" | grep -q "pid=$pid,"'
  local dpid=$pid
  for ((i = 0; i < 20; i++)); do [ "$(ps -o user= -p "$dpid" | tr -d ' ')" = "$want_user" ] && break; sleep 0.1; done
  check "$what: daemon runs as $want_user" "ps: $(ps -o pid,user,group,args -p "$dpid" | tail -1)" \
    [ "$(ps -o user= -p "$dpid" | tr -d ' ')" = "$want_user" ]
  m=$(exec 3<>"/dev/tcp/127.0.0.1/$MET_PORT" && printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 && timeout 5 cat <&3)
  check "$what: metrics at $PKG_METRICS answer" "$(head -3 <<<"$m")" eval 'grep -q "^HTTP/1.[01] 200" <<<"$m"'
}

say "== 4. unit emulation: ExecStartPre and ExecStart as User=$UNIT_USER"
check "ExecStartPre as $UNIT_USER: $EXEC_PRE" "$(as_user "$UNIT_USER" "${PRE_ARGV[@]}" 2>&1)" \
  as_user "$UNIT_USER" "${PRE_ARGV[@]}"
run_daemon "$UNIT_USER" "${START_ARGV[@]}"
serving_checks "unit ExecStart" "$UNIT_USER"
stop_impostor
check "unit ExecStart: exits 0 on SIGTERM" "exit $STOPPED_RC; $(tail -3 "$RUN/impostor.log")" [ "${STOPPED_RC:-x}" = 0 ]

say "== 5. as root with user = \"impostor\" (privilege drop after bind)"
CONF_ROOT=$RUN/impostor-root.toml
{ echo 'user = "impostor"'; grep -v '^user = ' /etc/impostor/impostor.toml; } >"$CONF_ROOT"
chmod 644 "$CONF_ROOT"
check "config copy with user = \"impostor\" passes config check" "$(/usr/sbin/impostor config check -c "$CONF_ROOT" 2>&1)" \
  /usr/sbin/impostor config check -c "$CONF_ROOT"
run_daemon root /usr/sbin/impostor serve -c "$CONF_ROOT"
serving_checks "started as root" impostor

say "== 6. one message through Postfix to the packaged daemon"
if ! command -v postfix >/dev/null 2>&1 || ! command -v swaks >/dev/null 2>&1; then
  say "no postfix/swaks here (tests/e2e/lib.sh install_deps): message check skipped"
elif ! start_sink; then
  fail "smtp-sink started" "$(cat "$RUN/sink.log")"
elif MILTERS="inet:127.0.0.1:$PKG_PORT" start_postfix; then
  send_eml deb-clean "$E2E_DIR/msgs/clean.eml"
  if wait_sink deb-clean 30; then
    f=$(sink_file deb-clean)
    check "message through Postfix got X-Impostor-Verdict: accept from the packaged daemon" "$(headers_of "$f" | grep -i impostor)" \
      [ "$(header_values "$f" X-Impostor-Verdict)" = accept ]
  else
    fail "message through Postfix delivered" "$(swaks_reply)" "$(tail -5 "$PF_LOG")"
  fi
  stop_postfix
else
  fail "private Postfix started" "$(tail -5 "$PF_LOG")"
fi
stop_impostor
check "started as root: exits 0 on SIGTERM" "exit $STOPPED_RC; $(tail -3 "$RUN/impostor.log")" [ "${STOPPED_RC:-x}" = 0 ]
check "impostor logged no panic or error" "$(grep -iE 'panick?ed| ERROR ' "$RUN/impostor.log" | head -3)" \
  eval '! grep -qiE "panick?ed| ERROR " "$RUN/impostor.log"'

# ---------------------------------------------------------------------------------------------
if [ -n "${KEEP_DEB_INSTALLED:-}" ]; then
  say "== 7. KEEP_DEB_INSTALLED set: package left installed"
else
  say "== 7. dpkg --purge impostor"
  check "dpkg --purge impostor" "$(tail -5 "$RUN_DEB/purge.txt" 2>/dev/null)" purge
  check "package gone" "$(dpkg -s impostor 2>&1 | head -2)" eval '! dpkg -s impostor >/dev/null 2>&1 || dpkg -s impostor | grep -q "not-installed"'
  check "/usr/sbin/impostor and /etc/impostor gone" "$(ls -ld /usr/sbin/impostor /etc/impostor 2>&1)" eval '[ ! -e /usr/sbin/impostor ] && [ ! -e /etc/impostor ]'
  check "user impostor kept on purge" "$(getent passwd impostor)" eval 'getent passwd impostor >/dev/null'
fi
say "build-deb.sh took $(($(date +%s) - T0)) s"
summary
