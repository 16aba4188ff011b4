"""An independent reader of recmodel's encrypted remotes (docs/ENCRYPTION.md), written from the
document with python3-cryptography, sharing no code with recmodel.

  recmodel_crypt.py vector                 prints the test vector of docs/ENCRYPTION.md
  recmodel_crypt.py pull ROOT KEYFILE NAME VERSION OUT
                                           decrypts a version pushed to the file:// remote ROOT
"""
import hashlib
import hmac
import json
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

CHUNK = 65536
TAG = 16
HEADER = 80


def read_key(path):
    data = open(path, "rb").read()
    text = data.rstrip(b"\r\n ")
    if len(text) == 64 and all(c in b"0123456789abcdefABCDEF" for c in text):
        return False, bytes.fromhex(text.decode())
    if len(data) == 32 and any(b < 0x20 or b >= 0x7F for b in data):
        return False, data
    return True, text


def open_keyring(sealed, key):
    assert sealed[:4] == b"RMKR" and sealed[4] == 1 and len(sealed) == 96 + 32 * (sealed[9] + 1), "not a keyring"
    passphrase, secret = key
    assert (sealed[5] == 1) == passphrase, "keyring sealed with the other kind of key"
    salt = sealed[12:28]
    if passphrase:
        kek = Scrypt(salt=salt, length=32, n=1 << sealed[6], r=sealed[7], p=sealed[8]).derive(secret)
    else:
        kek = secret
    plain = AESGCM(kek).decrypt(sealed[36:48], sealed[48:], sealed[:36])
    return plain[:32], [plain[i:i + 32] for i in range(32, len(plain), 32)]  # name key, object keys by generation


def mac(key, *parts):
    return hmac.new(key, b"\0".join(parts), hashlib.sha256).digest()


def object_name(name_key, logical):
    h = mac(name_key, b"name", logical.encode()).hex()
    return f"e/{h[:2]}/{h[2:]}"


def seal(name_key, object_key, logical, plaintext, content_sha256, generation=0):
    salt = mac(name_key, b"salt", logical.encode(), content_sha256.encode())
    data_key = mac(object_key, b"object", logical.encode(), salt)
    head = b"RMEO" + bytes([1, generation, 0, 0]) + struct.pack("<IQ", CHUNK, len(plaintext)) + salt
    head += mac(data_key, b"header", head)[:28]
    chunks = max(1, -(-len(plaintext) // CHUNK))
    out = bytearray(head)
    for i in range(chunks):
        nonce = b"\0" * 4 + struct.pack(">Q", i)
        aad = b"\1" if i == chunks - 1 else b"\0"
        out += AESGCM(data_key).encrypt(nonce, plaintext[i * CHUNK:(i + 1) * CHUNK], aad)
    return bytes(out)


def open_object(name_key, object_keys, logical, stored):
    assert stored[:4] == b"RMEO" and stored[4] == 1, f"{logical}: not an encrypted object"
    object_key = object_keys[stored[5]]  # the key generation it was written with
    chunk, size = struct.unpack("<IQ", stored[8:20])
    assert chunk == CHUNK
    salt = stored[20:52]
    data_key = mac(object_key, b"object", logical.encode(), salt)
    assert hmac.compare_digest(mac(data_key, b"header", stored[:52])[:28], stored[52:80]), f"{logical}: bad header"
    chunks = max(1, -(-size // CHUNK))
    assert len(stored) == HEADER + size + chunks * TAG, f"{logical}: wrong length"
    out = bytearray()
    for i in range(chunks):
        begin = HEADER + i * (CHUNK + TAG)
        sealed = stored[begin:begin + CHUNK + TAG]
        nonce = b"\0" * 4 + struct.pack(">Q", i)
        out += AESGCM(data_key).decrypt(nonce, sealed, b"\1" if i == chunks - 1 else b"\0")
    assert len(out) == size
    return bytes(out)


def vector():
    name_key, object_key = bytes([2]) * 32, bytes([3]) * 32
    plaintext = b"hello, recmodel\n"
    sha = hashlib.sha256(plaintext).hexdigest()
    logical = "models/demo/1.json"
    print("name key     ", name_key.hex())
    print("object key   ", object_key.hex())
    print("logical key  ", logical)
    print("plaintext    ", plaintext.hex())
    print("content hash ", sha)
    print("stored name  ", object_name(name_key, logical))
    print("stored bytes ", seal(name_key, object_key, logical, plaintext, sha).hex())


def pull(root, key_file, name, version, out):
    name_key, object_keys = open_keyring(open(os.path.join(root, "recmodel-keyring"), "rb").read(), read_key(key_file))
    def read(logical):
        return open_object(name_key, object_keys, logical, open(os.path.join(root, object_name(name_key, logical)), "rb").read())
    manifest = json.loads(read(f"models/{name}/{version}.json"))
    for entry in manifest["files"]:
        sha = entry["sha256"]
        data = read(f"objects/sha256/{sha[:2]}/{sha[2:]}")
        assert hashlib.sha256(data).hexdigest() == sha, entry["path"]
        path = os.path.join(out, entry["path"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").write(data)
    print(len(manifest["files"]))


if __name__ == "__main__":
    if sys.argv[1] == "vector":
        vector()
    else:
        pull(*sys.argv[2:7])
