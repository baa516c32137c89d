#!/bin/sh
# Dev Container Feature installer for gcp-gate's CONTAINER-side roles:
# gcp-metadata-proxy, with-prod, gcp-kube-token, gcp-kube-setup and the
# gcp-gate-start helper. It never installs the gate: the gate holds the
# engineer's credentials and must only ever run on the host.
#
# Options arrive as environment variables (Dev Container Features format):
#   PROJECTID  SOCKETPATH  PORT
# For tests and packagers:
#   GCP_GATE_INSTALL_ROOT  install below this directory instead of /
#   GCP_GATE_PREFIX        default /usr/local
#   GCP_GATE_PAYLOAD       the bundled build (bin/ + lib/), default ./payload
#                          (made by: deno task release --feature)
set -eu

prog="gcp-gate feature"
die() {
  echo "$prog: $*" >&2
  exit 1
}

root=${GCP_GATE_INSTALL_ROOT:-}
prefix=${GCP_GATE_PREFIX:-/usr/local}
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
payload=${GCP_GATE_PAYLOAD:-$here/payload}
project_id=${PROJECTID:-}
port=${PORT:-8173}
socket_path=${SOCKETPATH:-/run/gcp-gate/gate.sock}
deno_version=2.9.6
roles="gcp-metadata-proxy with-prod gcp-kube-token gcp-kube-setup"

# Validate options before touching anything: they end up in a TOML file.
case $port in
'' | *[!0-9]*) die "option port must be a number from 0 to 65535, got '$port'" ;;
esac
[ "$port" -le 65535 ] || die "option port must be a number from 0 to 65535, got '$port'"
case $socket_path in
/*) ;;
*) die "option socketPath must be an absolute path, got '$socket_path'" ;;
esac
nl='
'
case $socket_path in
*'"'* | *'\'* | *"$nl"*) die "option socketPath must not contain quotes, backslashes or newlines" ;;
esac
if [ -n "$project_id" ] && ! printf '%s' "$project_id" | grep -Eq '^[a-z][a-z0-9-]{4,28}[a-z0-9]$'; then
  die "option projectId '$project_id' is not a Google Cloud project id (6-30 lowercase letters, digits, hyphens)"
fi

[ -f "$payload/lib/gcp-metadata-proxy.js" ] && [ -f "$payload/lib/resolve.js" ] ||
  die "no payload at $payload; build it with 'deno task release --feature' before using this feature"

# Deno: the roles run as bundled JavaScript under Deno's permission sandbox.
if command -v deno >/dev/null 2>&1; then
  deno --version 2>/dev/null | grep -q "^deno $deno_version" ||
    echo "$prog: warning: $(deno --version 2>/dev/null | head -n 1) found; gcp-gate is tested with deno $deno_version" >&2
elif [ -n "$root" ]; then
  echo "$prog: deno not found; not installing it outside the root $root" >&2
elif command -v npm >/dev/null 2>&1; then
  echo "$prog: installing deno $deno_version with npm" >&2
  npm i -g "deno@$deno_version" >&2 || die "npm i -g deno@$deno_version failed; install Deno $deno_version yourself"
else
  die "needs Deno $deno_version or npm: add ghcr.io/devcontainers/features/node before this feature, or install Deno"
fi

libdir=$root$prefix/lib/gcp-gate
bindir=$root$prefix/bin
install -d -m 0755 "$libdir/bin" "$libdir/lib" "$bindir" "$root/etc/gcp-gate"
install -m 0644 "$payload/lib/resolve.js" "$libdir/lib/resolve.js"
for role in $roles; do
  if [ ! -f "$payload/lib/$role.js" ] || [ ! -f "$payload/bin/$role" ]; then
    echo "$prog: warning: $role is not in the payload; skipped" >&2
    continue
  fi
  install -m 0644 "$payload/lib/$role.js" "$libdir/lib/$role.js"
  install -m 0755 "$payload/bin/$role" "$libdir/bin/$role"
  # Relative link: the launcher finds its lib/ through readlink -f.
  ln -sf "../lib/gcp-gate/bin/$role" "$bindir/$role"
done
install -m 0755 "$here/gcp-gate-start.sh" "$bindir/gcp-gate-start"

config=$root/etc/gcp-gate/config.toml
{
  echo "# Written by the gcp-gate Dev Container Feature from its options."
  echo "socket_path = \"$socket_path\""
  echo "port = $port"
  if [ -n "$project_id" ]; then echo "project_id = \"$project_id\""; fi
} >"$config.tmp"
chmod 0644 "$config.tmp"
mv -f "$config.tmp" "$config"

echo "$prog: installed $roles into $prefix (config $config)" >&2
