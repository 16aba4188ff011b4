#include "storage/encrypted_store.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "common/error.h"
#include "common/files.h"

namespace recmodel::storage {

namespace {

constexpr const char* kContentPrefix = "objects/";  // content-addressed: the key names the bytes

// The content hash a cipher is salted with: the key already is one for content-addressed objects
// (so a resumed multipart upload seals the same bytes), the given SHA-256 otherwise.
std::string salt_hash(const std::string& key, const std::string& sha256) {
  return key.rfind(kContentPrefix, 0) == 0 ? std::string() : sha256;
}

class EncryptedPartWriter : public PartWriter {
 public:
  EncryptedPartWriter(std::unique_ptr<PartWriter> inner, ObjectCipher cipher, uint64_t part_size)
      : inner_(std::move(inner)), cipher_(std::move(cipher)), part_size_(part_size) {
    if (part_size_ % kChunkBytes != 0)
      throw Error(ExitCode::internal, fmt::format("encrypted parts must be whole {} KiB chunks, got {} bytes",
                                                  kChunkBytes / 1024, part_size_));
  }
  bool reusable(size_t index, std::string_view data) override {
    return inner_->resumable_parts() > 0 && inner_->reusable(index, seal(index, data));
  }
  void write(size_t index, uint64_t offset, std::string_view data) override {
    const uint64_t first = offset / kChunkBytes;
    inner_->write(index, first == 0 ? 0 : chunk_offset(first), seal(index, data));
  }
  uint64_t put_slack(uint64_t part_size) const override {
    return kObjectHeaderBytes + (part_size / kChunkBytes + 1) * kTagBytes;
  }
  bool put(size_t index, uint64_t offset, std::string& buffer) override {
    const uint64_t first = offset / kChunkBytes;
    cipher_.seal_in_place(index * part_size_ / kChunkBytes, buffer);
    if (inner_->resumable_parts() > 0 && inner_->reusable(index, buffer)) return true;
    inner_->write(index, first == 0 ? 0 : chunk_offset(first), buffer);
    return false;
  }
  void commit() override { inner_->commit(); }
  void abort() override { inner_->abort(); }
  void keep() override { inner_->keep(); }
  size_t resumable_parts() const override { return inner_->resumable_parts(); }

 private:
  std::string seal(size_t index, std::string_view data) const {
    const uint64_t first = index * part_size_ / kChunkBytes;
    std::string out = first == 0 ? cipher_.header() : std::string();
    out.reserve(out.size() + data.size() + (data.size() / kChunkBytes + 1) * kTagBytes);
    cipher_.seal_chunks(first, data, out);
    return out;
  }

  std::unique_ptr<PartWriter> inner_;
  ObjectCipher cipher_;
  uint64_t part_size_;
};

class EncryptedStore : public ObjectStore {
 public:
  EncryptedStore(std::unique_ptr<ObjectStore> inner, Keyring keyring)
      : inner_(std::move(inner)), keyring_(keyring) {}

  std::string describe(const std::string& key) const override {
    return fmt::format("{} (encrypted {})", key, inner_->describe(keyring_.object_name(key)));
  }

  // A pull asks every object's size (in parallel) before reading it: the header is read here too,
  // so each read that follows is one request, as on a plain remote. A header that does not open
  // is not cached; the read's cipher_of then names it.
  std::optional<uint64_t> size_of(const std::string& key) override {
    const auto stored = inner_->size_of(keyring_.object_name(key));
    if (!stored) return std::nullopt;
    uint64_t plain = 0;
    if (!plaintext_size(*stored, plain)) return *stored;  // cut short: the size check names it
    try {
      cipher_of(key, *stored);
    } catch (const IntegrityError&) {
    }
    return plain;
  }

  // A cut object usually still has a size some plaintext gives (size_of reports that): its
  // header, which authenticates the true size, names it.
  void explain_size_mismatch(const std::string& key) override { cipher_of(key); }

  std::string read(const std::string& key) override {
    return open_object(keyring_, key, inner_->read(keyring_.object_name(key)), describe(key));
  }

  void read_range(const std::string& key, uint64_t offset, uint64_t length, char* out) override {
    if (length == 0) return;
    const ObjectCipher cipher = cipher_of(key);
    if (offset + length > cipher.size())
      fail<IntegrityError>("{}: bytes {}..{} asked of an object of {} bytes", describe(key), offset, offset + length,
                           cipher.size());
    const uint64_t first = offset / kChunkBytes, last = (offset + length - 1) / kChunkBytes;
    const uint64_t begin = chunk_offset(first);
    const uint64_t end = std::min(chunk_offset(last + 1), encrypted_size(cipher.size()));
    // Chunks are opened as their bytes arrive, straight from the body into `out` where a whole
    // chunk arrives at once and lies inside the range; others gather in `sealed` and open in
    // `plain`. Memory stays at two chunks whatever the range.
    uint64_t index = first;
    std::string sealed, plain;
    const std::string where = describe(key);
    // Copies the part of chunk `index`'s plaintext inside [offset, offset + length) to `out`.
    auto open_one = [&](const char* data, size_t size) {
      const uint64_t chunk_begin = index * kChunkBytes, chunk_end = chunk_begin + size - kTagBytes;
      if (chunk_begin >= offset && chunk_end <= offset + length) {
        cipher.open_chunk_to(index, data, size, out + (chunk_begin - offset), where);
      } else {
        plain.resize(size - kTagBytes);
        cipher.open_chunk_to(index, data, size, plain.data(), where);
        const uint64_t from = std::max(offset, chunk_begin), to = std::min(offset + length, chunk_end);
        std::memcpy(out + (from - offset), plain.data() + (from - chunk_begin), to - from);
      }
      ++index;
    };
    inner_->read_range_to(keyring_.object_name(key), begin, end - begin, [&](const char* data, size_t size) {
      while (size > 0) {
        if (index > last)
          fail<IntegrityError>("cannot decrypt {}: more bytes arrived than chunks {}..{} hold", where, first, last);
        const size_t whole = cipher.sealed_chunk_size(index);
        if (sealed.empty() && size >= whole) {
          open_one(data, whole);
          data += whole;
          size -= whole;
          continue;
        }
        const size_t take = std::min(whole - sealed.size(), size);
        sealed.append(data, take);
        data += take;
        size -= take;
        if (sealed.size() == whole) {
          open_one(sealed.data(), whole);
          sealed.clear();
        }
      }
    });
    if (index != last + 1)
      fail<IntegrityError>("cannot decrypt {}: chunk {} arrived cut short", where, index);
  }

  void write(const std::string& key, std::string_view data, const std::string& sha256) override {
    const ObjectCipher cipher(keyring_, key, data.size(), salt_hash(key, sha256));
    const std::string sealed = cipher.seal_all(data);
    inner_->write(keyring_.object_name(key), sealed, sha256_hex(sealed));
    if (key.rfind(kContentPrefix, 0) != 0) write_name_record(key);
  }

  std::unique_ptr<PartWriter> write_parts(const std::string& key, uint64_t size, uint64_t part_size) override {
    if (key.rfind(kContentPrefix, 0) != 0) write_name_record(key);
    ObjectCipher cipher(keyring_, key, size, salt_hash(key, ""));
    // The first part carries the header; the inner store's part size is that of the others.
    const uint64_t sealed_part = part_size + part_size / kChunkBytes * kTagBytes;
    return std::make_unique<EncryptedPartWriter>(
        inner_->write_parts(keyring_.object_name(key), encrypted_size(size), sealed_part), std::move(cipher), part_size);
  }

  std::vector<StoreEntry> list(const std::string& prefix) override {
    // Only objects with a name record can be listed (manifests): their names are sealed in it.
    std::vector<StoreEntry> out;
    for (const StoreEntry& record : inner_->list("n/")) {
      std::string key;
      try {
        key = open_object(keyring_, record.key, inner_->read(record.key), inner_->describe(record.key));
      } catch (const IntegrityError&) {
        continue;  // not one of this keyring's records
      }
      if (key.rfind(prefix, 0) != 0 || keyring_.name_record(key) != record.key) continue;
      const auto stored = inner_->size_of(keyring_.object_name(key));
      if (!stored) continue;  // the record of an object that was removed
      out.push_back({key, reported_size(*stored), record.modified});
    }
    std::sort(out.begin(), out.end(), [](const StoreEntry& a, const StoreEntry& b) { return a.key < b.key; });
    return out;
  }

  void remove(const std::string& key) override {
    inner_->remove(keyring_.object_name(key));
    if (key.rfind(kContentPrefix, 0) != 0) inner_->remove(keyring_.name_record(key));
  }

 private:
  // The plaintext size of a stored object of `stored` bytes; a size no plaintext gives (cut
  // short) is reported as is, so the size check names it.
  static uint64_t reported_size(uint64_t stored) {
    uint64_t plain = 0;
    return plaintext_size(stored, plain) ? plain : stored;
  }

  // The cipher of a stored object, from its header (cached: a download reads many ranges).
  ObjectCipher cipher_of(const std::string& key) {
    if (auto cached = cached_cipher(key)) return *cached;
    const auto stored = inner_->size_of(keyring_.object_name(key));
    if (!stored) fail<NotFoundError>("{}: no such object", describe(key));
    return cipher_of(key, *stored);
  }

  // The same, the stored object's size known.
  ObjectCipher cipher_of(const std::string& key, uint64_t stored) {
    if (auto cached = cached_cipher(key)) return *cached;
    if (stored < kObjectHeaderBytes)
      fail<IntegrityError>("cannot decrypt {}: {} bytes is shorter than its header", describe(key), stored);
    std::string header(kObjectHeaderBytes, '\0');
    inner_->read_range(keyring_.object_name(key), 0, kObjectHeaderBytes, header.data());
    ObjectCipher cipher(keyring_, key, header, describe(key));
    if (stored != encrypted_size(cipher.size()))
      fail<IntegrityError>("cannot decrypt {}: {} bytes stored where its header says {} (cut short or padded)",
                           describe(key), stored, encrypted_size(cipher.size()));
    std::lock_guard<std::mutex> lock(mutex_);
    if (ciphers_.size() > 4096) ciphers_.clear();
    return ciphers_.emplace(key, std::move(cipher)).first->second;
  }

  std::optional<ObjectCipher> cached_cipher(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = ciphers_.find(key);
    if (it == ciphers_.end()) return std::nullopt;
    return it->second;
  }

  void write_name_record(const std::string& key) {
    const std::string record = keyring_.name_record(key);
    const ObjectCipher cipher(keyring_, record, key.size(), sha256_hex(key));
    const std::string sealed = cipher.seal_all(key);
    inner_->write(record, sealed, sha256_hex(sealed));
  }

  std::unique_ptr<ObjectStore> inner_;
  Keyring keyring_;
  std::mutex mutex_;
  std::map<std::string, ObjectCipher> ciphers_;
};

std::string read_keyring(ObjectStore& inner) {
  if (!inner.size_of(kKeyringName))
    fail<NotFoundError>("{}: no keyring: this remote was not set up for encryption (remote add --encrypt creates it)",
                        inner.describe(kKeyringName));
  return inner.read(kKeyringName);
}

}  // namespace

std::unique_ptr<ObjectStore> open_encrypted_store(std::unique_ptr<ObjectStore> inner, const KeyMaterial& key) {
  const Keyring keyring = Keyring::open(read_keyring(*inner), key, inner->describe(kKeyringName));
  return std::make_unique<EncryptedStore>(std::move(inner), keyring);
}

std::string ensure_keyring(ObjectStore& inner, const KeyMaterial& key) {
  if (!inner.size_of(kKeyringName)) {
    const std::string sealed = Keyring::generate().seal(key);
    inner.write(kKeyringName, sealed, sha256_hex(sealed));
  }
  return Keyring::open(read_keyring(inner), key, inner.describe(kKeyringName)).id_hex();
}

std::string rotate_keyring(ObjectStore& inner, const KeyMaterial& old_key, const KeyMaterial& new_key) {
  Keyring keyring = Keyring::open(read_keyring(inner), old_key, inner.describe(kKeyringName));
  // A new object key for what is written from now on: the old key file (and a keyring sealed
  // under it) opens nothing pushed after the rotation.
  keyring.add_generation();
  const std::string sealed = keyring.seal(new_key);
  inner.write(kKeyringName, sealed, sha256_hex(sealed));
  // Read back: the new key must open what was written before anyone relies on it.
  Keyring::open(inner.read(kKeyringName), new_key, inner.describe(kKeyringName));
  return keyring.id_hex();
}

}  // namespace recmodel::storage
