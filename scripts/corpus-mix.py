#!/usr/bin/env python3
"""scripts/corpus-mix.py SRC_DIR... OUT_DIR: a benchmark mix of real .eml files for bench-postfix.sh,
latency.sh and bench-milter.sh (CORPUS=DIR mode).

Walks SRC_DIR (files ending .eml, or any regular file under cur/ new/ or the SpamAssassin-style folders),
keeps messages of MIN_KB..MAX_KB (default 2..60 KB) that parse, classifies each as HTML (has a text/html
part) or not, and draws N messages (default 12) with a fixed seed so that at least HTML_PCT % (default 40)
are HTML. Writes into OUT_DIR:
  NN-kind.eml           with an X-Bench-Envelope line (milter-bench)
  smtp/NN.eml, .from    LF line ends, no envelope line, and the envelope sender (smtp-source -F / -f)
  manifest.tsv          file, source path, bytes, html yes/no, sender domain
and prints the mix's make-up (count, HTML share by count and by bytes, sizes) on stderr.
Environment: N=12 HTML_PCT=40 MIN_KB=2 MAX_KB=60 SEED=7
"""
import email, email.policy, os, random, re, sys

srcs, out = sys.argv[1:-1], sys.argv[-1]
if not srcs:
    sys.exit("usage: corpus-mix.py SRC_DIR... OUT_DIR")
N = int(os.environ.get("N", 12)); HTML_PCT = int(os.environ.get("HTML_PCT", 40))
MIN = int(os.environ.get("MIN_KB", 2)) * 1024; MAX = int(os.environ.get("MAX_KB", 60)) * 1024
rnd = random.Random(int(os.environ.get("SEED", 7)))

def candidates():
    for src in srcs:
        for root, dirs, files in os.walk(src):
            dirs.sort()
            for f in sorted(files):
                if f in ("LICENSE", "brands.json", "cmds") or f.endswith((".json", ".txt", ".md", ".toml")):
                    continue
                p = os.path.join(root, f)
                try:
                    size = os.path.getsize(p)
                except OSError:
                    continue
                if MIN <= size <= MAX:
                    yield p, size

def sender(msg):
    for h in ("Return-Path", "From", "Sender"):
        v = msg.get(h)
        if v:
            m = re.search(r"[\w.+-]+@([\w-]+\.)+[A-Za-z]{2,}", str(v))
            if m:
                return m.group(0).lower()
    return "bench@sender.example"

html, plain = [], []
for p, size in candidates():
    with open(p, "rb") as f:
        raw = f.read()
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:
        continue
    if not msg.keys():
        continue
    types = {part.get_content_type() for part in msg.walk()}
    (html if "text/html" in types else plain).append((p, size, raw, msg))
n_html = max((N * HTML_PCT + 99) // 100, 0)
if len(html) < n_html or len(plain) < N - n_html:
    sys.exit(f"corpus-mix: {srcs}: only {len(html)} HTML and {len(plain)} other messages of {MIN // 1024}-{MAX // 1024} KB; need {n_html} and {N - n_html}")
pick = [(x, True) for x in rnd.sample(html, n_html)] + [(x, False) for x in rnd.sample(plain, N - n_html)]
rnd.shuffle(pick)
os.makedirs(out + "/smtp", exist_ok=True)
with open(out + "/manifest.tsv", "w") as man:
    man.write("file\tsource\tbytes\thtml\tsender_domain\n")
    for i, ((p, size, raw, msg), is_html) in enumerate(pick):
        mf = sender(msg)
        dom = mf.split("@")[1]
        # strip the mbox "From " line some corpora keep
        body = raw[raw.index(b"\n") + 1:] if raw.startswith(b"From ") else raw
        lf = body.replace(b"\r\n", b"\n")
        crlf = lf.replace(b"\n", b"\r\n")
        name = f"{i:02d}-{'html' if is_html else 'text'}"
        with open(f"{out}/{name}.eml", "wb") as f:
            f.write(f"X-Bench-Envelope: ip=203.0.113.7 helo=mail.{dom} from={mf} to=bob@rcpt.example\r\n".encode() + crlf)
        with open(f"{out}/smtp/{i:02d}.eml", "wb") as f:
            f.write(lf)  # smtp-source -F appends CRLF to every line
        with open(f"{out}/smtp/{i:02d}.from", "w") as f:
            f.write(mf + "\n")
        man.write(f"{name}.eml\t{p}\t{size}\t{'yes' if is_html else 'no'}\t{dom}\n")
tot = sum(x[0][1] for x in pick); th = sum(x[0][1] for x in pick if x[1])
sizes = sorted(x[0][1] for x in pick)
print(f"corpus-mix: {N} messages from {' '.join(srcs)}: {n_html} HTML ({100 * n_html // N}% by count, "
      f"{100 * th // tot}% by bytes), sizes {sizes[0] / 1024:.1f}-{sizes[-1] / 1024:.1f} KB, "
      f"median {sizes[len(sizes) // 2] / 1024:.1f} KB, mean {tot / N / 1024:.1f} KB", file=sys.stderr)
