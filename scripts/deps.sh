#!/bin/sh
# Installs what lnet's build, specs and benchmarks need, from Debian's archive only.
# Idempotent: quick when everything is present. Run as root (or it prints the command).
set -eu
cd "$(dirname "$0")/.."

PKGS="lua5.4 liblua5.4-dev lua-busted luarocks tftpd-hpa tftp-hpa atftp curl busybox \
lua-socket lua-cqueues lua-copas lua-check python3 tmux clang libclang-rt-14-dev \
cppcheck clang-format pkg-config gcc make iproute2 \
lua-sec openssl libssl-dev ca-certificates"

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "lnet: missing Debian packages:$missing"
    echo "run: sudo apt-get update && sudo apt-get install -y$missing"
    exit 1
  fi
  # Keep packaged daemons (tftpd-hpa) from starting on port 69 while installing.
  policy=/usr/sbin/policy-rc.d
  had_policy=0; [ -e "$policy" ] && had_policy=1
  if [ $had_policy = 0 ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"
  fi
  trap '[ $had_policy = 0 ] && rm -f "$policy"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Never leave a packaged TFTP daemon listening on port 69. Only a daemon on
# port 69 is stopped: the specs' own tftpd-hpa instances on high ports are not
# touched, even while another `make test` runs.
if command -v service >/dev/null 2>&1; then
  service tftpd-hpa stop >/dev/null 2>&1 || true
fi
if command -v ss >/dev/null 2>&1; then
  for pid in $(ss -H -lunp 'sport = :69' 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
    kill "$pid" 2>/dev/null || true
  done
fi

# atftpd conflicts with tftpd-hpa as a package: unpack it into .deps/ instead.
if [ ! -x .deps/atftpd/usr/sbin/atftpd ]; then
  if [ "$(id -u)" != 0 ] && ! command -v apt-get >/dev/null; then
    echo "lnet: cannot fetch atftpd"; exit 1
  fi
  mkdir -p .deps/dl
  (cd .deps/dl && rm -f atftpd_*.deb && apt-get download atftpd >/dev/null 2>&1 \
     || { apt-get update -qq && apt-get download atftpd >/dev/null; })
  dpkg -x .deps/dl/atftpd_*.deb .deps/atftpd
fi
echo "lnet: dependencies present"
