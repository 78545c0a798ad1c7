#!/usr/bin/env bash
# Build a pinned Helm v3 from source with the local Go toolchain (no release tarball, no Docker)
# and print the path of the binary as the last stdout line.
#
#   tools/helm/install-helm.sh            # build once, then reuse: prints .../helm-vX.Y.Z/bin/helm
#   HELM="$(tools/helm/install-helm.sh)"; "$HELM" lint helm/webhook-gateway
#
# The module comes from the Go module proxy (GOPROXY), like any Go dependency. The first build
# downloads and compiles Helm and client-go (about two minutes on 2 cores, cold caches); later
# runs only check the cached binary's version.
#
# Environment:
#   WEBHOOK_GATEWAY_CACHE  cache root [${XDG_CACHE_HOME:-$HOME/.cache}/webhook-gateway];
#                          the binary goes to <root>/helm-<version>/bin/helm
#   HELM_VERSION           override the pinned version (tests pin the default)
#   GO                     go command [go]
set -euo pipefail

readonly PINNED_HELM_VERSION="v3.22.0"
# The `go` line of that version's go.mod: older toolchains cannot build it.
readonly PINNED_MIN_GO="1.26.0"
# Kubernetes version Helm reports to templates (.Capabilities.KubeVersion) and checks deprecated
# APIs against, as helm's own Makefile derives it from its k8s.io/client-go (v0.37 -> 1.37).
readonly PINNED_K8S_MINOR="37"

readonly HELM_VERSION="${HELM_VERSION:-$PINNED_HELM_VERSION}"
readonly GO="${GO:-go}"
readonly PROG="${0##*/}"
readonly CACHE_ROOT="${WEBHOOK_GATEWAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/webhook-gateway}"
readonly HELM_HOME="$CACHE_ROOT/helm-$HELM_VERSION"
readonly HELM_BIN="$HELM_HOME/bin/helm"

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

case "${1:-}" in
  -h | --help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
    ;;
  "") ;;
  *) die "unexpected argument: $1 (see --help)" ;;
esac

[[ "$HELM_VERSION" =~ ^v3\.[0-9]+\.[0-9]+$ ]] || die "HELM_VERSION must look like v3.X.Y, got $HELM_VERSION"

# The cached binary is good when it runs and reports exactly the pinned version.
is_good() {
  [[ -x "$1" ]] || return 1
  local got
  got=$("$1" version --template '{{.Version}}' 2>/dev/null) || return 1
  [[ "$got" == "$HELM_VERSION" ]]
}

if is_good "$HELM_BIN"; then
  printf '%s\n' "$HELM_BIN"
  exit 0
fi

command -v "$GO" >/dev/null 2>&1 || die "Go is required to build Helm ($GO not found on PATH)"
mkdir -p "$HELM_HOME/bin"

# One build at a time per version (parallel test sessions); the loser reuses the winner's binary.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$HELM_HOME/.lock"
  flock 9
  if is_good "$HELM_BIN"; then
    printf '%s\n' "$HELM_BIN"
    exit 0
  fi
fi

if [[ "$HELM_VERSION" == "$PINNED_HELM_VERSION" ]]; then
  # No toolchain download (GOTOOLCHAIN=local below): say plainly when this Go is too old.
  go_version=$(GOTOOLCHAIN=local "$GO" env GOVERSION)
  go_version=${go_version#go}
  lowest=$(printf '%s\n%s\n' "$PINNED_MIN_GO" "$go_version" | sort -V | head -n 1)
  [[ "$lowest" == "$PINNED_MIN_GO" ]] \
    || die "helm $HELM_VERSION needs Go >= $PINNED_MIN_GO; this is Go $go_version"
fi

tmp_bin=$(mktemp -d "$HELM_HOME/.build.XXXXXX")
trap 'rm -rf "$tmp_bin"' EXIT

ldflags="-w -s -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
if [[ "$HELM_VERSION" == "$PINNED_HELM_VERSION" ]]; then
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$PINNED_K8S_MINOR"
  done
fi

log "building helm $HELM_VERSION with $("$GO" env GOVERSION) (first time only; takes a few minutes)"
start=$SECONDS
GOBIN="$tmp_bin" GOFLAGS="-trimpath -buildvcs=false" CGO_ENABLED=0 GOTOOLCHAIN=local \
  "$GO" install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2 \
  || die "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION failed"
is_good "$tmp_bin/helm" || die "the built helm does not report version $HELM_VERSION"
mv -f "$tmp_bin/helm" "$HELM_BIN"
log "built $HELM_BIN in $((SECONDS - start))s"
printf '%s\n' "$HELM_BIN"
