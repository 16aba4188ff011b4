#!/usr/bin/env bash
# Downloads (here, on Debian 12 with apt) the .deb files of recmodel's build dependencies other
# than libtorch, with every library they need at run time that a machine holding only PyTorch,
# a C++ compiler and the C library may lack, into bench/gpu/debs/. bench/gpu/build.sh unpacks them
# with `dpkg -x` into a prefix on the GPU machine, which has no network. Also copies the shared
# BERT vocabularies (../shared/data/vocab, outside the repository) into bench/gpu/vocab/ so that the
# device call can carry them. Both folders are ignored by git; name them in the device call's carry.
#
#   bench/gpu/fetch-debs.sh [--max-mib 50]
#
# Prints the packages and the total size; fails when the .debs are over --max-mib (the whole tree
# that travels to the device machine must stay under 64 MiB).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="$(cd "$here/../.." && pwd)"
max_mib=50
while (( $# )); do
  case "$1" in
    --max-mib) max_mib=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "fetch-debs.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v apt-get >/dev/null && command -v apt-cache >/dev/null ||
  { echo "fetch-debs.sh: needs apt-get and apt-cache (run it on Debian 12)" >&2; exit 1; }

# What CMakeLists.txt finds, minus libtorch (PyTorch's own libtorch is used there).
roots=(
  libcli11-dev libfmt-dev nlohmann-json3-dev libutf8proc-dev libtomlplusplus-dev
  libssl-dev libsqlite3-dev libcurl4-openssl-dev libonnx-dev libprotobuf-dev doctest-dev
)
# Present on any glibc machine that runs PyTorch and compiles C++ (the sonames are the same on
# Debian 12 and Ubuntu 22.04/24.04); carrying them would shadow the machine's newer copies, and an
# older libstdc++ would break libtorch. Their dependencies are not followed.
skip=(
  libc6 libc6-dev libgcc-s1 libstdc++6 gcc-12-base zlib1g libzstd1 liblzma5 libbz2-1.0 libcrypt1
  debconf perl-base dpkg libselinux1 libpcre2-8-0 libgmp10 libtinfo6 libcap2 libacl1 libattr1
)

is_skipped() {
  local p
  for p in "${skip[@]}"; do [[ "$p" == "$1" ]] && return 0; done
  return 1
}

# The Depends/PreDepends of one package: the first of each group of alternatives, no virtual ones.
direct_depends() {
  apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances "$1" |
    awk '
      /^ *\|?(Pre)?Depends:/ {
        alternative = ($1 ~ /^\|/)
        name = $2
        if (!in_group && name !~ /^</) print name
        in_group = alternative
      }'
}

# Breadth-first closure of the roots' dependencies.
declare -A seen=()
queue=("${roots[@]}")
packages=()
while (( ${#queue[@]} )); do
  pkg=${queue[0]}
  queue=("${queue[@]:1}")
  [[ -n "${seen[$pkg]:-}" ]] && continue
  seen[$pkg]=1
  is_skipped "$pkg" && continue
  apt-cache show "$pkg" >/dev/null 2>&1 ||
    { echo "fetch-debs.sh: apt knows no package $pkg (run apt-get update)" >&2; exit 1; }
  packages+=("$pkg")
  while read -r dep; do
    [[ -n "$dep" && -z "${seen[$dep]:-}" ]] && queue+=("$dep")
  done < <(direct_depends "$pkg")
done

debs="$here/debs"
rm -rf "$debs.tmp"
mkdir -p "$debs.tmp"
echo "fetch-debs: downloading ${#packages[@]} packages: ${packages[*]}" >&2
(cd "$debs.tmp" && apt-get download -q "${packages[@]}" >/dev/null)
rm -rf "$debs"
mv "$debs.tmp" "$debs"

# The shared vocabularies, for the tokenizer parity check and the base preset (30,522 tokens).
shared_vocab="${RECMODEL_SHARED_DATA:-$source_dir/../shared/data}/vocab"
if [[ -d "$shared_vocab" ]]; then
  rm -rf "$here/vocab"
  mkdir -p "$here/vocab"
  cp "$shared_vocab"/*.txt "$here/vocab/"
  rm -f "$here/vocab"/LICENSE*
else
  echo "fetch-debs: no shared vocabularies at $shared_vocab; the GPU scripts then build their own" >&2
fi

bytes=$(du -cb "$debs"/*.deb | tail -1 | cut -f1)
vocab_bytes=0
[[ -d "$here/vocab" ]] && vocab_bytes=$(du -cb "$here/vocab" | tail -1 | cut -f1)
count=$(ls "$debs"/*.deb | wc -l)
printf 'fetch-debs: %d .deb files, %.1f MiB in %s\n' "$count" "$(echo "$bytes / 1048576" | bc -l)" "$debs"
printf 'fetch-debs: vocabularies %.1f MiB in %s\n' "$(echo "$vocab_bytes / 1048576" | bc -l)" "$here/vocab"
if (( bytes > max_mib * 1048576 )); then
  echo "fetch-debs.sh: the .debs are over $max_mib MiB; the tree carried to the device machine must stay under 64 MiB" >&2
  exit 1
fi
