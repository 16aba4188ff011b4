// The encrypted remote's format and store: round trips at chunk boundaries, every tampering
// refused (a flipped bit, a swapped, reordered or dropped chunk, another object's bytes under
// this name, a wrong key), key files, keyring rotation, and an encrypted file:// store that
// keeps names and contents out of the directory. tests/peers/storage_encrypted.test.sh decrypts
// the same format with python3-cryptography.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <random>
#include <string>

#include "common/error.h"
#include "common/files.h"
#include "storage/encrypted_store.h"
#include "storage/encryption.h"
#include "storage/object_store.h"
#include "storage/remote_config.h"
#include "tests/support.h"

namespace s = recmodel::storage;
namespace t = recmodel::testing;
namespace fs = std::filesystem;
using recmodel::DataError;
using recmodel::IntegrityError;
using recmodel::NotFoundError;
using recmodel::UsageError;

namespace {

std::string random_text(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

s::KeyMaterial raw_key(char fill) {
  s::KeyMaterial key;
  key.secret.assign(32, fill);
  key.source = "test key";
  return key;
}

std::string key_file(const t::TempDir& dir, const std::string& name, const std::string& content) {
  const auto path = dir.path() / name;
  t::write_text(path, content);
  ::chmod(path.c_str(), 0600);
  return path.string();
}

}  // namespace

TEST_CASE("objects round-trip at every chunk boundary and their stored size is known from the plaintext's") {
  const s::Keyring keyring = s::Keyring::generate();
  for (size_t size : {size_t{0}, size_t{1}, size_t{65535}, size_t{65536}, size_t{65537}, size_t{200000}}) {
    CAPTURE(size);
    const std::string plain = random_text(size, static_cast<uint32_t>(size));
    const s::ObjectCipher cipher(keyring, "objects/sha256/ab/cd", plain.size(), "");
    const std::string stored = cipher.seal_all(plain);
    CHECK(stored.size() == s::encrypted_size(size));
    uint64_t back = 0;
    CHECK(s::plaintext_size(stored.size(), back));
    CHECK(back == size);
    CHECK(s::open_object(keyring, "objects/sha256/ab/cd", stored, "obj") == plain);
    if (size >= 16) CHECK(stored.find(plain.substr(0, 16)) == std::string::npos);
  }
  uint64_t ignored = 0;
  CHECK_FALSE(s::plaintext_size(s::encrypted_size(65536) + 1, ignored));
  CHECK_FALSE(s::plaintext_size(40, ignored));
}

TEST_CASE("sealing a part in place gives the bytes of sealing it into a copy, at every chunk boundary") {
  const s::Keyring keyring = s::Keyring::generate();
  const uint64_t part = 2 * s::kChunkBytes;
  for (size_t size : {size_t{0}, size_t{1}, size_t{65536}, size_t{131072}, size_t{131073}, size_t{300000}}) {
    CAPTURE(size);
    const std::string plain = random_text(size, static_cast<uint32_t>(size) + 7);
    const s::ObjectCipher cipher(keyring, "objects/sha256/ab/cd", plain.size(), "");
    const std::string whole = cipher.seal_all(plain);
    std::string joined;
    for (uint64_t offset = 0; offset == 0 || offset < size; offset += part) {
      std::string buffer = plain.substr(offset, part);
      cipher.seal_in_place(offset / s::kChunkBytes, buffer);
      joined += buffer;
    }
    CHECK(joined == whole);
  }
}

TEST_CASE("a flipped bit, a swapped or dropped chunk, another name or another key is refused") {
  const s::Keyring keyring = s::Keyring::generate();
  const std::string key = "objects/sha256/00/11";
  const std::string plain = random_text(3 * 65536 + 100, 7);
  const std::string stored = s::ObjectCipher(keyring, key, plain.size(), "").seal_all(plain);
  auto refused = [&](const std::string& bytes, const std::string& name, const s::Keyring& ring) {
    try {
      s::open_object(ring, name, bytes, "obj");
    } catch (const IntegrityError& e) {
      return std::string(e.what()).find("cannot decrypt obj") != std::string::npos;
    }
    return false;
  };
  std::string flipped = stored;
  flipped[s::kObjectHeaderBytes + 70000] ^= 0x01;
  CHECK(refused(flipped, key, keyring));
  std::string header_flipped = stored;
  header_flipped[14] ^= 0x01;  // the plaintext size
  CHECK(refused(header_flipped, key, keyring));
  std::string swapped = stored;  // chunks 0 and 1 trade places
  const size_t sealed_chunk = s::kChunkBytes + s::kTagBytes;
  std::swap_ranges(swapped.begin() + s::chunk_offset(0), swapped.begin() + s::chunk_offset(0) + sealed_chunk,
                   swapped.begin() + s::chunk_offset(1));
  CHECK(refused(swapped, key, keyring));
  CHECK(refused(stored.substr(0, s::chunk_offset(3)), key, keyring));  // the last chunk dropped
  CHECK(refused(stored, "objects/sha256/00/22", keyring));             // another object's bytes
  CHECK(refused(stored, key, s::Keyring::generate()));                 // another keyring
  // A chunk from another object of the same keyring does not authenticate either.
  const std::string other = s::ObjectCipher(keyring, "objects/sha256/00/33", plain.size(), "").seal_all(plain);
  std::string mixed = stored;
  std::copy_n(other.begin() + s::chunk_offset(1), sealed_chunk, mixed.begin() + s::chunk_offset(1));
  CHECK(refused(mixed, key, keyring));
}

TEST_CASE("the same content under the same name seals to the same bytes, other content does not") {
  const s::Keyring keyring = s::Keyring::generate();
  const std::string a = s::ObjectCipher(keyring, "models/m/1.json", 5, "aa").seal_all("hello");
  CHECK(a == s::ObjectCipher(keyring, "models/m/1.json", 5, "aa").seal_all("hello"));
  CHECK(a.substr(20, 32) != s::ObjectCipher(keyring, "models/m/1.json", 5, "bb").seal_all("jello").substr(20, 32));
  CHECK(keyring.object_name("objects/sha256/ab/cd").rfind("e/", 0) == 0);
  CHECK(keyring.object_name("objects/sha256/ab/cd").find("abcd") == std::string::npos);
  CHECK(keyring.object_name("x") != s::Keyring::generate().object_name("x"));
}

TEST_CASE("key files: 64 hex digits, 32 raw bytes or a passphrase, and short, empty or shared ones are refused") {
  t::TempDir dir;
  const std::string hex(64, 'a');
  const s::KeyMaterial from_hex = s::read_key_file(key_file(dir, "hex", hex + "\n"));
  CHECK_FALSE(from_hex.passphrase);
  CHECK(from_hex.secret == std::string(32, '\xaa'));
  std::string raw(32, '\0');
  raw[5] = '\x01';
  CHECK(s::read_key_file(key_file(dir, "raw", raw)).secret == raw);
  const s::KeyMaterial phrase = s::read_key_file(key_file(dir, "phrase", "correct horse battery staple\n"));
  CHECK(phrase.passphrase);
  CHECK(phrase.secret == "correct horse battery staple");
  CHECK_THROWS_WITH_AS(s::read_key_file(key_file(dir, "short", "hunter2")), doctest::Contains("at least 12 characters"),
                       UsageError);
  CHECK_THROWS_AS(s::read_key_file(key_file(dir, "empty", "\n")), UsageError);
  const std::string shared = key_file(dir, "shared", hex);
  ::chmod(shared.c_str(), 0644);
  CHECK_THROWS_WITH_AS(s::read_key_file(shared), doctest::Contains("chmod 600"), UsageError);
  CHECK_THROWS_AS(s::read_key_file(dir.path() / "missing"), NotFoundError);

  const auto made = dir.path() / "new.key";
  s::write_new_key_file(made);
  struct stat st {};
  REQUIRE(::stat(made.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(t::read_text(made).size() == 65);
  CHECK_FALSE(s::read_key_file(made).passphrase);
  CHECK_THROWS_WITH_AS(s::write_new_key_file(made), doctest::Contains("never replaced"), UsageError);
}

TEST_CASE("a keyring opens with its key or passphrase only") {
  const s::Keyring keyring = s::Keyring::generate();
  const std::string sealed = keyring.seal(raw_key('k'));
  CHECK(sealed.size() == 128);
  const s::Keyring back = s::Keyring::open(sealed, raw_key('k'), "ring");
  CHECK(back.name_key == keyring.name_key);
  CHECK(back.object_keys == keyring.object_keys);
  CHECK(back.id_hex() == keyring.id_hex());
  CHECK_THROWS_WITH_AS(s::Keyring::open(sealed, raw_key('x'), "ring"), doctest::Contains("(wrong key?)"),
                       IntegrityError);
  s::KeyMaterial phrase;
  phrase.passphrase = true;
  phrase.secret = "a long enough passphrase";
  const std::string by_phrase = keyring.seal(phrase);
  CHECK(s::Keyring::open(by_phrase, phrase, "ring").object_keys == keyring.object_keys);
  phrase.secret = "another long passphrase";
  CHECK_THROWS_AS(s::Keyring::open(by_phrase, phrase, "ring"), IntegrityError);
  CHECK_THROWS_AS(s::Keyring::open(sealed.substr(1), raw_key('k'), "ring"), DataError);
}

TEST_CASE("an encrypted file store keeps names and bytes out of the directory and reads them back in ranges") {
  t::TempDir dir;
  s::RemoteSpec spec = s::parse_remote_url("public", "file://" + (dir.path() / "remote").string());
  const std::string key = key_file(dir, "remote.key", std::string(64, 'b'));
  s::ensure_keyring(*s::open_store(spec, {}), s::read_key_file(key));
  spec.encrypt = true;
  spec.key_file = key;
  auto store = s::open_store(spec, {});

  const std::string manifest = R"({"name": "secret-intent-model", "files": ["model.safetensors"]})";
  store->write("models/secret-intent-model/3.json", manifest, recmodel::sha256_hex(manifest));
  const std::string big = random_text(300000, 3);
  const std::string object = "objects/sha256/" + recmodel::sha256_hex(big).substr(0, 2) + "/" + recmodel::sha256_hex(big).substr(2);
  {
    auto writer = store->write_parts(object, big.size(), 131072);
    for (size_t i = 0; i * 131072 < big.size(); ++i)
      writer->write(i, i * 131072, std::string_view(big).substr(i * 131072, 131072));
    writer->commit();
  }
  CHECK(store->read("models/secret-intent-model/3.json") == manifest);
  CHECK(*store->size_of(object) == big.size());
  // Ranges inside one chunk, across chunks, on chunk boundaries and to the end.
  for (auto [offset, length] : std::vector<std::pair<size_t, size_t>>{
           {60000, 70000}, {10, 20}, {65536, 65536}, {0, 300000}, {131000, 1000}, {299999, 1}, {196608, 103392}}) {
    CAPTURE(offset);
    std::string range(length, '\0');
    store->read_range(object, offset, range.size(), range.data());
    CHECK(range == big.substr(offset, length));
  }
  {
    // put() seals the caller's buffer in place and stores the same object as write().
    const std::string twin = "models/put-twin.bin";
    auto writer = store->write_parts(twin, big.size(), 131072);
    for (size_t i = 0; i * 131072 < big.size(); ++i) {
      std::string buffer = big.substr(i * 131072, 131072);
      CHECK_FALSE(writer->put(i, i * 131072, buffer));
    }
    writer->commit();
    std::string back(big.size(), '\0');
    store->read_range(twin, 0, back.size(), back.data());
    CHECK(back == big);
    store->remove(twin);
  }
  const auto listed = store->list("models/secret-intent-model/");
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].key == "models/secret-intent-model/3.json");
  CHECK(listed[0].size == manifest.size());
  CHECK(store->list("models/other/").empty());

  // Nothing in the directory names the model or the content hash, or holds the plaintext.
  for (const auto& entry : fs::recursive_directory_iterator(dir.path() / "remote")) {
    const std::string path = entry.path().string();
    CHECK(path.find("secret") == std::string::npos);
    CHECK(path.find(recmodel::sha256_hex(big).substr(2, 20)) == std::string::npos);
    if (entry.is_regular_file()) {
      const std::string bytes = t::read_text(entry.path());
      CHECK(bytes.find("secret-intent-model") == std::string::npos);
      CHECK(bytes.find(big.substr(1000, 32)) == std::string::npos);
    }
  }

  // The key rotates: the new key opens the same objects, the old one no longer does.
  const std::string new_key = key_file(dir, "new.key", std::string(64, 'c'));
  spec.encrypt = false;
  s::rotate_keyring(*s::open_store(spec, {}), s::read_key_file(key), s::read_key_file(new_key));
  spec.encrypt = true;
  s::StoreOptions with_new;
  with_new.key_file = new_key;
  CHECK(s::open_store(spec, with_new)->read("models/secret-intent-model/3.json") == manifest);
  CHECK_THROWS_WITH_AS(s::open_store(spec, {}), doctest::Contains("(wrong key?)"), IntegrityError);

  store = s::open_store(spec, with_new);
  store->remove("models/secret-intent-model/3.json");
  CHECK(store->list("models/").empty());
}

TEST_CASE("a cut object of an encrypted store still has a plausible size, and its header names it cut short") {
  t::TempDir dir;
  s::RemoteSpec spec = s::parse_remote_url("public", "file://" + (dir.path() / "remote").string());
  const std::string key = key_file(dir, "remote.key", std::string(64, 'b'));
  s::ensure_keyring(*s::open_store(spec, {}), s::read_key_file(key));
  spec.encrypt = true;
  spec.key_file = key;
  auto store = s::open_store(spec, {});
  const std::string big = random_text(200000, 5);
  const std::string sha = recmodel::sha256_hex(big);
  const std::string object = "objects/sha256/" + sha.substr(0, 2) + "/" + sha.substr(2);
  store->write(object, big, sha);
  for (const auto& entry : fs::recursive_directory_iterator(dir.path() / "remote" / "e"))
    if (entry.is_regular_file()) fs::resize_file(entry.path(), entry.file_size() - 100);  // the last 100 bytes cut
  CHECK(*store->size_of(object) == 199900);  // what a manifest's size check sees
  CHECK_THROWS_WITH_AS(store->explain_size_mismatch(object), doctest::Contains("cut short or padded"), IntegrityError);
  CHECK_THROWS_WITH_AS(store->read(object), doctest::Contains("cannot decrypt"), IntegrityError);
}

TEST_CASE("the test vector of docs/ENCRYPTION.md, made by the independent Python reader, is what recmodel seals") {
  s::Keyring keyring;
  keyring.name_key.fill(2);
  keyring.object_keys.assign(1, {});
  keyring.object_keys[0].fill(3);
  const std::string plain = "hello, recmodel\n";
  const std::string sha = recmodel::sha256_hex(plain);
  CHECK(sha == "688e2abe0acdc54505ab3854252a5442f48824810aa4ea07c459c99686b1a8db");
  CHECK(keyring.object_name("models/demo/1.json") == "e/4f/570a1fe317bca6020c1bb7e14a62122171f0e518f542b38de1098de643aa35");
  const std::string stored = s::ObjectCipher(keyring, "models/demo/1.json", plain.size(), sha).seal_all(plain);
  static const char digits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : stored) hex += std::string{digits[c >> 4], digits[c & 15]};
  CHECK(hex ==
        "524d454f010000000000010010000000000000001c43fab232cab996ed5c5b834c52b6ab2fa3e867bfb42bdc2412b7bdb606292e016582"
        "c7b3b77575c544ed35557362cf3ef1488a120dd11c7b76ac1e28848627b0c01b58c0eb4103a53af19e86a74e95332c4ac8a7fc78eeb302"
        "18f4");
}

TEST_CASE("a rotation adds a key generation: new objects use it, old ones still open, the old keyring opens only the old") {
  s::Keyring keyring = s::Keyring::generate();
  const std::string before = s::ObjectCipher(keyring, "models/m/1.json", 3, "a").seal_all("one");
  const s::Keyring old = keyring;
  keyring.add_generation();
  CHECK(keyring.object_keys.size() == 2);
  CHECK(keyring.seal(raw_key('n')).size() == s::Keyring::sealed_size(2));
  const s::Keyring reopened = s::Keyring::open(keyring.seal(raw_key('n')), raw_key('n'), "ring");
  CHECK(reopened.object_keys == keyring.object_keys);
  const std::string after = s::ObjectCipher(reopened, "models/m/2.json", 3, "b").seal_all("two");
  CHECK(static_cast<int>(after[5]) == 1);  // the header names generation 1
  CHECK(s::open_object(reopened, "models/m/1.json", before, "obj") == "one");
  CHECK(s::open_object(reopened, "models/m/2.json", after, "obj") == "two");
  CHECK_THROWS_WITH_AS(s::open_object(old, "models/m/2.json", after, "obj"),
                       doctest::Contains("written with key generation 1, the keyring has 1"), IntegrityError);
}

namespace {

// Counts the requests an encrypted store makes of the store beneath it.
class CountingStore : public s::ObjectStore {
 public:
  explicit CountingStore(std::unique_ptr<s::ObjectStore> inner) : inner_(std::move(inner)) {}
  int requests = 0;
  std::string describe(const std::string& key) const override { return inner_->describe(key); }
  std::optional<uint64_t> size_of(const std::string& key) override {
    ++requests;
    return inner_->size_of(key);
  }
  std::string read(const std::string& key) override {
    ++requests;
    return inner_->read(key);
  }
  void read_range(const std::string& key, uint64_t offset, uint64_t length, char* out) override {
    ++requests;
    inner_->read_range(key, offset, length, out);
  }
  void read_range_to(const std::string& key, uint64_t offset, uint64_t length,
                     const std::function<void(const char*, size_t)>& sink) override {
    ++requests;
    inner_->read_range_to(key, offset, length, sink);
  }
  void write(const std::string& key, std::string_view data, const std::string& sha256) override {
    inner_->write(key, data, sha256);
  }
  std::unique_ptr<s::PartWriter> write_parts(const std::string& key, uint64_t size, uint64_t part_size) override {
    return inner_->write_parts(key, size, part_size);
  }
  std::vector<s::StoreEntry> list(const std::string& prefix) override { return inner_->list(prefix); }
  void remove(const std::string& key) override { inner_->remove(key); }

 private:
  std::unique_ptr<s::ObjectStore> inner_;
};

}  // namespace

TEST_CASE("after an encrypted object's size is asked, each read of it is one request, as on a plain remote") {
  t::TempDir dir;
  const s::RemoteSpec spec = s::parse_remote_url("public", "file://" + (dir.path() / "remote").string());
  const s::KeyMaterial key = raw_key('d');
  s::ensure_keyring(*s::open_store(spec, {}), key);
  auto counting = std::make_unique<CountingStore>(s::open_store(spec, {}));
  CountingStore& inner = *counting;
  auto store = s::open_encrypted_store(std::move(counting), key);
  const std::string big = random_text(200000, 7), sha = recmodel::sha256_hex(big);
  const std::string object = "objects/sha256/" + sha.substr(0, 2) + "/" + sha.substr(2);
  store->write(object, big, sha);

  inner.requests = 0;
  CHECK(*store->size_of(object) == big.size());  // the pull's size check: HEAD and header
  CHECK(inner.requests == 2);
  for (auto [offset, length] : std::vector<std::pair<size_t, size_t>>{{0, 65536}, {65536, 100000}, {150000, 50000}}) {
    inner.requests = 0;
    std::string range(length, '\0');
    store->read_range(object, offset, length, range.data());
    CHECK(range == big.substr(offset, length));
    CHECK(inner.requests == 1);
  }
  // Without the size asked first, the header is read on the first range (and remembered).
  auto fresh_counting = std::make_unique<CountingStore>(s::open_store(spec, {}));
  CountingStore& fresh_inner = *fresh_counting;
  auto fresh = s::open_encrypted_store(std::move(fresh_counting), key);
  std::string range(1000, '\0');
  fresh_inner.requests = 0;
  fresh->read_range(object, 5000, range.size(), range.data());
  CHECK(range == big.substr(5000, 1000));
  CHECK(fresh_inner.requests == 3);
}
