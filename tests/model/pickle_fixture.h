// Hand-written torch.save archives for the checkpoint reader's tests: pickle opcodes spelled out
// byte by byte (protocol 2, as torch.save writes them) and stored with libtorch's own zip writer,
// so a test can build exactly the crafted file it pins.
#pragma once

#include <caffe2/serialize/inline_container.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace recmodel::testing::pickle {

inline std::string le(uint64_t value, int width) {
  std::string out;
  for (int i = 0; i < width; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  return out;
}

inline const std::string kProto = std::string("\x80\x02", 2);
inline const std::string kMark = "(";
inline const std::string kStop = ".";
inline const std::string kNone = "N";
inline const std::string kFalse = "\x89";
inline const std::string kEmptyTuple = ")";
inline const std::string kEmptyList = "]";
inline const std::string kEmptyDict = "}";
inline const std::string kTuple = "t";      // MARK ... TUPLE
inline const std::string kTuple1 = "\x85";
inline const std::string kAppend = "a";
inline const std::string kAppends = "e";
inline const std::string kSetItem = "s";
inline const std::string kSetItems = "u";
inline const std::string kReduce = "R";
inline const std::string kBinPersId = "Q";

inline std::string text(const std::string& s) { return "X" + le(s.size(), 4) + s; }
// LONG1 with 8 bytes: any int64.
inline std::string integer(int64_t value) { return std::string("\x8a\x08", 2) + le(static_cast<uint64_t>(value), 8); }
// BINFLOAT: a big-endian double.
inline std::string real(double value) {
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  std::string out = "G";
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
  return out;
}
inline std::string global(const std::string& module, const std::string& name) {
  return "c" + module + "\n" + name + "\n";
}
inline std::string put(uint8_t key) { return "q" + le(key, 1); }
inline std::string get(uint8_t key) { return "h" + le(key, 1); }
inline std::string tuple_of(const std::vector<std::string>& items) {
  std::string out = kMark;
  for (const auto& item : items) out += item;
  return out + kTuple;
}
inline std::string int_tuple(const std::vector<int64_t>& values) {
  std::vector<std::string> items;
  for (int64_t v : values) items.push_back(integer(v));
  return tuple_of(items);
}

// The persistent id torch.save writes for a storage: ('storage', torch.<Type>Storage, key, 'cpu', count).
inline std::string storage(const std::string& key, int64_t count, const std::string& type = "FloatStorage") {
  return tuple_of({text("storage"), global("torch", type), text(key), text("cpu"), integer(count)}) + kBinPersId;
}

// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()), each
// argument given as pickle bytes.
inline std::string rebuild_tensor(const std::string& storage_arg, const std::string& offset_arg,
                                  const std::string& size_arg, const std::string& stride_arg) {
  return global("torch._utils", "_rebuild_tensor_v2") +
         tuple_of({storage_arg, offset_arg, size_arg, stride_arg, kFalse,
                   global("collections", "OrderedDict") + kEmptyTuple + kReduce}) +
         kReduce;
}

// A whole pickle of {name: value} (value given as pickle bytes).
inline std::string state_dict(const std::string& name, const std::string& value) {
  return kProto + global("collections", "OrderedDict") + kEmptyTuple + kReduce + kMark + text(name) + value +
         kSetItems + kStop;
}

// Writes `pickle` as data.pkl of a torch.save zip archive, with `records` as data/<key>.
inline void write_archive(const std::filesystem::path& path, const std::string& pickle,
                          const std::map<std::string, std::string>& records = {}) {
  caffe2::serialize::PyTorchStreamWriter writer(path.string());
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  for (const auto& [key, bytes] : records) writer.writeRecord("data/" + key, bytes.data(), bytes.size());
  writer.writeRecord("byteorder", "little", 6);
  writer.writeEndOfFile();
}

// Writes a torch.save-like zip (made by Python's zipfile) whose data.pkl, an empty dict deflated
// to a few bytes, declares `declared_size` bytes once inflated in both of its zip headers.
inline void write_inflating_archive(const std::filesystem::path& path, uint32_t declared_size) {
  const std::filesystem::path script = path.string() + ".py";
  std::ofstream(script) << R"(
import struct, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    z.writestr("archive/byteorder", b"little")
    z.writestr("archive/version", b"3\n")
b = bytearray(open(sys.argv[1], "rb").read())
size = int(sys.argv[2])
struct.pack_into("<I", b, b.find(b"PK\x01\x02") + 24, size)
struct.pack_into("<I", b, b.find(b"PK\x03\x04") + 22, size)
open(sys.argv[1], "wb").write(bytes(b))
)";
  const std::string command =
      "/usr/bin/python3 " + script.string() + " " + path.string() + " " + std::to_string(declared_size);
  if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
  std::filesystem::remove(script);
}

// The bytes of `count` little-endian float32 values 0, 1, 2, ...
inline std::string floats(int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    float value = static_cast<float>(i);
    out.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  return out;
}

}  // namespace recmodel::testing::pickle
