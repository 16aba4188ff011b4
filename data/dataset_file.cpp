#include "data/dataset_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/error.h"
#include "data/dedup.h"

namespace recmodel::data {

namespace {

// One example's record in the scratch file.
struct ScratchRecord {
  uint32_t length;
  uint32_t segment_a;
  uint32_t label;
  uint32_t reserved;
  uint64_t origin;
};
static_assert(sizeof(ScratchRecord) == 24);

struct Header {
  char magic[4];
  uint32_t version;
  uint64_t header_bytes;
  uint64_t examples;
  uint64_t tokens;
  uint32_t task;
  uint32_t id_bytes;
  uint64_t ids_offset;
  uint64_t offsets_offset;
  uint64_t segments_offset;
  uint64_t labels_offset;
  uint64_t origins_offset;
  uint64_t file_bytes;
  unsigned char reserved[40];
};
static_assert(sizeof(Header) == kDatasetHeaderBytes);

constexpr size_t kIoBuffer = 1 << 20;
constexpr size_t kScratchBlock = 4096;  // records read back at a time

uint64_t align8(uint64_t value) { return (value + 7) & ~uint64_t{7}; }

}  // namespace

const char* task_name(Task task) { return task == Task::regression ? "regression" : "classification"; }

Task parse_task(std::string_view name) {
  if (name == "classification") return Task::classification;
  if (name == "regression") return Task::regression;
  fail<UsageError>("unknown task \"{}\"; expected classification or regression", name);
}

SplitWriter::SplitWriter(fs::path path, Task task, uint32_t id_bytes)
    : path_(std::move(path)), task_(task), id_bytes_(id_bytes) {
  if (id_bytes_ != 2 && id_bytes_ != 4) throw Error(ExitCode::internal, "token ids must be 2 or 4 bytes wide");
  scratch_path_ = path_;
  scratch_path_ += ".scratch";
  file_ = std::fopen(path_.c_str(), "wb");
  if (!file_) fail<DataError>("{}: cannot create: {}", path_.string(), std::strerror(errno));
  std::setvbuf(file_, nullptr, _IOFBF, kIoBuffer);
  scratch_ = std::fopen(scratch_path_.c_str(), "w+b");
  if (!scratch_) fail<DataError>("{}: cannot create: {}", scratch_path_.string(), std::strerror(errno));
  std::setvbuf(scratch_, nullptr, _IOFBF, kIoBuffer);
  unsigned char zeros[kDatasetHeaderBytes] = {};
  write(file_, path_, zeros, sizeof(zeros));
}

SplitWriter::~SplitWriter() {
  if (file_) std::fclose(file_);
  if (scratch_) {
    std::fclose(scratch_);
    std::error_code ec;
    fs::remove(scratch_path_, ec);
  }
}

void SplitWriter::write(std::FILE* file, const fs::path& name, const void* data, size_t bytes) {
  if (bytes && std::fwrite(data, 1, bytes, file) != bytes)
    fail<DataError>("{}: write failed: {}; is the disk full?", name.string(), std::strerror(errno));
  if (file == file_) position_ += bytes;
}

void SplitWriter::pad(std::FILE* file, const fs::path& name) {
  static const unsigned char zeros[8] = {};
  write(file, name, zeros, align8(position_) - position_);
}

void SplitWriter::add(const std::vector<int32_t>& ids, uint32_t segment_a, uint32_t label, uint64_t origin) {
  if (id_bytes_ == 2) {
    narrow_.resize(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] > 0xFFFF)
        throw Error(ExitCode::internal, fmt::format("token id {} does not fit 16 bits", ids[i]));
      narrow_[i] = static_cast<uint16_t>(ids[i]);
    }
    write(file_, path_, narrow_.data(), narrow_.size() * 2);
  } else {
    write(file_, path_, ids.data(), ids.size() * 4);
  }
  ScratchRecord record{static_cast<uint32_t>(ids.size()), segment_a, label, 0, origin};
  write(scratch_, scratch_path_, &record, sizeof(record));
  ++examples_;
  tokens_ += ids.size();
}

void SplitWriter::finish(const std::vector<int32_t>& remap) {
  Header header{};
  std::memcpy(header.magic, kDatasetMagic, 4);
  header.version = kDatasetFormatVersion;
  header.header_bytes = kDatasetHeaderBytes;
  header.examples = examples_;
  header.tokens = tokens_;
  header.task = static_cast<uint32_t>(task_);
  header.id_bytes = id_bytes_;
  header.ids_offset = kDatasetHeaderBytes;
  pad(file_, path_);

  if (std::fflush(scratch_) != 0)
    fail<DataError>("{}: write failed: {}; is the disk full?", scratch_path_.string(), std::strerror(errno));
  std::vector<ScratchRecord> block(kScratchBlock);
  // One pass over the scratch records per section keeps the file layout simple and memory flat.
  auto for_each_record = [&](auto&& emit) {
    std::rewind(scratch_);
    uint64_t left = examples_;
    while (left > 0) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(left, kScratchBlock));
      if (std::fread(block.data(), sizeof(ScratchRecord), want, scratch_) != want)
        fail<DataError>("{}: cannot read back: {}", scratch_path_.string(), std::strerror(errno));
      for (size_t i = 0; i < want; ++i) emit(block[i]);
      left -= want;
    }
  };

  header.offsets_offset = position_;
  uint64_t offset = 0;
  write(file_, path_, &offset, 8);
  for_each_record([&](const ScratchRecord& r) {
    offset += r.length;
    write(file_, path_, &offset, 8);
  });

  header.segments_offset = position_;
  for_each_record([&](const ScratchRecord& r) { write(file_, path_, &r.segment_a, 4); });
  pad(file_, path_);

  header.labels_offset = position_;
  for_each_record([&](const ScratchRecord& r) {
    uint32_t label = r.label;
    if (task_ == Task::classification && !remap.empty()) {
      if (label >= remap.size()) throw Error(ExitCode::internal, fmt::format("label id {} has no mapping", label));
      label = static_cast<uint32_t>(remap[label]);
    }
    write(file_, path_, &label, 4);
  });
  pad(file_, path_);

  header.origins_offset = position_;
  for_each_record([&](const ScratchRecord& r) { write(file_, path_, &r.origin, 8); });
  header.file_bytes = position_;

  if (std::fseek(file_, 0, SEEK_SET) != 0)
    fail<DataError>("{}: cannot seek: {}", path_.string(), std::strerror(errno));
  if (std::fwrite(&header, sizeof(header), 1, file_) != 1 || std::fflush(file_) != 0 || ::fsync(fileno(file_)) != 0)
    fail<DataError>("{}: write failed: {}; is the disk full?", path_.string(), std::strerror(errno));
  int closed = std::fclose(file_);
  file_ = nullptr;
  if (closed != 0) fail<DataError>("{}: write failed: {}", path_.string(), std::strerror(errno));
  std::fclose(scratch_);
  scratch_ = nullptr;
  std::error_code ec;
  fs::remove(scratch_path_, ec);
}

DatasetSplit DatasetSplit::open(const fs::path& path) {
  DatasetSplit split;
  split.path_ = path;
  const std::string name = path.string();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) fail<NotFoundError>("{}: no such dataset split file", name);
    fail<DataError>("{}: cannot open: {}", name, std::strerror(errno));
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    ::close(fd);
    fail<DataError>("{}: cannot stat: {}", name, std::strerror(errno));
  }
  const uint64_t size = static_cast<uint64_t>(info.st_size);
  if (size < kDatasetHeaderBytes) {
    ::close(fd);
    fail<DataError>("{}: {} bytes is too small to be a recmodel dataset split; re-run recmodel preprocess", name,
                    size);
  }
  void* map = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) fail<DataError>("{}: cannot map into memory: {}", name, std::strerror(errno));
  split.map_ = map;
  split.map_bytes_ = static_cast<size_t>(size);

  Header header;
  std::memcpy(&header, map, sizeof(header));
  if (std::memcmp(header.magic, kDatasetMagic, 4) != 0)
    fail<DataError>("{}: not a recmodel dataset split (no RMDS signature); point --data at a directory made by "
                    "recmodel preprocess",
                    name);
  if (header.version > kDatasetFormatVersion)
    fail<DataError>("{}: dataset format version {} was written by a newer recmodel; this one reads up to version "
                    "{}. Upgrade recmodel or re-run preprocess with this version",
                    name, header.version, kDatasetFormatVersion);
  if (header.version == 0) fail<DataError>("{}: corrupt header (format version 0); re-run recmodel preprocess", name);
  if (header.file_bytes != size)
    fail<DataError>("{}: truncated or altered: the header says {} bytes, the file has {}; copy it again or re-run "
                    "recmodel preprocess",
                    name, header.file_bytes, size);
  auto corrupt = [&](const char* what) {
    fail<DataError>("{}: corrupt dataset split ({}); re-run recmodel preprocess", name, what);
  };
  if (header.header_bytes != kDatasetHeaderBytes) corrupt("unexpected header size");
  if (header.task > 1) corrupt("unknown task");
  if (header.id_bytes != 2 && header.id_bytes != 4) corrupt("token id width is neither 2 nor 4 bytes");
  if (header.examples > size / 8 || header.tokens > size / 2) corrupt("counts larger than the file");
  auto section_fits = [&](uint64_t offset, uint64_t bytes) {
    return offset % 8 == 0 && offset >= kDatasetHeaderBytes && offset <= size && bytes <= size - offset;
  };
  const uint64_t n = header.examples;
  if (!section_fits(header.ids_offset, header.tokens * header.id_bytes) ||
      !section_fits(header.offsets_offset, (n + 1) * 8) || !section_fits(header.segments_offset, n * 4) ||
      !section_fits(header.labels_offset, n * 4) || !section_fits(header.origins_offset, n * 8))
    corrupt("a section lies outside the file");

  const auto* base = static_cast<const unsigned char*>(map);
  split.examples_ = n;
  split.tokens_ = header.tokens;
  split.task_ = static_cast<Task>(header.task);
  split.id_bytes_ = header.id_bytes;
  split.ids_ = base + header.ids_offset;
  split.offsets_ = reinterpret_cast<const uint64_t*>(base + header.offsets_offset);
  split.segments_ = reinterpret_cast<const uint32_t*>(base + header.segments_offset);
  split.labels_ = base + header.labels_offset;
  split.origins_ = reinterpret_cast<const uint64_t*>(base + header.origins_offset);

  // The index is checked once here so example() can trust it.
  if (split.offsets_[0] != 0 || split.offsets_[n] != header.tokens) corrupt("offsets do not span the tokens");
  for (uint64_t i = 0; i < n; ++i) {
    if (split.offsets_[i + 1] < split.offsets_[i]) corrupt("offsets go backwards");
    if (split.segments_[i] > split.offsets_[i + 1] - split.offsets_[i]) corrupt("segment longer than its example");
  }
  return split;
}

DatasetSplit::DatasetSplit(DatasetSplit&& other) noexcept { *this = std::move(other); }

DatasetSplit& DatasetSplit::operator=(DatasetSplit&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    map_ = other.map_;
    map_bytes_ = other.map_bytes_;
    examples_ = other.examples_;
    tokens_ = other.tokens_;
    task_ = other.task_;
    id_bytes_ = other.id_bytes_;
    ids_ = other.ids_;
    offsets_ = other.offsets_;
    segments_ = other.segments_;
    labels_ = other.labels_;
    origins_ = other.origins_;
    other.map_ = nullptr;
    other.map_bytes_ = 0;
    other.examples_ = 0;
  }
  return *this;
}

DatasetSplit::~DatasetSplit() { release(); }

void DatasetSplit::release() {
  if (map_) ::munmap(map_, map_bytes_);
  map_ = nullptr;
}

int32_t DatasetSplit::token(size_t i, size_t j) const {
  uint64_t at = offsets_[i] + j;
  if (id_bytes_ == 2) {
    uint16_t id;
    std::memcpy(&id, ids_ + at * 2, 2);
    return id;
  }
  int32_t id;
  std::memcpy(&id, ids_ + at * 4, 4);
  return id;
}

int32_t DatasetSplit::label(size_t i) const {
  int32_t value;
  std::memcpy(&value, labels_ + i * 4, 4);
  return value;
}

float DatasetSplit::target(size_t i) const {
  float value;
  std::memcpy(&value, labels_ + i * 4, 4);
  return value;
}

uint32_t DatasetSplit::origin_file(size_t i) const { return data::origin_file(origins_[i]); }

uint64_t DatasetSplit::origin_line(size_t i) const { return data::origin_line(origins_[i]); }

void DatasetSplit::example(size_t i, Example& out) const {
  size_t n = length(i);
  out.ids.resize(n);
  out.type_ids.resize(n);
  const uint64_t begin = offsets_[i];
  if (id_bytes_ == 2) {
    const unsigned char* p = ids_ + begin * 2;
    for (size_t j = 0; j < n; ++j) {
      uint16_t id;
      std::memcpy(&id, p + j * 2, 2);
      out.ids[j] = id;
    }
  } else {
    std::memcpy(out.ids.data(), ids_ + begin * 4, n * 4);
  }
  const size_t a = segments_[i];
  for (size_t j = 0; j < n; ++j) out.type_ids[j] = j < a ? 0 : 1;
  if (task_ == Task::classification) {
    out.label = label(i);
    out.target = 0.0f;
  } else {
    out.target = target(i);
    out.label = -1;
  }
}

Example DatasetSplit::example(size_t i) const {
  Example out;
  example(i, out);
  return out;
}

}  // namespace recmodel::data
