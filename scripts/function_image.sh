#!/usr/bin/env bash
# A Lambda container image of the function, for models past the zip (Lambda's 250 MB unzipped; images may be 10 GB).
#
#   scripts/function_image.sh <x86_64|arm64> <model dir> <tag> [<base image>]
#
# /var/task holds what the zip holds: handler/, its dependencies for cp313 on that architecture, the model and,
# when a Python 3.13 is at hand (COMPILE_WITH), the unchecked-hash .pyc (scripts/build_artifact.py --image: the
# 250 MB zip limit does not apply). The base is the project's offline Debian image (scripts/lambda_image.sh) unless
# <base image> names another, such as AWS's public.ecr.aws/lambda/python:3.13; both run CMD
# handler.app.lambda_handler through their entrypoint. Built offline with the classic builder: a local base is
# never looked up in a registry. Prints the image's size.
set -euo pipefail

ARCH=${1:?usage: function_image.sh x86_64|arm64 <model dir> <tag> [<base image>]}
MODEL_DIR=${2:?model dir}
TAG=${3:?image tag}
BASE=${4:-splade-lambda-python:3.13-$ARCH}
case "$ARCH" in
  x86_64) PLATFORM=linux/amd64 ;;
  arm64) PLATFORM=linux/arm64 ;;
  *) echo "unknown architecture: $ARCH" >&2; exit 2 ;;
esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
WORK="$ROOT/build/image-$ARCH"

docker image inspect "$BASE" > /dev/null 2>&1 || {
  echo "base image $BASE is missing: make sam-images builds the project's, or pull $BASE" >&2; exit 1; }
mkdir -p "$WORK"
# shellcheck disable=SC2086
"$PY" "$ROOT/scripts/build_artifact.py" --dest "$WORK/task" --arch "$ARCH" --python-version 3.13 \
  --model-dir "$MODEL_DIR" --image ${COMPILE_WITH:+--compile-with "$COMPILE_WITH"}
cat > "$WORK/Dockerfile" <<DOCKERFILE
FROM $BASE
COPY task/ /var/task/
CMD ["handler.app.lambda_handler"]
DOCKERFILE
DOCKER_BUILDKIT=0 docker build -q --platform "$PLATFORM" -t "$TAG" "$WORK" > /dev/null 2> "$WORK/build.log" \
  || { cat "$WORK/build.log" >&2; exit 1; }
# SAM layers its emulator onto an image function as <repository>:rapid-<arch> and reuses it: drop it, so the next
# sam local invoke layers it onto this image.
docker image rm -f "${TAG%:*}:rapid-$ARCH" > /dev/null 2>&1 || true
size=$(docker image inspect -f '{{.Size}}' "$TAG")
echo "image $TAG ($ARCH, on $BASE): $(( size / 1000000 )) MB; /var/task $(du -sm "$WORK/task" | cut -f1) MiB"
