// Client-side encryption of an encrypted remote (`remote add ... --encrypt`): what the public
// cloud stores is ciphertext under names that say nothing. The format is docs/ENCRYPTION.md:
//
//   key file     64 hex digits (recmodel remote keygen) or 32 raw bytes: the key-encryption key;
//                anything else is a passphrase, stretched with scrypt (N 2^15, r 8, p 1).
//   keyring      the object "recmodel-keyring" at the remote's root: the remote's name key and
//                its object keys, one per key generation, AES-256-GCM-encrypted under the
//                key-encryption key (96 + 32 x generations bytes). Rotating the key file adds a
//                generation (objects written from then on use it) and re-seals the keyring alone.
//   object names HMAC-SHA256(name key, logical key), hex: "e/ab/cdef..."; a manifest also gets a
//                name record "n/<same hex>" holding its logical key, encrypted, for listing.
//   objects      an 80-byte header, then the plaintext in chunks of 64 KiB, each sealed with
//                AES-256-GCM under a key of the object's own (HMAC of the object key, the logical
//                key and a content salt), nonce = 0^4 || chunk index (big-endian), AAD = 1 for
//                the last chunk else 0: a reordered, truncated, swapped or flipped chunk fails.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace recmodel::storage {

namespace fs = std::filesystem;

using Key256 = std::array<unsigned char, 32>;

inline constexpr const char* kKeyringName = "recmodel-keyring";
inline constexpr size_t kMaxKeyGenerations = 256;  // an object header names its generation in one byte
inline constexpr size_t kObjectHeaderBytes = 80;
inline constexpr uint32_t kChunkBytes = 64 * 1024;
inline constexpr size_t kTagBytes = 16;

// What a key file holds: a key, or a passphrase to stretch with the keyring's salt.
struct KeyMaterial {
  bool passphrase = false;
  std::string secret;  // 32 key bytes, or the passphrase
  std::string source;  // the file, for messages (never the key)
};

// Reads a key file. Throws NotFoundError when missing, UsageError when it is empty, a
// passphrase shorter than 12 characters, or readable by others (chmod 600 it).
KeyMaterial read_key_file(const fs::path& path);

// Writes a new random key as 64 hex digits and a newline, mode 0600, refusing to replace a file.
void write_new_key_file(const fs::path& path);

// The keys of one encrypted remote.
struct Keyring {
  Key256 name_key{};                 // names objects (kept across rotations: names stay stable)
  std::vector<Key256> object_keys;   // derive each object's key; generation i, the last one current
  std::array<unsigned char, 8> id{};  // random, shown by `remote list` to tell keyrings apart

  // Returns a new keyring with random keys (one generation).
  static Keyring generate();
  // Adds a generation with a new random object key (rotate-key); UsageError past kMaxKeyGenerations.
  void add_generation();
  // Returns the sealed size of a keyring of `generations` object keys.
  static size_t sealed_size(size_t generations) { return 96 + 32 * generations; }
  // Returns the keyring sealed under `key` (a fresh salt and nonce).
  std::string seal(const KeyMaterial& key) const;
  // Opens a sealed keyring; IntegrityError "cannot decrypt ... (wrong key?)" when `key` is not the
  // one it was sealed with or the bytes were changed, DataError when it is not a keyring.
  static Keyring open(std::string_view sealed, const KeyMaterial& key, const std::string& where);

  // Returns the physical name of logical key `key`: "e/" + HMAC hex split after 2 digits.
  std::string object_name(const std::string& key) const;
  // Returns the name record of a logical key ("n/" + the same HMAC).
  std::string name_record(const std::string& key) const;
  // Returns the id as 16 hex digits.
  std::string id_hex() const;
};

// Returns the size of the stored (encrypted) object holding `plaintext` bytes.
uint64_t encrypted_size(uint64_t plaintext);
// Returns the plaintext size of a stored object of `stored` bytes; false when no plaintext size
// gives that (a truncated or foreign object).
bool plaintext_size(uint64_t stored, uint64_t& plaintext);
// Returns the stored byte offset of chunk `index` (the header comes first).
inline uint64_t chunk_offset(uint64_t index) { return kObjectHeaderBytes + index * (kChunkBytes + kTagBytes); }

// Seals and opens one object's bytes. The salt makes each (name, content) pair's key its own:
// it is HMAC(name key, "salt" || key || content SHA-256), so the same content under the same
// name encrypts to the same bytes (an interrupted multipart upload resumes) and nothing else does.
class ObjectCipher {
 public:
  // For writing: `content_sha256` is the plaintext's hex SHA-256.
  ObjectCipher(const Keyring& keyring, const std::string& key, uint64_t size, const std::string& content_sha256);
  // For reading: parses and checks the stored object's header (IntegrityError naming `where`).
  ObjectCipher(const Keyring& keyring, const std::string& key, std::string_view header, const std::string& where);

  uint64_t size() const { return size_; }
  uint64_t chunks() const { return size_ == 0 ? 1 : (size_ + kChunkBytes - 1) / kChunkBytes; }
  // Returns the 80-byte header.
  std::string header() const;
  // Appends the sealed chunks of plaintext starting at chunk `first` (whole chunks, except the
  // object's last) to `out`.
  void seal_chunks(uint64_t first, std::string_view plaintext, std::string& out) const;
  // Opens sealed chunks starting at chunk `first` into `out`; IntegrityError naming `where` and
  // the chunk when one fails authentication.
  void open_chunks(uint64_t first, std::string_view sealed, std::string& out, const std::string& where) const;
  // Seals, in `buffer` itself, the plaintext of whole chunks starting at chunk `first` (the
  // object's last may be partial), with the header in front when `first` is 0: an upload then
  // holds one buffer per part, not two.
  void seal_in_place(uint64_t first, std::string& buffer) const;
  // Opens one sealed chunk of `size` bytes into `out` (its plaintext size); IntegrityError naming
  // `where` when it does not authenticate.
  void open_chunk_to(uint64_t index, const char* sealed, size_t size, char* out, const std::string& where) const;
  // Returns the stored size of chunk `index` (its plaintext and tag).
  size_t sealed_chunk_size(uint64_t index) const {
    const uint64_t plain = index + 1 == chunks() ? size_ - index * kChunkBytes : kChunkBytes;
    return static_cast<size_t>(plain) + kTagBytes;
  }
  // Returns the whole stored object for `plaintext` (header and chunks).
  std::string seal_all(std::string_view plaintext) const;

 private:
  std::string key_;
  uint64_t size_ = 0;
  unsigned char generation_ = 0;  // which object key of the keyring
  std::array<unsigned char, 32> salt_{};
  Key256 data_key_{};

  void derive(const Keyring& keyring);
};

// Opens a whole stored object (header and every chunk).
std::string open_object(const Keyring& keyring, const std::string& key, std::string_view stored, const std::string& where);

}  // namespace recmodel::storage
