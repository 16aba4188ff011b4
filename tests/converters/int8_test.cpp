// The int8 arithmetic: weight quantization, ONNX DynamicQuantizeLinear's parameters, and the
// exactness of the integer products against an int64 reference.
#include <cmath>

#include "converters/int8.h"

// After the libtorch headers: glog, which they include, defines its own CHECK.
#include <doctest/doctest.h>

namespace c = recmodel::converters;

namespace {

// DynamicQuantizeLinear by the ONNX spec, element by element (the reference for the tensor code).
std::vector<int64_t> reference_uint8(const torch::Tensor& x, const c::DynamicQuantization& q) {
  torch::Tensor flat = x.reshape({-1}).contiguous();
  std::vector<int64_t> out;
  for (int64_t i = 0; i < flat.numel(); ++i) {
    float v = flat[i].item<float>() / q.scale;
    double r = std::nearbyint(v) + q.zero_point;
    out.push_back(static_cast<int64_t>(std::clamp(r, 0.0, 255.0)));
  }
  return out;
}

}  // namespace

TEST_CASE("quantize_symmetric maps each row's largest magnitude to 127 and rounds half to even") {
  // Scales 1 and 2 keep every quotient exact, so the ties really are ties.
  torch::Tensor w = torch::tensor({{63.5f, -127.0f, 0.5f, 1.5f}, {254.0f, 1.0f, -3.0f, 127.0f}, {0.f, 0.f, 0.f, 0.f}});
  c::Int8Weight q = c::quantize_symmetric(w, /*per_row=*/true);
  CHECK((q.values.scalar_type() == torch::kChar));
  CHECK((q.scale.sizes() == torch::IntArrayRef{3}));
  CHECK(q.scale[0].item<float>() == 1.0f);
  CHECK(q.scale[1].item<float>() == 2.0f);
  CHECK(q.scale[2].item<float>() == 1.0f);  // an all-zero row dequantizes to zeros
  CHECK(torch::equal(q.values[0], torch::tensor({64, -127, 0, 2}, torch::kChar)));
  CHECK(torch::equal(q.values[1], torch::tensor({127, 0, -2, 64}, torch::kChar)));
  CHECK(q.values[2].abs().sum().item<int>() == 0);
  torch::manual_seed(1);
  torch::Tensor r = torch::randn({8, 40});
  c::Int8Weight qr = c::quantize_symmetric(r, /*per_row=*/true);
  CHECK((qr.values.abs().amax(1) == 127).all().item<bool>());
  CHECK(((c::dequantize(qr) - r).abs() <= qr.scale.unsqueeze(1) / 2 + 1e-7).all().item<bool>());
}

TEST_CASE("quantize_symmetric per tensor uses one scale for the whole matrix") {
  torch::manual_seed(3);
  torch::Tensor w = torch::randn({16, 32});
  c::Int8Weight q = c::quantize_symmetric(w, /*per_row=*/false);
  CHECK((q.scale.sizes() == torch::IntArrayRef{1}));
  CHECK(q.scale.item<float>() == doctest::Approx(w.abs().max().item<float>() / 127));
  CHECK(q.values.abs().max().item<int>() == 127);
  CHECK(((c::dequantize(q) - w).abs() <= q.scale / 2 + 1e-6).all().item<bool>());
}

TEST_CASE("dynamic_quantization follows ONNX DynamicQuantizeLinear") {
  auto q = c::dynamic_quantization(torch::tensor({-1.0f, 0.0f, 2.0f}));
  CHECK(q.scale == 3.0f / 255.0f);
  CHECK(q.zero_point == 85);  // round(1 / (3/255))
  // The range always includes 0: all-positive data has zero point 0 and scale max/255.
  q = c::dynamic_quantization(torch::tensor({0.5f, 1.0f, 2.55f}));
  CHECK(q.scale == 2.55f / 255.0f);
  CHECK(q.zero_point == 0);
  q = c::dynamic_quantization(torch::tensor({-2.0f, -0.5f}));
  CHECK(q.zero_point == 255);
  q = c::dynamic_quantization(torch::zeros({4}));
  CHECK(q.scale == 1.0f);
  CHECK(q.zero_point == 0);
}

TEST_CASE("quantize_centered equals the element-by-element definition, ties to even included") {
  torch::manual_seed(11);
  torch::Tensor x = torch::randn({50, 200}) * 3 + 0.7;
  auto q = c::dynamic_quantization(x);
  torch::Tensor centered = c::quantize_centered(x, q);
  std::vector<int64_t> expected = reference_uint8(x, q);
  torch::Tensor flat = centered.reshape({-1});
  int64_t mismatches = 0;
  for (int64_t i = 0; i < flat.numel(); ++i) mismatches += flat[i].item<float>() + q.zero_point != expected[i];
  CHECK(mismatches == 0);
  // Exact halves round to even: scale 1/255 over [0, 1] makes 0.5/scale = 127.5 → 128.
  torch::Tensor halves = torch::tensor({0.0f, 1.0f, 127.5f / 255.0f});
  auto h = c::dynamic_quantization(halves);
  CHECK(c::quantize_centered(halves, h)[2].item<float>() == std::nearbyint(halves[2].item<float>() / h.scale));
}

TEST_CASE("int8_linear sums integer products exactly, as MatMulInteger does") {
  torch::manual_seed(5);
  for (int64_t in : {64, 512, 1300}) {  // one float slice, the slice limit, several slices
    CAPTURE(in);
    torch::Tensor x = torch::randn({2, 7, in}) * 4;
    c::Int8Weight w = c::quantize_symmetric(torch::randn({24, in}), /*per_row=*/true);
    torch::Tensor bias = torch::randn({24});
    torch::Tensor y = c::int8_linear(x, w.values, w.scale, bias);
    CHECK((y.sizes() == torch::IntArrayRef{2, 7, 24}));

    // Reference: int64 products and sums, then the float epilogue.
    auto q = c::dynamic_quantization(x.reshape({-1, in}));
    std::vector<int64_t> u = reference_uint8(x, q);
    torch::Tensor a = torch::tensor(u, torch::kLong).reshape({-1, in}) - q.zero_point;
    torch::Tensor sums = torch::matmul(a, w.values.to(torch::kLong).t());
    torch::Tensor expected = sums.to(torch::kFloat) * (w.scale * q.scale) + bias;
    CHECK(torch::equal(y.reshape({-1, 24}), expected));
  }
}

TEST_CASE("int8_embedding scales each looked-up row by its own scale") {
  torch::manual_seed(2);
  torch::Tensor table = torch::randn({10, 6});
  c::Int8Weight w = c::quantize_symmetric(table, /*per_row=*/true);
  torch::Tensor ids = torch::tensor({{3, 0, 9}, {3, 3, 1}}, torch::kLong);
  torch::Tensor rows = c::int8_embedding(ids, w.values, w.scale);
  CHECK((rows.sizes() == torch::IntArrayRef{2, 3, 6}));
  CHECK(torch::equal(rows[1][0], c::dequantize(w)[3]));
  CHECK(torch::allclose(rows, table.index({ids}), 0, w.scale.max().item<float>() / 2 + 1e-6));
}
