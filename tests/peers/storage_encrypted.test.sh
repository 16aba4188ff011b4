#!/usr/bin/env bash
# An encrypted remote on a real Ceph RADOS Gateway, looked at from outside with Debian's awscli
# (/usr/bin/aws) and decrypted by an independent reader (tests/peers/recmodel_crypt.py, Debian
# python3-cryptography): a push round-trips (multipart on the encrypted remote); nothing the bucket
# holds or lists names the model, its files or their hashes, or carries their bytes; the Python
# reader decrypts what `aws s3 cp --recursive` downloads to the pushed bytes; a flipped bit, a cut
# object and two swapped chunks are refused with exit 6 "cannot decrypt" and the wrong key with
# exit 6 "(wrong key?)", leaving nothing at --out; sync from a private plain remote lands
# ciphertext; rotate-key re-seals the keyring only, adding a key generation (the new key opens
# everything, the old one nothing, the old keyring nothing pushed after); keygen writes mode 0600
# and never overwrites; a key file others can read is refused.
# Env (set by CTest): RECMODEL (the binary), RECMODEL_SOURCE_DIR.
set -euo pipefail
src=${RECMODEL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
recmodel=${RECMODEL:?RECMODEL must name the recmodel binary}
if [[ ! -x /usr/bin/aws || ! -x /usr/bin/radosgw ]]; then
  echo "FAILED: needs /usr/bin/aws and radosgw (scripts/install-deps.sh installs them)" >&2
  exit 1
fi
if ! /usr/bin/python3 -c 'import cryptography.hazmat.primitives.ciphers.aead' 2>/dev/null; then
  echo "FAILED: needs Debian's python3-cryptography (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
work=$(mktemp -d /tmp/recmodel-encrypted.XXXXXX)
cleanup() { "$src/tests/storage/rgw_fixture.sh" stop "$work/cluster" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
eval "$(OWNER_PID=$$ "$src/tests/storage/rgw_fixture.sh" start "$work/cluster")"
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null CI=1
export RECMODEL_CONFIG="$work/config.toml" RECMODEL_REGISTRY="$work/registry.db"
unset RECMODEL_ENCRYPTION_KEY_FILE
aws=(/usr/bin/aws --endpoint-url "$RGW_ENDPOINT" --only-show-errors)
s3api=(/usr/bin/aws --endpoint-url "$RGW_ENDPOINT" s3api)
s3ls=(/usr/bin/aws --endpoint-url "$RGW_ENDPOINT" s3 ls)
crypt=(/usr/bin/python3 "$src/tests/peers/recmodel_crypt.py")
small=(--multipart-threshold 1MiB --part-size 256KiB)  # multipart / ranged on a 3 MB file
fail() { echo "FAIL: $*" >&2; exit 1; }

# refused CODE TEXT WHAT COMMAND...: COMMAND exits CODE and says TEXT on stderr.
refused() {
  local code=$1 text=$2 what=$3 got
  shift 3
  set +e
  "$@" >"$work/stdout.txt" 2>"$work/stderr.txt"
  got=$?
  set -e
  [[ $got -eq $code ]] || fail "$what: exit $got, not $code: $(cat "$work/stderr.txt")"
  grep -qF -- "$text" "$work/stderr.txt" || fail "$what: no '$text' in: $(cat "$work/stderr.txt")"
}
# pull_refused CODE TEXT WHAT PULL-ARGS...: the pull is refused and leaves nothing at --out or
# beside it (where a staging directory would be).
pull_refused() {
  local code=$1 text=$2 what=$3
  shift 3
  rm -rf "$work/outs" && mkdir "$work/outs"
  refused "$code" "$text" "$what" "$recmodel" pull "$@" --out "$work/outs/model"
  [[ -z "$(ls -A "$work/outs")" ]] || fail "$what: left $(ls -A "$work/outs") at or beside --out"
}
same_tree() {  # same_tree A B WHAT
  diff -r "$1" "$2" >/dev/null || fail "$3: $(diff -rq "$1" "$2" | head -3)"
}

# Two models with markers found nowhere else; the big files move in parts.
marker1=recmodel-marker-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
marker2=recmodel-marker-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
mkdir -p "$work/model1" "$work/model2" "$work/keys"
printf '{"num_labels": 2, "comment": "%s"}\n' "$marker1" > "$work/model1/config.json"
head -c 3000000 /dev/urandom > "$work/model1/model.safetensors"
printf '{"num_labels": 3, "comment": "%s"}\n' "$marker2" > "$work/model2/config.json"
head -c 2000000 /dev/urandom > "$work/model2/model.safetensors"

# 1. keygen: mode 0600 whatever the umask, 64 hex digits; an existing file is never replaced.
(umask 000 && "$recmodel" remote keygen "$work/keys/k1" >/dev/null)
[[ $(stat -c %a "$work/keys/k1") == 600 ]] || fail "keygen wrote mode $(stat -c %a "$work/keys/k1"), not 600"
grep -qxE '[0-9a-f]{64}' "$work/keys/k1" || fail "keygen did not write 64 hex digits"
before=$(sha256sum < "$work/keys/k1")
refused 2 "already exists" "keygen over an existing file" "$recmodel" remote keygen "$work/keys/k1"
[[ $(sha256sum < "$work/keys/k1") == "$before" ]] || fail "keygen changed an existing key file"
"$recmodel" remote keygen "$work/keys/k2" >/dev/null
"$recmodel" remote keygen "$work/keys/wrong" >/dev/null
echo "ok: keygen writes mode 0600 and refuses to overwrite (exit 2)"

# 2. A key file others can read is refused before anything is made.
cp "$work/keys/k1" "$work/keys/shared" && chmod 644 "$work/keys/shared"
refused 2 "chmod 600" "remote add --encrypt with a shared key file" \
  "$recmodel" remote add pub s3://sealed/team --endpoint "$RGW_ENDPOINT" --create-bucket --public --encrypt \
  --key-file "$work/keys/shared"
if "${s3ls[@]}" s3://sealed/team/recmodel-keyring >/dev/null 2>&1; then fail "a refused remote add wrote a keyring"; fi

"$recmodel" remote add priv s3://plain/team --endpoint "$RGW_ENDPOINT" --create-bucket --private >/dev/null 2>&1
"$recmodel" remote add pub s3://sealed/team --endpoint "$RGW_ENDPOINT" --create-bucket --public --encrypt \
  --key-file "$work/keys/k1" >/dev/null 2>&1
[[ $("${s3api[@]}" head-object --bucket sealed --key team/recmodel-keyring --query ContentLength) == 128 ]] ||
  fail "remote add --encrypt did not write a 128-byte keyring"

# 3. Round trip: push (multipart), pull whole and in ranges, ls.
"$recmodel" push "$work/model1" --to pub --name intent --version 1 "${small[@]}" >/dev/null
"$recmodel" pull intent/1 --from pub --out "$work/pulled-whole" >/dev/null
same_tree "$work/model1" "$work/pulled-whole" "pull (whole objects) differs from what was pushed"
"$recmodel" pull intent/1 --from pub --out "$work/pulled-ranged" "${small[@]}" >/dev/null
same_tree "$work/model1" "$work/pulled-ranged" "pull (ranged parts) differs from what was pushed"
"$recmodel" ls pub --key-file "$work/keys/k1" | grep -q "intent/1" || fail "ls pub does not list intent/1"
# The big object went up in 12 parts of 256 KiB (sealed: + 16 bytes per 64 KiB, + the header).
sha1=$(sha256sum "$work/model1/model.safetensors" | cut -d' ' -f1)
"${s3api[@]}" list-objects-v2 --bucket sealed --prefix team/ --query 'Contents[].[Key,Size,ETag]' --output text \
  > "$work/objects.txt"
read -r big_key big_size big_etag < <(sort -k2,2n "$work/objects.txt" | tail -n 1)
[[ $big_size -eq $((80 + 3000000 + 46 * 16)) ]] || fail "the big object holds $big_size bytes, not 3000816"
[[ $big_etag == *-12\" ]] || fail "the big object was not a 12-part multipart upload (ETag $big_etag)"
echo "ok: encrypted push (multipart) -> pull whole and ranged, ls"

# 4. What the bucket shows: a keyring, e/XX/<62 hex> objects and n/<64 hex> name records only,
#    and none of the names, hashes, markers or bytes of the model (aws s3 ls and aws s3 cp).
"${s3ls[@]}" --recursive s3://sealed/team/ > "$work/listing.txt"
sed -E 's/^.* team\///' "$work/listing.txt" | sort > "$work/keys.txt"
grep -vxE 'recmodel-keyring|e/[0-9a-f]{2}/[0-9a-f]{62}|n/[0-9a-f]{64}' "$work/keys.txt" &&
  fail "unexpected names in the bucket (above)"
[[ $(grep -c '^e/' "$work/keys.txt") -eq 3 && $(grep -c '^n/' "$work/keys.txt") -eq 1 ]] ||
  fail "expected 3 objects (2 files, 1 manifest) and 1 name record: $(cat "$work/keys.txt")"
mkdir "$work/bucket"
"${aws[@]}" s3 cp --recursive s3://sealed/team/ "$work/bucket"
sha_cfg=$(sha256sum "$work/model1/config.json" | cut -d' ' -f1)
for needle in "$marker1" intent models objects safetensors recmodel-manifest num_labels \
  "$sha1" "${sha1:2}" "${sha1:0:16}" "$sha_cfg" "${sha_cfg:2}" "${sha_cfg:0:16}"; do
  if grep -qF -- "$needle" "$work/listing.txt"; then fail "aws s3 ls shows '$needle'"; fi
  if grep -rqaF -- "$needle" "$work/bucket"; then fail "the bucket's bytes hold '$needle'"; fi
done
/usr/bin/python3 - "$work/model1/model.safetensors" "$work/bucket" <<'PY' || fail "the bucket holds plaintext bytes"
import os, sys
plain = open(sys.argv[1], "rb").read()
stored = b"".join(open(os.path.join(d, f), "rb").read() for d, _, fs in os.walk(sys.argv[2]) for f in fs)
for at in range(0, len(plain) - 32, 99991):  # 31 windows of 32 bytes across the file
    assert plain[at:at + 32] not in stored, at
PY
# The same greps find the marker and the hashes on the plain remote: they would catch a leak.
"$recmodel" push "$work/model1" --to priv --name intent --version 1 >/dev/null
mkdir "$work/plain"
"${aws[@]}" s3 cp --recursive s3://plain/team/ "$work/plain"
grep -rqaF -- "$marker1" "$work/plain" && grep -rqaF -- "$sha1" "$work/plain" ||
  fail "the control: grep does not find the marker and hash on the plain remote"
echo "ok: aws s3 ls / cp show ciphertext under HMAC names only (no marker, name or hash)"

# 5. The independent reader (python3-cryptography) decrypts the downloaded prefix.
"${crypt[@]}" pull "$work/bucket" "$work/keys/k1" intent 1 "$work/py1" >/dev/null ||
  fail "recmodel_crypt.py cannot decrypt what aws downloaded"
cmp "$work/model1/model.safetensors" "$work/py1/model.safetensors" || fail "Python decrypted other bytes"
cmp "$work/model1/config.json" "$work/py1/config.json" || fail "Python decrypted another config.json"
echo "ok: recmodel_crypt.py (python3-cryptography) decrypts the aws download to the pushed bytes"

# 6. Tampering with the big object through aws: each refused with exit 6, nothing written.
"${aws[@]}" s3 cp "s3://sealed/$big_key" "$work/original.bin"
tamper() {  # tamper flip|cut|swap: uploads the changed object in place of the original
  /usr/bin/python3 - "$1" "$work/original.bin" "$work/tampered.bin" <<'PY'
import sys
how, data = sys.argv[1], bytearray(open(sys.argv[2], "rb").read())
HEADER, SEALED = 80, 65536 + 16
if how == "flip":
    data[HEADER + SEALED + 1000] ^= 0x04        # a bit of chunk 1's ciphertext
elif how == "cut":
    del data[-100:]                             # the last 100 bytes
elif how == "swap":                             # chunks 0 and 1 trade places
    c0, c1 = data[HEADER:HEADER + SEALED], data[HEADER + SEALED:HEADER + 2 * SEALED]
    data[HEADER:HEADER + 2 * SEALED] = c1 + c0
open(sys.argv[3], "wb").write(data)
PY
  "${aws[@]}" s3 cp "$work/tampered.bin" "s3://sealed/$big_key"
}
declare -A why=([flip]="chunk 1 does not authenticate" [cut]="(cut short or padded)"
  [swap]="chunk 0 does not authenticate")
for how in flip cut swap; do
  tamper "$how"
  for mode in whole ranged; do
    args=(intent/1 --from pub)
    [[ $mode == ranged ]] && args+=("${small[@]}")
    pull_refused 6 "cannot decrypt" "a $how object ($mode)" "${args[@]}"
    grep -qF -- "${why[$how]}" "$work/stderr.txt" || fail "a $how object ($mode): not '${why[$how]}': $(cat "$work/stderr.txt")"
    [[ -n ${SHOW_ERRORS:-} ]] && sed "s/^/  $how $mode: /" "$work/stderr.txt"
  done
  echo "ok: $how -> exit 6 'cannot decrypt ... ${why[$how]}', nothing at --out (whole and ranged pull)"
done
"${aws[@]}" s3 cp "$work/original.bin" "s3://sealed/$big_key"
"$recmodel" pull intent/1 --from pub --out "$work/pulled-again" >/dev/null
same_tree "$work/model1" "$work/pulled-again" "the restored object"

# 7. The wrong key: exit 6 "(wrong key?)", nothing written; ls refuses it too.
pull_refused 6 "(wrong key?)" "pull with the wrong key" intent/1 --from pub --key-file "$work/keys/wrong"
refused 6 "(wrong key?)" "ls with the wrong key" "$recmodel" ls pub --key-file "$work/keys/wrong"
if "${crypt[@]}" pull "$work/bucket" "$work/keys/wrong" intent 1 "$work/py-wrong" >/dev/null 2>&1; then
  fail "Python opened the keyring with the wrong key"
fi
pull_refused 2 "chmod 600" "pull with a key file others can read" intent/1 --from pub --key-file "$work/keys/shared"
echo "ok: wrong key -> exit 6 '(wrong key?)'; a key file others can read -> exit 2; nothing at --out"

# 8. sync from the private plain remote to the encrypted public one: ciphertext lands.
"$recmodel" push "$work/model2" --to priv --name intent --version 2 >/dev/null
"$recmodel" sync intent/2 --from priv --to pub "${small[@]}" >/dev/null
"$recmodel" pull intent/2 --from pub --out "$work/pulled2" >/dev/null
same_tree "$work/model2" "$work/pulled2" "pull of the synced version"
rm -rf "$work/bucket" && mkdir "$work/bucket"
"${aws[@]}" s3 cp --recursive s3://sealed/team/ "$work/bucket"
sha2=$(sha256sum "$work/model2/model.safetensors" | cut -d' ' -f1)
for needle in "$marker2" "$sha2" "${sha2:2}" recmodel-manifest; do
  if grep -rqaF -- "$needle" "$work/bucket"; then fail "after sync the bucket holds '$needle'"; fi
done
"${crypt[@]}" pull "$work/bucket" "$work/keys/k1" intent 2 "$work/py2" >/dev/null ||
  fail "recmodel_crypt.py cannot decrypt the synced version"
same_tree "$work/model2" "$work/py2" "Python's decryption of the synced version"
echo "ok: sync private plain -> public encrypted lands ciphertext; Python decrypts it to the original bytes"

# 9. rotate-key: the keyring alone is re-sealed, with a new key generation; the new key opens
# everything, the old one nothing; what is pushed afterwards the old keyring cannot open either.
"${aws[@]}" s3 cp s3://sealed/team/recmodel-keyring "$work/old-keyring"
"${s3api[@]}" list-objects-v2 --bucket sealed --prefix team/ --query 'Contents[].[Key,Size,ETag]' --output text |
  grep -v recmodel-keyring > "$work/before.txt"
"$recmodel" remote rotate-key pub --new-key-file "$work/keys/k2" >/dev/null
"${s3api[@]}" list-objects-v2 --bucket sealed --prefix team/ --query 'Contents[].[Key,Size,ETag]' --output text |
  grep -v recmodel-keyring > "$work/after.txt"
cmp -s "$work/before.txt" "$work/after.txt" || fail "rotate-key changed objects other than the keyring"
for version in 1 2; do
  "$recmodel" pull "intent/$version" --from pub --key-file "$work/keys/k2" --out "$work/rotated$version" >/dev/null
  same_tree "$work/model$version" "$work/rotated$version" "pull of intent/$version with the new key"
done
"$recmodel" pull intent/1 --from pub --out "$work/rotated-config" >/dev/null  # the config names k2 now
[[ $("$recmodel" ls pub --key-file "$work/keys/k2" | grep -c "intent/") -eq 2 ]] || fail "ls with the new key"
pull_refused 6 "(wrong key?)" "pull with the old key" intent/1 --from pub --key-file "$work/keys/k1"
RECMODEL_ENCRYPTION_KEY_FILE="$work/keys/k1" pull_refused 6 "(wrong key?)" \
  "pull with the old key from RECMODEL_ENCRYPTION_KEY_FILE" intent/2 --from pub
refused 6 "(wrong key?)" "ls with the old key" "$recmodel" ls pub --key-file "$work/keys/k1"
"${aws[@]}" s3 cp s3://sealed/team/recmodel-keyring "$work/bucket/recmodel-keyring"
"${crypt[@]}" pull "$work/bucket" "$work/keys/k2" intent 1 "$work/py-rotated" >/dev/null ||
  fail "recmodel_crypt.py cannot open the rotated keyring with the new key"
same_tree "$work/model1" "$work/py-rotated" "Python's decryption with the new key"
if "${crypt[@]}" pull "$work/bucket" "$work/keys/k1" intent 1 "$work/py-old" >/dev/null 2>&1; then
  fail "Python opened the rotated keyring with the old key"
fi
[[ $("${s3api[@]}" head-object --bucket sealed --key team/recmodel-keyring --query ContentLength) == 160 ]] ||
  fail "rotate-key did not add a key generation (keyring of 2 generations: 160 bytes)"
# A version pushed after the rotation: the new keyring opens it, the old keyring and key do not.
mkdir -p "$work/model3"
printf '{"num_labels": 4, "comment": "after rotation %s"}\n' "$marker1" > "$work/model3/config.json"
head -c 500000 /dev/urandom > "$work/model3/model.safetensors"
"$recmodel" push "$work/model3" --to pub --name intent --version 3 >/dev/null
rm -rf "$work/bucket" && "${aws[@]}" s3 cp --recursive s3://sealed/team "$work/bucket" >/dev/null
"${crypt[@]}" pull "$work/bucket" "$work/keys/k2" intent 3 "$work/py3" >/dev/null ||
  fail "recmodel_crypt.py cannot decrypt a version pushed after the rotation"
same_tree "$work/model3" "$work/py3" "Python's decryption of the version pushed after the rotation"
cp "$work/old-keyring" "$work/bucket/recmodel-keyring"
"${crypt[@]}" pull "$work/bucket" "$work/keys/k1" intent 1 "$work/py-old1" >/dev/null ||
  fail "the old keyring and key no longer open what was there before the rotation (they should: docs/ENCRYPTION.md)"
if "${crypt[@]}" pull "$work/bucket" "$work/keys/k1" intent 3 "$work/py-old3" >/dev/null 2>&1; then
  fail "the old keyring and key opened a version pushed after the rotation"
fi
echo "ok: rotate-key re-seals the keyring with a new generation; the new key opens everything, the old one fails (exit 6), and the old keyring cannot open what came after"
echo PASS
