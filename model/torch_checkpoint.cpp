#include "model/torch_checkpoint.h"

#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "common/error.h"
#include "common/text.h"

namespace recmodel::model {

namespace {

// Bounds on what a pickle may make us hold. A state dict's data.pkl describes tensors whose bytes
// live in other records, so it is small (BERT-base: ~30 KB, ~3,000 values); these limits are far
// above any real one and keep a crafted file's memory use under a few hundred MB.
constexpr size_t kMaxPickleBytes = size_t{256} << 20;
constexpr size_t kMaxOpcodes = size_t{1} << 23;
constexpr size_t kMaxValues = size_t{1} << 22;
constexpr size_t kMaxTensorDims = 64;
// A str or bytes value: names and small metadata in a state dict, never tensor data (that lives in
// the data/ records). Far above any real one; the pickle's own size bounds their sum.
constexpr uint64_t kMaxStringBytes = uint64_t{64} << 20;
// Items in one list, tuple or dict, and entries in the memo.
constexpr size_t kMaxItems = kMaxValues;
// _rebuild_from_type_v2 calls another rebuild function; torch.save nests it once.
constexpr int kMaxRebuildNesting = 4;

// A Python object as far as a state dict needs one. Containers are shared, as in Python: the
// memo and the stack may hold the same list or dict, and a list may hold itself. So values are
// owned by the unpickler's arena and refer to each other by plain pointers: freeing them is flat
// (no recursion through a deep or cyclic graph) and nothing here walks the graph recursively.
struct Value {
  enum class Kind { none, boolean, integer, real, text, bytes, tuple, list, dict, global, storage, tensor, object };
  Kind kind = Kind::none;
  int64_t integer = 0;
  double real = 0;
  std::string text;  // text, bytes, and "module.name" of a global or of an object's class
  std::vector<Value*> items;
  std::vector<std::pair<Value*, Value*>> entries;
  torch::Tensor tensor;  // a storage (1-D) or a tensor
};

const char* kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::none: return "None";
    case Value::Kind::boolean: return "a bool";
    case Value::Kind::integer: return "an int";
    case Value::Kind::real: return "a float";
    case Value::Kind::text: return "a str";
    case Value::Kind::bytes: return "bytes";
    case Value::Kind::tuple: return "a tuple";
    case Value::Kind::list: return "a list";
    case Value::Kind::dict: return "a dict";
    case Value::Kind::global: return "a class or function";
    case Value::Kind::storage: return "a storage";
    case Value::Kind::tensor: return "a tensor";
    case Value::Kind::object: return "an object";
  }
  return "a value";
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

  // Runs the pickle to its STOP and returns the result (owned by this unpickler).
  Value* run() {
    for (size_t executed = 0;; ++executed) {
      if (executed >= kMaxOpcodes) corrupt(fmt::format("more than {} pickle opcodes", kMaxOpcodes));
      const uint8_t opcode = byte();
      switch (opcode) {
        case 0x80: byte(); break;         // PROTO
        case 0x95: bytes(8); break;       // FRAME
        case '(': marks_.push_back(stack_.size()); break;
        case '.': return pop();           // STOP
        case 'N': push(make(Value::Kind::none)); break;
        case 0x88: case 0x89: {           // NEWTRUE, NEWFALSE
          Value* value = make(Value::Kind::boolean);
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
          Value* value = make(Value::Kind::real);
          std::memcpy(&value->real, &bits, sizeof bits);
          push(value);
          break;
        }
        case 'X': push(make_text(Value::Kind::text, string(4))); break;   // BINUNICODE
        case 0x8c: push(make_text(Value::Kind::text, string(1))); break;  // SHORT_BINUNICODE
        case 0x8d: push(make_text(Value::Kind::text, string(8))); break;  // BINUNICODE8
        case 'T': push(make_text(Value::Kind::text, string(4))); break;   // py2 BINSTRING
        case 'U': push(make_text(Value::Kind::text, string(1))); break;   // py2 SHORT_BINSTRING
        case 'B': push(make_text(Value::Kind::bytes, string(4))); break;  // BINBYTES
        case 'C': push(make_text(Value::Kind::bytes, string(1))); break;  // SHORT_BINBYTES
        case 0x8e: push(make_text(Value::Kind::bytes, string(8))); break; // BINBYTES8
        case ')': push(make(Value::Kind::tuple)); break;
        case 't': push(sequence(Value::Kind::tuple, pop_mark())); break;
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          const size_t count = opcode - 0x84u;
          need(count);
          std::vector<Value*> items(stack_.end() - static_cast<std::ptrdiff_t>(count), stack_.end());
          stack_.resize(stack_.size() - count);
          push(sequence(Value::Kind::tuple, std::move(items)));
          break;
        }
        case ']': case 0x8f: push(make(Value::Kind::list)); break;  // EMPTY_LIST, EMPTY_SET
        case 'a': {
          Value* item = pop();
          grow(container(Value::Kind::list, "APPEND"), 1)->items.push_back(item);
          break;
        }
        case 'e': case 0x90: {            // APPENDS, ADDITEMS
          auto items = pop_mark();
          auto& list = grow(container(Value::Kind::list, "APPENDS"), items.size())->items;
          list.insert(list.end(), items.begin(), items.end());
          break;
        }
        case '}': push(make(Value::Kind::dict)); break;
        case 's': {
          Value* value = pop();
          Value* key = pop();
          grow(container(Value::Kind::dict, "SETITEM"), 1)->entries.emplace_back(key, value);
          break;
        }
        case 'u': {
          auto items = pop_mark();
          if (items.size() % 2) corrupt("SETITEMS with an odd number of items");
          Value* dict = grow(container(Value::Kind::dict, "SETITEMS"), items.size() / 2);
          for (size_t i = 0; i < items.size(); i += 2) dict->entries.emplace_back(items[i], items[i + 1]);
          break;
        }
        case 'c': {                       // GLOBAL module\nname\n
          std::string module = line();
          push(make_text(Value::Kind::global, module + "." + line()));
          break;
        }
        case 0x93: {                      // STACK_GLOBAL
          Value* name = pop();
          Value* module = pop();
          if (module->kind != Value::Kind::text || name->kind != Value::Kind::text)
            corrupt(fmt::format("STACK_GLOBAL of {} and {} (expected two str)", kind_name(module->kind),
                                kind_name(name->kind)));
          push(make_text(Value::Kind::global, module->text + "." + name->text));
          break;
        }
        case 'q': memoize(little_endian(1)); break;     // BINPUT
        case 'r': memoize(little_endian(4)); break;     // LONG_BINPUT
        case 0x94: memoize(memo_.size()); break;        // MEMOIZE
        case 'h': push(recall(little_endian(1))); break;
        case 'j': push(recall(little_endian(4))); break;
        case 'Q': push(persistent_load(pop())); break;  // BINPERSID
        case 'R': case 0x81: {            // REDUCE, NEWOBJ
          Value* args = pop();
          Value* callable = pop();
          push(call(callable, args, 0));
          break;
        }
        case 0x92: {                      // NEWOBJ_EX
          pop();
          Value* args = pop();
          Value* callable = pop();
          push(call(callable, args, 0));
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
  // A call whose argument has the wrong type: names the function, the argument and both types.
  [[noreturn]] void bad_argument(const std::string& function, const std::string& argument, const char* expected,
                                 const Value* found) const {
    corrupt(fmt::format("{} with {} {} (expected {})", function, argument, found ? kind_name(found->kind) : "missing",
                        expected));
  }

  Value* make(Value::Kind kind) {
    if (arena_.size() >= kMaxValues) corrupt(fmt::format("more than {} pickled values", kMaxValues));
    arena_.emplace_back();
    arena_.back().kind = kind;
    return &arena_.back();
  }
  Value* make_text(Value::Kind kind, std::string text) {
    Value* value = make(kind);
    value->text = std::move(text);
    return value;
  }
  Value* make_integer(int64_t integer) {
    Value* value = make(Value::Kind::integer);
    value->integer = integer;
    return value;
  }
  Value* sequence(Value::Kind kind, std::vector<Value*> items) {
    if (items.size() > kMaxItems) corrupt(fmt::format("{} of more than {} items", kind_name(kind), kMaxItems));
    Value* value = make(kind);
    value->items = std::move(items);
    return value;
  }

  uint8_t byte() {
    if (position_ >= size_) corrupt("the pickle ends early");
    return static_cast<uint8_t>(data_[position_++]);
  }
  std::string bytes(uint64_t count) {
    if (count > size_ - position_) corrupt(fmt::format("a value of {} bytes but the pickle ends early", count));
    std::string out(data_ + position_, count);
    position_ += count;
    return out;
  }
  // A str or bytes value whose length is a `width`-byte little-endian prefix.
  std::string string(int width) {
    const uint64_t count = little_endian(width);
    if (count > kMaxStringBytes)
      corrupt(fmt::format("a str or bytes value of {} bytes (at most {})", count, kMaxStringBytes));
    return bytes(count);
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
  // A GLOBAL's module or name: a Python identifier path, never long.
  std::string line() {
    constexpr size_t kMaxLine = 4096;
    std::string out;
    for (char c; (c = static_cast<char>(byte())) != '\n';) {
      if (out.size() >= kMaxLine) corrupt(fmt::format("a GLOBAL name longer than {} bytes", kMaxLine));
      out += c;
    }
    return out;
  }

  void push(Value* value) { stack_.push_back(value); }
  void need(size_t count) const {
    if (stack_.size() < count) corrupt("the pickle stack underflows");
  }
  Value* top() const {
    need(1);
    return stack_.back();
  }
  Value* pop() {
    need(1);
    Value* value = stack_.back();
    stack_.pop_back();
    return value;
  }
  std::vector<Value*> pop_mark() {
    if (marks_.empty() || marks_.back() > stack_.size()) corrupt("a pickle MARK is missing");
    std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  Value* container(Value::Kind kind, const char* opcode) const {
    Value* value = top();
    if (value->kind != kind)
      corrupt(fmt::format("{} to {} (expected {})", opcode, kind_name(value->kind), kind_name(kind)));
    return value;
  }
  // Adds `count` items to `value` after checking it stays within kMaxItems.
  Value* grow(Value* value, size_t count) const {
    if (value->items.size() + value->entries.size() + count > kMaxItems)
      corrupt(fmt::format("{} of more than {} items", kind_name(value->kind), kMaxItems));
    return value;
  }
  void memoize(uint64_t key) {
    Value* value = top();
    if (memo_.size() >= kMaxItems && !memo_.count(key))
      corrupt(fmt::format("more than {} pickle memo entries", kMaxItems));
    memo_[key] = value;
  }
  Value* recall(uint64_t key) const {
    auto found = memo_.find(key);
    if (found == memo_.end()) corrupt(fmt::format("memo entry {} is read before it is written", key));
    return found->second;
  }

  // The items of a tensor's size or stride tuple.
  std::vector<int64_t> integers(const std::string& function, const char* argument, const Value* tuple) const {
    if (tuple->kind != Value::Kind::tuple) bad_argument(function, argument, "a tuple of int", tuple);
    if (tuple->items.size() > kMaxTensorDims)
      corrupt(fmt::format("{} with a {} of {} dimensions (at most {})", function, argument, tuple->items.size(),
                          kMaxTensorDims));
    std::vector<int64_t> out;
    for (const Value* item : tuple->items) {
      if (item->kind != Value::Kind::integer) bad_argument(function, argument, "a tuple of int", item);
      out.push_back(item->integer);
    }
    return out;
  }

  // ('storage', storage class, key, location, element count) → the data/<key> record as a 1-D tensor.
  Value* persistent_load(const Value* id) {
    if (id->kind != Value::Kind::tuple || id->items.size() < 5 || id->items[0]->kind != Value::Kind::text ||
        id->items[0]->text != "storage")
      corrupt("an unknown persistent id (expected ('storage', class, key, location, size))");
    const Value* type_value = id->items[1];
    const Value* key_value = id->items[2];
    const Value* count_value = id->items[4];
    if (type_value->kind != Value::Kind::global && type_value->kind != Value::Kind::text)
      bad_argument("a storage id", "class", "a storage class", type_value);
    if (key_value->kind != Value::Kind::text) bad_argument("a storage id", "key", "a str", key_value);
    if (count_value->kind != Value::Kind::integer) bad_argument("a storage id", "size", "an int", count_value);
    const std::string& type = type_value->text;
    const std::string& key = key_value->text;
    auto dtype = storage_dtype(type);
    if (!dtype) fail<DataError>("{}: holds a storage of type {}, which recmodel does not read", path_, type.substr(0, 60));
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    const std::string record = "data/" + key;
    if (!archive_.hasRecord(record))
      fail<DataError>("{}: the archive lacks {} (truncated or corrupt)", path_, record.substr(0, 80));
    auto [data, bytes] = archive_.getRecord(record);
    const uint64_t element = torch::elementSize(*dtype);
    const int64_t count = type == "torch.UntypedStorage" ? static_cast<int64_t>(bytes) : count_value->integer;
    // Compared by division, so a huge count cannot overflow the byte count.
    if (count < 0 || static_cast<uint64_t>(count) > bytes / element)
      fail<DataError>("{}: {} holds {} bytes, too few for {} elements of {} (truncated or corrupt)", path_, record,
                      bytes, count, type);
    Value* value = make(Value::Kind::storage);
    value->tensor = torch::empty({count}, torch::TensorOptions().dtype(*dtype));
    std::memcpy(value->tensor.data_ptr(), data.get(), static_cast<size_t>(count) * element);
    storages_[key] = value;
    return value;
  }

  // _rebuild_tensor_v2(storage, offset, size, stride, ...): a view of the storage, checked to lie
  // inside it with overflow-safe arithmetic.
  Value* rebuild_tensor(const std::string& name, const Value* args) {
    if (args->items.size() < 4) corrupt(fmt::format("{} with {} arguments (expected at least 4)", name, args->items.size()));
    const Value* storage_value = args->items[0];
    const Value* offset_value = args->items[1];
    if (storage_value->kind != Value::Kind::storage) bad_argument(name, "storage", "a storage", storage_value);
    if (offset_value->kind != Value::Kind::integer) bad_argument(name, "offset", "an int", offset_value);
    const torch::Tensor& storage = storage_value->tensor;
    const int64_t offset = offset_value->integer;
    auto sizes = integers(name, "size", args->items[2]);
    auto strides = integers(name, "stride", args->items[3]);
    if (sizes.size() != strides.size())
      corrupt(fmt::format("{} with a size of {} dimensions and a stride of {}", name, sizes.size(), strides.size()));
    int64_t numel = 1;
    int64_t last = offset;  // the furthest element the view reads
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (sizes[i] < 0 || strides[i] < 0) corrupt(fmt::format("{} with a negative size or stride", name));
      int64_t reach = 0;
      if (__builtin_mul_overflow(numel, sizes[i], &numel) ||
          (sizes[i] > 0 && (__builtin_mul_overflow(sizes[i] - 1, strides[i], &reach) ||
                            __builtin_add_overflow(last, reach, &last))))
        corrupt(fmt::format("{} whose size or stride overflows", name));
    }
    if (offset < 0 || (numel > 0 && last >= storage.numel()) || offset > storage.numel())
      corrupt(fmt::format("{} that reaches past its storage of {} elements", name, storage.numel()));
    // A view with more elements than its storage repeats them (stride 0): a few bytes in the file
    // would then pass for a matrix of any size, and config.json is checked against these shapes.
    if (numel > storage.numel())
      corrupt(fmt::format("{} of {} elements over a storage of {} (a stride-0 view)", name, numel, storage.numel()));
    Value* value = make(Value::Kind::tensor);
    value->tensor = storage.as_strided(sizes, strides, offset);
    return value;
  }

  Value* call(const Value* callable, const Value* args, int nesting) {
    if (callable->kind != Value::Kind::global) return make_text(Value::Kind::object, "<call>");
    const std::string& name = callable->text;
    if (name == "collections.OrderedDict" || name == "builtins.dict") return make(Value::Kind::dict);
    const bool is_rebuild_tensor = name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor";
    const bool is_rebuild_parameter =
        name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state";
    const bool rebuild_from_type = name == "torch._tensor._rebuild_from_type_v2";
    if (!is_rebuild_tensor && !is_rebuild_parameter && !rebuild_from_type)
      // Anything else (torch.device, set(), a training-loop object) is kept opaque; an entry holding
      // one is not a tensor and is skipped.
      return make_text(Value::Kind::object, name);
    if (args->kind != Value::Kind::tuple) bad_argument(name, "arguments", "a tuple", args);
    if (is_rebuild_tensor) return rebuild_tensor(name, args);
    if (is_rebuild_parameter) {
      const Value* data = args->items.empty() ? nullptr : args->items[0];
      if (!data || data->kind != Value::Kind::tensor) bad_argument(name, "data", "a tensor", data);
      return args->items[0];
    }
    // _rebuild_from_type_v2(func, type, args, state) calls func(*args).
    if (args->items.size() < 3) corrupt(fmt::format("{} with {} arguments (expected 4)", name, args->items.size()));
    if (nesting >= kMaxRebuildNesting) corrupt(fmt::format("{} nested more than {} deep", name, kMaxRebuildNesting));
    if (args->items[0]->kind != Value::Kind::global) bad_argument(name, "func", "a function", args->items[0]);
    if (args->items[2]->kind != Value::Kind::tuple) bad_argument(name, "args", "a tuple", args->items[2]);
    return call(args->items[0], args->items[2], nesting + 1);
  }

  std::string path_;
  caffe2::serialize::PyTorchStreamReader& archive_;
  const char* data_;
  size_t size_;
  size_t position_ = 0;
  std::deque<Value> arena_;  // owns every value; a deque keeps their addresses stable
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
  std::map<std::string, Value*> storages_;
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
  NamedTensors tensors;
  try {
    caffe2::serialize::PyTorchStreamReader archive(name);
    if (archive.hasRecord("byteorder")) {
      auto [order, length] = archive.getRecord("byteorder");
      if (std::string(static_cast<const char*>(order.get()), std::min<size_t>(length, 16)) != "little")
        fail<DataError>("{}: was saved on a big-endian machine; re-save it as model.safetensors", name);
    }
    if (!archive.hasRecord("data.pkl")) fail<DataError>("{}: not a torch.save archive (no data.pkl)", name);
    auto [pickle, size] = archive.getRecord("data.pkl");
    if (size > kMaxPickleBytes)
      fail<DataError>("{}: data.pkl is {} bytes; a state dict's is far smaller (at most {} read)", name, size,
                      kMaxPickleBytes);
    Unpickler unpickler(name, archive, static_cast<const char*>(pickle.get()), size);
    const Value* root = unpickler.run();
    // Training scripts often wrap the weights: {"state_dict": {...}} or {"model": {...}}.
    if (root->kind == Value::Kind::dict && !holds_tensors(*root))
      for (const auto& [key, value] : root->entries)
        if (key->kind == Value::Kind::text && (key->text == "state_dict" || key->text == "model") &&
            value->kind == Value::Kind::dict)
          root = value;
    if (root->kind != Value::Kind::dict)
      fail<DataError>("{}: expected a state dict (name → tensor), found {}", name, kind_name(root->kind));
    // The tensors share their storages' memory, so they outlive the unpickler's values.
    std::set<std::string> names;
    for (const auto& [key, value] : root->entries) {
      if (key->kind != Value::Kind::text || value->kind != Value::Kind::tensor) continue;
      // A Python dict cannot pickle a key twice; which copy would win is anybody's guess.
      if (!names.insert(key->text).second)
        fail<DataError>("{}: the state dict holds tensor {} twice", name, printable(key->text));
      tensors.emplace_back(key->text, value->tensor);
    }
  } catch (const std::bad_alloc&) {
    // A zip entry declares its own uncompressed size and libtorch allocates it before inflating.
    fail<DataError>("{}: cannot read the checkpoint: it declares more data than memory allows (corrupt or crafted)",
                    name);
  } catch (const c10::Error& e) {
    // libtorch's first line, without its backtrace or its plea to report the message to PyTorch:
    // the file is at fault, not either program.
    std::string what = e.what_without_backtrace();
    what = what.substr(0, std::min({what.find('\n'), what.find(" (Could this error message be improved?"), size_t{200}}));
    fail<DataError>("{}: cannot read the checkpoint (truncated or corrupt): {}", name, what);
  }
  if (tensors.empty()) fail<DataError>("{}: holds no tensors", name);
  return tensors;
}

}  // namespace recmodel::model
