#!/usr/bin/env bash
# Interop with Debian's awscli (/usr/bin/aws) on a real Ceph RADOS Gateway: what recmodel pushes,
# `aws s3 cp` downloads with the same bytes; what `aws` uploads into the layout (a multipart
# upload with aws's own part size included), recmodel pulls and verifies - and a corrupt one it
# refuses with exit 6.
# Env (set by CTest): RECMODEL (the binary), RECMODEL_SOURCE_DIR.
set -euo pipefail
src=${RECMODEL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
recmodel=${RECMODEL:?RECMODEL must name the recmodel binary}
if [[ ! -x /usr/bin/aws || ! -x /usr/bin/radosgw ]]; then
  echo "FAILED: needs /usr/bin/aws and radosgw (scripts/install-deps.sh installs them)" >&2
  exit 1
fi
work=$(mktemp -d /tmp/recmodel-awscli.XXXXXX)
cleanup() { "$src/tests/storage/rgw_fixture.sh" stop "$work/cluster" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
eval "$(OWNER_PID=$$ "$src/tests/storage/rgw_fixture.sh" start "$work/cluster")"
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null CI=1
export RECMODEL_CONFIG="$work/config.toml" RECMODEL_REGISTRY="$work/registry.db"
aws=(/usr/bin/aws --endpoint-url "$RGW_ENDPOINT" --only-show-errors)
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$work/model"
echo '{"num_labels": 2}' > "$work/model/config.json"
head -c 3000000 /dev/urandom > "$work/model/model.safetensors"
"$recmodel" remote add rgw s3://interop/team --endpoint "$RGW_ENDPOINT" --create-bucket >/dev/null

# 1. recmodel pushes (multipart), aws downloads the same bytes.
"$recmodel" push "$work/model" --to rgw --name intent --version 1 --multipart-threshold 1MiB --part-size 256KiB >/dev/null
sha=$(sha256sum "$work/model/model.safetensors" | cut -d' ' -f1)
"${aws[@]}" s3 cp "s3://interop/team/objects/sha256/${sha:0:2}/${sha:2}" "$work/from-aws.bin"
cmp "$work/model/model.safetensors" "$work/from-aws.bin" || fail "aws s3 cp got other bytes than recmodel pushed"
"${aws[@]}" s3 cp s3://interop/team/models/intent/1.json "$work/manifest.json"
/usr/bin/python3 - "$work/manifest.json" "$sha" <<'PY' || fail "the manifest aws downloaded is not what recmodel wrote"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["format"] == "recmodel-manifest" and m["name"] == "intent" and m["version"] == "1", m
assert {f["path"]: f["sha256"] for f in m["files"]}["model.safetensors"] == sys.argv[2]
PY
echo "ok: recmodel push -> aws s3 cp"

# 2. aws uploads into the layout (9 MB: multipart with aws's 8 MiB parts), recmodel pulls and verifies.
head -c 9000000 /dev/urandom > "$work/big.bin"
echo hello > "$work/readme.txt"
big=$(sha256sum "$work/big.bin" | cut -d' ' -f1)
small=$(sha256sum "$work/readme.txt" | cut -d' ' -f1)
"${aws[@]}" s3 cp "$work/big.bin" "s3://interop/team/objects/sha256/${big:0:2}/${big:2}"
"${aws[@]}" s3 cp "$work/readme.txt" "s3://interop/team/objects/sha256/${small:0:2}/${small:2}"
cat > "$work/aws-manifest.json" <<JSON
{"format": "recmodel-manifest", "format_version": 1, "name": "byaws", "version": "1", "classification": "",
 "created": "2026-12-01T00:00:00Z", "total_size": 9000006,
 "files": [{"path": "weights/big.bin", "size": 9000000, "sha256": "$big"},
           {"path": "README.txt", "size": 6, "sha256": "$small"}]}
JSON
"${aws[@]}" s3 cp "$work/aws-manifest.json" s3://interop/team/models/byaws/1.json
"$recmodel" pull byaws/1 --from rgw --out "$work/pulled" --part-size 1MiB >/dev/null
cmp "$work/big.bin" "$work/pulled/weights/big.bin" || fail "recmodel pulled other bytes than aws uploaded"
cmp "$work/readme.txt" "$work/pulled/README.txt" || fail "README.txt differs"
"$recmodel" ls rgw | grep -q "byaws/1" || fail "recmodel ls does not list what aws uploaded"
echo "ok: aws s3 cp -> recmodel pull (verified)"

# 3. aws overwrites an object with other bytes: recmodel refuses it.
head -c 9000000 /dev/urandom > "$work/evil.bin"
"${aws[@]}" s3 cp "$work/evil.bin" "s3://interop/team/objects/sha256/${big:0:2}/${big:2}"
set +e
"$recmodel" pull byaws/1 --from rgw --out "$work/corrupt" 2> "$work/err.txt"
code=$?
set -e
[[ $code -eq 6 ]] || fail "a corrupt object gave exit $code, not 6: $(cat "$work/err.txt")"
grep -q "checksum mismatch" "$work/err.txt" || fail "no 'checksum mismatch' in: $(cat "$work/err.txt")"
[[ ! -e "$work/corrupt" ]] || fail "a corrupt pull left $work/corrupt behind"
echo "ok: corrupt object -> exit 6, nothing written"
