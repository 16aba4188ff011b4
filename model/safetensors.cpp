#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/text.h"
#include "common/files.h"
#include "common/json.h"

namespace recmodel::model {

namespace {

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  size_t bytes;
};

const std::vector<DtypeInfo>& dtypes() {
  static const std::vector<DtypeInfo> table = {
      {"F32", torch::kFloat, 4},  {"F16", torch::kHalf, 2}, {"BF16", torch::kBFloat16, 2},
      {"F64", torch::kDouble, 8}, {"I64", torch::kLong, 8}, {"I32", torch::kInt, 4},
      {"I16", torch::kShort, 2},  {"I8", torch::kChar, 1},  {"U8", torch::kByte, 1},
      {"BOOL", torch::kBool, 1},
  };
  return table;
}

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& info : dtypes()) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

const DtypeInfo* find_dtype(torch::ScalarType type) {
  for (const auto& info : dtypes()) {
    if (type == info.type) return &info;
  }
  return nullptr;
}

// The reference implementation's limit: a header is a few KB per thousand tensors.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kMaxDims = 64;

// Parses the header with a nesting limit (it nests three levels: entries, their fields, shapes)
// and refuses a tensor named twice, which a plain JSON parse would silently merge.
nlohmann::json parse_header(std::string_view text, const std::string& file) {
  std::set<std::string> names;
  nlohmann::json::parser_callback_t check = [&](int depth, nlohmann::json::parse_event_t event,
                                                nlohmann::json& parsed) {
    if ((event == nlohmann::json::parse_event_t::object_start ||
         event == nlohmann::json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth)
      fail<DataError>("{}: corrupt safetensors header: JSON nested deeper than {} levels", file, kMaxJsonDepth);
    if (event == nlohmann::json::parse_event_t::key && depth == 1 && parsed.is_string() &&
        !names.insert(parsed.get_ref<const std::string&>()).second)
      fail<DataError>("{}: tensor {}: named twice in the safetensors header", file,
                      printable(parsed.get_ref<const std::string&>()));
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), check);
  } catch (const nlohmann::json::parse_error& e) {
    fail<DataError>("{}: corrupt safetensors header: {}", file, printable(e.what(), 200));
  }
}

// Reads a JSON number that must be a non-negative integer (a shape entry or an offset).
bool read_count(const nlohmann::json& value, uint64_t& out) {
  if (value.is_number_unsigned()) {
    out = value.get<uint64_t>();
    return true;
  }
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(value.get<int64_t>());
    return true;
  }
  return false;
}

}  // namespace

NamedTensors read_safetensors(const fs::path& path) {
  const std::string name = path.string();
  std::string bytes = read_file(path);
  if (bytes.size() < 8) fail<DataError>("{}: truncated safetensors file ({} bytes, no header)", name, bytes.size());
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  if (header_size > bytes.size() - 8)
    fail<DataError>("{}: truncated safetensors file: header of {} bytes but the file has {}", name, header_size,
                    bytes.size());
  if (header_size > kMaxHeaderBytes)
    fail<DataError>("{}: corrupt safetensors header: {} bytes, more than the format's {}", name, header_size,
                    kMaxHeaderBytes);
  const nlohmann::json header = parse_header(std::string_view(bytes).substr(8, header_size), name);
  if (!header.is_object())
    fail<DataError>("{}: corrupt safetensors header: expected a JSON object, found {}", name, json_type_name(header));
  const uint64_t data_start = 8 + header_size;
  const uint64_t data_size = bytes.size() - data_start;

  struct Entry {
    std::string name;
    const DtypeInfo* dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  for (const auto& [tensor_name, entry] : header.items()) {
    if (tensor_name == "__metadata__") {
      if (!entry.is_object())
        fail<DataError>("{}: __metadata__ must be an object of strings, found {}", name, json_type_name(entry));
      for (const auto& [key, value] : entry.items())
        if (!value.is_string())
          fail<DataError>("{}: __metadata__ entry {} is {}, not a string", name, printable(key),
                          json_excerpt(value));
      continue;
    }
    const std::string shown = printable(tensor_name);
    auto field = [&](const char* key) -> const nlohmann::json& {
      if (!entry.is_object())
        fail<DataError>("{}: tensor {}: header entry is {}, expected an object with dtype, shape and data_offsets",
                        name, shown, json_excerpt(entry));
      if (!entry.contains(key))
        fail<DataError>("{}: tensor {}: header entry lacks {} (expected dtype, shape and data_offsets)", name, shown,
                        key);
      return entry.at(key);
    };
    const nlohmann::json& dtype_field = field("dtype");
    const DtypeInfo* dtype = dtype_field.is_string() ? find_dtype(dtype_field.get<std::string>()) : nullptr;
    if (!dtype)
      fail<DataError>("{}: tensor {}: unsupported dtype {} (expected F32, F16, BF16, F64, I64, I32, I16, I8, U8 or BOOL)",
                      name, shown, json_excerpt(dtype_field));
    const nlohmann::json& shape_field = field("shape");
    if (!shape_field.is_array() || shape_field.size() > kMaxDims)
      fail<DataError>("{}: tensor {}: shape must be a list of at most {} dimensions, found {}", name, shown, kMaxDims,
                      json_excerpt(shape_field));
    // Products are checked as they grow, so a shape like [2^62, 4] cannot wrap to a small size.
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (const auto& dim_field : shape_field) {
      uint64_t dim = 0;
      if (!read_count(dim_field, dim) || dim > static_cast<uint64_t>(INT64_MAX))
        fail<DataError>("{}: tensor {}: shape {} holds {}, not a dimension (a non-negative integer)", name, shown,
                        json_excerpt(shape_field), json_excerpt(dim_field));
      if (__builtin_mul_overflow(numel, dim, &numel))
        fail<DataError>("{}: tensor {}: shape {} has more elements than any file can hold", name, shown,
                        json_excerpt(shape_field));
      shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t size = 0;
    if (__builtin_mul_overflow(numel, dtype->bytes, &size))
      fail<DataError>("{}: tensor {}: shape {} has more bytes than any file can hold", name, shown,
                      json_excerpt(shape_field));
    if (size > data_size)
      fail<DataError>("{}: truncated: tensor {} of shape {} needs {} bytes but the data section has {}", name, shown,
                      json_excerpt(shape_field), size, data_size);
    const nlohmann::json& offsets_field = field("data_offsets");
    uint64_t begin = 0, end = 0;
    if (!offsets_field.is_array() || offsets_field.size() != 2 || !read_count(offsets_field[0], begin) ||
        !read_count(offsets_field[1], end) || begin > end)
      fail<DataError>("{}: tensor {}: data_offsets must be [begin, end], two integers with begin <= end, found {}",
                      name, shown, json_excerpt(offsets_field));
    if (end > data_size)
      fail<DataError>("{}: truncated: tensor {} ends at byte {} but the data section has {}", name, shown, end,
                      data_size);
    if (end - begin != size)
      fail<DataError>("{}: tensor {}: {} bytes stored for {} values of {}", name, shown, end - begin, numel,
                      dtype->name);
    entries.push_back({tensor_name, dtype, std::move(shape), begin, end});
  }
  // As the reference reader requires, the tensors tile the data section: no byte is shared by two
  // tensors (a crafted file could alias them) and none belongs to no tensor.
  std::vector<const Entry*> by_offset;
  for (const auto& entry : entries) by_offset.push_back(&entry);
  std::stable_sort(by_offset.begin(), by_offset.end(),
                   [](const Entry* a, const Entry* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry* entry : by_offset) {
    if (entry->begin < covered)
      fail<DataError>("{}: tensors {} and {} overlap (bytes {}..{} and {}..{} of the data section)", name,
                      printable(previous->name), printable(entry->name), previous->begin, previous->end,
                      entry->begin, entry->end);
    if (entry->begin > covered)
      fail<DataError>("{}: bytes {}..{} of the data section belong to no tensor (before tensor {})", name, covered,
                      entry->begin, printable(entry->name));
    covered = entry->end;
    previous = entry;
  }
  if (covered != data_size)
    fail<DataError>("{}: bytes {}..{} of the data section belong to no tensor", name, covered, data_size);

  NamedTensors tensors;
  for (const auto& entry : entries) {
    torch::Tensor tensor = torch::empty(entry.shape, torch::TensorOptions().dtype(entry.dtype->type));
    std::memcpy(tensor.data_ptr(), bytes.data() + data_start + entry.begin, entry.end - entry.begin);
    tensors.emplace_back(entry.name, std::move(tensor));
  }
  return tensors;
}

void write_safetensors(const fs::path& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [tensor_name, tensor] : tensors) {
    const DtypeInfo* dtype = find_dtype(tensor.scalar_type());
    if (!dtype) fail<DataError>("cannot write tensor {} of type {} to safetensors", tensor_name,
                                std::string(c10::toString(tensor.scalar_type())));
    torch::Tensor data = tensor.detach().to(torch::kCPU).contiguous();
    uint64_t size = static_cast<uint64_t>(data.numel()) * dtype->bytes;
    header[tensor_name] = {{"dtype", dtype->name}, {"shape", data.sizes().vec()}, {"data_offsets", {offset, offset + size}}};
    offset += size;
    contiguous.push_back(std::move(data));
  }
  std::string header_text = header.dump();
  // The data section starts 8-byte aligned, as the reference writer pads the header with spaces.
  while ((8 + header_text.size()) % 8 != 0) header_text.push_back(' ');
  std::string out;
  out.reserve(8 + header_text.size() + offset);
  uint64_t header_size = header_text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((header_size >> (8 * i)) & 0xFF));
  out += header_text;
  for (const auto& data : contiguous)
    out.append(static_cast<const char*>(data.data_ptr()), static_cast<size_t>(data.numel()) * data.element_size());
  write_file_atomic(path, out);
}

}  // namespace recmodel::model
