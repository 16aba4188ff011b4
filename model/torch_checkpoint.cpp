#include "model/torch_checkpoint.h"

#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>

#include "common/error.h"

namespace recmodel::model {

namespace {

// A Python object as far as a state dict needs one. Containers are shared, as in Python: the
// memo and the stack may hold the same list or dict.
struct Value;
using ValuePtr = std::shared_ptr<Value>;
struct Value {
  enum class Kind { none, boolean, integer, real, text, bytes, tuple, list, dict, global, storage, tensor, object };
  Kind kind = Kind::none;
  int64_t integer = 0;
  double real = 0;
  std::string text;  // text, bytes, and "module.name" of a global or of an object's class
  std::vector<ValuePtr> items;
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;
  torch::Tensor tensor;  // a storage (1-D) or a tensor
};

ValuePtr make(Value::Kind kind) {
  auto value = std::make_shared<Value>();
  value->kind = kind;
  return value;
}

ValuePtr make_text(Value::Kind kind, std::string text) {
  auto value = make(kind);
  value->text = std::move(text);
  return value;
}

ValuePtr make_integer(int64_t integer) {
  auto value = make(Value::Kind::integer);
  value->integer = integer;
  return value;
}

// The element type of a typed storage class as torch.save names it.
std::optional<torch::Dtype> storage_dtype(const std::string& name) {
  static const std::map<std::string, torch::Dtype> types = {
      {"torch.FloatStorage", torch::kFloat32}, {"torch.HalfStorage", torch::kFloat16},
      {"torch.BFloat16Storage", torch::kBFloat16}, {"torch.DoubleStorage", torch::kFloat64},
      {"torch.LongStorage", torch::kInt64}, {"torch.IntStorage", torch::kInt32},
      {"torch.ShortStorage", torch::kInt16}, {"torch.CharStorage", torch::kInt8},
      {"torch.ByteStorage", torch::kUInt8}, {"torch.BoolStorage", torch::kBool},
      {"torch.UntypedStorage", torch::kUInt8}};
  auto found = types.find(name);
  if (found == types.end()) return std::nullopt;
  return found->second;
}

class Unpickler {
 public:
  Unpickler(const std::string& path, caffe2::serialize::PyTorchStreamReader& archive, const char* data, size_t size)
      : path_(path), archive_(archive), data_(data), size_(size) {}

  ValuePtr run() {
    while (true) {
      const uint8_t opcode = byte();
      switch (opcode) {
        case 0x80: byte(); break;         // PROTO
        case 0x95: bytes(8); break;       // FRAME
        case '(': marks_.push_back(stack_.size()); break;
        case '.': return pop();           // STOP
        case 'N': push(make(Value::Kind::none)); break;
        case 0x88: case 0x89: {           // NEWTRUE, NEWFALSE
          auto value = make(Value::Kind::boolean);
          value->integer = opcode == 0x88;
          push(value);
          break;
        }
        case 'J': push(make_integer(static_cast<int32_t>(little_endian(4)))); break;
        case 'K': push(make_integer(static_cast<int64_t>(little_endian(1)))); break;
        case 'M': push(make_integer(static_cast<int64_t>(little_endian(2)))); break;
        case 0x8a: push(make_integer(long_integer(little_endian(1)))); break;  // LONG1
        case 0x8b: push(make_integer(long_integer(little_endian(4)))); break;  // LONG4
        case 'G': {                       // BINFLOAT, big-endian
          uint64_t bits = 0;
          for (char c : bytes(8)) bits = bits << 8 | static_cast<uint8_t>(c);
          auto value = make(Value::Kind::real);
          std::memcpy(&value->real, &bits, sizeof bits);
          push(value);
          break;
        }
        case 'X': push(make_text(Value::Kind::text, bytes(little_endian(4)))); break;
        case 0x8c: push(make_text(Value::Kind::text, bytes(little_endian(1)))); break;
        case 0x8d: push(make_text(Value::Kind::text, bytes(little_endian(8)))); break;
        case 'T': push(make_text(Value::Kind::text, bytes(little_endian(4)))); break;  // py2 BINSTRING
        case 'U': push(make_text(Value::Kind::text, bytes(little_endian(1)))); break;
        case 'B': push(make_text(Value::Kind::bytes, bytes(little_endian(4)))); break;
        case 'C': push(make_text(Value::Kind::bytes, bytes(little_endian(1)))); break;
        case 0x8e: push(make_text(Value::Kind::bytes, bytes(little_endian(8)))); break;
        case ')': push(make(Value::Kind::tuple)); break;
        case 't': push(sequence(Value::Kind::tuple, pop_mark())); break;
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          const size_t count = opcode - 0x84u;
          need(count);
          std::vector<ValuePtr> items(stack_.end() - static_cast<std::ptrdiff_t>(count), stack_.end());
          stack_.resize(stack_.size() - count);
          push(sequence(Value::Kind::tuple, std::move(items)));
          break;
        }
        case ']': case 0x8f: push(make(Value::Kind::list)); break;  // EMPTY_LIST, EMPTY_SET
        case 'a': {
          auto item = pop();
          container(Value::Kind::list)->items.push_back(item);
          break;
        }
        case 'e': case 0x90: {            // APPENDS, ADDITEMS
          auto items = pop_mark();
          auto& list = container(Value::Kind::list)->items;
          list.insert(list.end(), items.begin(), items.end());
          break;
        }
        case '}': push(make(Value::Kind::dict)); break;
        case 's': {
          auto value = pop();
          auto key = pop();
          container(Value::Kind::dict)->entries.emplace_back(key, value);
          break;
        }
        case 'u': {
          auto items = pop_mark();
          if (items.size() % 2) corrupt("SETITEMS with an odd number of items");
          auto dict = container(Value::Kind::dict);
          for (size_t i = 0; i < items.size(); i += 2) dict->entries.emplace_back(items[i], items[i + 1]);
          break;
        }
        case 'c': {                       // GLOBAL module\nname\n
          std::string module = line();
          push(make_text(Value::Kind::global, module + "." + line()));
          break;
        }
        case 0x93: {                      // STACK_GLOBAL
          auto name = pop();
          auto module = pop();
          push(make_text(Value::Kind::global, module->text + "." + name->text));
          break;
        }
        case 'q': memo_[little_endian(1)] = top(); break;
        case 'r': memo_[little_endian(4)] = top(); break;
        case 0x94: memo_[memo_.size()] = top(); break;  // MEMOIZE
        case 'h': push(recall(little_endian(1))); break;
        case 'j': push(recall(little_endian(4))); break;
        case 'Q': push(persistent_load(pop())); break;  // BINPERSID
        case 'R': case 0x81: {            // REDUCE, NEWOBJ
          auto args = pop();
          auto callable = pop();
          push(call(callable, args));
          break;
        }
        case 0x92: {                      // NEWOBJ_EX
          pop();
          auto args = pop();
          auto callable = pop();
          push(call(callable, args));
          break;
        }
        case 'b': pop(); need(1); break;  // BUILD: object state (OrderedDict._metadata, hooks) is not needed
        case '0': pop(); break;
        case '1': pop_mark(); break;
        case '2': push(top()); break;
        default: corrupt(fmt::format("unsupported pickle opcode 0x{:02x}", opcode));
      }
    }
  }

 private:
  [[noreturn]] void corrupt(const std::string& why) const {
    fail<DataError>("{}: cannot read the checkpoint (truncated or corrupt): {} at byte {} of data.pkl", path_, why,
                    position_);
  }

  uint8_t byte() {
    if (position_ >= size_) corrupt("the pickle ends early");
    return static_cast<uint8_t>(data_[position_++]);
  }
  std::string bytes(uint64_t count) {
    if (count > size_ - position_) corrupt("the pickle ends early");
    std::string out(data_ + position_, count);
    position_ += count;
    return out;
  }
  uint64_t little_endian(int width) {
    uint64_t value = 0;
    for (int i = 0; i < width; ++i) value |= static_cast<uint64_t>(byte()) << (8 * i);
    return value;
  }
  int64_t long_integer(uint64_t width) {
    if (width > 8) corrupt("an integer wider than 64 bits");
    std::string raw = bytes(width);
    uint64_t value = 0;
    for (size_t i = 0; i < raw.size(); ++i) value |= static_cast<uint64_t>(static_cast<uint8_t>(raw[i])) << (8 * i);
    if (width > 0 && width < 8 && (static_cast<uint8_t>(raw.back()) & 0x80)) value |= ~uint64_t{0} << (8 * width);
    return static_cast<int64_t>(value);
  }
  std::string line() {
    std::string out;
    for (char c; (c = static_cast<char>(byte())) != '\n';) out += c;
    return out;
  }

  void push(ValuePtr value) { stack_.push_back(std::move(value)); }
  void need(size_t count) const {
    if (stack_.size() < count) corrupt("the pickle stack underflows");
  }
  ValuePtr top() const {
    need(1);
    return stack_.back();
  }
  ValuePtr pop() {
    need(1);
    auto value = stack_.back();
    stack_.pop_back();
    return value;
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty() || marks_.back() > stack_.size()) corrupt("a pickle MARK is missing");
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  ValuePtr container(Value::Kind kind) const {
    auto value = top();
    if (value->kind != kind) corrupt("items added to something that is not a container");
    return value;
  }
  ValuePtr recall(uint64_t key) const {
    auto found = memo_.find(key);
    if (found == memo_.end()) corrupt("a pickle memo entry is missing");
    return found->second;
  }
  static ValuePtr sequence(Value::Kind kind, std::vector<ValuePtr> items) {
    auto value = make(kind);
    value->items = std::move(items);
    return value;
  }

  std::vector<int64_t> integers(const ValuePtr& tuple) const {
    if (tuple->kind != Value::Kind::tuple && tuple->kind != Value::Kind::list) corrupt("a tensor shape is not a tuple");
    std::vector<int64_t> out;
    for (const auto& item : tuple->items) {
      if (item->kind != Value::Kind::integer) corrupt("a tensor shape holds a non-integer");
      out.push_back(item->integer);
    }
    return out;
  }

  // ('storage', storage class, key, location, element count) → the data/<key> record as a 1-D tensor.
  ValuePtr persistent_load(const ValuePtr& id) {
    if (id->kind != Value::Kind::tuple || id->items.size() < 5 || id->items[0]->text != "storage")
      corrupt("an unknown persistent id");
    const std::string& type = id->items[1]->text;
    const std::string& key = id->items[2]->text;
    auto dtype = storage_dtype(type);
    if (!dtype) fail<DataError>("{}: holds a storage of type {}, which recmodel does not read", path_, type);
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    const std::string record = "data/" + key;
    if (!archive_.hasRecord(record)) fail<DataError>("{}: the archive lacks {} (truncated or corrupt)", path_, record);
    auto [data, bytes] = archive_.getRecord(record);
    const int64_t element = static_cast<int64_t>(torch::elementSize(*dtype));
    const int64_t count = type == "torch.UntypedStorage" ? static_cast<int64_t>(bytes) : id->items[4]->integer;
    if (count < 0 || static_cast<uint64_t>(count * element) > bytes)
      fail<DataError>("{}: {} holds {} bytes, {} needs {} (truncated or corrupt)", path_, record, bytes, type,
                      count * element);
    auto value = make(Value::Kind::storage);
    value->tensor = torch::empty({count}, torch::TensorOptions().dtype(*dtype));
    std::memcpy(value->tensor.data_ptr(), data.get(), static_cast<size_t>(count * element));
    storages_[key] = value;
    return value;
  }

  ValuePtr call(const ValuePtr& callable, const ValuePtr& args) {
    const std::string& name = callable->text;
    if (callable->kind != Value::Kind::global) return make_text(Value::Kind::object, "<call>");
    if (name == "collections.OrderedDict" || name == "builtins.dict") return make(Value::Kind::dict);
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (args->items.size() < 4 || args->items[0]->kind != Value::Kind::storage) corrupt("a malformed tensor record");
      const auto& storage = args->items[0]->tensor;
      const int64_t offset = args->items[1]->integer;
      auto sizes = integers(args->items[2]);
      auto strides = integers(args->items[3]);
      if (sizes.size() != strides.size()) corrupt("a tensor whose size and stride disagree");
      int64_t last = offset;  // the furthest element the view reads
      for (size_t i = 0; i < sizes.size(); ++i) {
        if (sizes[i] < 0 || strides[i] < 0) corrupt("a tensor with a negative size or stride");
        if (sizes[i] == 0) last = -1;
        if (last >= 0) last += (sizes[i] - 1) * strides[i];
      }
      if (offset < 0 || last >= storage.numel()) corrupt("a tensor that reaches past its storage");
      auto value = make(Value::Kind::tensor);
      value->tensor = storage.as_strided(sizes, strides, offset);
      return value;
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      if (args->items.empty()) corrupt("a malformed parameter record");
      return args->items[0];
    }
    if (name == "torch._tensor._rebuild_from_type_v2" && args->items.size() >= 3)  // (func, type, args, state)
      return call(args->items[0], args->items[2]);
    // Anything else (torch.device, set(), a training-loop object) is kept opaque; an entry holding
    // one is not a tensor and is skipped.
    return make_text(Value::Kind::object, name);
  }

  std::string path_;
  caffe2::serialize::PyTorchStreamReader& archive_;
  const char* data_;
  size_t size_;
  size_t position_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
  std::map<std::string, ValuePtr> storages_;
};

bool holds_tensors(const Value& dict) {
  for (const auto& [key, value] : dict.entries)
    if (value->kind == Value::Kind::tensor) return true;
  return false;
}

}  // namespace

NamedTensors read_torch_checkpoint(const std::filesystem::path& path) {
  const std::string name = path.string();
  {
    std::ifstream in(path, std::ios::binary);
    char magic[2] = {};
    if (!in) fail<NotFoundError>("{}: cannot open the checkpoint", name);
    if (!in.read(magic, 2) || magic[0] != 'P' || magic[1] != 'K')
      fail<DataError>("{}: not a torch.save zip archive (legacy or corrupt); re-save it with a recent PyTorch or "
                      "convert it to model.safetensors",
                      name);
  }
  ValuePtr root;
  try {
    caffe2::serialize::PyTorchStreamReader archive(name);
    if (archive.hasRecord("byteorder")) {
      auto [order, length] = archive.getRecord("byteorder");
      if (std::string(static_cast<const char*>(order.get()), length) != "little")
        fail<DataError>("{}: was saved on a big-endian machine; re-save it as model.safetensors", name);
    }
    if (!archive.hasRecord("data.pkl")) fail<DataError>("{}: not a torch.save archive (no data.pkl)", name);
    auto [pickle, size] = archive.getRecord("data.pkl");
    Unpickler unpickler(name, archive, static_cast<const char*>(pickle.get()), size);
    root = unpickler.run();
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    fail<DataError>("{}: cannot read the checkpoint (truncated or corrupt): {}", name, what.substr(0, what.find('\n')));
  }
  // Training scripts often wrap the weights: {"state_dict": {...}} or {"model": {...}}.
  if (root->kind == Value::Kind::dict && !holds_tensors(*root))
    for (const auto& [key, value] : root->entries)
      if ((key->text == "state_dict" || key->text == "model") && value->kind == Value::Kind::dict) root = value;
  if (root->kind != Value::Kind::dict) fail<DataError>("{}: expected a state dict (name → tensor)", name);
  NamedTensors tensors;
  for (const auto& [key, value] : root->entries)
    if (key->kind == Value::Kind::text && value->kind == Value::Kind::tensor) tensors.emplace_back(key->text, value->tensor);
  if (tensors.empty()) fail<DataError>("{}: holds no tensors", name);
  return tensors;
}

}  // namespace recmodel::model
