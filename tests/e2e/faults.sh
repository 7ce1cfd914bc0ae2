#!/usr/bin/env bash
# tests/e2e/faults.sh: load and fault tests of impostor behind a real Postfix, on loopback.
#
#   SMTP clients (python smtplib, parallel) -> Postfix 127.0.0.1:$PF_PORT -> impostor -> smtp-sink
#
# Every message carries a unique "X-Fault-Id: PHASE-N" header and is accounted for exactly once:
# delivered to smtp-sink, in Postfix's hold queue (quarantine), or refused with a 5xx at the client.
# A 4xx (tempfail) is not an outcome: the client retries it, as an MTA would. Faults:
#   load        FAULTS_MESSAGES messages (default 1000; FAULTS_MESSAGES=10000 for the full run)
#   sigkill     impostor killed with SIGKILL mid-load -> 451 4.7.1 at clients; restart; all accounted
#   pickup      messages submitted with Postfix's sendmail while impostor is down stay in the queue;
#               after the restart and postqueue -f they are all delivered/held
#   dns         dnsmasq stopped: brand-claiming mail gets 451 (dns.on_error=tempfail), the rest goes
#               through; with on_error=continue both go through
#   slowloris   raw milter connections that stall are closed after milter.connection_timeout while
#               Postfix traffic keeps flowing
#   maxconn     milter.max_connections=2 under parallel load -> 451 for the excess, no hang, none lost
#   sighup      SIGHUP (reload) several times during a load: nothing lost
#   sigterm     a raw milter client holds a message open; SIGTERM; the message still gets its verdict,
#               then impostor exits 0; SIGTERM during a Postfix load: nothing lost
#
# Ports (env; defaults differ from postfix.sh so both can run at once):
#   PF_PORT=4525 SINK_PORT=4526 IMPOSTOR_PORT=4357 DNS_PORT=4353 METRICS_PORT=4358
# Needs root; builds nothing (target/debug/impostor or $IMPOSTOR). Prints ok/not ok per check and
# "N passed, M failed"; exit 1 if a check failed, 2 if it could not run.
set -uo pipefail
export PF_PORT=${PF_PORT:-4525} SINK_PORT=${SINK_PORT:-4526} IMPOSTOR_PORT=${IMPOSTOR_PORT:-4357}
export DNS_PORT=${DNS_PORT:-4353} METRICS_PORT=${METRICS_PORT:-4358}
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
MSGS=$E2E_DIR/msgs
N=${FAULTS_MESSAGES:-1000}
SUB=$(( N / 4 < 100 ? 100 : N / 4 ))     # messages per fault phase
WORKERS=${FAULTS_WORKERS:-8}
T0=$(date +%s)

install_deps || exit 2
command -v python3 >/dev/null || die "python3 is needed for the SMTP load client"
[ -x "$IMPOSTOR" ] || die "no impostor binary at $IMPOSTOR (run cargo build, or set IMPOSTOR=...)"
e2e_init
IMP_SOCK=inet:127.0.0.1:$IMPOSTOR_PORT

# ---------------------------------------------------------------------------------------------
# Python helpers, written into the run directory.
cat >"$RUN/smtpload.py" <<'PY'
"""SMTP load client and accounting for faults.sh.

load:    python3 smtpload.py load PORT PREFIX N WORKERS MSGDIR OUT [DEADLINE_S]
         sends N messages (kinds clean/tag/quarantine/reject round robin), each with X-Fault-Id:
         PREFIX-i, WORKERS threads, up to 5 messages per SMTP session, via XCLIENT as 203.0.113.7.
         4xx or a dropped connection: retried (new session) until DEADLINE_S; 2xx/5xx: final.
         OUT gets one line per message: id kind final_code queue_id attempts first_4xx_reply
account: python3 smtpload.py account PREFIX SINKDIR HOLDDIR RESULTS...
         prints the accounting table; exit 0 only if every message is accounted for exactly once
"""
import os, re, smtplib, socket, sys, threading, time, queue, random

KINDS = ["clean", "tag", "quarantine", "reject"]
EXPECT = {"clean": "sink", "tag": "sink", "quarantine": "hold", "reject": "5xx"}

def load(port, prefix, n, workers, msgdir, out, deadline_s=300):
    bodies = {}
    for k in KINDS:
        raw = open(os.path.join(msgdir, k + ".eml"), "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        m = re.search(rb"^From:.*<([^>]+)>", raw, re.M)
        bodies[k] = (m.group(1).decode() if m else "sender@example.org", raw)
    work = queue.Queue()
    for i in range(n):
        work.put((f"{prefix}-{i}", KINDS[i % 4], 0, ""))
    lock = threading.Lock()
    fh = open(out, "a", buffering=1)
    deadline = time.time() + deadline_s
    pending = [n]

    def record(mid, kind, code, qid, attempts, first4):
        with lock:
            fh.write(f"{mid} {kind} {code} {qid or '-'} {attempts} {first4.replace(' ', '_') or '-'}\n")
            pending[0] -= 1

    def session():
        s = smtplib.SMTP("127.0.0.1", port, timeout=120)
        s.ehlo("client.example.test")
        code, msg = s.docmd("XCLIENT", "ADDR=203.0.113.7 NAME=[UNAVAILABLE]")
        if code != 220:
            raise smtplib.SMTPResponseException(code, msg)
        s.ehlo_resp = None
        s.ehlo("client.example.test")
        return s

    def worker():
        s = None
        sent_in_session = 0
        while True:
            try:
                mid, kind, attempts, first4 = work.get_nowait()
            except queue.Empty:
                with lock:
                    if pending[0] <= 0:
                        break
                # nothing to send now: end the session, as an MTA would, so an idle SMTP session
                # does not hold one of impostor's milter.max_connections slots
                if s is not None:
                    try: s.quit()
                    except Exception: pass
                    s = None
                time.sleep(0.05)
                continue
            attempts += 1
            frm, raw = bodies[kind]
            data = b"X-Fault-Id: " + mid.encode() + b"\r\n" + raw
            try:
                if s is None or sent_in_session >= 5:
                    if s is not None:
                        try: s.quit()
                        except Exception: pass
                    s, sent_in_session = session(), 0
                sent_in_session += 1
                code, msg = s.mail(frm)
                if code == 250:
                    code, msg = s.rcpt("bob@rcpt.example")
                if code == 250:
                    code, msg = s.data(data)
                if 400 <= code < 500:
                    # a tempfail: Postfix has given up on the milter for this session; retry the
                    # message later in a new session, as an MTA would
                    try: s.quit()
                    except Exception: pass
                    s = None
                elif code >= 500:
                    try: s.rset()
                    except Exception: s = None
            except (smtplib.SMTPException, OSError) as e:
                code = getattr(e, "smtp_code", 0) or 0
                msg = str(getattr(e, "smtp_error", e)).encode() if not isinstance(getattr(e, "smtp_error", None), bytes) else e.smtp_error
                try:
                    if s is not None: s.close()
                except Exception:
                    pass
                s = None
            text = msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)
            if code == 250:
                m = re.search(r"queued as (\w+)", text)
                record(mid, kind, 250, m.group(1) if m else "", attempts, first4)
            elif 500 <= code < 600:
                record(mid, kind, code, "", attempts, first4)
            else:  # 4xx, or no reply at all (connection refused/dropped): retry later
                if not first4:
                    first4 = f"{code} {text[:60]}" if code else f"conn: {text[:60]}"
                if time.time() > deadline:
                    record(mid, kind, code or 0, "", attempts, first4 + " (gave up)")
                else:
                    time.sleep(0.2 + random.random() * 0.3)
                    work.put((mid, kind, attempts, first4))
        if s is not None:
            try: s.quit()
            except Exception: pass

    ts = [threading.Thread(target=worker) for _ in range(workers)]
    for t in ts: t.start()
    for t in ts: t.join()

def ids_in(path):
    """X-Fault-Id values in a smtp-sink dump or a Postfix queue file. Queue files are records
    (type byte, length, data) and a milter's header edits leave pointer records and moved copies
    behind, so the raw bytes are searched: an id is letters-digits, and the byte after it is the
    next record's type (a letter) or a line end, never a digit."""
    try:
        data = open(path, "rb").read()
    except OSError:
        return []
    return [m.decode() for m in re.findall(rb"X-Fault-Id: ([a-z]+-[0-9]+)", data)]

def account(prefix, sinkdir, holddir, results):
    res = {}
    dupres = 0
    for r in results:
        for line in open(r):
            f = line.split()
            if not f[0].startswith(prefix + "-"): continue
            if f[0] in res: dupres += 1
            res[f[0]] = f
    where = {}
    for d, tag in ((sinkdir, "sink"), (holddir, "hold")):
        for root, _, files in os.walk(d):
            for fn in files:
                for mid in set(ids_in(os.path.join(root, fn))):
                    if mid.startswith(prefix + "-"):
                        where.setdefault(mid, []).append(tag)
    rows = {k: dict(sent=0, sink=0, hold=0, r5xx=0, lost=0, dup=0, unresolved=0, unexpected=0, retried=0) for k in KINDS}
    bad = []
    for mid, f in res.items():
        kind, code = f[1], int(f[2])
        row = rows[kind]
        row["sent"] += 1
        if f[5] != "-": row["retried"] += 1
        copies = where.get(mid, [])
        if 500 <= code < 600:
            row["r5xx"] += 1
            if copies: row["dup"] += 1; bad.append(f"{mid}: 5xx at the client but also in {copies}")
            out = "5xx"
        elif code == 250:
            if not copies: row["lost"] += 1; bad.append(f"{mid}: 250 {f[3]} but neither at smtp-sink nor held"); out = None
            elif len(copies) > 1: row["dup"] += 1; bad.append(f"{mid}: {len(copies)} copies {copies}"); out = copies[0]
            else: out = copies[0]
            if out: row[out] += 1
        else:
            row["unresolved"] += 1; bad.append(f"{mid}: no final answer ({' '.join(f[2:])})"); out = None
        if out and out != EXPECT[kind]: row["unexpected"] += 1
    stray = [m for m in where if m not in res]
    for m in stray: bad.append(f"{m}: at {where[m]} but the client never got a final answer")
    hdr = f"{'kind':<11}{'sent':>7}{'smtp-sink':>10}{'held':>7}{'5xx':>7}{'lost':>6}{'dup':>5}{'unresolved':>11}{'retried(4xx)':>13}{'unexpected':>11}"
    print("# " + hdr)
    tot = dict.fromkeys(rows["clean"], 0)
    for k in KINDS:
        r = rows[k]
        for x in r: tot[x] += r[x]
        print(f"# {k:<11}{r['sent']:>7}{r['sink']:>10}{r['hold']:>7}{r['r5xx']:>7}{r['lost']:>6}{r['dup']:>5}{r['unresolved']:>11}{r['retried']:>13}{r['unexpected']:>11}")
    r = tot
    print(f"# {'total':<11}{r['sent']:>7}{r['sink']:>10}{r['hold']:>7}{r['r5xx']:>7}{r['lost']:>6}{r['dup']:>5}{r['unresolved']:>11}{r['retried']:>13}{r['unexpected']:>11}")
    accounted = r["sink"] + r["hold"] + r["r5xx"]
    print(f"# accounted for: {accounted} of {r['sent']} (result lines duplicated: {dupres}, stray copies: {len(stray)})")
    for b in bad[:10]: print("#   " + b)
    return 0 if (not bad and dupres == 0 and accounted == r["sent"]) else 1

if __name__ == "__main__":
    a = sys.argv
    if a[1] == "load":
        load(int(a[2]), a[3], int(a[4]), int(a[5]), a[6], a[7], int(a[8]) if len(a) > 8 else 300)
    elif a[1] == "account":
        sys.exit(account(a[2], a[3], a[4], a[5:]))
PY

cat >"$RUN/rawmilter.py" <<'PY'
"""A raw milter client (plays the MTA) for faults.sh.

stall PORT HOLD_S:          OPTNEG, then half a packet, then silence; prints how long until the
                            daemon closed the connection ("closed after X s") or "still open".
inflight PORT READY_FILE:   one message up to the body, touches READY_FILE, waits for READY_FILE.go,
                            sends end-of-message; prints the final reply ("verdict <cmd>" or "error ...")
"""
import os, socket, struct, sys, time

def pkt(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data

def read_pkt(s):
    hdr = b""
    while len(hdr) < 4:
        c = s.recv(4 - len(hdr))
        if not c: raise EOFError("closed")
        hdr += c
    n = struct.unpack(">I", hdr)[0]
    body = b""
    while len(body) < n:
        c = s.recv(n - len(body))
        if not c: raise EOFError("closed")
        body += c
    return body[:1], body[1:]

# protocol flags: steps the milter may ask us to leave out (NO*) or not to wait a reply for (NR*)
NO = {b"C": 0x1, b"H": 0x2, b"M": 0x4, b"R": 0x8, b"B": 0x10, b"L": 0x20, b"N": 0x40}
NR = {b"C": 0x1000, b"H": 0x2000, b"M": 0x4000, b"R": 0x8000, b"B": 0x80000, b"L": 0x80, b"N": 0x40000}

def optneg(s):
    # version 6, all actions and protocol flags offered, as Postfix does; returns the milter's flags
    s.sendall(pkt(b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF)))
    c, d = read_pkt(s)
    return struct.unpack(">III", d[:12])[2] if c == b"O" and len(d) >= 12 else 0

def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if mode == "stall":
        hold = float(sys.argv[3])
        optneg(s)
        s.sendall(struct.pack(">I", 100) + b"C" + b"mx.slow")   # 8 of 104 bytes, then nothing
        s.settimeout(hold)
        t0 = time.time()
        try:
            d = s.recv(100)
            print(f"closed after {time.time() - t0:.1f} s" + (f" (sent {d!r})" if d else ""))
        except socket.timeout:
            print("still open")
        except OSError as e:
            print(f"closed after {time.time() - t0:.1f} s ({e})")
        return
    ready = sys.argv[3]
    s.settimeout(60)
    proto = optneg(s)
    for cmd, data in [
        (b"C", b"mx.client.example\x004\x9c\x40203.0.113.7\x00"),
        (b"H", b"mx.client.example\x00"),
        (b"M", b"<security@openai-help.net>\x00"),
        (b"R", b"<bob@rcpt.example>\x00"),
        (b"L", b"From\x00\"OpenAI Security\" <security@openai-help.net>\x00"),
        (b"L", b"Subject\x00OpenAI API key revoked\x00"),
        (b"N", b""),
        (b"B", b"Your key was revoked. Sign in at https://openai-help.net/login\r\n"),
    ]:
        if proto & NO[cmd]:
            continue
        s.sendall(pkt(cmd, data))
        if not proto & NR[cmd]:
            read_pkt(s)
    open(ready, "w").close()
    while not os.path.exists(ready + ".go"):
        time.sleep(0.05)
    try:
        s.sendall(pkt(b"E"))
        while True:
            c, d = read_pkt(s)
            if c in (b"a", b"c", b"r", b"t", b"d", b"y"):
                print("verdict", c.decode(), d[:60].decode(errors="replace").rstrip("\x00"))
                break
    except Exception as e:
        print("error", e)

main()
PY

# ---------------------------------------------------------------------------------------------
RESULTS=$RUN/results
mkdir -p "$RESULTS"
HOLD_DIR=$PF_QUEUE/hold
# run_load PREFIX COUNT [WORKERS] [DEADLINE]: a load in the foreground
run_load() { python3 "$RUN/smtpload.py" load "$PF_PORT" "$1" "$2" "${3:-$WORKERS}" "$MSGS" "$RESULTS/$1.txt" "${4:-300}"; }
# bg_load PREFIX COUNT [WORKERS]: the same in the background, pid in LOAD_PID
bg_load() { run_load "$@" & LOAD_PID=$!; }
# wait_results PREFIX COUNT: wait (up to 60 s) until COUNT final answers are in
wait_results() {
  local i; for ((i = 0; i < 600; i++)); do [ "$(cat "$RESULTS/$1.txt" 2>/dev/null | wc -l)" -ge "$2" ] && return 0; sleep 0.1; done; return 1
}
# account PREFIX NAME: the accounting table and a check
account() {
  wait_queue 120 || say "queue not drained after 120 s: $(queue_json | grep -vc '"hold"') non-held message(s) left"
  sleep 1
  local out rc
  out=$(python3 "$RUN/smtpload.py" account "$1" "$SINK_DIR" "$HOLD_DIR" "$RESULTS"/*.txt); rc=$?
  printf '%s\n' "$out"
  check "$2: every message accounted for exactly once (smtp-sink / hold / 5xx), none lost, none duplicated" \
    "$(grep -E 'accounted|^#   ' <<<"$out")" [ "$rc" -eq 0 ]
}
tempfails() { awk '$6 != "-"' "$RESULTS/$1.txt" | wc -l; }
count_451() { grep -c '451_4\.7\.1' "$RESULTS/$1.txt"; }
timed() { local t=$(date +%s%N); "$@"; ELAPSED=$(awk -v a="$t" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'); }

say "impostor binary: $IMPOSTOR; $N messages for the load, $SUB per fault phase, $WORKERS client threads"
start_sink || die "smtp-sink did not start"
start_dns || die "dnsmasq did not start"
CONF=$RUN/impostor.toml
write_conf "$CONF"
start_impostor -c "$CONF" --socket "$IMP_SOCK" || die "impostor did not start"
MILTERS=$IMP_SOCK start_postfix || die "Postfix did not start"
# more smtpd processes than client threads, so the limit under test is impostor's, not Postfix's
postconf -c "$PF_CONF" -e default_process_limit=200 && postfix -c "$PF_CONF" reload >/dev/null 2>&1; sleep 1

# --- 1. load --------------------------------------------------------------------------------
say "== load: $N messages, $WORKERS parallel SMTP clients"
timed run_load load "$N" "$WORKERS" 600
say "load: $N messages answered in $ELAPSED s ($(awk -v n="$N" -v s="$ELAPSED" 'BEGIN { printf "%.0f", n / s }') msg/s)"
account load "load ($N messages)"
check "load: no tempfail while impostor was healthy" "$(tempfails load) message(s) got a 4xx first: $(awk '$6 != "-" { print $6 }' "$RESULTS/load.txt" | sort | uniq -c | head -3)" \
  [ "$(tempfails load)" -eq 0 ]

# --- 2. SIGKILL mid-load ----------------------------------------------------------------------
say "== sigkill: impostor killed with SIGKILL in the middle of $SUB messages, restarted 3 s later"
bg_load kill "$SUB"
wait_results kill $((SUB / 3))
kill -KILL "$(cat "$RUN/impostor.pid")"; wait "$(cat "$RUN/impostor.pid")" 2>/dev/null; rm -f "$RUN/impostor.pid"
say "impostor SIGKILLed after $(wc -l <"$RESULTS/kill.txt") of $SUB answers"
sleep 3
start_impostor -c "$CONF" --socket "$IMP_SOCK" || die "impostor did not restart"
wait "$LOAD_PID"
check "sigkill: clients got 451 4.7.1 while impostor was dead ($(count_451 kill) message(s))" \
  "4xx seen: $(awk '$6 != "-" { print $6 }' "$RESULTS/kill.txt" | sort | uniq -c | head -3)" [ "$(count_451 kill)" -gt 0 ]
account kill "sigkill"

# --- 3. sendmail/pickup while impostor is down ------------------------------------------------
say "== pickup: messages submitted with sendmail (non_smtpd_milters) while impostor is down"
stop_impostor
NPICK=${FAULTS_PICKUP:-30}
kinds=(clean tag quarantine)
for ((i = 0; i < NPICK; i++)); do
  k=${kinds[i % 3]}; f=$MSGS/$k.eml
  from=$(sed -n 's/^From:.*<\([^>]*\)>.*/\1/p; /^$/q' "$f" | head -1)
  if { printf 'X-Fault-Id: pickup-%d\n' "$i"; cat "$f"; } | MAIL_CONFIG=$PF_CONF /usr/sbin/sendmail -f "$from" bob@rcpt.example; then
    echo "pickup-$i $k 250 - 1 -" >>"$RESULTS/pickup.txt"
  else
    echo "pickup-$i $k 0 - 1 sendmail_failed" >>"$RESULTS/pickup.txt"
  fi
done
sleep 5
left=$(queue_json | grep -c .); sinked=$(grep -l 'X-Fault-Id: pickup-' "$SINK_DIR"/* 2>/dev/null | wc -l)
check "pickup: $NPICK submitted while impostor is down: none delivered, all still queued ($left in the queue)" \
  "queue: $left, delivered: $sinked; $(grep -iE 'milter' "$PF_LOG" | tail -2)" eval '[ "$sinked" -eq 0 ] && [ "$left" -ge "$NPICK" ]'
start_impostor -c "$CONF" --socket "$IMP_SOCK" || die "impostor did not restart"
postqueue -c "$PF_CONF" -f; postkick -c "$PF_CONF" public pickup W 2>/dev/null
for ((i = 0; i < 600; i++)); do
  n=$(grep -l 'X-Fault-Id: pickup-' "$SINK_DIR"/* 2>/dev/null | wc -l); h=$(grep -l 'X-Fault-Id: pickup-' "$HOLD_DIR"/* 2>/dev/null | wc -l)
  [ $((n + h)) -ge "$NPICK" ] && ! queue_busy && break; sleep 0.2
done
say "pickup: delivered/held $((n + h)) of $NPICK $((i / 5)) s after restart + postqueue -f"
account pickup "pickup (sendmail while down, flushed after restart)"

# --- 4. DNS down ----------------------------------------------------------------------------------
say "== dns: dnsmasq stopped"
stop_pidfile "$RUN/dns.pid"
timed send_eml dns-tag "$MSGS/tag.eml"; T_TAG=$ELAPSED
check "dns down, on_error=tempfail: brand-claiming message gets 451" "$(swaks_reply)" grep -qE '^<\*\* +451 ' "$SWAKS_OUT"
timed send_eml dns-clean "$MSGS/clean.eml"; T_CLEAN=$ELAPSED
check "dns down, on_error=tempfail: ordinary message accepted" "$(swaks_reply)" eval '[ -n "$QID" ]'
# a dead resolver holds a message at most dns.budget_ms (default 2.5 s); 2 s more for swaks and Postfix
check "dns down: each SMTP transaction within dns.budget_ms + 2 s (brand $T_TAG s, ordinary $T_CLEAN s)" "$(swaks_reply)" \
  awk -v a="$T_TAG" -v b="$T_CLEAN" 'BEGIN { exit !(a <= 4.5 && b <= 4.5) }'
check "dns down: ordinary message delivered" "$(grep -F "$QID" "$PF_LOG" | tail -3)" wait_sink dns-clean 20
# write_conf adds its own [dns] table: merge by hand (one table, two keys)
printf '# dns.on_error=continue\n[dns]\non_error = "continue"\nnameservers = ["127.0.0.1:%s"]\n[metrics]\nlisten = "127.0.0.1:%s"\n' "$DNS_PORT" "$METRICS_PORT" >"$RUN/impostor-continue.toml"
"$IMPOSTOR" config check -c "$RUN/impostor-continue.toml" >/dev/null || die "continue config invalid"
cp "$RUN/impostor-continue.toml" "$CONF"; kill -HUP "$(cat "$RUN/impostor.pid")"; sleep 1
send_eml dns-tag-continue "$MSGS/tag.eml"
check "dns down, on_error=continue: brand-claiming message accepted" "$(swaks_reply)" eval '[ -n "$QID" ]'
check "dns down, on_error=continue: brand-claiming message delivered" "$(grep -F "${QID:-none}" "$PF_LOG" | tail -3)" wait_sink dns-tag-continue 20
send_eml dns-clean-continue "$MSGS/clean.eml"
check "dns down, on_error=continue: ordinary message delivered" "$(swaks_reply)" wait_sink dns-clean-continue 20
write_conf "$CONF"; kill -HUP "$(cat "$RUN/impostor.pid")"; sleep 1
start_dns || die "dnsmasq did not restart"

# --- 5. slowloris ---------------------------------------------------------------------------------
say "== slowloris: milter.connection_timeout = 3; 10 stalled raw milter connections"
stop_impostor
write_conf "$RUN/impostor-slow.toml" '[milter]' 'connection_timeout = 3'
start_impostor -c "$RUN/impostor-slow.toml" --socket "$IMP_SOCK" || die "impostor did not start"
STALL_PIDS=()
for ((i = 0; i < 10; i++)); do python3 "$RUN/rawmilter.py" stall "$IMPOSTOR_PORT" 15 >"$RUN/stall-$i.txt" 2>&1 & STALL_PIDS+=($!); done
sleep 0.5
timed run_load slow 40 4 60
say "slowloris: 40 messages through Postfix in $ELAPSED s while 10 connections stalled"
wait "${STALL_PIDS[@]}"
check "slowloris: every stalled connection closed by impostor within ~connection_timeout ($(cut -d' ' -f1-4 "$RUN"/stall-*.txt | sort | uniq -c | tr '\n' ';'))" \
  "$(cat "$RUN"/stall-*.txt | sort | uniq -c)" eval '! grep -qv "^closed after [3-6]\." "$RUN"/stall-*.txt'
account slow "slowloris (traffic during the stall)"

# --- 6. connection limit --------------------------------------------------------------------------
say "== maxconn: milter.max_connections = 2, 24 parallel SMTP clients"
stop_impostor
write_conf "$RUN/impostor-max.toml" '[milter]' 'max_connections = 2'
start_impostor -c "$RUN/impostor-max.toml" --socket "$IMP_SOCK" || die "impostor did not start"
timed timeout 300 python3 "$RUN/smtpload.py" load "$PF_PORT" maxconn "$SUB" 24 "$MSGS" "$RESULTS/maxconn.txt" 240
say "maxconn: $SUB messages answered in $ELAPSED s"
check "maxconn: the excess got 451 4.7.1 ($(count_451 maxconn) message(s) tempfailed at least once)" \
  "4xx seen: $(awk '$6 != "-" { print $6 }' "$RESULTS/maxconn.txt" | sort | uniq -c | head -3)" [ "$(count_451 maxconn)" -gt 0 ]
check "maxconn: no hang (all $SUB answered in $ELAPSED s, bounded at 300 s)" "$(wc -l <"$RESULTS/maxconn.txt") answers" \
  [ "$(wc -l <"$RESULTS/maxconn.txt")" -eq "$SUB" ]
account maxconn "maxconn"
stop_impostor
start_impostor -c "$CONF" --socket "$IMP_SOCK" || die "impostor did not restart"

# --- 7. SIGHUP during load ------------------------------------------------------------------------
say "== sighup: 5 reloads during $SUB messages"
bg_load hup "$SUB"
for ((i = 0; i < 5; i++)); do wait_results hup $(((i + 1) * SUB / 7)); kill -HUP "$(cat "$RUN/impostor.pid")"; done
wait "$LOAD_PID"
check "sighup: impostor still running after 5 reloads" "$(tail -3 "$RUN/impostor.log")" kill -0 "$(cat "$RUN/impostor.pid")"
check "sighup: reloads logged ($(grep -ciE 'reload' "$RUN/impostor.log") lines mention reload)" "$(tail -5 "$RUN/impostor.log")" grep -qiE 'reload' "$RUN/impostor.log"
check "sighup: no tempfail during reloads" "$(awk '$6 != "-" { print $6 }' "$RESULTS/hup.txt" | sort | uniq -c | head -3)" [ "$(tempfails hup)" -eq 0 ]
account hup "sighup"

# --- 8. SIGTERM drains in-flight messages ---------------------------------------------------------
say "== sigterm: a message in flight on a raw milter connection, then SIGTERM"
python3 "$RUN/rawmilter.py" inflight "$IMPOSTOR_PORT" "$RUN/inflight" >"$RUN/inflight.txt" 2>&1 &
RAW_PID=$!
for ((i = 0; i < 100; i++)); do [ -e "$RUN/inflight" ] && break; sleep 0.1; done
IPID=$(cat "$RUN/impostor.pid")
kill -TERM "$IPID"; sleep 1
check "sigterm: impostor waits for the in-flight message (still running 1 s after SIGTERM)" "$(tail -3 "$RUN/impostor.log")" kill -0 "$IPID"
check "sigterm: new connections refused while draining" "port $IMPOSTOR_PORT still listening" eval '! port_listening "$IMPOSTOR_PORT"'
touch "$RUN/inflight.go"; wait "$RAW_PID"
check "sigterm: the in-flight message got its verdict ($(cat "$RUN/inflight.txt"))" "$(cat "$RUN/inflight.txt")" grep -q '^verdict [yr]' "$RUN/inflight.txt"
for ((i = 0; i < 100; i++)); do kill -0 "$IPID" 2>/dev/null || break; sleep 0.1; done
wait "$IPID"; rc=$?; rm -f "$RUN/impostor.pid"
check "sigterm: impostor exited 0 after draining" "exit $rc; $(tail -3 "$RUN/impostor.log")" [ "$rc" -eq 0 ]
say "== sigterm during a Postfix load of $SUB messages, restart 2 s after exit"
start_impostor -c "$CONF" --socket "$IMP_SOCK" || die "impostor did not start"
bg_load term "$SUB"
wait_results term $((SUB / 3))
IPID=$(cat "$RUN/impostor.pid"); kill -TERM "$IPID"; wait "$IPID"; rc=$?; rm -f "$RUN/impostor.pid"
check "sigterm under load: impostor exited 0" "exit $rc" [ "$rc" -eq 0 ]
sleep 2
start_impostor -c "$CONF" --socket "$IMP_SOCK" || die "impostor did not restart"
wait "$LOAD_PID"
say "sigterm under load: $(tempfails term) message(s) got a 4xx and were retried"
account term "sigterm under load"

# ---------------------------------------------------------------------------------------------
milter_errs() { grep -iE '(error|fatal|panic):' "$PF_LOG" | grep -viE 'milter|connect to' ; }
check "Postfix logged no errors other than milter unavailability" "$(milter_errs | tail -3)" eval '! milter_errs | grep -q .'
check "impostor logged no panic" "$(grep -iE 'panick?ed' "$RUN/impostor.log" | head -3)" eval '! grep -qiE "panick?ed" "$RUN/impostor.log"'
say "faults took $(($(date +%s) - T0)) s"
summary
