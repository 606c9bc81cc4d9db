#!/usr/bin/env bash
# Builds a local Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, etcdctl) from upstream Go modules and caches the
# binaries outside the repository.
#
#   BIN=$(tools/build-kubernetes.sh | tail -1)
#
# The bin dir is the LAST line on stdout; all progress goes to stderr.
# Idempotent: if every binary is already cached for the pinned versions it only
# prints "reusing ..." and the bin dir.
#
# Needs only Go (>= the go directive of k8s.io/kubernetes at the pinned version) and
# the Go module proxy. No prebuilt binaries are downloaded.
set -euo pipefail

# ---- pinned versions --------------------------------------------------------------
KUBERNETES_VERSION=v1.36.5
# etcd: the version k8s.io/kubernetes@KUBERNETES_VERSION recommends
# (build/dependencies.yaml "etcd", kubeadm DefaultEtcdVersion 3.6.8-0) and whose client
# libraries it links. Debian's etcd-server (3.4.23) is below kubeadm's MinExternalEtcdVersion
# (3.5.24-0) for this release.
ETCD_VERSION=v3.6.8

CACHE_ROOT=${ZTMESH_CACHE:-$HOME/.cache/zt-mesh}
DEST=$CACHE_ROOT/kubernetes-$KUBERNETES_VERSION
BIN=$DEST/bin
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd etcdctl)
STAMP="kubernetes=$KUBERNETES_VERSION etcd=$ETCD_VERSION"

# stdout is reserved for the final bin-dir line.
exec 3>&1 1>&2

log() { printf '[build-kubernetes] %s\n' "$*" >&2; }

cached() {
  local b
  [[ -f $BIN/.versions && "$(cat "$BIN/.versions")" == "$STAMP" ]] || return 1
  for b in "${BINARIES[@]}"; do
    [[ -x $BIN/$b ]] || return 1
  done
}

if cached; then
  log "reusing $BIN ($STAMP)"
  echo "$BIN" >&3
  exit 0
fi

command -v go >/dev/null || { log "go not found on PATH"; exit 1; }
mkdir -p "$DEST"

# Serialise concurrent runs (e.g. two test jobs starting at once).
if command -v flock >/dev/null; then
  exec 9>"$DEST/.lock"
  flock 9
  if cached; then
    log "reusing $BIN ($STAMP; built by a concurrent run)"
    echo "$BIN" >&3
    exit 0
  fi
  # Leftovers of a run that was SIGKILLed (holding the lock, so no other run owns them).
  rm -rf "$DEST"/bin.tmp.* "$DEST"/bin.old.*
fi

# ---- Go environment -----------------------------------------------------------------
# Checksum verification stays ON (GOSUMDB=sum.golang.org, the default). In this
# workplace sum.golang.org itself does not resolve, but the go command reaches the
# checksum database through the module proxy (<GOPROXY>/sumdb/sum.golang.org/...,
# which proxy.golang.org serves), so no GONOSUMDB / GOSUMDB=off is needed.
# If a machine could reach neither, run with GOSUMDB=off (verification lost).
export GOPROXY=${GOPROXY:-https://proxy.golang.org,direct}
export GOSUMDB=${GOSUMDB:-sum.golang.org}
export GOFLAGS=-buildvcs=false # wrapper modules are not in a VCS checkout; ignore any user GOFLAGS
export GOWORK=off              # never pick up a go.work from a parent directory
export CGO_ENABLED=0           # static binaries as upstream releases them; no C toolchain needed

NICE=(nice -n 15)
SRC=$DEST/src
TMP=$(mktemp -d "$DEST/bin.tmp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

start=$SECONDS
log "go: $(go version)"
log "cache: $DEST"

# Prints the path of the downloaded go.mod of module@version.
gomod_of() {
  (cd "$TMP" && go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
}

# ---- Kubernetes ---------------------------------------------------------------------
# k8s.io/kubernetes requires its staging modules (k8s.io/api, ...) at v0.0.0 with
# `replace => ./staging/...`, which only works inside its repo. The wrapper module
# requires k8s.io/kubernetes and replaces each staging module with the published v0.Y.Z.
log "resolving k8s.io/kubernetes@$KUBERNETES_VERSION"
K8S_GOMOD=$(gomod_of "k8s.io/kubernetes@$KUBERNETES_VERSION")
[[ -f $K8S_GOMOD ]] || { log "could not download k8s.io/kubernetes@$KUBERNETES_VERSION"; exit 1; }
STAGING_VERSION=v0.${KUBERNETES_VERSION#v1.}
mapfile -t STAGING < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$K8S_GOMOD")
[[ ${#STAGING[@]} -gt 0 ]] || { log "no staging replaces found in $K8S_GOMOD"; exit 1; }
log "${#STAGING[@]} staging modules -> $STAGING_VERSION"

KSRC=$SRC/kubernetes
mkdir -p "$KSRC"
rm -f "$KSRC/go.mod"
(
  cd "$KSRC"
  go mod init zt-mesh.local/kubernetes-build >/dev/null 2>&1
  # Same language version and godebug defaults as upstream's main module.
  go mod edit -go="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$K8S_GOMOD")"
  while read -r kv; do go mod edit -godebug="$kv"; done < <(sed -n 's/^godebug \([^ (]*=[^ ]*\)$/\1/p' "$K8S_GOMOD")
  go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
  for m in "${STAGING[@]}"; do
    go mod edit -replace="$m=$m@$STAGING_VERSION"
  done
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    go mod edit -tool="k8s.io/kubernetes/cmd/$c"
  done
  log "go mod tidy (kubernetes wrapper)"
  "${NICE[@]}" go mod tidy
)

# Version variables as hack/lib/version.sh sets them, so `--version` is truthful.
# buildDate is the release's module timestamp, so rebuilds are reproducible.
K8S_TIME=$(cd "$KSRC" && go list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)
K8S_MINOR=${KUBERNETES_VERSION#v1.}
K8S_MINOR=${K8S_MINOR%%.*}
K8S_LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  K8S_LDFLAGS+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$K8S_MINOR"
  [[ -n $K8S_TIME ]] && K8S_LDFLAGS+=" -X $pkg.buildDate=$K8S_TIME"
done

t=$SECONDS
log "building kube-apiserver kube-controller-manager kube-scheduler kubectl (nice -n 15; takes many minutes cold)"
(
  cd "$KSRC"
  "${NICE[@]}" go build -trimpath -ldflags "$K8S_LDFLAGS" -o "$TMP/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl
)
log "kubernetes binaries built in $((SECONDS - t))s"

# ---- etcd ---------------------------------------------------------------------------
# Upstream's go.mod files replace sibling modules with ../api etc.; outside the repo the
# published modules at the same tag are the same code, so the wrapper just requires them.
log "resolving go.etcd.io/etcd/server/v3@$ETCD_VERSION"
ETCD_GOMOD=$(gomod_of "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
[[ -f $ETCD_GOMOD ]] || { log "could not download go.etcd.io/etcd/server/v3@$ETCD_VERSION"; exit 1; }
ESRC=$SRC/etcd
mkdir -p "$ESRC"
rm -f "$ESRC/go.mod"
(
  cd "$ESRC"
  go mod init zt-mesh.local/etcd-build >/dev/null 2>&1
  # Upstream's language version (GODEBUG defaults); tidy raises it if a dependency needs more.
  go mod edit -go="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$ETCD_GOMOD")"
  go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION" -require="go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION"
  go mod edit -tool=go.etcd.io/etcd/server/v3 -tool=go.etcd.io/etcd/etcdctl/v3
  log "go mod tidy (etcd wrapper)"
  "${NICE[@]}" go mod tidy
)
t=$SECONDS
log "building etcd etcdctl $ETCD_VERSION"
(
  cd "$ESRC"
  "${NICE[@]}" go build -trimpath -ldflags "-s -w" -o "$TMP/etcd" go.etcd.io/etcd/server/v3
  "${NICE[@]}" go build -trimpath -ldflags "-s -w" -o "$TMP/etcdctl" go.etcd.io/etcd/etcdctl/v3
)
log "etcd binaries built in $((SECONDS - t))s"

# ---- install atomically -------------------------------------------------------------
for b in "${BINARIES[@]}"; do
  [[ -x $TMP/$b ]] || { log "missing $b after build"; exit 1; }
done
printf '%s\n' "$STAMP" >"$TMP/.versions"
chmod 755 "$TMP"
if [[ -e $BIN ]]; then
  OLD=$(mktemp -d "$DEST/bin.old.XXXXXX")
  mv "$BIN" "$OLD/"
  mv "$TMP" "$BIN"
  rm -rf "$OLD"
else
  mv "$TMP" "$BIN"
fi
trap - EXIT

log "built in $((SECONDS - start))s:"
(cd "$BIN" && ls -l "${BINARIES[@]}") >&2
echo "$BIN" >&3
