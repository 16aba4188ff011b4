// An encrypted remote: an ObjectStore that seals every object on its way to the store it wraps
// and opens it on the way back (storage/encryption.h has the format), so transfers, resume,
// ranged parallel downloads and verification work unchanged on top of it. Logical keys
// ("objects/sha256/..", "models/NAME/VERSION.json") never reach the store: it sees HMAC names.
#pragma once

#include <memory>

#include "storage/encryption.h"
#include "storage/object_store.h"

namespace recmodel::storage {

// Wraps `inner`, whose keyring object is opened with `key`: a missing keyring is NotFoundError,
// a wrong key IntegrityError (exit 6) "cannot decrypt ... (wrong key?)".
std::unique_ptr<ObjectStore> open_encrypted_store(std::unique_ptr<ObjectStore> inner, const KeyMaterial& key);

// Gives `inner` a new keyring sealed under `key` unless it has one, which `key` must open
// (`remote add --encrypt`). Returns the keyring's id.
std::string ensure_keyring(ObjectStore& inner, const KeyMaterial& key);

// Adds a key generation to the keyring of `inner` (opened with `old_key`) and re-seals it under
// `new_key`: objects keep their names and bytes, and those written from now on use the new
// generation's key. Returns the keyring's id.
std::string rotate_keyring(ObjectStore& inner, const KeyMaterial& old_key, const KeyMaterial& new_key);

}  // namespace recmodel::storage
