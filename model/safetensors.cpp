#include "model/safetensors.h"

#include <cstring>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"

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
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.substr(8, header_size));
  } catch (const nlohmann::json::exception& e) {
    fail<DataError>("{}: corrupt safetensors header: {}", name, e.what());
  }
  if (!header.is_object()) fail<DataError>("{}: corrupt safetensors header: not a JSON object", name);
  const size_t data_start = 8 + header_size;
  const size_t data_size = bytes.size() - data_start;

  NamedTensors tensors;
  for (const auto& [tensor_name, entry] : header.items()) {
    if (tensor_name == "__metadata__") continue;
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
      fail<DataError>("{}: tensor {}: header entry lacks dtype, shape or data_offsets", name, tensor_name);
    const DtypeInfo* dtype = find_dtype(entry["dtype"].get<std::string>());
    if (!dtype) fail<DataError>("{}: tensor {}: unsupported dtype {}", name, tensor_name, entry["dtype"].dump());
    std::vector<int64_t> shape = entry["shape"].get<std::vector<int64_t>>();
    auto offsets = entry["data_offsets"].get<std::vector<uint64_t>>();
    if (offsets.size() != 2 || offsets[0] > offsets[1])
      fail<DataError>("{}: tensor {}: invalid data_offsets", name, tensor_name);
    int64_t numel = 1;
    for (int64_t dim : shape) {
      if (dim < 0) fail<DataError>("{}: tensor {}: negative dimension", name, tensor_name);
      numel *= dim;
    }
    if (offsets[1] - offsets[0] != static_cast<uint64_t>(numel) * dtype->bytes)
      fail<DataError>("{}: tensor {}: {} bytes stored for {} values of {}", name, tensor_name,
                      offsets[1] - offsets[0], numel, dtype->name);
    if (offsets[1] > data_size)
      fail<DataError>("{}: truncated: tensor {} ends at byte {} but the data section has {}", name, tensor_name,
                      offsets[1], data_size);
    torch::Tensor tensor = torch::empty(shape, torch::TensorOptions().dtype(dtype->type));
    std::memcpy(tensor.data_ptr(), bytes.data() + data_start + offsets[0], offsets[1] - offsets[0]);
    tensors.emplace_back(tensor_name, std::move(tensor));
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
