#!/usr/bin/env bash
# otpgate vs nginx, side by side, in one run (issue 5).
#
#   bash bench/run.sh
#
# Starts on 127.0.0.1 (random free high ports, everything in one temp dir):
#   upstream  nginx serving a fixed 1 KiB body on every path, plus /api/me
#             (200 JSON when a `sessionid` cookie is sent, 401 otherwise)
#   nginx     proxy_pass to the upstream with keep-alive (keepalive 64)
#   otpgate   dist build (fat LTO) by default, sandbox SMS provider, same upstream
#   forward-auth (issue 15): nginx auth_request and Caddy forward_auth in
#             front of the upstream asking otpgate's /.otpgate/authz/ endpoints,
#             and nginx auth_request asking a trivial auth service (a 204 from
#             the upstream nginx: the forward-auth floor)
# obtains a real second-factor cookie through the normal code flow, then runs
# wrk against each target in turn (alternating, BENCH_ROUNDS rounds) and prints
# requests/s, p50 and p99, the otpgate/nginx ratios and otpgate's RSS.
#
# Environment (all optional):
#   BENCH_DURATION     seconds per wrk run            (default 8)
#   BENCH_ROUNDS       rounds over all targets        (default 3, at least 2)
#   BENCH_CONNECTIONS  wrk -c                         (default 64)
#   BENCH_THREADS      wrk -t                         (default 1)
#   BENCH_WARMUP       seconds of warm-up per target  (default 2, 0 = none)
#   BENCH_SKIP_BUILD   1 = use the existing build (target/dist/otpgate)
#   BENCH_CARGO_PROFILE  cargo profile of both proxies (default dist; release
#                        measures what `cargo run --release` gives)
#   BENCH_PROFILE      1 = also profile otpgate with perf and print the top symbols
#   BENCH_CALLGRIND    1 = also count instructions per request (valgrind's callgrind,
#                          ab): steady numbers for comparing two builds, and what
#                          the access log ([log] access = true) costs per request
#   BENCH_CALLGRIND_REQUESTS  requests counted per target (default 4000)
#   BENCH_CALLGRIND_KEEP      a directory to copy the callgrind dumps into, for
#                             callgrind_annotate (default: not kept)
#
# Needs nginx, wrk, curl and caddy; installs the missing ones with apt-get.
# Exits non-zero, saying which step failed, if anything does not work.

set -euo pipefail

DURATION=${BENCH_DURATION:-8}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-1}
WARMUP=${BENCH_WARMUP:-2}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf '\nbench: FAILED: %s\n' "$*" >&2; exit 1; }

[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 ]] || die "BENCH_DURATION must be a whole number of seconds, got '$DURATION'"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 2 ]] || die "BENCH_ROUNDS must be at least 2, got '$ROUNDS'"
[[ $CONNS =~ ^[0-9]+$ && $CONNS -ge 1 ]] || die "BENCH_CONNECTIONS must be a positive number, got '$CONNS'"
[[ $THREADS =~ ^[0-9]+$ && $THREADS -ge 1 ]] || die "BENCH_THREADS must be a positive number, got '$THREADS'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a whole number of seconds, got '$WARMUP'"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---------------------------------------------------------------- tools
missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v caddy >/dev/null 2>&1 || missing+=(caddy)
if ((${#missing[@]})); then
    say "installing ${missing[*]} with apt-get"
    command -v apt-get >/dev/null 2>&1 || die "${missing[*]} missing and apt-get not available; install them by hand"
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "${missing[*]} missing; run as root or install them by hand"
        SUDO=(sudo)
    fi
    "${SUDO[@]}" apt-get update -qq >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
fi
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || die "nginx not found after installation"
command -v wrk >/dev/null 2>&1 || die "wrk not found after installation"
command -v curl >/dev/null 2>&1 || die "curl not found after installation"
command -v caddy >/dev/null 2>&1 || die "caddy not found after installation"

# ---------------------------------------------------------------- cleanup
TMP=$(mktemp -d -t otpgate-bench.XXXXXX)
PIDS=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# nginx workers run as nobody when the master is root: they must reach the body.
chmod 755 "$TMP"

# Sets PORT to a free TCP port on 127.0.0.1 in 20000-59999 (nothing accepts
# connections on it) that was not handed out before.
TAKEN=" "
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        [[ $TAKEN == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            TAKEN+="$p "
            PORT=$p
            return 0
        fi
    done
    die "no free port found on 127.0.0.1"
}

# Waits until `curl URL` answers at all (any HTTP status), or fails.
wait_http() {
    local url=$1 what=$2 pid=$3 log=$4
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2 2>/dev/null || true; die "$what exited during start-up (log above)"; }
        curl -s -o /dev/null --max-time 1 "$url" && return 0
        sleep 0.1
    done
    cat "$log" >&2 2>/dev/null || true
    die "$what did not answer on $url within 10 s"
}

free_port; UP_PORT=$PORT
free_port; NGX_PORT=$PORT
free_port; GATE_PORT=$PORT
free_port; BARE_PORT=$PORT
free_port; FA_PORT=$PORT
free_port; FLOOR_PORT=$PORT
free_port; CADDY_PORT=$PORT
free_port; CADDY_FLOOR_PORT=$PORT

# ---------------------------------------------------------------- build otpgate (first: it is the slow step)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CARGO_PROFILE=${BENCH_CARGO_PROFILE:-dist}
[[ $CARGO_PROFILE =~ ^[a-z][a-z0-9_-]*$ ]] || die "BENCH_CARGO_PROFILE must name a cargo profile, got '$CARGO_PROFILE'"
BIN=$TARGET_DIR/$CARGO_PROFILE/otpgate
BARE_BIN=$TARGET_DIR/$CARGO_PROFILE/examples/bare_proxy
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    say "building otpgate and the bare hyper proxy (cargo build --profile $CARGO_PROFILE)"
    (cd "$ROOT" && cargo build --profile "$CARGO_PROFILE" --quiet --bin otpgate --example bare_proxy) || die "cargo build --profile $CARGO_PROFILE failed"
fi
[[ -x $BIN ]] || die "$BIN not found (build failed or CARGO_TARGET_DIR differs)"
[[ -x $BARE_BIN ]] || die "$BARE_BIN not found (build failed or CARGO_TARGET_DIR differs)"

# ---------------------------------------------------------------- upstream nginx
mkdir -p "$TMP/www" "$TMP/up" "$TMP/proxy" "$TMP/fa" "$TMP/caddy"
chmod 755 "$TMP/www"
# Exactly 1024 bytes.
head -c 1024 /dev/zero | tr '\0' 'x' >"$TMP/www/1k.html"
chmod 644 "$TMP/www/1k.html"
[[ $(wc -c <"$TMP/www/1k.html") -eq 1024 ]] || die "could not write the 1 KiB body"

common_http() {
    # Temp paths inside the prefix so nothing outside the temp dir is touched.
    cat <<EOF
    access_log off;
    default_type text/html;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    client_body_temp_path $1/client_body;
    proxy_temp_path $1/proxy_temp;
    fastcgi_temp_path $1/fastcgi_temp;
    uwsgi_temp_path $1/uwsgi_temp;
    scgi_temp_path $1/scgi_temp;
EOF
}

cat >"$TMP/up/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $TMP/up/nginx.pid;
error_log $TMP/up/error.log warn;
events { worker_connections 4096; }
http {
$(common_http "$TMP/up")
    open_file_cache max=16 inactive=60s;
    server {
        listen 127.0.0.1:$UP_PORT;
        root $TMP/www;
        # The trivial auth service: the forward-auth floor.
        location = /authz {
            return 204;
        }
        location = /api/me {
            default_type application/json;
            if (\$cookie_sessionid) {
                return 200 '{"username":"bench","phone":"+31612345678"}';
            }
            return 401 '{"error":"not logged in"}';
        }
        location / {
            try_files /1k.html =404;
        }
    }
}
EOF

cat >"$TMP/proxy/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $TMP/proxy/nginx.pid;
error_log $TMP/proxy/error.log warn;
events { worker_connections 4096; }
http {
$(common_http "$TMP/proxy")
    upstream app {
        server 127.0.0.1:$UP_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGX_PORT;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$remote_addr;
        }
    }
}
EOF

say "starting the upstream (nginx) on 127.0.0.1:$UP_PORT"
"$NGINX" -p "$TMP/up/" -e "$TMP/up/error.log" -c "$TMP/up/nginx.conf" >"$TMP/up/stdout.log" 2>&1 &
PIDS+=($!)
UP_PID=$!
wait_http "http://127.0.0.1:$UP_PORT/" "the upstream nginx" "${PIDS[-1]}" "$TMP/up/error.log"

say "starting nginx proxy_pass on 127.0.0.1:$NGX_PORT"
"$NGINX" -p "$TMP/proxy/" -e "$TMP/proxy/error.log" -c "$TMP/proxy/nginx.conf" >"$TMP/proxy/stdout.log" 2>&1 &
PIDS+=($!)
NGX_PID=$!
wait_http "http://127.0.0.1:$NGX_PORT/" "the nginx proxy" "${PIDS[-1]}" "$TMP/proxy/error.log"

# ---------------------------------------------------------------- otpgate
mkdir -m 700 "$TMP/gate"
cat >"$TMP/gate/otpgate.toml" <<EOF
[server]
listen = "127.0.0.1:$GATE_PORT"
secret_file = "$TMP/gate/otpgate.key"
# nginx and Caddy ask the forward-auth endpoints from here.
trusted_proxies = ["127.0.0.1"]

# The benchmark needs no admin API, and 9090 may be taken on this machine.
[admin]
listen = ""

[sms]
provider = "sandbox"

[[apps]]
name = "Bench"
host = "*"
upstream = "http://127.0.0.1:$UP_PORT"
session_cookie = "sessionid"
userinfo_path = "/api/me"
user_pointer = "/username"
phone_pointer = "/phone"
EOF

say "starting otpgate on 127.0.0.1:$GATE_PORT"
RUST_LOG=warn "$BIN" --config "$TMP/gate/otpgate.toml" >"$TMP/gate/otpgate.log" 2>&1 &
GATE_PID=$!
PIDS+=("$GATE_PID")
GATE=http://127.0.0.1:$GATE_PORT
wait_http "$GATE/.otpgate/health" "otpgate" "$GATE_PID" "$TMP/gate/otpgate.log"

say "starting the bare hyper proxy (the floor for any hyper-based proxy) on 127.0.0.1:$BARE_PORT"
"$BARE_BIN" "127.0.0.1:$BARE_PORT" "127.0.0.1:$UP_PORT" per-core >"$TMP/bare.log" 2>&1 &
BARE_PID=$!
PIDS+=("$BARE_PID")
wait_http "http://127.0.0.1:$BARE_PORT/" "the bare hyper proxy" "$BARE_PID" "$TMP/bare.log"

# ---------------------------------------------------------------- forward-auth fronts
# One nginx with two servers: auth_request to otpgate (the README's server
# block, with keep-alive pools) and to the upstream's 204 (the floor).
fa_server() { # port auth-upstream auth-uri
    cat <<EOF
    server {
        listen 127.0.0.1:$1;
        location = /.otpgate-authz {
            internal;
            proxy_pass http://$2$3;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URL \$scheme://\$http_host\$request_uri;
            proxy_set_header X-Original-Method \$request_method;
        }
        location / {
            auth_request /.otpgate-authz;
            auth_request_set \$otpgate_user \$upstream_http_x_otpgate_user;
            proxy_set_header X-Otpgate-User \$otpgate_user;
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
        }
    }
EOF
}
cat >"$TMP/fa/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $TMP/fa/nginx.pid;
error_log $TMP/fa/error.log warn;
events { worker_connections 4096; }
http {
$(common_http "$TMP/fa")
    upstream app {
        server 127.0.0.1:$UP_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    upstream otpgate {
        server 127.0.0.1:$GATE_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
$(fa_server "$FA_PORT" otpgate /.otpgate/authz/nginx)
$(fa_server "$FLOOR_PORT" app /authz)
}
EOF
say "starting nginx auth_request on 127.0.0.1:$FA_PORT (otpgate) and :$FLOOR_PORT (a 204)"
"$NGINX" -p "$TMP/fa/" -e "$TMP/fa/error.log" -c "$TMP/fa/nginx.conf" >"$TMP/fa/stdout.log" 2>&1 &
PIDS+=($!)
FA_PID=$!
wait_http "http://127.0.0.1:$FLOOR_PORT/" "the auth_request nginx" "$FA_PID" "$TMP/fa/error.log"

# The README's Caddy site, without its comments.
cat >"$TMP/caddy/Caddyfile" <<EOF
{
	admin off
	auto_https off
}
http://127.0.0.1:$CADDY_PORT {
	handle /.otpgate/* {
		reverse_proxy 127.0.0.1:$GATE_PORT
	}
	handle {
		route {
			request_header -X-Otpgate-User
			request_header -X_Otpgate_User
			forward_auth 127.0.0.1:$GATE_PORT {
				uri /.otpgate/authz/forward
				copy_headers X-Otpgate-User
			}
			@nobody header_regexp X-Otpgate-User ^\$
			request_header @nobody -X-Otpgate-User
			reverse_proxy 127.0.0.1:$UP_PORT
		}
	}
}
# Caddy's floor: forward_auth to the upstream's 204.
http://127.0.0.1:$CADDY_FLOOR_PORT {
	forward_auth 127.0.0.1:$UP_PORT {
		uri /authz
	}
	reverse_proxy 127.0.0.1:$UP_PORT
}
EOF
say "starting Caddy forward_auth on 127.0.0.1:$CADDY_PORT"
HOME="$TMP/caddy" XDG_DATA_HOME="$TMP/caddy" XDG_CONFIG_HOME="$TMP/caddy" \
    caddy run --adapter caddyfile --config "$TMP/caddy/Caddyfile" >"$TMP/caddy/caddy.log" 2>&1 &
PIDS+=($!)
CADDY_PID=$!
wait_http "http://127.0.0.1:$CADDY_PORT/" "Caddy" "$CADDY_PID" "$TMP/caddy/caddy.log"

# ---------------------------------------------------------------- sanity checks
# status and size of a GET: "CODE SIZE"
probe() { curl -s -o /dev/null --max-time 5 -w '%{http_code} %{size_download}' "$@" || echo "000 0"; }

r=$(probe "http://127.0.0.1:$UP_PORT/any/path")
[[ $r == "200 1024" ]] || die "the upstream should answer 200 with 1024 bytes on any path, got '$r'"
r=$(probe -H 'Cookie: sessionid=bench' "http://127.0.0.1:$UP_PORT/api/me")
[[ $r == 200* ]] || die "the upstream /api/me should answer 200 with a sessionid cookie, got '$r'"
r=$(probe "http://127.0.0.1:$UP_PORT/api/me")
[[ $r == 401* ]] || die "the upstream /api/me should answer 401 without a session, got '$r'"
r=$(probe "http://127.0.0.1:$NGX_PORT/")
[[ $r == "200 1024" ]] || die "nginx proxy_pass should answer 200 with 1024 bytes, got '$r'"
r=$(probe "$GATE/")
[[ $r == "200 1024" ]] || die "otpgate without cookies should pass through (200, 1024 bytes), got '$r'"
r=$(probe -H 'Cookie: sessionid=bench' "$GATE/")
[[ $r == 401* ]] || die "otpgate with a session but no second factor should answer 401, got '$r'"

# ---------------------------------------------------------------- the second-factor cookie, the normal way
say "obtaining a second-factor cookie through the code flow (sandbox provider)"
code_page=$(curl -s --max-time 10 -H 'Cookie: sessionid=bench' -w '\n%{http_code}' "$GATE/.otpgate/verify?rd=%2F") \
    || die "GET /.otpgate/verify failed"
status=${code_page##*$'\n'}
[[ $status == 200 ]] || { printf '%s\n' "$code_page" | tail -20 >&2; die "GET /.otpgate/verify answered $status, not 200 (no code was sent?)"; }
csrf=$(printf '%s' "$code_page" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="\([^"]*\)"/\1/')
[[ -n $csrf ]] || die "no csrf field on the code page"

sandbox=$(curl -s --max-time 10 "$GATE/.otpgate/sandbox") || die "GET /.otpgate/sandbox failed"
# Newest message first; its last line is "@host #CODE".
code=$(printf '%s' "$sandbox" | grep -oE '@[^ <]+ #[0-9]{6,10}' | head -1 | sed 's/.*#//')
[[ -n $code ]] || die "no '@host #CODE' line in the sandbox inbox; was a code sent?"

curl -s --max-time 10 -o /dev/null -D "$TMP/verify.headers" -H 'Cookie: sessionid=bench' \
    --data-urlencode "code=$code" --data-urlencode "csrf=$csrf" --data-urlencode "rd=/" \
    "$GATE/.otpgate/verify" || die "POST /.otpgate/verify failed"
post_status=$(head -1 "$TMP/verify.headers" | awk '{print $2}')
otp_cookie=$(tr -d '\r' <"$TMP/verify.headers" | grep -i '^set-cookie: *otpgate=' | head -1 | sed 's/^[^:]*: *otpgate=\([^;]*\).*/\1/')
[[ -n $otp_cookie ]] || { cat "$TMP/verify.headers" >&2; die "the code was not accepted (HTTP $post_status, no otpgate cookie); cannot benchmark the unlocked path"; }

COOKIE="Cookie: sessionid=bench; otpgate=$otp_cookie"
r=$(probe -H "$COOKIE" "$GATE/")
[[ $r == "200 1024" ]] || die "otpgate with the second-factor cookie should pass through (200, 1024 bytes), got '$r'"
say "second-factor cookie obtained (${#otp_cookie} characters) and accepted"
for front in "nginx auth_request:$FA_PORT" "Caddy forward_auth:$CADDY_PORT" "nginx auth_request (floor):$FLOOR_PORT" \
    "Caddy forward_auth (floor):$CADDY_FLOOR_PORT"; do
    r=$(probe -H "$COOKIE" "http://127.0.0.1:${front##*:}/")
    [[ $r == "200 1024" ]] || die "${front%:*} with the second-factor cookie should pass (200, 1024 bytes), got '$r'"
done
r=$(probe -H 'Cookie: sessionid=bench' "http://127.0.0.1:$FA_PORT/")
[[ $r == 401* ]] || die "nginx auth_request to otpgate with a session but no second factor should answer 401, got '$r'"

# ---------------------------------------------------------------- measure
rss_kb() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
IDLE_RSS=$(rss_kb "$GATE_PID" VmRSS)
IDLE_HWM=$(rss_kb "$GATE_PID" VmHWM)

NAMES=(upstream nginx bare otpgate_cookie otpgate_anon fa_floor fa_nginx caddy_floor fa_caddy)
declare -A URL HDR LABEL
# The process (with its children) whose CPU time each target costs.
# For the forward-auth rows: the front proxy's alone (otpgate's share comes on top).
declare -A CPU_OF=([upstream]=$UP_PID [nginx]=$NGX_PID [bare]=$BARE_PID [otpgate_cookie]=$GATE_PID [otpgate_anon]=$GATE_PID
    [fa_floor]=$FA_PID [fa_nginx]=$FA_PID [caddy_floor]=$CADDY_PID [fa_caddy]=$CADDY_PID)
URL[upstream]="http://127.0.0.1:$UP_PORT/";  HDR[upstream]="";        LABEL[upstream]="upstream direct"
URL[nginx]="http://127.0.0.1:$NGX_PORT/";    HDR[nginx]="";           LABEL[nginx]="nginx proxy_pass"
URL[bare]="http://127.0.0.1:$BARE_PORT/";  HDR[bare]="";            LABEL[bare]="bare hyper proxy (floor)"
URL[otpgate_cookie]="$GATE/";                HDR[otpgate_cookie]="$COOKIE"; LABEL[otpgate_cookie]="otpgate, valid 2FA cookie"
URL[otpgate_anon]="$GATE/";                  HDR[otpgate_anon]="";    LABEL[otpgate_anon]="otpgate, no cookie"
URL[fa_floor]="http://127.0.0.1:$FLOOR_PORT/"; HDR[fa_floor]="$COOKIE"; LABEL[fa_floor]="nginx auth_request -> 204"
URL[fa_nginx]="http://127.0.0.1:$FA_PORT/";  HDR[fa_nginx]="$COOKIE";  LABEL[fa_nginx]="nginx auth_request -> otpgate"
URL[caddy_floor]="http://127.0.0.1:$CADDY_FLOOR_PORT/"; HDR[caddy_floor]="$COOKIE"; LABEL[caddy_floor]="Caddy forward_auth -> 204"
URL[fa_caddy]="http://127.0.0.1:$CADDY_PORT/"; HDR[fa_caddy]="$COOKIE"; LABEL[fa_caddy]="Caddy forward_auth -> otpgate"

# "570.00us" / "2.50ms" / "1.02s" / "1.00m" -> milliseconds
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000; else if (u == "h") n *= 3600000;
        printf "%.3f", n }'
}

# CPU time (user + system, clock ticks) used so far by a process and its
# direct children (nginx workers). Fields after "pid (comm) ": $2 ppid, $12 utime, $13 stime.
cpu_ticks() {
    local pid=$1
    # Processes may vanish while cat reads them: that is not an error here.
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v p="$pid" '
        { line = $0; id = $1; sub(/^.*\) /, "", line); split(line, f, " ");
          if (id == p || f[2] == p) t += f[12] + f[13] }
        END { print t + 0 }'
}
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)

run_wrk() { # name seconds outfile
    local name=$1 secs=$2 out=$3
    local args=(-t"$THREADS" -c"$CONNS" -d"${secs}s" --latency)
    [[ -n ${HDR[$name]} ]] && args+=(-H "${HDR[$name]}")
    wrk "${args[@]}" "${URL[$name]}" >"$out" 2>&1 || { cat "$out" >&2; die "wrk against ${LABEL[$name]} failed"; }
}

declare -A RPS P50 P99 BAD CPU
# Samples otpgate's VmRSS twice a second for the whole measurement; the
# highest value is read at the end.
(
    while kill -0 "$GATE_PID" 2>/dev/null; do
        rss_kb "$GATE_PID" VmRSS >>"$TMP/rss-samples"
        sleep 0.5
    done
) &
PIDS+=($!)
NCPU=$(nproc 2>/dev/null || echo '?')
say "machine: $NCPU cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo 2>/dev/null), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
est=$(( ${#NAMES[@]} * (WARMUP + ROUNDS * DURATION) ))
say "wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, $ROUNDS rounds over ${#NAMES[@]} targets, alternating (~${est}s)"
if ((WARMUP > 0)); then
    for name in "${NAMES[@]}"; do run_wrk "$name" "$WARMUP" "$TMP/warmup-$name.txt"; done
fi
for round in $(seq "$ROUNDS"); do
    for name in "${NAMES[@]}"; do
        out="$TMP/wrk-$name-$round.txt"
        ticks0=$(cpu_ticks "${CPU_OF[$name]}")
        run_wrk "$name" "$DURATION" "$out"
        ticks1=$(cpu_ticks "${CPU_OF[$name]}")
        kill -0 "$GATE_PID" 2>/dev/null || { cat "$TMP/gate/otpgate.log" >&2; die "otpgate died during the load"; }
        rps=$(awk '/^Requests\/sec:/{print $2}' "$out")
        p50=$(awk '$1=="50%"{print $2}' "$out")
        p99=$(awk '$1=="99%"{print $2}' "$out")
        [[ -n $rps && -n $p50 && -n $p99 ]] || { cat "$out" >&2; die "could not read wrk's output for ${LABEL[$name]}"; }
        bad=$(awk '/Non-2xx or 3xx responses:/{print $NF}' "$out"); bad=${bad:-0}
        sockerr=$(awk '/Socket errors:/{s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i; print s}' "$out"); sockerr=${sockerr:-0}
        reqs=$(awk '/requests in/{print $1}' "$out")
        CPU[$name,$round]=$(awk -v t=$((ticks1 - ticks0)) -v hz="$HZ" -v n="${reqs:-0}" 'BEGIN { printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0) }')
        RPS[$name,$round]=$rps; P50[$name,$round]=$(to_ms "$p50"); P99[$name,$round]=$(to_ms "$p99")
        BAD[$name,$round]=$((bad + sockerr))
        printf '    round %d  %-26s %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms  %6.1f CPU-us/req%s\n' "$round" "${LABEL[$name]}" \
            "$rps" "${P50[$name,$round]}" "${P99[$name,$round]}" "${CPU[$name,$round]}" \
            "$( ((bad + sockerr)) && echo "  ($bad non-2xx, $sockerr socket errors)")" >&2
    done
done
PEAK_RSS=$(rss_kb "$GATE_PID" VmHWM)
if [[ ${BENCH_PROFILE:-0} == 1 ]]; then
    # Where otpgate's time goes, with a valid cookie and without: flat
    # profiles by symbol (perf samples at 999 Hz while wrk runs); what grows
    # from the second to the first is the second-factor path.
    command -v perf >/dev/null 2>&1 || die "BENCH_PROFILE=1 needs perf (apt-get install linux-perf)"
    for name in otpgate_cookie otpgate_anon; do
        say "profiling ${LABEL[$name]} for ${DURATION}s (perf)"
        perf record -q -F 999 -o "$TMP/perf-$name.data" -p "$GATE_PID" -- sleep "$DURATION" >/dev/null 2>&1 &
        PERF_PID=$!
        run_wrk "$name" "$DURATION" "$TMP/wrk-profile-$name.txt"
        wait "$PERF_PID" || die "perf record failed"
        perf report -i "$TMP/perf-$name.data" --stdio --no-children --sort dso,symbol --percent-limit 0.7 2>/dev/null \
            | grep -v '^#' | grep -v '^$' | sed 's/ *- *- *$//' | head -45 >"$TMP/profile-$name.txt"
    done
fi
if [[ ${BENCH_CALLGRIND:-0} == 1 ]]; then
    # Instructions per request, counted by callgrind: unlike requests/s
    # they do not move with other load on the machine, so two builds can be
    # compared to within a fraction of a percent. A second otpgate (same
    # secret, so the same cookie is valid) and a second bare proxy run under
    # valgrind on ports of their own; ab sends a fixed number of keep-alive
    # requests to each. A third otpgate with the access log on (to a file)
    # prices it: its writer thread's instructions are counted too.
    for tool in valgrind:valgrind callgrind_control:valgrind ab:apache2-utils; do
        command -v "${tool%%:*}" >/dev/null 2>&1 && continue
        say "installing ${tool#*:} with apt-get (BENCH_CALLGRIND=1)"
        [[ $(id -u) -eq 0 ]] || die "BENCH_CALLGRIND=1 needs ${tool#*:}; install it (apt-get install ${tool#*:})"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${tool#*:}" >/dev/null \
            || die "BENCH_CALLGRIND=1 needs ${tool#*:}; install it"
    done
    CG_N=${BENCH_CALLGRIND_REQUESTS:-4000}
    mkdir -p "$TMP/cg"
    free_port; CG_GATE_PORT=$PORT
    free_port; CG_BARE_PORT=$PORT
    free_port; CG_ACCESS_PORT=$PORT
    sed "s/^listen = \"127.0.0.1:$GATE_PORT\"/listen = \"127.0.0.1:$CG_GATE_PORT\"/" "$TMP/gate/otpgate.toml" >"$TMP/gate/callgrind.toml"
    sed "s/^listen = \"127.0.0.1:$GATE_PORT\"/listen = \"127.0.0.1:$CG_ACCESS_PORT\"/" "$TMP/gate/otpgate.toml" >"$TMP/gate/access.toml"
    printf '\n[log]\naccess = true\naccess_path = "%s"\n' "$TMP/gate/access.log" >>"$TMP/gate/access.toml"
    say "starting otpgate and the bare proxy under callgrind (slow: about a minute)"
    RUST_LOG=warn valgrind -q --tool=callgrind --callgrind-out-file="$TMP/cg/gate.%p" \
        "$BIN" --config "$TMP/gate/callgrind.toml" >"$TMP/gate/callgrind.log" 2>&1 &
    CG_GATE_PID=$!
    PIDS+=("$CG_GATE_PID")
    valgrind -q --tool=callgrind --callgrind-out-file="$TMP/cg/bare.%p" \
        "$BARE_BIN" "127.0.0.1:$CG_BARE_PORT" "127.0.0.1:$UP_PORT" per-core >"$TMP/cg-bare.log" 2>&1 &
    CG_BARE_PID=$!
    PIDS+=("$CG_BARE_PID")
    RUST_LOG=warn valgrind -q --tool=callgrind --callgrind-out-file="$TMP/cg/access.%p" \
        "$BIN" --config "$TMP/gate/access.toml" >"$TMP/gate/callgrind-access.log" 2>&1 &
    CG_ACCESS_PID=$!
    PIDS+=("$CG_ACCESS_PID")
    HDR[otpgate_access]=$COOKIE; LABEL[otpgate_access]="otpgate, cookie, access log"
    for _ in $(seq 600); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$CG_GATE_PORT/.otpgate/health" \
            && curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$CG_BARE_PORT/" \
            && curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$CG_ACCESS_PORT/.otpgate/health" && break
        sleep 0.1
    done
    declare -A IR
    for name in bare otpgate_cookie otpgate_anon otpgate_access; do
        pid=$CG_GATE_PID; url="http://127.0.0.1:$CG_GATE_PORT/"
        [[ $name == bare ]] && pid=$CG_BARE_PID && url="http://127.0.0.1:$CG_BARE_PORT/"
        [[ $name == otpgate_access ]] && pid=$CG_ACCESS_PID && url="http://127.0.0.1:$CG_ACCESS_PORT/"
        hdr=(); [[ -n ${HDR[$name]} ]] && hdr=(-H "${HDR[$name]}")
        ab -q -k -n 500 -c 8 "${hdr[@]}" "$url" >/dev/null 2>&1 || die "ab against ${LABEL[$name]} under callgrind failed"
        callgrind_control -z "$pid" >/dev/null || die "callgrind_control could not reach ${LABEL[$name]}"
        ab -q -k -n "$CG_N" -c 8 "${hdr[@]}" "$url" >"$TMP/cg/ab-$name.txt" 2>&1 || die "ab against ${LABEL[$name]} under callgrind failed"
        grep -q '^Non-2xx' "$TMP/cg/ab-$name.txt" && die "${LABEL[$name]} answered non-2xx under callgrind"
        callgrind_control -d "$name" "$pid" >/dev/null || die "callgrind_control could not dump ${LABEL[$name]}"
        dump=$(ls -t "$TMP"/cg/*."$pid".* 2>/dev/null | head -1)
        total=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")
        [[ -n $total ]] || die "no instruction count in $dump"
        IR[$name]=$((total / CG_N))
    done
    # Every request of the access run has its line (none dropped).
    ACCESS_LINES=$(grep -c ' ACCESS ' "$TMP/gate/access.log" 2>/dev/null || echo 0)
    if [[ -n ${BENCH_CALLGRIND_KEEP:-} ]]; then
        mkdir -p "$BENCH_CALLGRIND_KEEP" && cp "$TMP"/cg/* "$BENCH_CALLGRIND_KEEP"/
        say "callgrind dumps kept in $BENCH_CALLGRIND_KEEP (callgrind_annotate FILE)"
    fi
fi
MAX_RSS_SEEN=$(sort -n "$TMP/rss-samples" 2>/dev/null | tail -1)
END_RSS=$(rss_kb "$GATE_PID" VmRSS)

# ---------------------------------------------------------------- report
# agg name metric(RPS|P50|P99) kind(best|median)
agg() {
    local name=$1 metric=$2 kind=$3 vals=() r
    local -n arr=$metric
    for r in $(seq "$ROUNDS"); do vals+=("${arr[$name,$r]}"); done
    printf '%s\n' "${vals[@]}" | sort -g | awk -v kind="$kind" -v hi="$([[ $metric == RPS ]] && echo 1 || echo 0)" '
        { v[NR] = $1 }
        END {
            if (kind == "best") { print (hi ? v[NR] : v[1]); exit }
            if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
        }'
}
# Median over the rounds of name's ratio to nginx in the same round (runs a
# few seconds apart): steadier on a shared machine than a ratio of medians.
# paired name metric(RPS|P99) [base, default nginx]
paired() {
    local name=$1 metric=$2 base=${3:-nginx} r
    local -n arr=$metric
    for r in $(seq "$ROUNDS"); do
        awk -v a="${arr[$name,$r]}" -v b="${arr[$base,$r]}" 'BEGIN { if (b > 0) printf "%.4f\n", a / b }'
    done | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { if (v !~ /^[0-9.]+$/) { print "n/a"; exit } v += 0; ok = (op == ">=") ? (v >= t) : (v <= t); print ok ? "met" : "NOT met" }'; }

echo
echo "otpgate benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  $(uname -sr), $NCPU cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo 2>/dev/null)"
echo "wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, $ROUNDS rounds, targets alternating; 1 KiB body; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
for kind in best median; do
    echo
    if [[ $kind == best ]]; then
        echo "Best of $ROUNDS rounds (highest req/s, lowest p50 and p99, each on its own):"
    else
        echo "Median of $ROUNDS rounds:"
    fi
    printf '  %-28s %12s %10s %10s %14s\n' target "requests/s" "p50 ms" "p99 ms" "CPU-us/req *"
    for name in "${NAMES[@]}"; do
        printf '  %-28s %12.0f %10.3f %10.3f %14.1f\n' "${LABEL[$name]}" \
            "$(agg "$name" RPS "$kind")" "$(agg "$name" P50 "$kind")" "$(agg "$name" P99 "$kind")" "$(agg "$name" CPU "$kind")"
    done
    ng_rps=$(agg nginx RPS "$kind"); ng_p99=$(agg nginx P99 "$kind")
    for name in bare otpgate_cookie otpgate_anon; do
        tr_=$(ratio "$(agg "$name" RPS "$kind")" "$ng_rps")
        pr_=$(ratio "$(agg "$name" P99 "$kind")" "$ng_p99")
        cr_=$(ratio "$(agg "$name" CPU "$kind")" "$(agg nginx CPU "$kind")")
        printf '  %-28s throughput %s x nginx (target >= 1.0: %s), p99 %s x nginx (target <= 1.2: %s), CPU per request %s x nginx\n' \
            "${LABEL[$name]}:" "$tr_" "$(verdict "$tr_" '>=' 1.0)" "$pr_" "$(verdict "$pr_" '<=' 1.2)" "$cr_"
    done
done
echo
echo "Median of the per-round ratios (each target against nginx in the same round):"
for name in bare otpgate_cookie otpgate_anon; do
    tr_=$(paired "$name" RPS); pr_=$(paired "$name" P99)
    printf '  %-28s throughput %s x nginx (target >= 1.0: %s), p99 %s x nginx (target <= 1.2: %s)\n' \
        "${LABEL[$name]}:" "$tr_" "$(verdict "$tr_" '>=' 1.0)" "$pr_" "$(verdict "$pr_" '<=' 1.2)"
done
echo
echo "Forward-auth (valid 2FA cookie), median of the per-round ratios to the same proxy asking a 204 (the floor):"
for pair in fa_nginx:fa_floor fa_caddy:caddy_floor; do
    name=${pair%:*}; base=${pair#*:}
    tr_=$(paired "$name" RPS "$base"); pr_=$(paired "$name" P99 "$base")
    printf '  %-30s throughput %s x %s, p99 %s x it\n' "${LABEL[$name]}:" "$tr_" "${LABEL[$base]}" "$pr_"
done
echo
echo "* CPU-us/req: CPU time (user + system) of the serving process and its workers per request"
echo "  (the upstream nginx for 'upstream direct', the nginx proxy alone for 'nginx proxy_pass',"
echo "  otpgate alone for otpgate, the front proxy alone for forward-auth), from /proc; steadier"
echo "  than requests/s on a shared machine."
echo
echo "otpgate memory:"
printf '  idle RSS (after start-up and the code flow, before load): %s MB (target <= 20: %s)\n' "$(mb "$IDLE_RSS")" "$(verdict "$(mb "$IDLE_RSS")" '<=' 20)"
printf '  peak RSS (VmHWM after all runs):                          %s MB (target <= 64: %s)\n' "$(mb "$PEAK_RSS")" "$(verdict "$(mb "$PEAK_RSS")" '<=' 64)"
printf '  highest VmRSS sampled under load: %s MB; VmRSS at the end: %s MB; VmHWM before load: %s MB\n' \
    "$(mb "$MAX_RSS_SEEN")" "$(mb "$END_RSS")" "$(mb "$IDLE_HWM")"
echo
echo "Numbers move with other load on the machine; compare only within one run."

failed=0
for name in "${NAMES[@]}"; do
    for r in $(seq "$ROUNDS"); do
        if [[ ${BAD[$name,$r]} -gt 0 ]]; then
            echo "bench: ${LABEL[$name]} round $r had ${BAD[$name,$r]} error responses or socket errors" >&2
            failed=1
        fi
    done
done
((failed == 0)) || die "some runs had errors (see above); their numbers are not comparable"
if [[ ${BENCH_CALLGRIND:-0} == 1 ]]; then
    echo
    echo "Instructions per request (callgrind, user space only, ab -k -c8 -n $CG_N; steady on a shared machine):"
    for name in bare otpgate_cookie otpgate_anon otpgate_access; do
        printf '  %-28s %8d  (%s x the bare proxy)\n' "${LABEL[$name]}" "${IR[$name]}" "$(ratio "${IR[$name]}" "${IR[bare]}")"
    done
    printf '  the access log costs %d instructions per request (%s x the cookie path), %d lines written\n' \
        "$((IR[otpgate_access] - IR[otpgate_cookie]))" "$(ratio "${IR[otpgate_access]}" "${IR[otpgate_cookie]}")" "$ACCESS_LINES"
fi
for name in otpgate_cookie otpgate_anon; do
    [[ -s $TMP/profile-$name.txt ]] || continue
    echo
    echo "Where otpgate's CPU time goes, ${LABEL[$name]} (perf, flat, by symbol):"
    cat "$TMP/profile-$name.txt"
done
