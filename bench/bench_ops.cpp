// Matmul throughput for the shapes our models use, forward and backward (the dA, dB pair),
// against oneDNN's own rate on a large square product. Threads: OMP_NUM_THREADS.
// usage: bench_ops [f32|bf16]   (the products' precision, as train.dtype; the peak stays f32)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/dnnl_context.h"
#include "engine/ops.h"
#include "engine/precision.h"
#include "engine/rng.h"
#include "engine/threads.h"
#include "models/attention.h"
#include "models/decoder.h"
#include "models/flops.h"

using namespace sl;

static Tensor random(const Shape& shape, Rng& rng) {
  Tensor t = Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = rng.normal();
  return t;
}

// Median seconds of `fn` over repetitions after one warm-up; the repetition count targets
// about half a second of timing per measurement.
static double median_seconds(const std::function<void()>& setup, const std::function<void()>& fn) {
  using clock = std::chrono::steady_clock;
  auto once = [&] {
    setup();
    auto t0 = clock::now();
    fn();
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  double first = once();
  int reps = std::clamp((int)(0.5 / std::max(first, 1e-6)), 3, 25);
  std::vector<double> t(reps);
  for (auto& x : t) x = once();
  std::nth_element(t.begin(), t.begin() + reps / 2, t.end());
  return t[reps / 2];
}

struct Case {
  std::string name;
  Shape a, b;
  bool as_linear;  // b given as a weight [out, in] through linear(), as models call it
};

static int run(int argc, char** argv) {
  Rng rng(1);
  const std::string precision = argc > 1 ? argv[1] : "f32";
  set_matmul_precision(parse_matmul_precision(precision));
  std::printf("threads: %d, products in %s\n", num_threads(), precision.c_str());

  // Peak: a bare oneDNN matmul on a large square product into a preallocated output (no
  // framework overhead, no fresh output pages).
  const int64_t p = 2048;
  Tensor pa = random({p, p}, rng), pb = random({p, p}, rng), pc = Tensor::zeros({p, p});
  dnnl::memory::desc md({p, p}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab);
  dnnl::matmul square(dnnl::matmul::primitive_desc(dnnl::matmul::desc(md, md, md), dnnl_ctx::engine()));
  auto mem = [&](Tensor& t) { return dnnl::memory(md, dnnl_ctx::engine(), t.data()); };
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, mem(pa)}, {DNNL_ARG_WEIGHTS, mem(pb)}, {DNNL_ARG_DST, mem(pc)}};
  double peak_s = median_seconds([] {}, [&] {
    square.execute(dnnl_ctx::stream(), args);
    dnnl_ctx::stream().wait();
  });
  double peak = 2.0 * p * p * p / peak_s / 1e9;
  std::printf("peak (bare oneDNN matmul %ld^3): %.1f GFLOP/s\n\n", (long)p, peak);

  std::vector<Case> cases = {
      {"d=256 qkv", {4096, 256}, {256, 768}, false},
      {"d=256 mlp up", {4096, 256}, {256, 688}, false},
      {"d=256 mlp down", {4096, 688}, {688, 256}, false},
      {"d=256 proj", {4096, 256}, {256, 256}, false},
      {"d=256 qkv (linear)", {4096, 256}, {768, 256}, true},
      {"d=512 qkv", {2048, 512}, {512, 1536}, false},
      {"d=512 mlp up", {2048, 512}, {512, 1376}, false},
      {"d=512 mlp down", {2048, 1376}, {1376, 512}, false},
      {"d=512 proj", {2048, 512}, {512, 512}, false},
      {"d=512 vocab", {2048, 512}, {512, 8192}, false},
      {"d=128 proj", {2048, 128}, {128, 128}, true},
      {"d=128 qkv", {2048, 128}, {384, 128}, true},
      {"d=128 up", {2048, 128}, {344, 128}, true},
      {"d=128 gate+up", {2048, 128}, {688, 128}, true},
      {"d=128 down", {2048, 344}, {128, 344}, true},
      {"d=128 vocab", {2048, 128}, {1024, 128}, true},
      {"attn scores", {64, 256, 64}, {64, 64, 256}, false},
      {"attn values", {64, 256, 256}, {64, 256, 64}, false},
      {"d=128 attn scores", {128, 64, 32}, {128, 32, 64}, false},
      {"d=128 attn values", {128, 64, 64}, {128, 64, 32}, false},
  };
  std::printf("%-20s %-26s %9s %8s %6s %9s %8s %6s\n", "case", "shape", "fwd ms", "GFLOP/s", "%peak", "bwd ms",
              "GFLOP/s", "%peak");
  for (const Case& c : cases) {
    Tensor a = random(c.a, rng).set_requires_grad(), b = random(c.b, rng).set_requires_grad();
    auto product = [&] { return c.as_linear ? linear(a, b) : matmul(a, b); };
    int64_t m = c.a[c.a.size() - 2], k = c.a.back(), batch = shape_numel(c.a) / (m * k);
    int64_t n = c.as_linear ? c.b[0] : c.b.back();
    double flop = 2.0 * batch * m * k * n;

    double fwd = median_seconds([] {}, [&] { NoGrad ng; product(); });
    // Backward alone: the recorded closure computes dA = dC B^T and dB = A^T dC.
    Tensor out, seed = random({batch * m * n}, rng).reshape(product().shape());
    double bwd = median_seconds([&] { out = product(); },
                                [&] { out.impl()->grad_fn->backward(out, seed); });

    std::string shape = shape_str(c.a) + "x" + shape_str(c.b) + (c.as_linear ? "^T" : "");
    std::printf("%-20s %-26s %9.2f %8.1f %5.0f%% %9.2f %8.1f %5.0f%%\n", c.name.c_str(), shape.c_str(), fwd * 1e3,
                flop / fwd / 1e9, 100 * flop / fwd / 1e9 / peak, bwd * 1e3, 2 * flop / bwd / 1e9,
                100 * 2 * flop / bwd / 1e9 / peak);
  }

  // A pre-norm block's residual add and the norm that reads it, composed and fused (add_rms_norm),
  // at the calibrated shape's [batch x sequence, d]: forward, and forward + backward from the norm.
  {
    Tensor h = random({2048, 128}, rng).set_requires_grad(), y = random({2048, 128}, rng).set_requires_grad();
    Tensor w = random({128}, rng).set_requires_grad(), seed = random({2048, 128}, rng);
    auto composed = [&] { return rms_norm(add(h, y), w); };
    auto fused = [&] { return add_rms_norm(h, y, w).normed; };
    std::printf("\n%-20s %-26s %9s %9s\n", "residual + norm", "shape", "fwd ms", "fwd+bwd ms");
    for (auto& [name, f] : std::vector<std::pair<const char*, std::function<Tensor()>>>{{"composed", composed},
                                                                                       {"fused", fused}}) {
      double fwd = median_seconds([] {}, [&] { NoGrad ng; f(); });
      // fresh gradients each time, as the step's intermediates have
      double both = median_seconds([&] { for (Tensor* t : {&h, &y, &w}) t->impl()->grad.reset(); },
                                   [&] { backward(f(), seed); });
      std::printf("%-20s %-26s %9.3f %9.3f\n", name, "[2048, 128] + [2048, 128]", fwd * 1e3, both * 1e3);
    }
  }

  // The attention core at the calibrated shape, causal softmax: in f32 the tiled path, in bf16 the
  // blocked one (ops/attention.cpp).
  {
    const int64_t B = 32, T = 64, H = 4, Dh = 32;
    const std::vector<uint8_t> causal = models::Attention::make_mask(models::AttentionConfig{}, T, 0);
    Tensor q = random({B, T, H, Dh}, rng).set_requires_grad(), k = random({B, T, H, Dh}, rng).set_requires_grad(),
           v = random({B, T, H, Dh}, rng).set_requires_grad(), seed = random({B, T, H, Dh}, rng);
    auto core = [&] { return attention(q, k, v, causal, AttnKernel::Softmax, 1.f / std::sqrt((float)Dh), 0.f, false); };
    double fwd = median_seconds([] {}, [&] { NoGrad ng; core(); });
    Tensor out;
    double bwd = median_seconds([&] { out = core(); for (Tensor* t : {&q, &k, &v}) t->impl()->grad.reset(); },
                                [&] { out.impl()->grad_fn->backward(out, seed); });
    std::printf("\n%-20s %-26s %9.3f fwd ms %9.3f bwd ms\n", "attention core", "[32, 64, 4, 32] causal", fwd * 1e3,
                bwd * 1e3);
  }

  // One full forward + backward of the 4-layer d=256 LLaMA-style stack (batch 16 x 256 tokens),
  // counted as the PyTorch reference counts them (models/flops.h).
  models::DecoderConfig dc;
  dc.vocab_size = 256;
  ParamStore ps;
  models::Decoder model(dc, ps);
  Rng init(0);
  ps.finalize(init);
  const int64_t B = 16, T = 256;
  std::vector<int32_t> tokens(B * (T + 1));
  for (auto& t : tokens) t = (int32_t)rng.uniform_int(dc.vocab_size);
  std::vector<int32_t> in(B * T), target(B * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      in[b * T + t] = tokens[b * (T + 1) + t];
      target[b * T + t] = tokens[b * (T + 1) + t + 1];
    }
  double step = median_seconds([&] { ps.zero_grad(); },
                               [&] { cross_entropy(model.forward(in, B, T).logits, target).backward(); });
  double flop = models::train_flops_per_token(dc, T) * B * T;
  std::printf("\n4-layer d=256 stack, fwd+bwd of %lld x %lld tokens: %.1f ms, %.0f tokens/s, %.1f GFLOP/s (%.0f%% of peak)\n",
              (long long)B, (long long)T, step * 1e3, B * T / step, flop / step / 1e9, 100 * flop / step / 1e9 / peak);
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_ops: %s\n", e.what());
    return 2;
  }
}
