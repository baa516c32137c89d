#!/bin/sh
# Dev Container Feature installer for gcp-gate's CONTAINER-side roles:
# gcp-metadata-proxy, with-prod, gcp-kube-token, gcp-kube-setup and the
# gcp-gate-start helper. It never installs the gate: the gate holds the
# engineer's credentials and must only ever run on the host.
#
# Options arrive as environment variables (Dev Container Features format):
#   PROJECTID  SOCKETPATH  PORT  DENOPATH  NPMREGISTRY
#
# Deno (the roles run as bundled JavaScript in Deno's permission sandbox),
# first match wins:
#   1. DENOPATH (option denoPath) or GCP_GATE_DENO: an existing deno to use;
#   2. a deno already on PATH;
#   3. npm, when the image has it: npm i deno@<version> into <prefix>/lib/gcp-gate;
#   4. otherwise the same binary package npm would fetch
#      (@deno/linux-<arch>-glibc from NPMREGISTRY), downloaded with curl or
#      wget and checked against the SHA-512 pinned below before it is used.
# Whichever it is, <prefix>/lib/gcp-gate/node_modules/deno/deno points to it:
# that is where the launchers look first, so they never depend on PATH.
#
# No other Feature and no registry host is needed at `devcontainer up` time.
#
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
deno_path=${DENOPATH:-${GCP_GATE_DENO:-}}
registry=${NPMREGISTRY:-https://registry.npmjs.org}
registry=${registry%/}
roles="gcp-metadata-proxy with-prod gcp-kube-token gcp-kube-setup"

# The Deno binary packages on npm (what `npm i deno@2.9.6` installs), pinned:
# the SHA-512 values are npm's own `dist.integrity` for these tarballs.
deno_version=2.9.6
deno_sha512_linux_x64=de67784ca2c2bb3b0b0e67cea02e4a37b34065ac525643209bae2f83a7e80f4d090400c2a584b6ff942a5dfce09cfe59433de22cff6f05026d120735d7a380a1
deno_sha512_linux_arm64=a68aa1a07f41de7625a2280430f4f9b7c1d8fb005e8ae79ad409f943b7ea809ccfd126265aca12fe852758efe9122038a1fcc8072d4496dfe29f9f312adc44a1

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
case $registry in
http://* | https://*) ;;
*) die "option npmRegistry must be an http(s) URL, got '$registry'" ;;
esac
if [ -n "$deno_path" ] && [ ! -x "$deno_path" ]; then
  die "option denoPath '$deno_path' is not an executable file in the image"
fi

[ -f "$payload/lib/gcp-metadata-proxy.js" ] && [ -f "$payload/lib/resolve.js" ] ||
  die "no payload at $payload; build it with 'deno task release --feature' before using this feature"

# Downloads Deno's binary package for this machine from the npm registry,
# verifies it against the pinned SHA-512 and installs its `deno` into $1.
# Every failure is one line naming what to do instead.
install_deno_from_registry() {
  dest=$1
  [ "$(uname -s)" = Linux ] || die "cannot install Deno: $(uname -s) is not Linux; set the denoPath option to an existing deno"
  machine=$(uname -m)
  case $machine in
  x86_64 | amd64) arch=x64 sum=$deno_sha512_linux_x64 ;;
  aarch64 | arm64) arch=arm64 sum=$deno_sha512_linux_arm64 ;;
  *) die "cannot install Deno: unsupported architecture '$machine' (Deno's npm packages cover x86_64 and aarch64); set the denoPath option to a deno built for it" ;;
  esac
  for f in /lib/ld-musl-*; do
    [ ! -e "$f" ] || die "cannot install Deno: this image uses musl libc (Alpine?) and Deno's npm packages need glibc; use a glibc image or set the denoPath option"
  done
  command -v sha512sum >/dev/null 2>&1 ||
    die "cannot verify a Deno download: sha512sum (coreutils) is missing; install coreutils or set the denoPath option"
  url=$registry/@deno/linux-$arch-glibc/-/linux-$arch-glibc-$deno_version.tgz
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  hint="no network? set the npmRegistry option to a reachable mirror, or denoPath to an existing deno"
  if command -v curl >/dev/null 2>&1; then
    echo "$prog: downloading deno $deno_version from $url (curl)" >&2
    curl -fsSL --retry 2 --connect-timeout 20 --max-time 600 -o "$tmp/deno.tgz" "$url" 2>"$tmp/err" ||
      die "cannot download Deno from $url: $(tr '\n' ' ' <"$tmp/err" | cut -c1-200)($hint)"
  elif command -v wget >/dev/null 2>&1; then
    echo "$prog: downloading deno $deno_version from $url (wget)" >&2
    wget -q -T 30 -O "$tmp/deno.tgz" "$url" 2>"$tmp/err" ||
      die "cannot download Deno from $url: wget exit $? ($hint)"
  else
    die "cannot install Deno: the image has neither npm nor curl nor wget; add one of them before this Feature, or set the denoPath option to an existing deno"
  fi
  actual=$(sha512sum "$tmp/deno.tgz" | cut -d ' ' -f 1)
  [ "$actual" = "$sum" ] ||
    die "checksum mismatch for $url (sha512 $(printf '%.16s' "$actual")…, expected $(printf '%.16s' "$sum")…): refusing to install it"
  tar -xzf "$tmp/deno.tgz" -C "$tmp" package/deno 2>"$tmp/err" ||
    die "cannot unpack $url: $(head -n 1 "$tmp/err")"
  install -m 0755 "$tmp/package/deno" "$dest/deno.tmp"
  mv -f "$dest/deno.tmp" "$dest/deno"
  rm -rf "$tmp"
  trap - EXIT
  echo "$prog: installed deno $deno_version ($arch, sha512 verified) into $dest" >&2
}

libdir=$root$prefix/lib/gcp-gate
# The launchers look for <pkg>/node_modules/deno/deno first (see scripts/build.ts).
deno_dir=$libdir/node_modules/deno
deno_link() {
  install -d -m 0755 "$deno_dir"
  ln -sf "$1" "$deno_dir/deno.tmp" && mv -f "$deno_dir/deno.tmp" "$deno_dir/deno"
}
if [ -n "$deno_path" ]; then
  deno_link "$deno_path"
  echo "$prog: using deno at $deno_path" >&2
elif existing=$(command -v deno 2>/dev/null); then
  "$existing" --version 2>/dev/null | grep -q "^deno $deno_version " ||
    echo "$prog: warning: $("$existing" --version 2>/dev/null | head -n 1) at $existing; gcp-gate is tested with deno $deno_version" >&2
  deno_link "$existing"
elif command -v npm >/dev/null 2>&1; then
  # Into gcp-gate's own lib dir, not -g: nothing global changes, and the
  # launchers find it where they look first. npm checks the registry's integrity.
  echo "$prog: installing deno $deno_version with npm" >&2
  set -- --prefix "$libdir" --no-save --no-package-lock --no-audit --no-fund
  [ "$registry" = https://registry.npmjs.org ] || set -- "$@" --registry "$registry"
  npm i "$@" "deno@$deno_version" >&2 ||
    die "npm i deno@$deno_version failed; install Deno $deno_version yourself and set the denoPath option"
  # deno/deno is made by deno's postinstall; without it, the platform package has the binary.
  if [ ! -x "$deno_dir/deno" ]; then
    for found in "$libdir"/node_modules/@deno/*/deno; do [ ! -x "$found" ] || break; done
    deno_link "$found"
  fi
else
  install -d -m 0755 "$deno_dir"
  install_deno_from_registry "$deno_dir"
fi
[ -x "$deno_dir/deno" ] || die "deno at $deno_dir/deno is not executable"

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
