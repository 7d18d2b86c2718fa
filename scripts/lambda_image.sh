#!/usr/bin/env bash
# Build the offline stand-in for public.ecr.aws/lambda/python:3.13 for one architecture, from Debian packages.
#
#   scripts/lambda_image.sh x86_64|arm64
#
# What it is: a Debian trixie userland (python3.13) with awslambdaric and boto3 in /var/runtime (where the real
# image keeps them) and a /var/runtime/bootstrap that runs `python3 -m awslambdaric "$_HANDLER"` in /var/task.
# `sam local invoke --invoke-image <tag> --skip-pull-image` runs the function on it with SAM's own emulator.
# It is not Amazon Linux 2023: the libc, OpenSSL and system libraries are Debian's.
#
# No second debootstrap stage (it runs every maintainer script, under qemu for arm64: minutes): the first stage
# fetches and unpacks the essential packages, then every other fetched .deb is unpacked with dpkg-deb -x.
# The host's apt sources are never touched. The image is tagged with a hash of its inputs; a second run with the
# same inputs does nothing.
set -euo pipefail

ARCH=${1:?usage: lambda_image.sh x86_64|arm64}
case "$ARCH" in
  x86_64) DEB_ARCH=amd64; PIP_ARCH=x86_64 ;;
  arm64) DEB_ARCH=arm64; PIP_ARCH=aarch64 ;;
  *) echo "unknown architecture: $ARCH" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
REPO=${LAMBDA_IMAGE_REPO:-splade-lambda-python}
TAG="$REPO:3.13-$ARCH"
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
RUNTIME_PACKAGES="awslambdaric==4.2.2 boto3==1.44.5 botocore==1.44.8 s3transfer==0.19.3 urllib3==2.8.0"
HASH=$( (cat "$0"; echo "$RUNTIME_PACKAGES $MIRROR") | sha256sum | cut -c1-16)

have=$(docker image inspect -f '{{ index .Config.Labels "splade.input-hash" }}' "$TAG" 2>/dev/null || true)
if [ "$have" = "$HASH" ]; then
  echo "$TAG is up to date ($HASH)"
  exit 0
fi

if [ "$(id -u)" != "0" ]; then
  echo "building $TAG needs root (debootstrap); or pass INVOKE_IMAGE=public.ecr.aws/lambda/python:3.13" >&2
  exit 1
fi
WORK="$ROOT/build/lambda-image/$ARCH"
rm -rf "$WORK"
mkdir -p "$WORK"
ROOTFS="$WORK/rootfs"
start=$(date +%s)

echo "debootstrap (first stage only) trixie/$DEB_ARCH -> $ROOTFS"
debootstrap --foreign --variant=minbase --arch="$DEB_ARCH" --include=python3,ca-certificates \
  trixie "$ROOTFS" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }

# Unpack what the first stage only downloaded (python3 and its dependencies). Merged /usr: trixie packages
# install under /usr, and /bin, /lib are symlinks that must stay symlinks.
for deb in "$ROOTFS"/var/cache/apt/archives/*.deb; do
  dpkg-deb -x "$deb" "$ROOTFS"
done
for link in bin lib sbin; do
  [ -L "$ROOTFS/$link" ] || { echo "/$link is no longer a symlink after unpacking" >&2; exit 1; }
done
rm -rf "$ROOTFS/debootstrap" "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS/proc" "$ROOTFS/dev"
mkdir -p "$ROOTFS/proc" "$ROOTFS/dev" "$ROOTFS/var/task" "$ROOTFS/opt" "$ROOTFS/tmp"
chmod 1777 "$ROOTFS/tmp"
[ -x "$ROOTFS/usr/bin/python3.13" ] || { echo "python3.13 missing from the unpacked rootfs" >&2; exit 1; }
# What maintainer scripts would have written and Python needs: users, a CA bundle path, ld.so.conf.
grep -q '^root:' "$ROOTFS/etc/passwd" 2>/dev/null || cp "$ROOTFS/usr/share/base-passwd/passwd.master" "$ROOTFS/etc/passwd"
grep -q '^root:' "$ROOTFS/etc/group" 2>/dev/null || cp "$ROOTFS/usr/share/base-passwd/group.master" "$ROOTFS/etc/group"
echo "sbx_user1051:x:993:990::/tmp:/usr/sbin/nologin" >> "$ROOTFS/etc/passwd"

echo "awslambdaric + boto3 for cp313/$PIP_ARCH -> /var/runtime"
# shellcheck disable=SC2086
"$PY" -m pip install --quiet --disable-pip-version-check --no-compile --target "$ROOTFS/var/runtime" \
  --python-version 3.13 --implementation cp --only-binary=:all: \
  --platform "manylinux2014_$PIP_ARCH" --platform "manylinux_2_17_$PIP_ARCH" --platform "manylinux_2_28_$PIP_ARCH" \
  $RUNTIME_PACKAGES 2>&1 | grep -v "^WARNING: Location" || true
[ -d "$ROOTFS/var/runtime/awslambdaric" ] || { echo "awslambdaric was not installed" >&2; exit 1; }

cat > "$ROOTFS/var/runtime/bootstrap" <<'EOF'
#!/bin/sh
# Lambda's python bootstrap, reduced: the handler comes from _HANDLER (the runtime API sets it) or argv.
cd "${LAMBDA_TASK_ROOT:-/var/task}" || exit 1
exec /usr/bin/python3.13 -m awslambdaric "${_HANDLER:-${AWS_LAMBDA_FUNCTION_HANDLER:-$1}}"
EOF
chmod 755 "$ROOTFS/var/runtime/bootstrap"

echo "docker build -> $TAG"
# `docker build` rather than `docker import`, whose --platform older daemons ignore: the image must record
# its architecture, or SAM's `--platform linux/arm64` build on top of it looks for a registry.
tar -C "$ROOTFS" --numeric-owner -cf "$WORK/rootfs.tar" .
cat > "$WORK/Dockerfile" <<EOF
FROM scratch
ADD rootfs.tar /
ENV LANG=C.UTF-8 TZ=:/etc/localtime PATH=/usr/local/bin:/usr/bin:/bin LAMBDA_TASK_ROOT=/var/task \\
    LAMBDA_RUNTIME_DIR=/var/runtime PYTHONPATH=/var/runtime
WORKDIR /var/task
ENTRYPOINT ["/var/runtime/bootstrap"]
LABEL splade.input-hash=$HASH
EOF
DOCKER_BUILDKIT=0 docker build -q --platform "linux/$DEB_ARCH" -t "$TAG" "$WORK" > /dev/null 2> "$WORK/build.log" \
  || { cat "$WORK/build.log" >&2; exit 1; }
# SAM caches the image it layers its emulator onto (<repo>:rapid-<arch>); drop it so it is rebuilt on this base.
docker image rm -f "$REPO:rapid-$ARCH" > /dev/null 2>&1 || true
rm -rf "$ROOTFS" "$WORK/rootfs.tar"
echo "$TAG built in $(( $(date +%s) - start )) s"
