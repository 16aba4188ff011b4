#include "storage/transfer.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "common/error.h"
#include "common/files.h"
#include "common/text.h"
#include "storage/hashing.h"

namespace recmodel::storage {

namespace {

// Serializes observer calls coming from the transfer threads.
class Notifier {
 public:
  explicit Notifier(const TransferObserver& observer) : observer_(observer) {}
  void start(uint64_t total) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (observer_.start) observer_.start(total);
  }
  void file_start(const std::string& path, uint64_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (observer_.file_start) observer_.file_start(path, size);
  }
  void file_done(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (observer_.file_done) observer_.file_done(path);
  }
  void warn(const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (observer_.warn) observer_.warn(message);
  }
  void advance(const std::string& path, uint64_t bytes, bool large) {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ += bytes;
    if (large) {
      uint64_t& file = file_bytes_[path];
      file += bytes;
      if (observer_.file_advance) observer_.file_advance(path, file);
    }
    if (observer_.advance) observer_.advance(done_);
  }

 private:
  const TransferObserver& observer_;
  std::mutex mutex_;
  uint64_t done_ = 0;
  std::map<std::string, uint64_t> file_bytes_;  // large files in flight (a few at a time)
};

// Runs `worker` on up to `count` threads, the caller's included, and waits for all of them.
// Threads the system refuses (an address-space or process limit) are not started: fewer
// workers share the work, and no joinable thread is ever destroyed (std::terminate).
void run_workers(size_t count, const std::function<void()>& worker) {
  std::vector<std::thread> pool;
  try {
    pool.reserve(count);
    for (size_t w = 1; w < count; ++w) pool.emplace_back(worker);
  } catch (...) {
  }
  if (count) worker();
  for (auto& thread : pool) thread.join();
}

// The error a worker thread hands back: an allocation failure becomes a clear DataError.
std::exception_ptr worker_error() {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return std::make_exception_ptr(DataError(
        "not enough memory for the transfer buffers; lower --jobs or --part-size (or raise the memory limit)"));
  } catch (...) {
    return std::current_exception();
  }
}

// Returns how many buffers of `buffer` bytes fit in `budget` (at least 1, at most `jobs`).
int jobs_within(int jobs, uint64_t budget, uint64_t buffer) {
  uint64_t fit = std::max<uint64_t>(1, budget / std::max<uint64_t>(buffer, 1));
  return static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(std::max(jobs, 1)), fit));
}

// Calls `body(i)` for i in [0, n) from up to `jobs` threads, handing out indices in order;
// stops handing out work after the first failure and rethrows it.
void for_each_parallel(size_t n, int jobs, const std::function<void(size_t)>& body) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (;;) {
      size_t i = next++;
      if (i >= n || failed) return;
      try {
        body(i);
      } catch (...) {
        std::exception_ptr caught = worker_error();
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = caught;
        failed = true;
        return;
      }
    }
  };
  run_workers(std::min<size_t>(std::max(jobs, 1), n), worker);
  if (error) std::rethrow_exception(error);
}

// The parts of one large object: `fetch` fills a worker's buffer with part i (in parallel),
// `ordered` sees the parts one at a time in index order (the running SHA-256), then `store`
// puts them away (in parallel). Each worker holds one buffer: memory is jobs x part size.
void run_parts(size_t count, int jobs, const std::function<void(size_t, std::string&)>& fetch,
               const std::function<void(size_t, const std::string&)>& ordered,
               const std::function<void(size_t, std::string&)>& store) {
  std::mutex mutex;
  std::condition_variable turn_changed;
  size_t turn = 0;
  bool failed = false;
  std::exception_ptr error;
  std::atomic<size_t> next{0};
  auto worker = [&] {
    std::string buffer;
    for (;;) {
      size_t i = next++;
      if (i >= count) return;
      try {
        {
          std::lock_guard<std::mutex> lock(mutex);
          if (failed) return;
        }
        fetch(i, buffer);
        {
          std::unique_lock<std::mutex> lock(mutex);
          turn_changed.wait(lock, [&] { return turn == i || failed; });
          if (failed) return;
        }
        ordered(i, buffer);
        {
          std::lock_guard<std::mutex> lock(mutex);
          ++turn;
        }
        turn_changed.notify_all();
        store(i, buffer);
      } catch (...) {
        std::exception_ptr caught = worker_error();
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = caught;
        failed = true;
        turn_changed.notify_all();
        return;
      }
    }
  };
  run_workers(std::min<size_t>(std::max(jobs, 1), count), worker);
  if (error) std::rethrow_exception(error);
}

struct Object {
  std::string sha256;
  uint64_t size = 0;
  std::string path;  // the first manifest path holding it
};

std::vector<Object> distinct_objects(const Manifest& manifest) {
  std::vector<Object> objects;
  std::set<std::string> seen;
  for (const auto& file : manifest.files)
    if (seen.insert(file.sha256).second) objects.push_back(Object{file.sha256, file.size, file.path});
  return objects;
}

// Checks each object's declared size against the store's (HEAD / stat) before anything is
// allocated or written: a manifest cannot make recmodel reserve memory or disk it does not need.
void check_declared_sizes(ObjectStore& store, const std::vector<Object>& objects, int jobs, const char* outcome) {
  for_each_parallel(objects.size(), jobs, [&](size_t i) {
    const Object& object = objects[i];
    const std::string key = object_key(object.sha256);
    auto real = store.size_of(key);
    if (!real)
      fail<IntegrityError>("{} (file '{}') is missing: the remote lacks an object its manifest lists; {}",
                           store.describe(key), object.path, outcome);
    if (*real != object.size) store.explain_size_mismatch(key);
    if (*real != object.size)
      fail<IntegrityError>("{} (file '{}') holds {} bytes, the manifest says {}: the remote was tampered with; {}",
                           store.describe(key), object.path, *real, object.size, outcome);
  });
}

uint64_t part_size_for(uint64_t size, uint64_t part_size) {
  // S3 allows 10,000 parts: grow the parts of huge objects to fit.
  uint64_t minimum = (size + 9999) / 10000;
  // Whole 64 KiB units, so an encrypted remote's chunks never straddle two parts.
  constexpr uint64_t unit = uint64_t{64} << 10;
  return (std::max(part_size, minimum) + unit - 1) / unit * unit;
}

using Reader = std::function<void(uint64_t offset, uint64_t length, char* out)>;

class LocalFile {
 public:
  explicit LocalFile(const fs::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail<DataError>("{}: cannot open: {}", path.string(), std::strerror(errno));
  }
  ~LocalFile() { ::close(fd_); }
  void read(uint64_t offset, uint64_t length, char* out) const {
    uint64_t done = 0;
    while (done < length) {
      ssize_t n = ::pread(fd_, out + done, length - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail<DataError>("{}: read failed: {}", path_.string(), std::strerror(errno));
      if (n == 0)
        fail<IntegrityError>("{}: changed while pushing (now shorter than the {} bytes hashed); run push again",
                             path_.string(), offset + length);
      done += static_cast<uint64_t>(n);
    }
  }

 private:
  fs::path path_;
  int fd_;
};

// Moves one object to `store` from `read`, checking its SHA-256 on the way. `changed` words the
// error when the bytes read do not hash to the expected digest.
void put_object(const Object& object, const Reader& read, ObjectStore& store, const TransferOptions& options,
                Notifier& notify, TransferStats& stats, std::mutex& stats_mutex,
                const std::function<std::string(const std::string& actual)>& changed) {
  const std::string key = object_key(object.sha256);
  if (object.size <= options.multipart_threshold) {
    std::string buffer(object.size, '\0');
    read(0, object.size, buffer.data());
    std::string actual = sha256_hex(buffer);
    if (actual != object.sha256) throw IntegrityError(changed(actual));
    store.write(key, buffer, object.sha256);
    notify.advance(object.path, object.size, false);
    std::lock_guard<std::mutex> lock(stats_mutex);
    ++stats.transferred_objects;
    stats.transferred_bytes += object.size;
    return;
  }
  uint64_t part = part_size_for(object.size, options.part_size);
  size_t count = static_cast<size_t>((object.size + part - 1) / part);
  // S3's 10,000-part limit grows the parts of huge objects; fewer of them are then in flight.
  int jobs = jobs_within(options.jobs, options.memory_budget, part);
  auto writer = store.write_parts(key, object.size, part);
  notify.file_start(object.path, object.size);
  Sha256Stream sha;
  std::atomic<uint64_t> moved{0}, reused{0}, reused_parts{0};
  try {
    run_parts(
        count, jobs,
        [&](size_t i, std::string& buffer) {
          uint64_t offset = i * part, length = std::min(part, object.size - offset);
          const uint64_t room = part + writer->put_slack(part);
          if (buffer.capacity() < room) buffer.reserve(room);
          buffer.resize(length);
          read(offset, length, buffer.data());
        },
        [&](size_t, const std::string& buffer) { sha.update(buffer); },
        [&](size_t i, std::string& buffer) {
          const size_t length = buffer.size();
          if (writer->put(i, i * part, buffer)) {
            reused += length;
            ++reused_parts;
          } else {
            moved += length;
          }
          notify.advance(object.path, length, true);
        });
    std::string actual = sha.hex();
    if (actual != object.sha256) throw IntegrityError(changed(actual));
    writer->commit();
  } catch (const ConnectionError&) {
    writer->keep();  // the next run resumes from the parts already stored
    throw;
  } catch (...) {
    writer->abort();
    throw;
  }
  notify.file_done(object.path);
  std::lock_guard<std::mutex> lock(stats_mutex);
  ++stats.transferred_objects;
  stats.transferred_bytes += moved;
  stats.resumed_bytes += reused;
  stats.resumed_parts += reused_parts;
}

// Returns the objects `store` lacks, or holds with another size or (where it can hash them
// locally) other bytes, checking them in parallel; those it holds wrongly are named by a warning.
std::vector<Object> missing_objects(const std::vector<Object>& objects, ObjectStore& store, int jobs,
                                    TransferStats& stats, Notifier& notify) {
  enum : char { absent, present, wrong };
  std::vector<char> state(objects.size(), absent);
  for_each_parallel(objects.size(), jobs, [&](size_t i) {
    const Object& object = objects[i];
    const std::string key = object_key(object.sha256);
    auto size = store.size_of(key);
    if (!size) return;
    if (*size != object.size) {
      notify.warn(fmt::format("{} holds {} bytes, not the {} of the object it is named after (file '{}'); copying "
                              "it again",
                              store.describe(key), *size, object.size, object.path));
      state[i] = wrong;
      return;
    }
    auto digest = store.local_sha256(key);
    if (digest && *digest != object.sha256) {
      notify.warn(fmt::format("{} is corrupt (SHA-256 {}, file '{}'); copying it again", store.describe(key),
                              *digest, object.path));
      state[i] = wrong;
      return;
    }
    state[i] = present;
  });
  std::vector<Object> missing;
  for (size_t i = 0; i < objects.size(); ++i) {
    if (state[i] == present) {
      ++stats.skipped_objects;
      stats.skipped_bytes += objects[i].size;
    } else {
      if (state[i] == wrong) ++stats.replaced_objects;
      missing.push_back(objects[i]);
    }
  }
  return missing;
}

// Checks that every object just copied is at the destination with its size (HEAD / stat), so no
// success is reported for an object the store did not keep.
void check_copied(ObjectStore& store, const std::vector<Object>& objects, int jobs) {
  for_each_parallel(objects.size(), jobs, [&](size_t i) {
    const Object& object = objects[i];
    const std::string key = object_key(object.sha256);
    auto size = store.size_of(key);
    if (!size)
      fail<IntegrityError>("{} (file '{}') is missing right after it was copied; the destination did not keep it",
                           store.describe(key), object.path);
    if (*size != object.size)
      fail<IntegrityError>("{} (file '{}') holds {} bytes right after it was copied, the manifest says {}; the "
                           "destination changed it",
                           store.describe(key), object.path, *size, object.size);
  });
}

// Runs `move` over the small objects in parallel (one request each), then over the large ones,
// a few at a time so no worker idles at the end of a file; `move` gets the part jobs and the
// share of the memory budget it may use. Either way at most options.jobs buffers are in use, and
// together they hold at most options.memory_budget bytes (or one part, when a part is larger).
void move_objects(const std::vector<Object>& objects, const TransferOptions& options,
                  const std::function<void(const Object&, const TransferOptions&)>& move) {
  std::vector<Object> small, large;
  for (const auto& object : objects) (object.size <= options.multipart_threshold ? small : large).push_back(object);
  uint64_t largest_small = 0, largest_part = 0;
  for (const auto& object : small) largest_small = std::max(largest_small, object.size);
  for (const auto& object : large) largest_part = std::max(largest_part, part_size_for(object.size, options.part_size));
  // Each small object is read whole: only as many at once as the budget holds.
  for_each_parallel(small.size(), jobs_within(options.jobs, options.memory_budget, largest_small),
                    [&](size_t i) { move(small[i], options); });
  int files = static_cast<int>(std::min<size_t>(large.size(), static_cast<size_t>(std::max(1, options.jobs / 4))));
  files = jobs_within(files, options.memory_budget, largest_part);
  TransferOptions per_file = options;
  per_file.jobs = std::max(1, options.jobs / std::max(files, 1));
  per_file.memory_budget = options.memory_budget / static_cast<uint64_t>(std::max(files, 1));
  for_each_parallel(large.size(), files, [&](size_t i) { move(large[i], per_file); });
}

}  // namespace

std::optional<uint64_t> parse_byte_size(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 15) return std::nullopt;
  uint64_t number = std::stoull(text.substr(0, digits));
  static const std::map<std::string, uint64_t> units = {
      {"", 1},          {"B", 1},          {"KB", 1000},         {"kB", 1000},        {"KiB", 1024},
      {"MB", 1000000},  {"MiB", 1 << 20},  {"GB", 1000000000},   {"GiB", 1ull << 30}, {"TiB", 1ull << 40}};
  auto unit = units.find(text.substr(digits));
  if (unit == units.end()) return std::nullopt;
  if (number > (std::numeric_limits<uint64_t>::max() / unit->second)) return std::nullopt;
  return number * unit->second;
}

std::string human_bytes(uint64_t bytes) {
  if (bytes < 1000) return fmt::format("{} B", bytes);
  const char* units[] = {"kB", "MB", "GB", "TB"};
  double value = static_cast<double>(bytes);
  int index = -1;
  while (value >= 1000 && index < 3) {
    value /= 1000;
    ++index;
  }
  return fmt::format("{:.1f} {}", value, units[index]);
}

namespace {

// The manifest's distinct objects that `target` lacks (counted in `stats`), in manifest order.
std::vector<Object> plan_transfer(const Manifest& manifest, ObjectStore& target, int jobs, TransferStats& stats,
                                  Notifier& notify) {
  std::vector<Object> objects = distinct_objects(manifest);
  stats.objects = objects.size();
  return missing_objects(objects, target, jobs, stats, notify);
}

uint64_t bytes_of(const std::vector<Object>& objects) {
  uint64_t total = 0;
  for (const auto& object : objects) total += object.size;
  return total;
}

}  // namespace

TransferStats upload_objects(const fs::path& dir, const Manifest& manifest, ObjectStore& store,
                             const TransferOptions& options, const TransferObserver& observer) {
  TransferStats stats;
  Notifier notify(observer);
  std::vector<Object> missing = plan_transfer(manifest, store, options.jobs, stats, notify);
  notify.start(bytes_of(missing));
  std::mutex stats_mutex;
  move_objects(missing, options, [&](const Object& object, const TransferOptions& options) {
    fs::path path = dir / object.path;
    LocalFile file(path);
    put_object(
        object, [&](uint64_t offset, uint64_t length, char* out) { file.read(offset, length, out); }, store, options,
        notify, stats, stats_mutex, [&](const std::string& actual) {
          return fmt::format("{}: changed while pushing (SHA-256 {} now, {} when listed); run push again",
                             path.string(), actual, object.sha256);
        });
  });
  check_copied(store, missing, options.jobs);
  return stats;
}

TransferStats copy_objects(ObjectStore& from, ObjectStore& to, const Manifest& manifest,
                           const TransferOptions& options, const TransferObserver& observer) {
  TransferStats stats;
  Notifier notify(observer);
  std::vector<Object> missing = plan_transfer(manifest, to, options.jobs, stats, notify);
  // The source remote is not trusted: its objects must hold what its manifest declares.
  check_declared_sizes(from, missing, options.jobs, "nothing was copied");
  notify.start(bytes_of(missing));
  std::mutex stats_mutex;
  TransferOptions bounded = options;
  bounded.part_size = std::min(options.part_size, kMaxPartBuffer);
  bounded.multipart_threshold = std::min(options.multipart_threshold, kMaxPartBuffer);
  move_objects(missing, bounded, [&](const Object& object, const TransferOptions& options) {
    const std::string key = object_key(object.sha256);
    put_object(
        object, [&](uint64_t offset, uint64_t length, char* out) { from.read_range(key, offset, length, out); }, to,
        options, notify, stats, stats_mutex, [&](const std::string& actual) {
          return fmt::format("{} (file '{}') is corrupt: its SHA-256 is {}, not {}; nothing was copied for it",
                             from.describe(key), object.path, actual, object.sha256);
        });
  });
  check_copied(to, missing, options.jobs);
  return stats;
}

namespace {

constexpr const char* kTreeDir = "files";
constexpr const char* kPartsDir = "parts";

// Closes a file descriptor on every path out.
struct FdCloser {
  int fd = -1;
  explicit FdCloser(int descriptor) : fd(descriptor) {}
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  int close() {
    int result = fd >= 0 ? ::close(fd) : 0;
    fd = -1;
    return result;
  }
};

void read_all_at(int fd, char* out, uint64_t length, uint64_t offset, const fs::path& path) {
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, out + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail<DataError>("{}: read failed: {}", quoted_for_message(path.string()), std::strerror(errno));
    if (n == 0) fail<DataError>("{}: shorter than expected", quoted_for_message(path.string()));
    done += static_cast<uint64_t>(n);
  }
}

void write_all_at(int fd, const char* data, uint64_t length, uint64_t offset, const fs::path& path) {
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pwrite(fd, data + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail<DataError>("{}: write failed: {}", quoted_for_message(path.string()), std::strerror(errno));
    done += static_cast<uint64_t>(n);
  }
}

// Creates `path` afresh for writing: whatever is there (a link, a stale file) is unlinked, never
// followed, and O_EXCL|O_NOFOLLOW makes the new file ours or the call fails.
int create_exclusive(const fs::path& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    fail<DataError>("{}: cannot remove: {}", quoted_for_message(path.string()), std::strerror(errno));
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) fail<DataError>("{}: cannot create: {}", quoted_for_message(path.string()), std::strerror(errno));
  return fd;
}

// Makes `dir` a real directory: an entry there that is not one (a link, a file) is removed.
void ensure_real_directory(const fs::path& dir, mode_t mode) {
  struct stat st;
  if (::lstat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return;
    if (::unlink(dir.c_str()) != 0) fail<DataError>("{}: cannot remove: {}", quoted_for_message(dir.string()), std::strerror(errno));
  }
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST)
    fail<DataError>("{}: cannot create: {}", quoted_for_message(dir.string()), std::strerror(errno));
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    fail<DataError>("{}: is not a directory", quoted_for_message(dir.string()));
}

// Creates the parent directories of `relative` under `root` one by one; an entry on the way that
// is not a real directory (a link) is an error, so nothing is ever written through it.
void make_parents(const fs::path& root, const std::string& relative) {
  fs::path dir = root;
  for (const auto& part : fs::path(relative).parent_path()) {
    dir /= part;
    if (::mkdir(dir.c_str(), 0777) == 0) continue;
    if (errno != EEXIST) fail<DataError>("{}: cannot create: {}", quoted_for_message(dir.string()), std::strerror(errno));
    struct stat st;
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      fail<IntegrityError>("{}: is not a directory (a link or file appeared while pulling); nothing was written "
                           "through it",
                           quoted_for_message(dir.string()));
  }
}

// Flushes `fd`, closes it and renames `temp` to `target` (a link at `target` is replaced, not followed).
void finish_file(FdCloser& file, const fs::path& temp, const fs::path& target) {
  if (::fsync(file.fd) != 0) fail<DataError>("{}: cannot flush: {}", quoted_for_message(temp.string()), std::strerror(errno));
  if (file.close() != 0) fail<DataError>("{}: cannot close: {}", quoted_for_message(temp.string()), std::strerror(errno));
  if (::rename(temp.c_str(), target.c_str()) != 0)
    fail<DataError>("{}: cannot rename into place: {}", quoted_for_message(target.string()), std::strerror(errno));
}

// Writes `data` to the fresh file `temp`, flushes it and renames it to `target`.
void install_bytes(std::string_view data, const fs::path& temp, const fs::path& target) {
  FdCloser file(create_exclusive(temp));
  write_all_at(file.fd, data.data(), data.size(), 0, temp);
  finish_file(file, temp, target);
}

// Copies the verified file `source` to `target` through the fresh file `temp`, 1 MiB at a time.
void install_copy(const fs::path& source, uint64_t size, const fs::path& temp, const fs::path& target) {
  FdCloser in(::open(source.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (in.fd < 0) fail<DataError>("{}: cannot open: {}", quoted_for_message(source.string()), std::strerror(errno));
  FdCloser out(create_exclusive(temp));
  std::string buffer(std::min<uint64_t>(size, uint64_t{1} << 20), '\0');
  for (uint64_t offset = 0; offset < size;) {
    uint64_t length = std::min<uint64_t>(buffer.size(), size - offset);
    read_all_at(in.fd, buffer.data(), length, offset, source);
    write_all_at(out.fd, buffer.data(), length, offset, temp);
    offset += length;
  }
  finish_file(out, temp, target);
}

// Returns whether `path` is a regular file (not a link) of `size` bytes hashing to `sha256`.
bool verified_in_place(const fs::path& path, uint64_t size, const std::string& sha256) {
  FdCloser file(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (file.fd < 0) return false;
  struct stat st;
  // A hard link shares its inode with a file elsewhere: never kept, whatever it holds.
  if (::fstat(file.fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
      static_cast<uint64_t>(st.st_size) != size)
    return false;
  Sha256Stream sha;
  std::string buffer(std::min<uint64_t>(size, uint64_t{1} << 20), '\0');
  for (uint64_t offset = 0; offset < size;) {
    uint64_t length = std::min<uint64_t>(buffer.size(), size - offset);
    ssize_t n = ::pread(file.fd, buffer.data(), length, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sha.update(std::string_view(buffer.data(), static_cast<size_t>(n)));
    offset += static_cast<uint64_t>(n);
  }
  return sha.hex() == sha256;
}

// Removes from a work directory everything this pull does not reuse: links, devices, files and
// folders the manifest does not list, and parts of objects it does not need. Nothing is followed.
void clean_staging(const fs::path& staging, const Manifest& manifest) {
  std::set<std::string> files, dirs, parts;
  for (const auto& file : manifest.files) {
    files.insert(file.path);
    for (size_t slash = file.path.find('/'); slash != std::string::npos; slash = file.path.find('/', slash + 1))
      dirs.insert(file.path.substr(0, slash));
    parts.insert(file.sha256 + ".part");
    parts.insert(file.sha256 + ".log");
  }
  std::error_code ec;
  std::vector<fs::path> unwanted;
  auto list = [&](const fs::path& dir, const std::function<bool(const fs::directory_entry&)>& keep) {
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
      if (!keep(*it)) unwanted.push_back(it->path());
    if (ec) fail<DataError>("{}: cannot list: {}", dir.string(), ec.message());
  };
  list(staging, [](const fs::directory_entry& entry) {
    std::string name = entry.path().filename().string();
    return name == kTreeDir || name == kPartsDir;
  });
  for (const auto& path : unwanted) fs::remove_all(path, ec);  // removes links, never their targets
  unwanted.clear();
  ensure_real_directory(staging / kTreeDir, 0777);
  ensure_real_directory(staging / kPartsDir, 0700);
  list(staging / kPartsDir, [&](const fs::directory_entry& entry) {
    std::error_code status_ec;
    return fs::is_regular_file(entry.symlink_status(status_ec)) && parts.count(entry.path().filename().string());
  });
  const fs::path tree = staging / kTreeDir;
  for (auto it = fs::recursive_directory_iterator(tree, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code status_ec;
    fs::file_status status = it->symlink_status(status_ec);
    std::string relative = it->path().lexically_relative(tree).generic_string();
    bool keep = (fs::is_directory(status) && dirs.count(relative)) ||
                (fs::is_regular_file(status) && files.count(relative));
    if (!keep) {
      unwanted.push_back(it->path());
      if (fs::is_directory(status)) it.disable_recursion_pending();
    }
  }
  if (ec) fail<DataError>("{}: cannot list: {}", tree.string(), ec.message());
  for (const auto& path : unwanted) {
    fs::remove_all(path, ec);
    if (ec) fail<DataError>("{}: cannot remove: {}", path.string(), ec.message());
  }
}

// The chunks of a large download already in its .part file, from the log beside it.
class ChunkLog {
 public:
  ChunkLog(fs::path path, uint64_t chunk, uint64_t size, size_t count) : path_(std::move(path)) {
    header_ = fmt::format("recmodel-pull-chunks {} {}", chunk, size);
    FdCloser file(::open(path_.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    struct stat st;
    // A real log has a header and one short line per chunk; anything else is not one.
    if (file.fd < 0 || ::fstat(file.fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
        static_cast<uint64_t>(st.st_size) > header_.size() + 1 + 21 * uint64_t{count})
      return;
    std::string text(static_cast<size_t>(st.st_size), '\0');
    if (::pread(file.fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) return;
    std::stringstream in(text);
    std::string line;
    if (!std::getline(in, line) || line != header_) return;
    while (std::getline(in, line)) {
      if (line.empty() || line.size() > 18 || !std::all_of(line.begin(), line.end(), ::isdigit)) continue;
      uint64_t index = std::stoull(line);
      if (index < count) done_.insert(index);
    }
  }
  // Returns whether the log matched this download (chunk size and object size) and has chunks.
  bool valid() const { return !done_.empty(); }
  bool done(size_t index) const { return done_.count(index) > 0; }
  void open_for_append(bool fresh) {
    if (fresh) {
      fd_ = create_exclusive(path_);
      append_line(header_);
    } else {
      fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
      struct stat st;
      if (fd_ >= 0 && (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1)) {
        // Swapped for a link since it was read: start a log of our own.
        ::close(fd_);
        fd_ = create_exclusive(path_);
        append_line(header_);
      }
      if (fd_ < 0) fail<DataError>("{}: cannot write: {}", path_.string(), std::strerror(errno));
    }
  }
  void record(size_t index) {
    std::lock_guard<std::mutex> lock(mutex_);
    append_line(std::to_string(index));
  }
  ~ChunkLog() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  void append_line(const std::string& text) {
    std::string line = text + "\n";
    if (::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      fail<DataError>("{}: write failed: {}", path_.string(), std::strerror(errno));
  }
  fs::path path_;
  std::string header_;
  std::set<uint64_t> done_;
  int fd_ = -1;
  std::mutex mutex_;
};

void fsync_path(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Refuses a download that cannot fit on the disk holding `staging` (minus what is already there).
void check_free_space(const fs::path& staging, uint64_t needed, uint64_t already) {
  struct statvfs fs_info;
  if (::statvfs(staging.c_str(), &fs_info) != 0) return;
  uint64_t available = static_cast<uint64_t>(fs_info.f_bavail) * static_cast<uint64_t>(fs_info.f_frsize);
  if (needed > already && needed - already > available)
    fail<DataError>("{}: the pull needs {} more and only {} is free there", staging.parent_path().string(),
                    human_bytes(needed - already), human_bytes(available));
}

struct Download {
  uint64_t moved = 0, resumed = 0, resumed_parts = 0;
};

// Downloads a large object to `part_path` in parts of `part` bytes, resuming the chunks its log
// records; every byte, resumed or fetched, goes through the SHA-256. Returns the digest; on a
// mismatch the part and its log are removed.
std::string download_large(ObjectStore& store, const Object& object, const fs::path& part_path,
                           const fs::path& log_path, uint64_t part, int jobs, bool allow_resume, Notifier& notify,
                           Download& result) {
  const std::string key = object_key(object.sha256);
  size_t count = static_cast<size_t>((object.size + part - 1) / part);
  ChunkLog log(log_path, part, object.size, count);
  int fd = -1;
  bool resume = false;
  if (allow_resume && log.valid()) {
    fd = ::open(part_path.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    // Only a regular file of ours alone: a hard link would write the download into a file elsewhere.
    if (fd >= 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
        static_cast<uint64_t>(st.st_size) == object.size) {
      resume = true;
    } else if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
  }
  if (!resume) {
    fd = create_exclusive(part_path);
    // The size was checked against the store's object, so this reserves no more than it holds.
    if (::ftruncate(fd, static_cast<off_t>(object.size)) != 0) {
      int saved = errno;
      ::close(fd);
      fail<DataError>("{}: cannot size to {} bytes: {}", part_path.string(), object.size, std::strerror(saved));
    }
  }
  FdCloser closer(fd);
  log.open_for_append(!resume);
  Sha256Stream sha;
  std::atomic<uint64_t> moved{0}, resumed{0}, resumed_parts{0};
  run_parts(
      count, jobs,
      [&](size_t i, std::string& buffer) {
        uint64_t offset = i * part, length = std::min(part, object.size - offset);
        buffer.resize(length);
        if (resume && log.done(i)) {
          read_all_at(fd, buffer.data(), length, offset, part_path);
          resumed += length;
          ++resumed_parts;
        } else {
          store.read_range(key, offset, length, buffer.data());
          write_all_at(fd, buffer.data(), length, offset, part_path);
          log.record(i);
          moved += length;
        }
      },
      [&](size_t, const std::string& buffer) { sha.update(buffer); },
      [&](size_t, const std::string& buffer) { notify.advance(object.path, buffer.size(), true); });
  std::string actual = sha.hex();
  result.moved += moved;
  result.resumed = resumed;
  result.resumed_parts = resumed_parts;
  if (actual != object.sha256) {
    closer.close();
    ::unlink(part_path.c_str());
    ::unlink(log_path.c_str());
    return actual;
  }
  if (::fsync(fd) != 0) fail<DataError>("{}: cannot flush: {}", part_path.string(), std::strerror(errno));
  return actual;
}

// Checks that `tree` holds exactly the manifest's files, each a regular file of its size, and
// flushes its directories.
void check_tree(const fs::path& tree, const Manifest& manifest) {
  std::map<std::string, uint64_t> expected;
  for (const auto& file : manifest.files) expected[file.path] = file.size;
  size_t regular = 0;
  std::vector<fs::path> dirs{tree};
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(tree, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code status_ec;
    fs::file_status status = it->symlink_status(status_ec);
    std::string relative = it->path().lexically_relative(tree).generic_string();
    if (fs::is_directory(status)) {
      dirs.push_back(it->path());
      continue;
    }
    if (!fs::is_regular_file(status))
      fail<IntegrityError>("{}: not a regular file (a link or device appeared while pulling); refusing to finish",
                           quoted_for_message(it->path().string()));
    auto found = expected.find(relative);
    if (found == expected.end())
      fail<IntegrityError>("{}: a file the manifest does not list appeared while pulling; refusing to finish",
                           quoted_for_message(it->path().string()));
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0 || static_cast<uint64_t>(st.st_size) != found->second)
      fail<IntegrityError>("{}: not the {} bytes the manifest lists; refusing to finish",
                           quoted_for_message(it->path().string()), found->second);
    if (st.st_nlink != 1)
      fail<IntegrityError>("{}: has {} hard links (one appeared while pulling, shared with a file elsewhere); "
                           "refusing to finish",
                           quoted_for_message(it->path().string()), st.st_nlink);
    ++regular;
  }
  if (ec) fail<DataError>("{}: cannot list: {}", tree.string(), ec.message());
  if (regular != manifest.files.size())
    fail<IntegrityError>("{}: {} files were written but the manifest lists {}; refusing to report success",
                         tree.string(), regular, manifest.files.size());
  for (const auto& dir : dirs) fsync_path(dir);
}

}  // namespace

namespace {

// `.OUT.recmodel-pull-` + 12 hex + `-XXXXXX`, beside --out.
std::string staging_prefix(const fs::path& out_name, const std::string& manifest_sha) {
  return "." + out_name.string() + ".recmodel-pull-" + manifest_sha.substr(0, 12) + "-";
}

fs::path absolute_out(const fs::path& out) {
  fs::path absolute = fs::absolute(out).lexically_normal();
  if (absolute.filename().empty()) absolute = absolute.parent_path();
  return absolute;
}

}  // namespace

fs::path pull_tree(const fs::path& staging) { return staging / kTreeDir; }

PullStaging::PullStaging(const fs::path& out, const std::string& manifest_text) {
  const fs::path absolute = absolute_out(out);
  fs::path parent = absolute.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) fail<DataError>("{}: cannot create: {}", parent.string(), ec.message());
  const std::string prefix = staging_prefix(absolute.filename(), sha256_hex(manifest_text));
  // An interrupted pull's directory: ours (owner, 0700), a real directory, not locked by a pull
  // in progress. Its contents are still checked file by file (download_files).
  std::vector<std::pair<int64_t, fs::path>> candidates;
  for (auto it = fs::directory_iterator(parent, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.size() != prefix.size() + 6 || name.compare(0, prefix.size(), prefix) != 0) continue;
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() ||
        (st.st_mode & 0077) != 0)
      continue;
    candidates.emplace_back(static_cast<int64_t>(st.st_mtime), it->path());
  }
  std::sort(candidates.rbegin(), candidates.rend());
  for (const auto& candidate : candidates) {
    int fd = ::open(candidate.second.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      continue;
    }
    path_ = candidate.second;
    lock_fd_ = fd;
    resumed_ = true;
    return;
  }
  // Made under a name no other pull takes for a candidate, locked, and only then given its real
  // name: a concurrent pull of the same manifest never adopts a directory before it is locked.
  std::string pattern = (parent / (prefix + "new-XXXXXX")).string();
  if (!::mkdtemp(pattern.data()))
    fail<DataError>("{}: cannot create a staging directory: {}", quoted_for_message(pattern), std::strerror(errno));
  lock_fd_ = ::open(pattern.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int saved = errno;
    ::rmdir(pattern.c_str());
    fail<DataError>("{}: cannot lock the staging directory: {}", quoted_for_message(pattern), std::strerror(saved));
  }
  const std::string suffix = pattern.substr(pattern.size() - 6);
  path_ = parent / (prefix + suffix);
#ifdef RENAME_NOREPLACE
  int renamed = ::renameat2(AT_FDCWD, pattern.c_str(), AT_FDCWD, path_.c_str(), RENAME_NOREPLACE);
  if (renamed != 0 && (errno == EINVAL || errno == ENOSYS)) renamed = ::rename(pattern.c_str(), path_.c_str());
#else
  int renamed = ::rename(pattern.c_str(), path_.c_str());
#endif
  if (renamed != 0) {
    int saved = errno;
    ::rmdir(pattern.c_str());
    fail<DataError>("{}: cannot create a staging directory: {}", quoted_for_message(path_.string()),
                    std::strerror(saved));
  }
}

PullStaging::~PullStaging() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void PullStaging::remove() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
  if (lock_fd_ >= 0) ::close(lock_fd_);
  lock_fd_ = -1;
}


void check_path_lengths(const Manifest& manifest, const fs::path& out, const std::string& what) {
  constexpr size_t kPathMax = 4095;  // PATH_MAX, less the terminating NUL
  constexpr size_t kNameMax = 255;
  const fs::path absolute = absolute_out(out);
  const std::string staging_name = staging_prefix(absolute.filename(), std::string(12, '0')) + "XXXXXX";
  if (staging_name.size() > kNameMax)
    fail<UsageError>("{}: the name is {} bytes; --out's last component can be at most {} bytes (the pull works in "
                     "a hidden directory named after it)",
                     quoted_for_message(out.string()), absolute.filename().string().size(),
                     kNameMax - (staging_name.size() - absolute.filename().string().size()));
  // The longest name each file has while pulling: under <staging>/files/, and its temp names in
  // <staging>/parts/ (named by SHA-256).
  const size_t base = (absolute.parent_path() / staging_name).string().size();
  const size_t parts = base + std::string("/parts/").size() + 64 + std::string(".part").size();
  if (parts > kPathMax)
    fail<UsageError>("{}: the directory's path is {} bytes, too long to pull into (at most about {})",
                     quoted_for_message(out.string()), absolute.string().size(), absolute.string().size() + kPathMax - parts);
  const size_t tree = base + 1 + std::string(kTreeDir).size() + 1;
  for (const auto& file : manifest.files)
    if (tree + file.path.size() > kPathMax)
      fail<DataError>("{}: file {} is {} bytes long; under {} it would be a path of {} bytes (at most {}): pull into "
                      "a shorter --out",
                      what, quoted_for_message(file.path), file.path.size(), quoted_for_message(out.string()),
                      tree + file.path.size(), kPathMax);
}

TransferStats download_files(ObjectStore& store, const Manifest& manifest, const fs::path& staging,
                             const TransferOptions& options, const TransferObserver& observer) {
  TransferStats stats;
  std::vector<Object> objects = distinct_objects(manifest);
  stats.objects = objects.size();
  {
    struct stat st;
    if (::lstat(staging.c_str(), &st) != 0) {
      std::error_code ec;
      fs::create_directories(staging.parent_path(), ec);
      if (::mkdir(staging.c_str(), 0700) != 0)
        fail<DataError>("{}: cannot create: {}", staging.string(), std::strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
      fail<DataError>("{}: is not a directory; refusing to pull through it", staging.string());
    }
  }
  clean_staging(staging, manifest);
  const fs::path tree = staging / kTreeDir, parts = staging / kPartsDir;

  // Files an earlier run completed are kept only when they hash to the manifest's digest.
  std::vector<char> in_place(manifest.files.size(), 0);
  for_each_parallel(manifest.files.size(), options.jobs, [&](size_t i) {
    const ManifestFile& file = manifest.files[i];
    if (verified_in_place(tree / file.path, file.size, file.sha256)) return void(in_place[i] = 1);
    std::error_code ec;
    fs::remove(tree / file.path, ec);
  });
  std::map<std::string, std::vector<const ManifestFile*>> missing_paths;  // by SHA-256
  std::map<std::string, std::string> verified_path;                       // by SHA-256
  for (size_t i = 0; i < manifest.files.size(); ++i) {
    const ManifestFile& file = manifest.files[i];
    if (in_place[i])
      verified_path.emplace(file.sha256, file.path);
    else
      missing_paths[file.sha256].push_back(&file);
  }
  std::vector<Object> todo;
  uint64_t needed = 0, already = 0;
  for (const auto& object : objects) {
    if (verified_path.count(object.sha256)) {
      ++stats.skipped_objects;
      stats.skipped_bytes += object.size;
    } else {
      todo.push_back(object);
      struct stat st;
      if (::lstat((parts / (object.sha256 + ".part")).c_str(), &st) == 0 && S_ISREG(st.st_mode))
        already += static_cast<uint64_t>(st.st_blocks) * 512;
    }
    for (const ManifestFile* file : missing_paths[object.sha256]) needed += file->size;
  }
  check_declared_sizes(store, todo, options.jobs, "nothing was written");
  check_free_space(staging, needed, already);

  // Copies of an object already verified in the tree are made locally.
  for (const auto& [sha256, source] : verified_path)
    for (const ManifestFile* file : missing_paths[sha256]) {
      make_parents(tree, file->path);
      install_copy(tree / source, file->size, parts / (sha256 + ".copy"), tree / file->path);
    }

  Notifier notify(observer);
  notify.start(bytes_of(todo));
  std::mutex stats_mutex;
  TransferOptions bounded = options;
  bounded.part_size = std::min(options.part_size, kMaxPartBuffer);
  bounded.multipart_threshold = std::min(options.multipart_threshold, kMaxPartBuffer);
  move_objects(todo, bounded, [&](const Object& object, const TransferOptions& options) {
    const std::string key = object_key(object.sha256);
    const std::vector<const ManifestFile*>& targets = missing_paths.at(object.sha256);
    for (const ManifestFile* file : targets) make_parents(tree, file->path);
    auto corrupt = [&](const std::string& actual) {
      return fmt::format("checksum mismatch: {} (file '{}') has SHA-256 {}, the manifest says {}; the copy on the "
                         "remote is corrupt, nothing was written",
                         store.describe(key), object.path, actual, object.sha256);
    };
    if (object.size <= options.multipart_threshold) {
      std::string buffer(object.size, '\0');
      store.read_range(key, 0, object.size, buffer.data());
      std::string actual = sha256_hex(buffer);
      if (actual != object.sha256) throw IntegrityError(corrupt(actual));
      for (const ManifestFile* file : targets)
        install_bytes(buffer, parts / (object.sha256 + ".tmp"), tree / file->path);
      notify.advance(object.path, object.size, false);
      std::lock_guard<std::mutex> lock(stats_mutex);
      ++stats.transferred_objects;
      stats.transferred_bytes += object.size;
      return;
    }
    const fs::path part_path = parts / (object.sha256 + ".part"), log_path = parts / (object.sha256 + ".log");
    notify.file_start(object.path, object.size);
    Download result;
    const int jobs = jobs_within(options.jobs, options.memory_budget, options.part_size);
    std::string actual =
        download_large(store, object, part_path, log_path, options.part_size, jobs, true, notify, result);
    // Parts an earlier run left are not trusted: when the whole does not verify, fetch it afresh.
    // The counters then report that fetch alone, so each object's bytes count once.
    if (actual != object.sha256 && result.resumed_parts > 0) {
      Download fresh;
      actual = download_large(store, object, part_path, log_path, options.part_size, jobs, false, notify, fresh);
      result = fresh;
    }
    if (actual != object.sha256) throw IntegrityError(corrupt(actual));
    for (size_t i = 0; i + 1 < targets.size(); ++i)
      install_copy(part_path, object.size, parts / (object.sha256 + ".copy"), tree / targets[i]->path);
    if (::rename(part_path.c_str(), (tree / targets.back()->path).c_str()) != 0)
      fail<DataError>("{}: cannot rename into place: {}", quoted_for_message((tree / targets.back()->path).string()),
                      std::strerror(errno));
    ::unlink(log_path.c_str());
    notify.file_done(object.path);
    std::lock_guard<std::mutex> lock(stats_mutex);
    ++stats.transferred_objects;
    stats.transferred_bytes += result.moved;
    stats.resumed_bytes += result.resumed;
    stats.resumed_parts += result.resumed_parts;
  });
  check_tree(tree, manifest);
  fsync_path(staging);
  return stats;
}

}  // namespace recmodel::storage
