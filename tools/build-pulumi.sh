#!/usr/bin/env bash
# Builds the Pulumi engine (CLI), the Node.js language host and the kubernetes, tls and
# random resource providers from upstream Go modules, and caches the binaries outside
# the repository, so that CI can run a real `pulumi preview` / `pulumi up` offline.
#
#   BIN=$(tools/build-pulumi.sh | tail -1)
#
# The bin dir is the LAST line on stdout; all progress goes to stderr. Idempotent: a
# binary that is already cached for the same build recipe is reused ("reusing ...").
# Needs only Go (>= 1.26.6, the go directive of pulumi/pkg) and the Go module proxy.
# Nothing is downloaded from a web site; no `pulumi plugin install` from GitHub.
#
# ---- What the Go module proxy here actually has (checked 2026-11) ---------------------
# The SDK pins are @pulumi/pulumi 3.270.0, @pulumi/kubernetes 4.34.2, @pulumi/tls 5.6.1,
# @pulumi/random 4.21.2. The matching Go sources are NOT all on the proxy (it answers
# "403 This module version is not available"), so this script builds the closest
# sources that exist and says so in each binary's version string / stamp:
#   * pulumi CLI: github.com/pulumi/pulumi/pkg/v3@v3.270.0 has only .info/.mod, no .zip.
#     Closest with source: v3.274.1 (next: v3.260.0). The CLI is backward compatible
#     with older SDKs, so a newer CLI is the safe direction. Binary reports v3.274.1.
#   * pulumi-language-nodejs: the module
#     github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 has no version
#     at all on the proxy (its @v/list is 403 too). The host was a package inside
#     github.com/pulumi/pulumi/sdk/v3 up to v3.68.0; that is the newest upstream source
#     obtainable, so it is built from sdk/v3@v3.68.0 (reports v3.68.0). The engine
#     falls back gracefully for the RPCs this older host does not implement.
#   * pulumi-resource-kubernetes: github.com/pulumi/pulumi-kubernetes/provider/v4 has
#     no tagged version on the proxy (sdk/v4 tags up to v4.34.0 are there); its
#     @v/list holds exactly one pseudo-version, v4.0.0-20260115033456-f47bc2d6f199 (the day before the v4.25.0
#     release). Built from that with upstream's own main.go/generate.go; its sdk/v4
#     replace (=> ../sdk) is repeated as sdk/v4@v4.25.0, the nearest tagged sdk.
#     It reports its real version (the pseudo-version), so pulumi v3.274.1 prints
#     "resource plugin kubernetes is expected to have version >=4.34.2, but has
#     4.0.0-2026..." (pkg/host/host.go). That is a warning only, not a failure.
#   * pulumi-resource-tls / pulumi-resource-random: the Pulumi provider modules
#     (github.com/pulumi/pulumi-tls/provider/v5, pulumi-random/provider/v4) are not on
#     the proxy at any version. Everything they wrap is: the upstream Terraform
#     providers (hashicorp/terraform-provider-tls, terraform-providers/
#     terraform-provider-random at the newest pseudo-versions on the proxy, Aug 2026;
#     not checked against what pulumi-tls 5.6.1 / pulumi-random 4.21.2 pin), Pulumi's
#     terraform-plugin-sdk fork and pulumi-terraform-bridge v3.137.0. So the wrapper
#     here supplies the thin glue those repos contain (shim module, ProviderInfo with
#     the same resource tokens, main), generates the schema with the bridge's tfgen at
#     build time (--skip-docs --skip-examples: descriptions are not needed at run
#     time), and builds the provider. The resource/function tokens and every
#     resource's input and state property names were checked equal to the npm
#     @pulumi/tls 5.6.1 and @pulumi/random 4.21.2 SDKs. Not reproduced: upstream's
#     state-upgrade hooks for stacks created by much older provider versions, and docs.
#     They report 5.6.1 / 4.21.2 with semver build metadata naming what they really
#     are (e.g. 5.6.1+ztmesh.bridge3.137.0...); semver ignores build metadata when
#     comparing, so the engine's ">= requested version" check is satisfied.
#
# ---- How `pulumi` finds these plugins (no download) -------------------------------------
# Put the bin dir FIRST on PATH. pulumi (sdk/go/common/workspace/plugins.go,
# GetPluginPath) uses `pulumi-language-nodejs` and `pulumi-resource-<name>` found on PATH
# ("ambient" plugins) before looking in the plugin cache, whatever version the program
# asks for (each ambient provider use prints a "using pulumi-resource-<name> from
# $PATH" warning); bundled plugins such as the language host are also found next to
# the `pulumi` binary. Do NOT set PULUMI_IGNORE_AMBIENT_PLUGINS (true disables this lookup).
# Set PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true so a missing plugin is an error
# instead of a download attempt. The alternative, `pulumi plugin install resource
# <name> <version> --file <binary>` into $PULUMI_HOME/plugins (then optionally
# PULUMI_IGNORE_AMBIENT_PLUGINS=true), also works without a download and avoids the
# "from $PATH" warnings, but has to be repeated per PULUMI_HOME and per version the
# SDKs request, so the PATH route is the default. Both were checked with pulumi
# v3.274.1. Offline use also needs:
#   PULUMI_BACKEND_URL=file://<dir>  PULUMI_CONFIG_PASSPHRASE=...  PULUMI_SKIP_UPDATE_CHECK=true
set -euo pipefail

# ---- pinned versions --------------------------------------------------------------------
# What the project's npm SDKs pin (PULUMI_VERSION names the cache directory; the tls
# and random ones are the base of those providers' reported versions):
PULUMI_VERSION=3.270.0
KUBERNETES_PROVIDER_VERSION=4.34.2
TLS_PROVIDER_VERSION=5.6.1
RANDOM_PROVIDER_VERSION=4.21.2
# What is built (see above for why these differ):
PULUMI_PKG_VERSION=v3.274.1                  # github.com/pulumi/pulumi/pkg/v3 + sdk/v3
PULUMI_CLIPBOARD_FORK=v0.0.0-20241001131231-d02d263e614e  # pkg/go.mod: atotto/clipboard => tgummerer/clipboard
LANGHOST_SDK_VERSION=v3.68.0                 # github.com/pulumi/pulumi/sdk/v3 (contains nodejs/cmd/pulumi-language-nodejs)
LANGHOST_XTEXT_VERSION=v0.3.6                # sdk@v3.68.0 go.mod: golang.org/x/text => v0.3.6
K8S_PROVIDER_MODULE_VERSION=v4.0.0-20260115033456-f47bc2d6f199  # github.com/pulumi/pulumi-kubernetes/provider/v4
K8S_SDK_VERSION=v4.25.0                      # github.com/pulumi/pulumi-kubernetes/sdk/v4 (provider go.mod: => ../sdk)
TF_BRIDGE_VERSION=v3.137.0                   # github.com/pulumi/pulumi-terraform-bridge/v3
# (the bridged providers link the pulumi pkg/sdk the bridge requires, v3.256.0: bridge
#  v3.137.0 does not compile against pkg v3.274.1 - plugin.NewContext changed)
TF_PLUGIN_SDK_FORK=v2.0.0-20260318212141-5525259d096b  # github.com/pulumi/terraform-plugin-sdk/v2 (bridge go.mod replace)
TF_TLS_VERSION=v1.2.1-0.20260819085117-d044ca7c6f52     # github.com/hashicorp/terraform-provider-tls
TF_RANDOM_VERSION=v1.3.2-0.20260824155315-e1092b0cfc07  # github.com/terraform-providers/terraform-provider-random

# Version strings the binaries report (-ldflags -X ...Version=...).
CLI_REPORTED=$PULUMI_PKG_VERSION
LANGHOST_REPORTED=$LANGHOST_SDK_VERSION
K8S_REPORTED=${K8S_PROVIDER_MODULE_VERSION#v}
TLS_REPORTED="$TLS_PROVIDER_VERSION+ztmesh.bridge${TF_BRIDGE_VERSION#v}.tftls.${TF_TLS_VERSION##*-}"
RANDOM_REPORTED="$RANDOM_PROVIDER_VERSION+ztmesh.bridge${TF_BRIDGE_VERSION#v}.tfrandom.${TF_RANDOM_VERSION##*-}"

CACHE_ROOT=${ZTMESH_CACHE:-$HOME/.cache/zt-mesh}
DEST=$CACHE_ROOT/pulumi-$PULUMI_VERSION
BIN=$DEST/bin
SRC=$DEST/src

# stdout is reserved for the final bin-dir line.
exec 3>&1 1>&2

log() { printf '[build-pulumi] %s\n' "$*" >&2; }

# Each binary has a stamp next to it recording the recipe it was built from; a binary
# is reused only if the stamp matches (changing a version above rebuilds just that one).
recipe_cli="pkg=$PULUMI_PKG_VERSION clipboard=$PULUMI_CLIPBOARD_FORK reports=$CLI_REPORTED"
recipe_langhost="sdk=$LANGHOST_SDK_VERSION x/text=$LANGHOST_XTEXT_VERSION reports=$LANGHOST_REPORTED"
recipe_kubernetes="provider=$K8S_PROVIDER_MODULE_VERSION sdk=$K8S_SDK_VERSION reports=$K8S_REPORTED"
recipe_tls="bridge=$TF_BRIDGE_VERSION tf-tls=$TF_TLS_VERSION plugin-sdk=$TF_PLUGIN_SDK_FORK reports=$TLS_REPORTED"
recipe_random="bridge=$TF_BRIDGE_VERSION tf-random=$TF_RANDOM_VERSION plugin-sdk=$TF_PLUGIN_SDK_FORK reports=$RANDOM_REPORTED"

cached() { # name recipe
  [[ -x $BIN/$1 && -f $BIN/.$1.recipe && "$(cat "$BIN/.$1.recipe")" == "$2" ]]
}
all_cached() {
  cached pulumi "$recipe_cli" && cached pulumi-language-nodejs "$recipe_langhost" &&
    cached pulumi-resource-kubernetes "$recipe_kubernetes" &&
    cached pulumi-resource-tls "$recipe_tls" && cached pulumi-resource-random "$recipe_random"
}

if all_cached; then
  log "reusing $BIN (all five binaries present)"
  echo "$BIN" >&3
  exit 0
fi

GO=$(command -v go || true)
[[ -n $GO ]] || { [[ -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go; }
[[ -n $GO ]] || { log "go not found on PATH or at /usr/local/go/bin/go"; exit 1; }
mkdir -p "$BIN" "$SRC"

# Serialise concurrent runs (e.g. two CI jobs starting at once).
if command -v flock >/dev/null; then
  exec 9>"$DEST/.lock"
  flock 9
fi

# ---- Go environment -----------------------------------------------------------------------
# Checksums stay verified (GOSUMDB=sum.golang.org, the default). sum.golang.org itself
# does not resolve on this machine, but the go command asks the module proxy first for
# <GOPROXY>/sumdb/sum.golang.org/... and proxy.golang.org serves the checksum database
# there (checked: /sumdb/sum.golang.org/supported answers 200 and lookups work), so no
# GONOSUMDB/GOSUMDB=off is needed. Each wrapper's go.sum is also seeded from the upstream
# module's own go.sum, so those pins are checked too. Only on a machine that reaches
# neither would GOSUMDB=off be needed (verification then rests on the seeded go.sum).
export GOPROXY=${GOPROXY:-https://proxy.golang.org,direct}
export GOSUMDB=${GOSUMDB:-sum.golang.org}
# -mod=mod: the wrapper go.mod lists only the top-level requirements; let go fill in the
# rest (deterministic by MVS). Any user GOFLAGS are ignored on purpose.
export GOFLAGS="-mod=mod -buildvcs=false"
export GOWORK=off          # never pick up a go.work from a parent directory
export GOTOOLCHAIN=local   # never try to download another Go toolchain
export CGO_ENABLED=0       # static binaries as upstream releases them; no C toolchain needed
GO_LANG=$("$GO" env GOVERSION | sed 's/^go//')  # go directive for the wrappers

NICE=(nice -n 15)
TMP=$(mktemp -d "$DEST/tmp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

start_all=$SECONDS
log "go: $("$GO" version); GOPROXY=$GOPROXY GOSUMDB=$GOSUMDB"

# module_dir MODULE@VERSION -> prints the module's directory in the module cache.
module_dir() {
  local out
  # Outside any module (in $TMP), so the wrapper's -mod=mod does not apply.
  out=$(cd "$TMP" && GOFLAGS=-buildvcs=false "$GO" mod download -json "$1") || { log "go mod download $1 failed: $out"; return 1; }
  printf '%s\n' "$out" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}

# seed_sum WRAPPER_DIR MODULE@VERSION... : append the upstream modules' go.sum entries.
seed_sum() {
  local dir=$1 m d
  shift
  : >"$dir/go.sum"
  for m in "$@"; do
    d=$(module_dir "$m")
    [[ -f $d/go.sum ]] && cat "$d/go.sum" >>"$dir/go.sum"
  done
  sort -u -o "$dir/go.sum" "$dir/go.sum"
}

# go_build WRAPPER_DIR OUTPUT LDFLAGS PACKAGE
go_build() {
  (cd "$1" && "${NICE[@]}" "$GO" build -trimpath -ldflags "-s -w $3" -o "$2" "$4")
}

# install_bin NAME RECIPE BUILT_FILE : atomic move into place, then the stamp.
install_bin() {
  chmod 0755 "$3"
  mv -f "$3" "$BIN/$1"
  printf '%s\n' "$2" >"$BIN/.$1.tmp" && mv -f "$BIN/.$1.tmp" "$BIN/.$1.recipe"
}

# fresh_wrapper NAME -> recreates and prints $SRC/NAME
fresh_wrapper() {
  rm -rf "${SRC:?}/$1"
  mkdir -p "$SRC/$1"
  printf '%s\n' "$SRC/$1"
}

# ---- pulumi (CLI / engine) ------------------------------------------------------------------
build_cli() {
  local w
  w=$(fresh_wrapper pulumi)
  # pkg/go.mod: `replace sdk/v3 => ../sdk` (same tag: required at the same version
  # here) and `replace atotto/clipboard => tgummerer/clipboard` (repeated).
  cat >"$w/go.mod" <<EOF
module ztmesh.local/build/pulumi

go $GO_LANG

require (
	github.com/pulumi/pulumi/pkg/v3 $PULUMI_PKG_VERSION
	github.com/pulumi/pulumi/sdk/v3 $PULUMI_PKG_VERSION
)

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard $PULUMI_CLIPBOARD_FORK
EOF
  seed_sum "$w" "github.com/pulumi/pulumi/pkg/v3@$PULUMI_PKG_VERSION" "github.com/pulumi/pulumi/sdk/v3@$PULUMI_PKG_VERSION"
  go_build "$w" "$TMP/pulumi" \
    "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$CLI_REPORTED" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  install_bin pulumi "$recipe_cli" "$TMP/pulumi"
}

# ---- pulumi-language-nodejs -------------------------------------------------------------------
build_langhost() {
  local w
  w=$(fresh_wrapper pulumi-language-nodejs)
  cat >"$w/go.mod" <<EOF
module ztmesh.local/build/pulumi-language-nodejs

go $GO_LANG

require github.com/pulumi/pulumi/sdk/v3 $LANGHOST_SDK_VERSION

replace golang.org/x/text => golang.org/x/text $LANGHOST_XTEXT_VERSION
EOF
  seed_sum "$w" "github.com/pulumi/pulumi/sdk/v3@$LANGHOST_SDK_VERSION"
  go_build "$w" "$TMP/pulumi-language-nodejs" \
    "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$LANGHOST_REPORTED" \
    github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs
  install_bin pulumi-language-nodejs "$recipe_langhost" "$TMP/pulumi-language-nodejs"
}

# ---- pulumi-resource-kubernetes ------------------------------------------------------------------
build_kubernetes() {
  local w up cmd
  w=$(fresh_wrapper pulumi-resource-kubernetes)
  cat >"$w/go.mod" <<EOF
module ztmesh.local/build/pulumi-resource-kubernetes

go $GO_LANG

require (
	github.com/pulumi/pulumi-kubernetes/provider/v4 $K8S_PROVIDER_MODULE_VERSION
	github.com/pulumi/pulumi-kubernetes/sdk/v4 $K8S_SDK_VERSION
)
EOF
  seed_sum "$w" "github.com/pulumi/pulumi-kubernetes/provider/v4@$K8S_PROVIDER_MODULE_VERSION"
  up=$(module_dir "github.com/pulumi/pulumi-kubernetes/provider/v4@$K8S_PROVIDER_MODULE_VERSION")
  # Upstream's main.go embeds schema-embed.json / terraform-mapping-embed.json, which
  # its generate.go (//go:build ignore) derives from the committed schema.json and
  # terraform-mapping.json. Both are in the module zip; run them unchanged here.
  cmd=$w/cmd/pulumi-resource-kubernetes
  mkdir -p "$cmd"
  cp "$up/cmd/pulumi-resource-kubernetes/"{main.go,generate.go,schema.json,terraform-mapping.json} "$cmd/"
  chmod u+w "$cmd"/*
  (cd "$cmd" && VERSION=$K8S_REPORTED "${NICE[@]}" "$GO" run ./generate.go)
  go_build "$w" "$TMP/pulumi-resource-kubernetes" \
    "-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$K8S_REPORTED" \
    ./cmd/pulumi-resource-kubernetes
  install_bin pulumi-resource-kubernetes "$recipe_kubernetes" "$TMP/pulumi-resource-kubernetes"
}

# ---- bridged providers (tls, random) -----------------------------------------------------------
# write_bridged NAME TF_MODULE TF_VERSION INFO_GO : writes the wrapper module
#   ztmesh.local/build/pulumi-resource-NAME with
#   shim/                      module TF_MODULE/shim (a path under the Terraform provider's
#                              module path, so Go's internal rule lets it import
#                              TF_MODULE/internal/provider) exposing NewProvider();
#   info/info.go               the ProviderInfo (INFO_GO);
#   cmd/pulumi-tfgen-NAME      schema generator; cmd/pulumi-resource-NAME the provider.
write_bridged() {
  local name=$1 tfmod=$2 tfver=$3 info_go=$4 w
  w=$(fresh_wrapper "pulumi-resource-$name")
  mkdir -p "$w/shim" "$w/info" "$w/cmd/pulumi-tfgen-$name" "$w/cmd/pulumi-resource-$name"
  cat >"$w/go.mod" <<EOF
module ztmesh.local/build/pulumi-resource-$name

go $GO_LANG

require (
	$tfmod $tfver
	$tfmod/shim v0.0.0
	github.com/pulumi/pulumi-terraform-bridge/v3 $TF_BRIDGE_VERSION
)

replace (
	$tfmod/shim => ./shim
	github.com/hashicorp/terraform-plugin-sdk/v2 => github.com/pulumi/terraform-plugin-sdk/v2 $TF_PLUGIN_SDK_FORK
	github.com/atotto/clipboard => github.com/tgummerer/clipboard $PULUMI_CLIPBOARD_FORK
)
EOF
  cat >"$w/shim/go.mod" <<EOF
module $tfmod/shim

go $GO_LANG

require $tfmod $tfver
EOF
  cat >"$w/shim/shim.go" <<EOF
// Package shim exposes the Terraform provider's internal constructor to the wrapper.
package shim

import (
	"github.com/hashicorp/terraform-plugin-framework/provider"

	tfprovider "$tfmod/internal/provider"
)

func NewProvider() provider.Provider { return tfprovider.New() }
EOF
  printf '%s\n' "$info_go" >"$w/info/info.go"
  cat >"$w/cmd/pulumi-tfgen-$name/main.go" <<EOF
package main

import (
	pftfgen "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"

	"ztmesh.local/build/pulumi-resource-$name/info"
)

func main() { pftfgen.Main("$name", info.Provider([]byte("{}"))) }
EOF
  cat >"$w/cmd/pulumi-resource-$name/main.go" <<EOF
package main

import (
	"context"
	_ "embed"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"

	"ztmesh.local/build/pulumi-resource-$name/info"
)

//go:embed schema.json
var schema []byte

//go:embed bridge-metadata.json
var bridgeMetadata []byte

func main() {
	pftfbridge.Main(context.Background(), "$name", info.Provider(bridgeMetadata),
		pftfbridge.ProviderMetadata{PackageSchema: schema, BridgeMetadata: bridgeMetadata})
}
EOF
  seed_sum "$w" "github.com/pulumi/pulumi-terraform-bridge/v3@$TF_BRIDGE_VERSION" "$tfmod@$tfver"
  printf '%s\n' "$w"
}

# build_bridged NAME RECIPE REPORTED : tfgen schema, then the provider.
build_bridged() {
  local name=$1 recipe=$2 reported=$3 w=$SRC/pulumi-resource-$1 ld
  ld="-X ztmesh.local/build/pulumi-resource-$name/info.Version=$reported"
  go_build "$w" "$TMP/pulumi-tfgen-$name" "$ld" "./cmd/pulumi-tfgen-$name"
  (cd "$w" && "${NICE[@]}" "$TMP/pulumi-tfgen-$name" schema --skip-docs --skip-examples \
    --out "cmd/pulumi-resource-$name" >&2)
  go_build "$w" "$TMP/pulumi-resource-$name" "$ld" "./cmd/pulumi-resource-$name"
  install_bin "pulumi-resource-$name" "$recipe" "$TMP/pulumi-resource-$name"
}

TLS_INFO_GO=$(cat <<'EOF'
// Package info is the ProviderInfo for the Pulumi TLS provider: the upstream Terraform
// TLS provider (plugin framework) bridged with the same tokens as @pulumi/tls.
package info

import (
	"github.com/hashicorp/terraform-provider-tls/shim"
	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
)

// Version is set at link time.
var Version string

func Provider(metadata []byte) tfbridge.ProviderInfo {
	p := tfbridge.ProviderInfo{
		P:            pftfbridge.ShimProvider(shim.NewProvider()),
		Name:         "tls",
		Version:      Version,
		GitHubOrg:    "hashicorp",
		Repository:   "https://github.com/pulumi/pulumi-tls",
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
		Resources: map[string]*tfbridge.ResourceInfo{
			"tls_cert_request":        {Tok: "tls:index/certRequest:CertRequest"},
			"tls_locally_signed_cert": {Tok: "tls:index/locallySignedCert:LocallySignedCert"},
			"tls_private_key":         {Tok: "tls:index/privateKey:PrivateKey"},
			"tls_self_signed_cert":    {Tok: "tls:index/selfSignedCert:SelfSignedCert"},
		},
		DataSources: map[string]*tfbridge.DataSourceInfo{
			"tls_certificate": {Tok: "tls:index/getCertificate:getCertificate"},
			"tls_public_key":  {Tok: "tls:index/getPublicKey:getPublicKey"},
		},
		EnableZeroDefaultSchemaVersion: true,
	}
	// Anything upstream added beyond the above gets the standard tls:index/... token.
	p.MustComputeTokens(tokens.SingleModule("tls_", "index", tokens.MakeStandard("tls")))
	return p
}
EOF
)

RANDOM_INFO_GO=$(cat <<'EOF'
// Package info is the ProviderInfo for the Pulumi random provider: the upstream
// Terraform random provider (plugin framework) bridged with the same tokens as
// @pulumi/random (random:index/randomId:RandomId, ...).
package info

import (
	"context"
	"errors"

	"github.com/terraform-providers/terraform-provider-random/shim"
	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Version is set at link time.
var Version string

func Provider(metadata []byte) tfbridge.ProviderInfo {
	p := tfbridge.ProviderInfo{
		P:            pftfbridge.ShimProvider(shim.NewProvider()),
		Name:         "random",
		Version:      Version,
		GitHubOrg:    "hashicorp",
		Repository:   "https://github.com/pulumi/pulumi-random",
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
		Resources: map[string]*tfbridge.ResourceInfo{
			// random_bytes has no "id" attribute; its id is the base64 value.
			"random_bytes": {ComputeID: idFromBase64},
		},
		EnableAccurateBridgePreview: true,
		EnableRawStateDelta:         true,
	}
	p.MustComputeTokens(tokens.SingleModule("random_", "index",
		func(module, name string) (string, error) {
			return tokens.MakeStandard("random")(module, "Random"+name)
		}))
	return p
}

func idFromBase64(_ context.Context, state resource.PropertyMap) (resource.ID, error) {
	v, ok := state["base64"]
	if !ok {
		return "", errors.New("random_bytes: no base64 property in state")
	}
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	if !v.IsString() {
		return "", errors.New("random_bytes: base64 is not a string")
	}
	return resource.ID(v.StringValue()), nil
}
EOF
)

build_tls() {
  write_bridged tls github.com/hashicorp/terraform-provider-tls "$TF_TLS_VERSION" "$TLS_INFO_GO" >/dev/null
  build_bridged tls "$recipe_tls" "$TLS_REPORTED"
}
build_random() {
  write_bridged random github.com/terraform-providers/terraform-provider-random "$TF_RANDOM_VERSION" "$RANDOM_INFO_GO" >/dev/null
  build_bridged random "$recipe_random" "$RANDOM_REPORTED"
}

# ---- main ---------------------------------------------------------------------------------------
# One at a time (2 cores, shared machine); go build already uses every core it may.
step() { # name recipe function
  if cached "$1" "$2"; then
    log "reusing $BIN/$1"
    return
  fi
  local t=$SECONDS
  log "building $1 ($2)"
  "$3"
  log "built $1 in $((SECONDS - t))s ($(du -h "$BIN/$1" | cut -f1))"
}
step pulumi "$recipe_cli" build_cli
step pulumi-language-nodejs "$recipe_langhost" build_langhost
step pulumi-resource-kubernetes "$recipe_kubernetes" build_kubernetes
step pulumi-resource-tls "$recipe_tls" build_tls
step pulumi-resource-random "$recipe_random" build_random

log "done in $((SECONDS - start_all))s"
echo "$BIN" >&3
