#include "storage/transfer.h"

#include <fcntl.h>
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
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
        return;
      }
    }
  };
  size_t workers = std::min<size_t>(std::max(jobs, 1), n);
  std::vector<std::thread> pool;
  for (size_t w = 1; w < workers; ++w) pool.emplace_back(worker);
  if (workers) worker();
  for (auto& thread : pool) thread.join();
  if (error) std::rethrow_exception(error);
}

// The parts of one large object: `fetch` fills a worker's buffer with part i (in parallel),
// `ordered` sees the parts one at a time in index order (the running SHA-256), then `store`
// puts them away (in parallel). Each worker holds one buffer: memory is jobs x part size.
void run_parts(size_t count, int jobs, const std::function<void(size_t, std::string&)>& fetch,
               const std::function<void(size_t, const std::string&)>& ordered,
               const std::function<void(size_t, const std::string&)>& store) {
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
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
        failed = true;
        turn_changed.notify_all();
        return;
      }
    }
  };
  size_t workers = std::min<size_t>(std::max(jobs, 1), count);
  std::vector<std::thread> pool;
  for (size_t w = 1; w < workers; ++w) pool.emplace_back(worker);
  if (workers) worker();
  for (auto& thread : pool) thread.join();
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

uint64_t part_size_for(uint64_t size, uint64_t part_size) {
  // S3 allows 10,000 parts: grow the parts of huge objects to fit.
  uint64_t minimum = (size + 9999) / 10000;
  return std::max(part_size, minimum);
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
  auto writer = store.write_parts(key, object.size, part);
  notify.file_start(object.path, object.size);
  Sha256Stream sha;
  std::atomic<uint64_t> moved{0}, reused{0}, reused_parts{0};
  try {
    run_parts(
        count, options.jobs,
        [&](size_t i, std::string& buffer) {
          uint64_t offset = i * part, length = std::min(part, object.size - offset);
          buffer.resize(length);
          read(offset, length, buffer.data());
        },
        [&](size_t, const std::string& buffer) { sha.update(buffer); },
        [&](size_t i, const std::string& buffer) {
          if (writer->reusable(i, buffer)) {
            reused += buffer.size();
            ++reused_parts;
          } else {
            writer->write(i, i * part, buffer);
            moved += buffer.size();
          }
          notify.advance(object.path, buffer.size(), true);
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

// Returns the objects `store` lacks (or holds with another size), checking them in parallel.
std::vector<Object> missing_objects(const std::vector<Object>& objects, ObjectStore& store, int jobs,
                                    TransferStats& stats) {
  std::vector<char> present(objects.size(), 0);
  for_each_parallel(objects.size(), jobs, [&](size_t i) {
    auto size = store.size_of(object_key(objects[i].sha256));
    present[i] = size && *size == objects[i].size;
  });
  std::vector<Object> missing;
  for (size_t i = 0; i < objects.size(); ++i) {
    if (present[i]) {
      ++stats.skipped_objects;
      stats.skipped_bytes += objects[i].size;
    } else {
      missing.push_back(objects[i]);
    }
  }
  return missing;
}

// Runs `move` over the small objects in parallel (one request each), then over the large ones,
// a few at a time so no worker idles at the end of a file; `move` gets the part jobs it may use.
// Either way at most options.jobs buffers are in use.
void move_objects(const std::vector<Object>& objects, const TransferOptions& options,
                  const std::function<void(const Object&, const TransferOptions&)>& move) {
  std::vector<Object> small, large;
  for (const auto& object : objects) (object.size <= options.multipart_threshold ? small : large).push_back(object);
  for_each_parallel(small.size(), options.jobs, [&](size_t i) { move(small[i], options); });
  int files = static_cast<int>(std::min<size_t>(large.size(), static_cast<size_t>(std::max(1, options.jobs / 4))));
  TransferOptions per_file = options;
  per_file.jobs = std::max(1, options.jobs / std::max(files, 1));
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
std::vector<Object> plan_transfer(const Manifest& manifest, ObjectStore& target, int jobs, TransferStats& stats) {
  std::vector<Object> objects = distinct_objects(manifest);
  stats.objects = objects.size();
  return missing_objects(objects, target, jobs, stats);
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
  std::vector<Object> missing = plan_transfer(manifest, store, options.jobs, stats);
  Notifier notify(observer);
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
  return stats;
}

TransferStats copy_objects(ObjectStore& from, ObjectStore& to, const Manifest& manifest,
                           const TransferOptions& options, const TransferObserver& observer) {
  TransferStats stats;
  std::vector<Object> missing = plan_transfer(manifest, to, options.jobs, stats);
  Notifier notify(observer);
  notify.start(bytes_of(missing));
  std::mutex stats_mutex;
  move_objects(missing, options, [&](const Object& object, const TransferOptions& options) {
    const std::string key = object_key(object.sha256);
    put_object(
        object, [&](uint64_t offset, uint64_t length, char* out) { from.read_range(key, offset, length, out); }, to,
        options, notify, stats, stats_mutex, [&](const std::string& actual) {
          return fmt::format("{} (file '{}') is corrupt: its SHA-256 is {}, not {}; nothing was copied for it",
                             from.describe(key), object.path, actual, object.sha256);
        });
  });
  return stats;
}

fs::path pull_staging_dir(const fs::path& out, const std::string& manifest_text) {
  fs::path absolute = fs::absolute(out).lexically_normal();
  if (absolute.filename().empty()) absolute = absolute.parent_path();
  return absolute.parent_path() /
         ("." + absolute.filename().string() + ".recmodel-pull-" + sha256_hex(manifest_text).substr(0, 12));
}

namespace {

// The chunks of a large download already on disk, from the log beside the .part file.
class ChunkLog {
 public:
  ChunkLog(fs::path path, uint64_t chunk, uint64_t size) : path_(std::move(path)) {
    header_ = fmt::format("recmodel-pull-chunks {} {}", chunk, size);
    std::ifstream in(path_);
    std::string line;
    if (in && std::getline(in, line) && line == header_) {
      while (std::getline(in, line)) {
        if (line.empty() || !std::all_of(line.begin(), line.end(), ::isdigit)) continue;
        done_.insert(std::stoull(line));
      }
    }
  }
  // Returns whether the log matched this download (chunk size and object size).
  bool valid() const { return !done_.empty(); }
  bool done(size_t index) const { return done_.count(index) > 0; }
  size_t count() const { return done_.size(); }
  void open_for_append(bool fresh) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (fresh ? O_TRUNC : 0), 0644);
    if (fd_ < 0) fail<DataError>("{}: cannot write: {}", path_.string(), std::strerror(errno));
    if (fresh) append_line(header_);
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

void fsync_path(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

TransferStats download_files(ObjectStore& store, const Manifest& manifest, const fs::path& staging,
                             const TransferOptions& options, const TransferObserver& observer) {
  TransferStats stats;
  std::vector<Object> objects = distinct_objects(manifest);
  stats.objects = objects.size();
  std::error_code ec;
  fs::create_directories(staging, ec);
  if (ec) fail<DataError>("{}: cannot create: {}", staging.string(), ec.message());

  // Complete files from an earlier run were verified before they got their final name.
  std::vector<Object> todo;
  for (const auto& object : objects) {
    fs::path final_path = staging / object.path;
    fs::path part = final_path;
    part += ".part";
    if (fs::is_regular_file(final_path, ec) && fs::file_size(final_path, ec) == object.size && !fs::exists(part, ec)) {
      ++stats.skipped_objects;
      stats.skipped_bytes += object.size;
    } else {
      todo.push_back(object);
    }
  }
  Notifier notify(observer);
  uint64_t total = 0;
  for (const auto& object : todo) total += object.size;
  notify.start(total);
  std::mutex stats_mutex;

  move_objects(todo, options, [&](const Object& object, const TransferOptions& options) {
    const std::string key = object_key(object.sha256);
    fs::path final_path = staging / object.path;
    fs::create_directories(final_path.parent_path(), ec);
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
      write_file_atomic(final_path, buffer);
      notify.advance(object.path, object.size, false);
      std::lock_guard<std::mutex> lock(stats_mutex);
      ++stats.transferred_objects;
      stats.transferred_bytes += object.size;
      return;
    }
    uint64_t part = part_size_for(object.size, options.part_size);
    size_t count = static_cast<size_t>((object.size + part - 1) / part);
    fs::path part_path = final_path, log_path = final_path;
    part_path += ".part";
    log_path += ".part.log";
    bool have_part = fs::is_regular_file(part_path, ec) && fs::file_size(part_path, ec) == object.size;
    ChunkLog log(log_path, part, object.size);
    bool resume = have_part && log.valid();
    int fd = ::open(part_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (resume ? 0 : O_TRUNC), 0644);
    if (fd < 0) fail<DataError>("{}: cannot create: {}", part_path.string(), std::strerror(errno));
    struct Closer {
      int fd;
      ~Closer() {
        if (fd >= 0) ::close(fd);
      }
    } closer{fd};
    if (!resume && ::ftruncate(fd, static_cast<off_t>(object.size)) != 0)
      fail<DataError>("{}: cannot size to {} bytes: {}", part_path.string(), object.size, std::strerror(errno));
    log.open_for_append(!resume);
      notify.file_start(object.path, object.size);
    Sha256Stream sha;
    std::atomic<uint64_t> moved{0}, resumed{0}, resumed_parts{0};
    run_parts(
        count, options.jobs,
        [&](size_t i, std::string& buffer) {
          uint64_t offset = i * part, length = std::min(part, object.size - offset);
          buffer.resize(length);
          if (resume && log.done(i)) {
            uint64_t done = 0;
            while (done < length) {
              ssize_t n = ::pread(fd, buffer.data() + done, length - done, static_cast<off_t>(offset + done));
              if (n <= 0) fail<DataError>("{}: read failed: {}", part_path.string(), std::strerror(errno));
              done += static_cast<uint64_t>(n);
            }
            resumed += length;
            ++resumed_parts;
          } else {
            store.read_range(key, offset, length, buffer.data());
            uint64_t done = 0;
            while (done < length) {
              ssize_t n = ::pwrite(fd, buffer.data() + done, length - done, static_cast<off_t>(offset + done));
              if (n <= 0) fail<DataError>("{}: write failed: {}", part_path.string(), std::strerror(errno));
              done += static_cast<uint64_t>(n);
            }
            log.record(i);
            moved += length;
          }
        },
        [&](size_t, const std::string& buffer) { sha.update(buffer); },
        [&](size_t, const std::string& buffer) { notify.advance(object.path, buffer.size(), true); });
    std::string actual = sha.hex();
    if (actual != object.sha256) {
      ::close(fd);
      closer.fd = -1;
      fs::remove(part_path, ec);
      fs::remove(log_path, ec);
      throw IntegrityError(corrupt(actual));
    }
    if (::fsync(fd) != 0) fail<DataError>("{}: cannot flush: {}", part_path.string(), std::strerror(errno));
    fs::rename(part_path, final_path, ec);
    if (ec) fail<DataError>("{}: cannot rename into place: {}", final_path.string(), ec.message());
    fs::remove(log_path, ec);
    notify.file_done(object.path);
    std::lock_guard<std::mutex> lock(stats_mutex);
    ++stats.transferred_objects;
    stats.transferred_bytes += moved;
    stats.resumed_bytes += resumed;
    stats.resumed_parts += resumed_parts;
  });

  // Files with the same contents as another are copied from it locally.
  std::map<std::string, std::string> first_path;
  for (const auto& object : objects) first_path[object.sha256] = object.path;
  for (const auto& file : manifest.files) {
    const std::string& source = first_path[file.sha256];
    if (source == file.path) continue;
    fs::path target = staging / file.path;
    if (fs::is_regular_file(target, ec) && fs::file_size(target, ec) == file.size) continue;
    fs::create_directories(target.parent_path(), ec);
    fs::path temp = target;
    temp += ".tmp-copy";
    fs::copy_file(staging / source, temp, fs::copy_options::overwrite_existing, ec);
    if (ec) fail<DataError>("{}: cannot copy from {}: {}", target.string(), source, ec.message());
    fsync_path(temp, false);
    fs::rename(temp, target, ec);
    if (ec) fail<DataError>("{}: cannot rename into place: {}", target.string(), ec.message());
  }
  for (const auto& entry : fs::recursive_directory_iterator(staging, ec))
    if (entry.is_directory(ec)) fsync_path(entry.path(), true);
  fsync_path(staging, true);
  return stats;
}

}  // namespace recmodel::storage
