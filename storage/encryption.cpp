#include "storage/encryption.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "common/error.h"

namespace recmodel::storage {

namespace {

constexpr char kObjectMagic[4] = {'R', 'M', 'E', 'O'};
constexpr char kKeyringMagic[4] = {'R', 'M', 'K', 'R'};
constexpr unsigned char kFormatVersion = 1;
constexpr size_t kHeaderMacOffset = 52;  // magic, version, reserved, chunk size, size, salt
constexpr size_t kKeyringAadBytes = 36;  // magic .. id
constexpr unsigned char kScryptLogN = 15, kScryptR = 8, kScryptP = 1;
constexpr size_t kMinPassphrase = 12;

std::string hex(const unsigned char* bytes, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  return out;
}

std::array<unsigned char, 32> hmac(const unsigned char* key, size_t key_size, std::string_view message) {
  std::array<unsigned char, 32> out{};
  unsigned int length = 0;
  if (!HMAC(EVP_sha256(), key, static_cast<int>(key_size), reinterpret_cast<const unsigned char*>(message.data()),
            message.size(), out.data(), &length) ||
      length != out.size())
    throw Error(ExitCode::internal, "HMAC-SHA256 failed (OpenSSL)");
  return out;
}

void random_bytes(unsigned char* out, size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) throw Error(ExitCode::internal, "no random bytes (OpenSSL RAND_bytes)");
}

struct CipherContext {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  CipherContext() {
    if (!ctx) throw Error(ExitCode::internal, "EVP_CIPHER_CTX_new failed (OpenSSL)");
  }
  ~CipherContext() { EVP_CIPHER_CTX_free(ctx); }
};

// One context per thread, re-initialised for each chunk: a transfer seals thousands of chunks.
EVP_CIPHER_CTX* thread_context() {
  thread_local CipherContext context;
  EVP_CIPHER_CTX_reset(context.ctx);
  return context.ctx;
}

// AES-256-GCM with a 12-byte nonce: writes the ciphertext of `length` bytes at `in` to `out`
// (which may be `in`: sealing in place) and the tag right after it.
void gcm_seal_to(const unsigned char* key, const unsigned char* nonce, std::string_view aad, const char* in,
                 size_t length, char* out) {
  EVP_CIPHER_CTX* ctx = thread_context();
  int n = 0;
  auto* dst = reinterpret_cast<unsigned char*>(out);
  bool ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key, nonce) == 1 &&
            (aad.empty() || EVP_EncryptUpdate(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(aad.data()),
                                              static_cast<int>(aad.size())) == 1) &&
            EVP_EncryptUpdate(ctx, dst, &n, reinterpret_cast<const unsigned char*>(in), static_cast<int>(length)) == 1 &&
            EVP_EncryptFinal_ex(ctx, dst + n, &n) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes), dst + length) == 1;
  if (!ok) throw Error(ExitCode::internal, "AES-256-GCM encryption failed (OpenSSL)");
}

// Appends ciphertext || tag to `out`.
void gcm_seal(const unsigned char* key, const unsigned char* nonce, std::string_view aad, std::string_view plain,
              std::string& out) {
  const size_t at = out.size();
  out.resize(at + plain.size() + kTagBytes);
  gcm_seal_to(key, nonce, aad, plain.data(), plain.size(), out.data() + at);
}

// Opens `size` bytes of ciphertext || tag at `sealed` into `out` (size - kTagBytes bytes);
// false when authentication fails (what `out` holds then is not to be used).
bool gcm_open_to(const unsigned char* key, const unsigned char* nonce, std::string_view aad, const char* sealed,
                 size_t size, char* out) {
  if (size < kTagBytes) return false;
  const size_t length = size - kTagBytes;
  EVP_CIPHER_CTX* ctx = thread_context();
  int n = 0;
  auto* dst = reinterpret_cast<unsigned char*>(out);
  unsigned char tag[kTagBytes];
  std::memcpy(tag, sealed + length, kTagBytes);
  return EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key, nonce) == 1 &&
         (aad.empty() || EVP_DecryptUpdate(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(aad.data()),
                                           static_cast<int>(aad.size())) == 1) &&
         EVP_DecryptUpdate(ctx, dst, &n, reinterpret_cast<const unsigned char*>(sealed), static_cast<int>(length)) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes), tag) == 1 &&
         EVP_DecryptFinal_ex(ctx, dst + n, &n) == 1;
}

// Opens ciphertext || tag, appending the plaintext to `out`; false when authentication fails.
bool gcm_open(const unsigned char* key, const unsigned char* nonce, std::string_view aad, std::string_view sealed,
              std::string& out) {
  if (sealed.size() < kTagBytes) return false;
  const size_t at = out.size();
  out.resize(at + sealed.size() - kTagBytes);
  const bool ok = gcm_open_to(key, nonce, aad, sealed.data(), sealed.size(), out.data() + at);
  if (!ok) out.resize(at);
  return ok;
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t get_le(std::string_view bytes, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + static_cast<size_t>(i)]);
  return v;
}

std::array<unsigned char, 12> chunk_nonce(uint64_t index) {
  std::array<unsigned char, 12> nonce{};
  for (int i = 0; i < 8; ++i) nonce[static_cast<size_t>(11 - i)] = static_cast<unsigned char>((index >> (8 * i)) & 0xff);
  return nonce;
}

// The key-encryption key of `key` for a keyring with this salt and scrypt settings.
Key256 key_encryption_key(const KeyMaterial& key, const unsigned char* salt, unsigned char log_n, unsigned char r,
                          unsigned char p) {
  Key256 out{};
  if (!key.passphrase) {
    std::memcpy(out.data(), key.secret.data(), out.size());
    return out;
  }
  if (EVP_PBE_scrypt(key.secret.data(), key.secret.size(), salt, 16, uint64_t{1} << log_n, r, p,
                     uint64_t{256} << 20, out.data(), out.size()) != 1)
    throw Error(ExitCode::internal, "scrypt failed (OpenSSL)");
  return out;
}

bool is_hex_key(const std::string& text) {
  if (text.size() != 64) return false;
  for (char c : text)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

KeyMaterial read_key_file(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) fail<NotFoundError>("{}: no such key file", path.string());
    fail<DataError>("{}: cannot read the key file: {}", path.string(), std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) fail<UsageError>("{}: the key file must be a regular file", path.string());
  if (st.st_mode & 077)
    fail<UsageError>("{}: the key file is readable by others (mode {:03o}); chmod 600 it", path.string(),
                     st.st_mode & 0777);
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) fail<DataError>("{}: cannot read the key file", path.string());
  std::string content = text.str();
  KeyMaterial key;
  key.source = path.string();
  std::string trimmed = content;
  while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == '\r' || trimmed.back() == ' '))
    trimmed.pop_back();
  if (is_hex_key(trimmed)) {
    key.secret.resize(32);
    for (size_t i = 0; i < 32; ++i) key.secret[i] = static_cast<char>(std::stoi(trimmed.substr(2 * i, 2), nullptr, 16));
    return key;
  }
  if (content.size() == 32 && std::any_of(content.begin(), content.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f;
      })) {
    key.secret = content;  // 32 raw bytes
    return key;
  }
  if (trimmed.empty()) fail<UsageError>("{}: the key file is empty", path.string());
  if (trimmed.size() < kMinPassphrase)
    fail<UsageError>("{}: a passphrase must have at least {} characters (or write a key with 'recmodel remote "
                     "keygen FILE')",
                     path.string(), kMinPassphrase);
  key.passphrase = true;
  key.secret = trimmed;
  return key;
}

void write_new_key_file(const fs::path& path) {
  unsigned char bytes[32];
  random_bytes(bytes, sizeof bytes);
  const std::string text = hex(bytes, sizeof bytes) + "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) fail<UsageError>("{}: already exists; a key file is never replaced (choose another name)", path.string());
    fail<DataError>("{}: cannot create the key file: {}", path.string(), std::strerror(errno));
  }
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    fail<DataError>("{}: cannot write the key file", path.string());
  }
}

Keyring Keyring::generate() {
  Keyring k;
  random_bytes(k.name_key.data(), k.name_key.size());
  k.object_keys.resize(1);
  random_bytes(k.object_keys[0].data(), k.object_keys[0].size());
  random_bytes(k.id.data(), k.id.size());
  return k;
}

void Keyring::add_generation() {
  if (object_keys.size() >= kMaxKeyGenerations)
    fail<UsageError>("the keyring has {} key generations, the most it holds; sync to a new remote with a new key",
                     object_keys.size());
  object_keys.emplace_back();
  random_bytes(object_keys.back().data(), object_keys.back().size());
}

std::string Keyring::seal(const KeyMaterial& key) const {
  std::string out(kKeyringMagic, 4);
  out += static_cast<char>(kFormatVersion);
  out += static_cast<char>(key.passphrase ? 1 : 0);
  out += static_cast<char>(kScryptLogN);
  out += static_cast<char>(kScryptR);
  out += static_cast<char>(kScryptP);
  out += static_cast<char>(object_keys.size() - 1);  // the current generation
  out.append(2, '\0');
  unsigned char salt[16], nonce[12];
  random_bytes(salt, sizeof salt);
  random_bytes(nonce, sizeof nonce);
  out.append(reinterpret_cast<const char*>(salt), sizeof salt);
  out.append(reinterpret_cast<const char*>(id.data()), id.size());
  const std::string aad = out;
  out.append(reinterpret_cast<const char*>(nonce), sizeof nonce);
  std::string plain(reinterpret_cast<const char*>(name_key.data()), name_key.size());
  for (const Key256& k : object_keys) plain.append(reinterpret_cast<const char*>(k.data()), k.size());
  const Key256 kek = key_encryption_key(key, salt, kScryptLogN, kScryptR, kScryptP);
  gcm_seal(kek.data(), nonce, aad, plain, out);
  return out;
}

Keyring Keyring::open(std::string_view sealed, const KeyMaterial& key, const std::string& where) {
  if (sealed.size() < sealed_size(1) || std::memcmp(sealed.data(), kKeyringMagic, 4) != 0 ||
      sealed.size() != sealed_size(static_cast<size_t>(static_cast<unsigned char>(sealed[9])) + 1))
    fail<DataError>("{}: not a recmodel keyring ({} bytes)", where, sealed.size());
  if (static_cast<unsigned char>(sealed[4]) != kFormatVersion)
    fail<DataError>("{}: keyring format version {} is newer than this recmodel reads; upgrade recmodel", where,
                    static_cast<int>(static_cast<unsigned char>(sealed[4])));
  const bool passphrase = sealed[5] == 1;
  if (passphrase != key.passphrase)
    fail<IntegrityError>("cannot decrypt {} with {}: the keyring was sealed with a {}, this file holds a {} (wrong key?)",
                         where, key.source, passphrase ? "passphrase" : "key", key.passphrase ? "passphrase" : "key");
  const auto log_n = static_cast<unsigned char>(sealed[6]);
  if (log_n > 22) fail<DataError>("{}: scrypt cost 2^{} is out of range", where, static_cast<int>(log_n));
  const auto* bytes = reinterpret_cast<const unsigned char*>(sealed.data());
  const Key256 kek = key_encryption_key(key, bytes + 12, log_n, bytes[7], bytes[8]);
  std::string plain;
  if (!gcm_open(kek.data(), bytes + kKeyringAadBytes, sealed.substr(0, kKeyringAadBytes),
                sealed.substr(kKeyringAadBytes + 12), plain))
    fail<IntegrityError>("cannot decrypt {} with {} (wrong key?)", where, key.source);
  Keyring k;
  std::memcpy(k.name_key.data(), plain.data(), 32);
  k.object_keys.resize((plain.size() - 32) / 32);
  for (size_t g = 0; g < k.object_keys.size(); ++g) std::memcpy(k.object_keys[g].data(), plain.data() + 32 * (g + 1), 32);
  std::memcpy(k.id.data(), bytes + 28, 8);
  return k;
}

std::string Keyring::object_name(const std::string& key) const {
  const auto mac = hmac(name_key.data(), name_key.size(), std::string("name") + '\0' + key);
  const std::string h = hex(mac.data(), mac.size());
  return "e/" + h.substr(0, 2) + "/" + h.substr(2);
}

std::string Keyring::name_record(const std::string& key) const {
  const auto mac = hmac(name_key.data(), name_key.size(), std::string("name") + '\0' + key);
  return "n/" + hex(mac.data(), mac.size());
}

std::string Keyring::id_hex() const { return hex(id.data(), id.size()); }

uint64_t encrypted_size(uint64_t plaintext) {
  const uint64_t chunks = plaintext == 0 ? 1 : (plaintext + kChunkBytes - 1) / kChunkBytes;
  return kObjectHeaderBytes + plaintext + chunks * kTagBytes;
}

bool plaintext_size(uint64_t stored, uint64_t& plaintext) {
  if (stored < kObjectHeaderBytes + kTagBytes) return false;
  const uint64_t body = stored - kObjectHeaderBytes;
  const uint64_t chunks = (body + kChunkBytes + kTagBytes - 1) / (kChunkBytes + kTagBytes);
  plaintext = body - chunks * kTagBytes;
  return encrypted_size(plaintext) == stored;
}

ObjectCipher::ObjectCipher(const Keyring& keyring, const std::string& key, uint64_t size,
                           const std::string& content_sha256)
    : key_(key), size_(size), generation_(static_cast<unsigned char>(keyring.object_keys.size() - 1)) {
  salt_ = hmac(keyring.name_key.data(), keyring.name_key.size(), std::string("salt") + '\0' + key + '\0' + content_sha256);
  derive(keyring);
}

ObjectCipher::ObjectCipher(const Keyring& keyring, const std::string& key, std::string_view header,
                           const std::string& where)
    : key_(key) {
  if (header.size() < kObjectHeaderBytes || std::memcmp(header.data(), kObjectMagic, 4) != 0)
    fail<IntegrityError>("cannot decrypt {}: not an object of an encrypted remote", where);
  if (static_cast<unsigned char>(header[4]) != kFormatVersion)
    fail<DataError>("{}: encryption format version {} is newer than this recmodel reads; upgrade recmodel", where,
                    static_cast<int>(static_cast<unsigned char>(header[4])));
  if (get_le(header, 8, 4) != kChunkBytes)
    fail<IntegrityError>("cannot decrypt {}: chunk size {} is not {}", where, get_le(header, 8, 4), kChunkBytes);
  size_ = get_le(header, 12, 8);
  generation_ = static_cast<unsigned char>(header[5]);
  if (generation_ >= keyring.object_keys.size())
    fail<IntegrityError>("cannot decrypt {}: written with key generation {}, the keyring has {} (another keyring?)",
                         where, static_cast<int>(generation_), keyring.object_keys.size());
  std::memcpy(salt_.data(), header.data() + 20, salt_.size());
  derive(keyring);
  const std::string expected = this->header();
  if (std::memcmp(expected.data() + kHeaderMacOffset, header.data() + kHeaderMacOffset,
                  kObjectHeaderBytes - kHeaderMacOffset) != 0)
    fail<IntegrityError>("cannot decrypt {}: its header does not authenticate (wrong key, or another object's bytes?)",
                         where);
}

void ObjectCipher::derive(const Keyring& keyring) {
  std::string message = std::string("object") + '\0' + key_ + '\0';
  message.append(reinterpret_cast<const char*>(salt_.data()), salt_.size());
  const Key256& object_key = keyring.object_keys[generation_];
  data_key_ = hmac(object_key.data(), object_key.size(), message);
}

std::string ObjectCipher::header() const {
  std::string out(kObjectMagic, 4);
  out += static_cast<char>(kFormatVersion);
  out += static_cast<char>(generation_);
  out.append(2, '\0');
  put_u32(out, kChunkBytes);
  put_u64(out, size_);
  out.append(reinterpret_cast<const char*>(salt_.data()), salt_.size());
  const auto mac = hmac(data_key_.data(), data_key_.size(), std::string("header") + '\0' + out);
  out.append(reinterpret_cast<const char*>(mac.data()), kObjectHeaderBytes - kHeaderMacOffset);
  return out;
}

void ObjectCipher::seal_chunks(uint64_t first, std::string_view plaintext, std::string& out) const {
  uint64_t index = first;
  size_t at = 0;
  do {
    const size_t length = std::min<size_t>(kChunkBytes, plaintext.size() - at);
    const bool last = index + 1 == chunks();
    if (length != kChunkBytes && !last)
      throw Error(ExitCode::internal, fmt::format("seal_chunks: chunk {} of {} is partial", index, chunks()));
    const auto nonce = chunk_nonce(index);
    const char aad = last ? 1 : 0;
    gcm_seal(data_key_.data(), nonce.data(), std::string_view(&aad, 1), plaintext.substr(at, length), out);
    at += length;
    ++index;
  } while (at < plaintext.size());
}

void ObjectCipher::seal_in_place(uint64_t first, std::string& buffer) const {
  const size_t plain = buffer.size();
  const uint64_t count = plain == 0 ? 1 : (plain + kChunkBytes - 1) / kChunkBytes;
  if (first + count > chunks() || (first + count < chunks() && plain != count * kChunkBytes))
    throw Error(ExitCode::internal, fmt::format("seal_in_place: {} bytes from chunk {} are not whole chunks of an "
                                                "object of {} chunks", plain, first, chunks()));
  const size_t lead = first == 0 ? kObjectHeaderBytes : 0;
  buffer.resize(lead + plain + count * kTagBytes);
  // Last chunk first: each moves up by the header and the tags before it, never onto bytes of a
  // chunk not yet moved.
  for (uint64_t j = count; j-- > 0;) {
    const size_t from = j * kChunkBytes, length = std::min<size_t>(kChunkBytes, plain - from);
    const size_t to = lead + j * (kChunkBytes + kTagBytes);
    if (to != from) std::memmove(buffer.data() + to, buffer.data() + from, length);
    const uint64_t index = first + j;
    const auto nonce = chunk_nonce(index);
    const char aad = index + 1 == chunks() ? 1 : 0;
    gcm_seal_to(data_key_.data(), nonce.data(), std::string_view(&aad, 1), buffer.data() + to, length,
                buffer.data() + to);
  }
  if (lead) {
    const std::string head = header();
    std::memcpy(buffer.data(), head.data(), head.size());
  }
}

void ObjectCipher::open_chunk_to(uint64_t index, const char* sealed, size_t size, char* out,
                                 const std::string& where) const {
  const auto nonce = chunk_nonce(index);
  const char aad = index + 1 == chunks() ? 1 : 0;
  if (index >= chunks() || size != sealed_chunk_size(index) ||
      !gcm_open_to(data_key_.data(), nonce.data(), std::string_view(&aad, 1), sealed, size, out))
    fail<IntegrityError>("cannot decrypt {}: chunk {} does not authenticate (changed, reordered or cut short)", where,
                         index);
}

void ObjectCipher::open_chunks(uint64_t first, std::string_view sealed, std::string& out,
                               const std::string& where) const {
  uint64_t index = first;
  size_t at = 0;
  do {
    const size_t length = std::min<size_t>(kChunkBytes + kTagBytes, sealed.size() - at);
    const bool last = index + 1 == chunks();
    const auto nonce = chunk_nonce(index);
    const char aad = last ? 1 : 0;
    if (index >= chunks() || !gcm_open(data_key_.data(), nonce.data(), std::string_view(&aad, 1),
                                       sealed.substr(at, length), out))
      fail<IntegrityError>("cannot decrypt {}: chunk {} does not authenticate (changed, reordered or cut short)", where,
                           index);
    at += length;
    ++index;
  } while (at < sealed.size());
}

std::string ObjectCipher::seal_all(std::string_view plaintext) const {
  std::string out = header();
  out.reserve(encrypted_size(plaintext.size()));
  seal_chunks(0, plaintext, out);
  return out;
}

std::string open_object(const Keyring& keyring, const std::string& key, std::string_view stored,
                        const std::string& where) {
  ObjectCipher cipher(keyring, key, stored.substr(0, std::min(stored.size(), kObjectHeaderBytes)), where);
  if (stored.size() != encrypted_size(cipher.size()))
    fail<IntegrityError>("cannot decrypt {}: {} bytes stored where its header says {} (cut short or padded)", where,
                         stored.size(), encrypted_size(cipher.size()));
  std::string out;
  out.reserve(cipher.size());
  cipher.open_chunks(0, stored.substr(kObjectHeaderBytes), out, where);
  return out;
}

}  // namespace recmodel::storage
