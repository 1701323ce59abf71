// Tandem's CUDA kernels: everything of a Llama-family or OPT forward pass that is not a GEMM (cuBLASLt does those).
//
// Conventions (shared with CudaBackend):
// - Activations are f32 row-major [rows][cols]. Ops that feed a GEMM also write a bf16 copy ("mirror", may be null)
//   so that cuBLASLt reads bf16 without a separate conversion pass.
// - 1-D weights (norm gammas, biases) are f32 on the device; matrices are bf16 or f32.
// - The paged KV cache of a layer is [slots][kvHeads * headDim] of KV_T (bf16 or f32), slot = block * blockSize + offset.
// - Step metadata (token ids, positions, slots, per-row sequence index and position, block tables) is uploaded once
//   per step; kernels read it from device memory so that a recorded CUDA graph replays with new values.
// - A negative slot marks a padding row (decode steps padded to a captured batch size): it writes no KV.
// Every reduction uses a fixed order, so a row's result does not depend on what else is in the batch.

#include <cuda_bf16.h>

typedef __nv_bfloat16 bf16;

#define NEG_INF (-__int_as_float(0x7f800000))

__device__ __forceinline__ float load(const float* p) { return *p; }
__device__ __forceinline__ float load(const bf16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(bf16* p, float v) { *p = __float2bfloat16(v); }

__device__ __forceinline__ float warpSum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warpMax(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum (or max) over the whole block (blockDim.x a multiple of 32); every thread gets the result.
template <bool MAX>
__device__ float blockReduce(float v) {
    __shared__ float part[32];
    v = MAX ? warpMax(v) : warpSum(v);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    float t = lane < (int) (blockDim.x >> 5) ? part[lane] : (MAX ? NEG_INF : 0.f);
    return MAX ? warpMax(t) : warpSum(t);
}

__device__ float blockSum(float v) { return blockReduce<false>(v); }

__device__ float blockMax(float v) { return blockReduce<true>(v); }

// ---------------------------------------------------------------------------------------------------------------
// Element-wise and row-wise ops
// ---------------------------------------------------------------------------------------------------------------

template <typename W>
__device__ void embedRow(const int* tokens, const W* table, float* out, bf16* mirror, int cols) {
    long r = blockIdx.x;
    const W* src = table + (long) tokens[r] * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = load(src + c);
        out[r * cols + c] = v;
        if (mirror) mirror[r * cols + c] = __float2bfloat16(v);
    }
}

extern "C" __global__ void tdm_embed_bf16(const int* tokens, const bf16* table, float* out, bf16* mirror, int cols) {
    embedRow(tokens, table, out, mirror, cols);
}

extern "C" __global__ void tdm_embed_f32(const int* tokens, const float* table, float* out, bf16* mirror, int cols) {
    embedRow(tokens, table, out, mirror, cols);
}

extern "C" __global__ void tdm_to_bf16(const float* src, bf16* dst, long n) {
    for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) {
        dst[i] = __float2bfloat16(src[i]);
    }
}

extern "C" __global__ void tdm_add(float* acc, const float* x, long n) {
    for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) acc[i] += x[i];
}

extern "C" __global__ void tdm_add_bias(float* x, const float* bias, int cols, long n) {
    for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) x[i] += bias[i % cols];
}

// out = x / rms(x) * gamma, one block per row. With acc != null it first does x = acc += x (the residual add),
// so the residual stream is read and written once.
extern "C" __global__ void tdm_rmsnorm(float* acc, const float* x, const float* gamma, float* out, bf16* mirror,
                                       int cols, float eps) {
    long base = (long) blockIdx.x * cols;
    float ss = 0.f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = x[base + c];
        if (acc) {
            v += acc[base + c];
            acc[base + c] = v;
        }
        ss += v * v;
    }
    ss = blockSum(ss);
    float inv = rsqrtf(ss / cols + eps);
    const float* src = acc ? acc : x;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = src[base + c] * inv * gamma[c];
        out[base + c] = v;
        if (mirror) mirror[base + c] = __float2bfloat16(v);
    }
}

// LayerNorm (OPT): out = (v - mean) / sqrt(var + eps) * gamma + beta per row, v = x, or with acc != null v = acc += x
// (the residual add). One block per row; two passes over the row (mean, then the variance about it), as the CPU does.
extern "C" __global__ void tdm_layernorm(float* acc, const float* x, const float* gamma, const float* beta, float* out,
                                         bf16* mirror, int cols, float eps) {
    long base = (long) blockIdx.x * cols;
    float s = 0.f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = x[base + c];
        if (acc) {
            v += acc[base + c];
            acc[base + c] = v;
        }
        s += v;
    }
    float mean = blockSum(s) / cols;
    const float* src = acc ? acc : x;
    float ss = 0.f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float d = src[base + c] - mean;
        ss += d * d;
    }
    float inv = rsqrtf(blockSum(ss) / cols + eps);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = (src[base + c] - mean) * inv * gamma[c] + beta[c];
        out[base + c] = v;
        if (mirror) mirror[base + c] = __float2bfloat16(v);
    }
}

// x = max(x + bias, 0) (bias may be null: plain ReLU), with the bf16 mirror for the GEMM that follows (OPT's fc1 -> fc2).
extern "C" __global__ void tdm_add_bias_relu(float* x, const float* bias, bf16* mirror, int cols, long n) {
    for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) {
        float v = fmaxf(x[i] + (bias ? bias[i % cols] : 0.f), 0.f);
        x[i] = v;
        if (mirror) mirror[i] = __float2bfloat16(v);
    }
}

// x[r] += table[positions[r] + offset]: learned position embeddings (OPT), positions read from the step metadata.
template <typename W>
__device__ void addPositionRow(float* x, const int* positions, const W* table, int offset, int cols) {
    long r = blockIdx.x;
    const W* src = table + (long) (positions[r] + offset) * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) x[r * cols + c] += load(src + c);
}

extern "C" __global__ void tdm_add_position_bf16(float* x, const int* positions, const bf16* table, int offset, int cols) {
    addPositionRow(x, positions, table, offset, cols);
}

extern "C" __global__ void tdm_add_position_f32(float* x, const int* positions, const float* table, int offset, int cols) {
    addPositionRow(x, positions, table, offset, cols);
}

// gate and up rows are ld apart (they may be column ranges of one fused gate|up product); out is contiguous.
extern "C" __global__ void tdm_swiglu(const float* gate, const float* up, float* out, bf16* mirror, int cols, int ld, long n) {
    for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) {
        long at = (i / cols) * ld + i % cols;
        float g = gate[at];
        float v = g / (1.f + expf(-g)) * up[at];
        if (out) out[i] = v;
        if (mirror) mirror[i] = __float2bfloat16(v);
    }
}

// Rotates pair (i0, i1) of every head of row blockIdx.x by the row's position; cos/sin tables are [pos][hd/2].
__device__ __forceinline__ void rotate(float* row, int heads, int hd, int interleaved, const float* cosT,
                                       const float* sinT, int pos) {
    int half = hd / 2;
    for (int j = threadIdx.x; j < heads * half; j += blockDim.x) {
        int h = j / half, i = j % half;
        int i0 = h * hd + (interleaved ? 2 * i : i);
        int i1 = h * hd + (interleaved ? 2 * i + 1 : i + half);
        float c = cosT[(long) pos * half + i], s = sinT[(long) pos * half + i];
        float v0 = row[i0], v1 = row[i1];
        row[i0] = v0 * c - v1 * s;
        row[i1] = v0 * s + v1 * c;
    }
}

extern "C" __global__ void tdm_rope(float* x, int heads, int hd, int interleaved, const int* positions,
                                    const float* cosT, const float* sinT) {
    rotate(x + (long) blockIdx.x * heads * hd, heads, hd, interleaved, cosT, sinT, positions[blockIdx.x]);
}

// RoPE on q and k fused with the KV-cache write: one block per row rotates q and k in place and stores k and v into
// the row's cache slot. With rotateKq == 0 it only writes k and v (the plain writeKv op).
// q rows are qld apart and k / v rows kvld apart (column ranges of one fused q|k|v product, or separate buffers).
template <typename KV>
__device__ void ropeWriteKv(float* q, float* k, const float* v, int qld, int kvld, int heads, int kvHeads, int hd,
                            int interleaved, int rotateQk, const int* positions, const int* slots, const float* cosT,
                            const float* sinT, KV* kc, KV* vc) {
    long r = blockIdx.x;
    int kvDim = kvHeads * hd;
    if (rotateQk) {
        int pos = positions[r];
        rotate(q + r * qld, heads, hd, interleaved, cosT, sinT, pos);
        rotate(k + r * kvld, kvHeads, hd, interleaved, cosT, sinT, pos);
        __syncthreads();
    }
    long slot = slots[r];
    if (slot < 0) return;
    for (int c = threadIdx.x; c < kvDim; c += blockDim.x) {
        store(kc + slot * kvDim + c, k[r * kvld + c]);
        store(vc + slot * kvDim + c, v[r * kvld + c]);
    }
}

extern "C" __global__ void tdm_rope_write_kv_bf16(float* q, float* k, const float* v, int qld, int kvld, int heads, int kvHeads, int hd,
                                                  int interleaved, int rotateQk, const int* positions, const int* slots,
                                                  const float* cosT, const float* sinT, bf16* kc, bf16* vc) {
    ropeWriteKv(q, k, v, qld, kvld, heads, kvHeads, hd, interleaved, rotateQk, positions, slots, cosT, sinT, kc, vc);
}

extern "C" __global__ void tdm_rope_write_kv_f32(float* q, float* k, const float* v, int qld, int kvld, int heads, int kvHeads, int hd,
                                                 int interleaved, int rotateQk, const int* positions, const int* slots,
                                                 const float* cosT, const float* sinT, float* kc, float* vc) {
    ropeWriteKv(q, k, v, qld, kvld, heads, kvHeads, hd, interleaved, rotateQk, positions, slots, cosT, sinT, kc, vc);
}

extern "C" __global__ void tdm_gather_rows(const float* x, const int* rows, float* out, bf16* mirror, int cols) {
    long src = (long) rows[blockIdx.x] * cols, dst = (long) blockIdx.x * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = x[src + c];
        out[dst + c] = v;
        if (mirror) mirror[dst + c] = __float2bfloat16(v);
    }
}

// KV hand-over (Splitwise): a sequence's blocks of one layer are scattered over the cache, so the prompt worker
// gathers them into one contiguous staging buffer ([n blocks of keys][n blocks of values]) that travels as one
// message, and the token worker scatters it into its reserved blocks. Copies are 16-byte vectors; a block of one
// layer's keys is blockVecs of them (blockSize * kvDim elements, always a multiple of 16 bytes).
extern "C" __global__ void tdm_kv_gather(const int4* keys, const int4* values, const int* blocks, int n, long blockVecs, int4* out) {
    long half = (long) n * blockVecs;
    for (long t = (long) blockIdx.x * blockDim.x + threadIdx.x; t < 2 * half; t += (long) gridDim.x * blockDim.x) {
        long r = t < half ? t : t - half;
        long i = r / blockVecs;
        out[t] = (t < half ? keys : values)[(long) blocks[i] * blockVecs + (r - i * blockVecs)];
    }
}

extern "C" __global__ void tdm_kv_scatter(int4* keys, int4* values, const int* blocks, int n, long blockVecs, const int4* in) {
    long half = (long) n * blockVecs;
    for (long t = (long) blockIdx.x * blockDim.x + threadIdx.x; t < 2 * half; t += (long) gridDim.x * blockDim.x) {
        long r = t < half ? t : t - half;
        long i = r / blockVecs;
        (t < half ? keys : values)[(long) blocks[i] * blockVecs + (r - i * blockVecs)] = in[t];
    }
}

// Greedy sampling on the device: the index of each row's largest logit (the lowest index on ties, as the host
// sampler), so that only one int per sequence crosses PCIe.
extern "C" __global__ void tdm_argmax(const float* logits, int cols, int* out) {
    const float* row = logits + (long) blockIdx.x * cols;
    float best = NEG_INF;
    int bestIdx = 0x7fffffff;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = row[c];
        if (v > best) { best = v; bestIdx = c; }
    }
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, best, o);
        int oi = __shfl_xor_sync(0xffffffffu, bestIdx, o);
        if (ov > best || (ov == best && oi < bestIdx)) { best = ov; bestIdx = oi; }
    }
    __shared__ float sv[32];
    __shared__ int si[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) { sv[warp] = best; si[warp] = bestIdx; }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int) (blockDim.x >> 5); w++) {
            if (sv[w] > best || (sv[w] == best && si[w] < bestIdx)) { best = sv[w]; bestIdx = si[w]; }
        }
        out[blockIdx.x] = bestIdx == 0x7fffffff ? 0 : bestIdx;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Paged attention, split-K ("flash-decoding"): grid (rows, heads, splits), 4 warps per block. Each warp walks every
// 4th key of the block's chunk with an online softmax; lanes hold head_dim / 32 elements of q and of the output.
// With splits > 1 the partial results go to part* and tdm_attn_combine merges them in split order.
// Works for any query row (decode tokens and prefill rows alike) and any head_dim <= 256.
// ---------------------------------------------------------------------------------------------------------------

#define DEC_WARPS 4
#define MAX_HD 256
#define VEC (MAX_HD / 128)
#define KEYS 4

__device__ __forceinline__ void load4(const bf16* p, float* o) {
    uint2 u = *reinterpret_cast<const uint2*>(p);
    float2 a = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&u.x));
    float2 b = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&u.y));
    o[0] = a.x; o[1] = a.y; o[2] = b.x; o[3] = b.y;
}

__device__ __forceinline__ void load4(const float* p, float* o) {
    float4 v = *reinterpret_cast<const float4*>(p);
    o[0] = v.x; o[1] = v.y; o[2] = v.z; o[3] = v.w;
}

// One block per (row, KV head, split): the G query heads that share a KV head are computed together, so each key
// and value is read once for all of them (GQA). Lanes hold elements 4l + 128i .. 4l + 128i + 3 of a head (head_dim a
// multiple of 4, i < V): one 8- or 16-byte load per key; each warp keeps KEYS keys in flight.
template <typename KV, int G, int V>
__device__ void attnSplit(const float* q, int qld, const KV* kc, const KV* vc, const int* rowList, const int* rowSeq,
                          const int* rowPos, const int* blockTables, int btStride, int blockSize, int heads, int kvHeads,
                          int hd, float scale, int chunk, float* partO, float* partML, float* out, bf16* mirror) {
    int ri = blockIdx.x, kvh = blockIdx.y, s = blockIdx.z, splits = gridDim.z;
    int r = rowList ? rowList[ri] : ri;
    int n = rowPos[r] + 1;
    int start = s * chunk, end = min(n, start + chunk);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int kvDim = kvHeads * hd;
    const int* bt = blockTables + (long) rowSeq[r] * btStride;
    float qv[G][V][4], acc[G][V][4], m[G], l[G];
#pragma unroll
    for (int g = 0; g < G; g++) {
        const float* qr = q + (long) r * qld + (kvh * G + g) * hd;
        m[g] = NEG_INF;
        l[g] = 0.f;
#pragma unroll
        for (int i = 0; i < V; i++) {
#pragma unroll
            for (int j = 0; j < 4; j++) {
                int d = 4 * lane + 128 * i + j;
                qv[g][i][j] = d < hd ? qr[d] * scale : 0.f;
                acc[g][i][j] = 0.f;
            }
        }
    }
    for (int p0 = start + warp * KEYS; p0 < end; p0 += DEC_WARPS * KEYS) {
        long base[KEYS];
#pragma unroll
        for (int k = 0; k < KEYS; k++) {
            int p = min(p0 + k, end - 1);
            base[k] = ((long) bt[p / blockSize] * blockSize + p % blockSize) * kvDim + (long) kvh * hd;
        }
        float kk[KEYS][V][4], vv[KEYS][V][4];
#pragma unroll
        for (int k = 0; k < KEYS; k++) {
#pragma unroll
            for (int i = 0; i < V; i++) {
                int d = 4 * lane + 128 * i;
                if (d < hd) {
                    load4(kc + base[k] + d, kk[k][i]);
                    load4(vc + base[k] + d, vv[k][i]);
                } else {
#pragma unroll
                    for (int j = 0; j < 4; j++) kk[k][i][j] = vv[k][i][j] = 0.f;
                }
            }
        }
#pragma unroll
        for (int g = 0; g < G; g++) {
            float dot[KEYS];
#pragma unroll
            for (int k = 0; k < KEYS; k++) {
                float t = 0.f;
#pragma unroll
                for (int i = 0; i < V; i++)
#pragma unroll
                    for (int j = 0; j < 4; j++) t += qv[g][i][j] * kk[k][i][j];
                dot[k] = t;
            }
#pragma unroll
            for (int k = 0; k < KEYS; k++) dot[k] = p0 + k < end ? warpSum(dot[k]) : NEG_INF;
            float mNew = m[g];
#pragma unroll
            for (int k = 0; k < KEYS; k++) mNew = fmaxf(mNew, dot[k]);
            float corr = expf(m[g] - mNew);
            l[g] *= corr;
#pragma unroll
            for (int i = 0; i < V; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[g][i][j] *= corr;
#pragma unroll
            for (int k = 0; k < KEYS; k++) {
                float e = p0 + k < end ? expf(dot[k] - mNew) : 0.f;
                l[g] += e;
#pragma unroll
                for (int i = 0; i < V; i++)
#pragma unroll
                    for (int j = 0; j < 4; j++) acc[g][i][j] += e * vv[k][i][j];
            }
            m[g] = mNew;
        }
    }
    __shared__ float sm[DEC_WARPS][G], sl[DEC_WARPS][G];
    __shared__ float sacc[DEC_WARPS][G][V * 128];
#pragma unroll
    for (int g = 0; g < G; g++) {
        if (lane == 0) { sm[warp][g] = m[g]; sl[warp][g] = l[g]; }
#pragma unroll
        for (int i = 0; i < V; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) sacc[warp][g][4 * lane + 128 * i + j] = acc[g][i][j];
    }
    __syncthreads();
    // Warp w merges the warps' states of query heads w, w + DEC_WARPS, ...
    for (int g = warp; g < G; g += DEC_WARPS) {
        int h = kvh * G + g;
        float M = NEG_INF;
        for (int w = 0; w < DEC_WARPS; w++) M = fmaxf(M, sm[w][g]);
        float L = 0.f, f[DEC_WARPS];
        for (int w = 0; w < DEC_WARPS; w++) {
            f[w] = sm[w][g] == NEG_INF ? 0.f : expf(sm[w][g] - M);
            L += sl[w][g] * f[w];
        }
        long o = (long) r * heads * hd + h * hd;
        long po = (((long) ri * heads + h) * splits + s);
        for (int d = lane; d < hd; d += 32) {
            float v = 0.f;
            for (int w = 0; w < DEC_WARPS; w++) v += sacc[w][g][d] * f[w];
            if (splits == 1) {
                v /= L;
                out[o + d] = v;
                if (mirror) mirror[o + d] = __float2bfloat16(v);
            } else {
                partO[po * hd + d] = v;
            }
        }
        if (splits > 1 && lane == 0) {
            partML[po * 2] = M;
            partML[po * 2 + 1] = L;
        }
    }
}

#define SPLIT_ENTRY(T, KV, G, V)                                                                                      \
    extern "C" __global__ void tdm_attn_split_##T##_g##G##_v##V(                                                     \
        const float* q, int qld, const KV* kc, const KV* vc, const int* rowList, const int* rowSeq, const int* rowPos, \
        const int* blockTables, int btStride, int blockSize, int heads, int kvHeads, int hd, float scale, int chunk,  \
        float* partO, float* partML, float* out, bf16* mirror) {                                                      \
        attnSplit<KV, G, V>(q, qld, kc, vc, rowList, rowSeq, rowPos, blockTables, btStride, blockSize, heads,         \
                            kvHeads, hd, scale, chunk, partO, partML, out, mirror);                                  \
    }
#define SPLIT_GROUPS(T, KV, V) \
    SPLIT_ENTRY(T, KV, 1, V) SPLIT_ENTRY(T, KV, 2, V) SPLIT_ENTRY(T, KV, 3, V) SPLIT_ENTRY(T, KV, 4, V) \
    SPLIT_ENTRY(T, KV, 5, V) SPLIT_ENTRY(T, KV, 6, V) SPLIT_ENTRY(T, KV, 7, V) SPLIT_ENTRY(T, KV, 8, V)
SPLIT_GROUPS(bf16, bf16, 1)
SPLIT_GROUPS(bf16, bf16, 2)
SPLIT_GROUPS(f32, float, 1)
SPLIT_GROUPS(f32, float, 2)

// Merges the splits of tdm_attn_split or tdm_attn_decode (stride of them per row and head) in split order: grid (listed rows, heads), threads over head_dim. rowList
// (null: rows 0..) names the batch rows, as for tdm_attn_split.
// Splits that start past the row's context hold nothing (tdm_attn_decode does not even write them): only the first
// ceil(context / chunk) are read.
extern "C" __global__ void tdm_attn_combine(const int* rowList, const int* rowPos, int chunk, const float* partO,
                                            const float* partML, int stride, int heads, int hd, float* out, bf16* mirror) {
    int ri = blockIdx.x, h = blockIdx.y;
    int r = rowList ? rowList[ri] : ri;
    int splits = min(stride, (rowPos[r] + chunk) / chunk);
    long po = ((long) ri * heads + h) * stride;
    float M = NEG_INF;
    for (int s = 0; s < splits; s++) M = fmaxf(M, partML[(po + s) * 2]);
    float L = 0.f;
    for (int s = 0; s < splits; s++) {
        float m = partML[(po + s) * 2];
        if (m != NEG_INF) L += partML[(po + s) * 2 + 1] * expf(m - M);
    }
    long o = (long) r * heads * hd + h * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float v = 0.f;
        for (int s = 0; s < splits; s++) {
            float m = partML[(po + s) * 2];
            if (m != NEG_INF) v += partO[(po + s) * hd + d] * expf(m - M);
        }
        v /= L;
        out[o + d] = v;
        if (mirror) mirror[o + d] = __float2bfloat16(v);
    }
}


// ---------------------------------------------------------------------------------------------------------------
// Skinny products for decode (M activation rows; only M = 1 is instantiated): out[m][r] = sum_c x[m][c] * w[r][c], bf16 weights read once
// with 16-byte loads, f32 activations, f32 accumulation. cuBLASLt's kernels leave much of the memory bandwidth unused
// at these shapes; here every block streams GEMV_ROWS weight rows with all its threads splitting the columns, so even
// 1024-row products fill the GPU. Needs cols % 8 == 0. grid: ceil(rows / GEMV_ROWS), block: 256.
// ---------------------------------------------------------------------------------------------------------------

#define GEMV_ROWS 4
#define GEMV_THREADS 256

__device__ __forceinline__ void unpack8(uint4 u, float* f) {
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 v = __bfloat1622float2(h[i]);
        f[2 * i] = v.x;
        f[2 * i + 1] = v.y;
    }
}

// SWIGLU: the input is silu(x[m][c]) * x2[m][c] with rows of x and x2 ld apart (the down projection reading the
// gate|up product directly, so the SwiGLU product is never written).
template <int M, bool SWIGLU>
__device__ void gemv(const bf16* __restrict__ w, const float* __restrict__ x, const float* __restrict__ x2, int ld,
                     float* __restrict__ out, int rows, int cols) {
    int r0 = blockIdx.x * GEMV_ROWS;
    float acc[GEMV_ROWS][M];
#pragma unroll
    for (int i = 0; i < GEMV_ROWS; i++)
#pragma unroll
        for (int m = 0; m < M; m++) acc[i][m] = 0.f;
#pragma unroll 2
    for (int c = threadIdx.x * 8; c < cols; c += GEMV_THREADS * 8) {
        uint4 wv[GEMV_ROWS];
#pragma unroll
        for (int i = 0; i < GEMV_ROWS; i++) {
            wv[i] = r0 + i < rows ? __ldg(reinterpret_cast<const uint4*>(w + (long) (r0 + i) * cols + c)) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int m = 0; m < M; m++) {
            float4 a = *reinterpret_cast<const float4*>(x + (long) m * ld + c);
            float4 b = *reinterpret_cast<const float4*>(x + (long) m * ld + c + 4);
            float xv[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
            if (SWIGLU) {
                float4 a2 = *reinterpret_cast<const float4*>(x2 + (long) m * ld + c);
                float4 b2 = *reinterpret_cast<const float4*>(x2 + (long) m * ld + c + 4);
                float uv[8] = {a2.x, a2.y, a2.z, a2.w, b2.x, b2.y, b2.z, b2.w};
#pragma unroll
                for (int j = 0; j < 8; j++) xv[j] = xv[j] / (1.f + expf(-xv[j])) * uv[j];
            }
#pragma unroll
            for (int i = 0; i < GEMV_ROWS; i++) {
                float wf[8];
                unpack8(wv[i], wf);
#pragma unroll
                for (int j = 0; j < 8; j++) acc[i][m] += wf[j] * xv[j];
            }
        }
    }
    __shared__ float part[GEMV_THREADS / 32][GEMV_ROWS * M];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int i = 0; i < GEMV_ROWS; i++)
#pragma unroll
        for (int m = 0; m < M; m++) {
            float v = warpSum(acc[i][m]);
            if (lane == 0) part[warp][i * M + m] = v;
        }
    __syncthreads();
    if (threadIdx.x < GEMV_ROWS * M) {
        int i = threadIdx.x / M, m = threadIdx.x % M;
        float v = 0.f;
#pragma unroll
        for (int k = 0; k < GEMV_THREADS / 32; k++) v += part[k][threadIdx.x];
        if (r0 + i < rows) out[(long) m * rows + r0 + i] = v;
    }
}

#define GEMV_ENTRY(M)                                                                                                 \
    extern "C" __global__ void __launch_bounds__(GEMV_THREADS) tdm_gemv_bf16_##M(const bf16* w, const float* x,      \
                                                                                 float* out, int rows, int cols) {    \
        gemv<M, false>(w, x, nullptr, cols, out, rows, cols);                                                         \
    }                                                                                                                 \
    extern "C" __global__ void __launch_bounds__(GEMV_THREADS) tdm_gemv_swiglu_bf16_##M(                              \
        const bf16* w, const float* gate, const float* up, int ld, float* out, int rows, int cols) {                  \
        gemv<M, true>(w, gate, up, ld, out, rows, cols);                                                              \
    }

GEMV_ENTRY(1) // more rows go to cuBLASLt: per-row accumulators cost this kernel occupancy (CudaBackend.GEMV_ROWS)


// ---------------------------------------------------------------------------------------------------------------
// Causal flash-attention for prefill, FlashAttention-2 style: mma.sync m16n8k16 (bf16 in, f32 accumulate) with the
// scores, probabilities and output accumulators held in registers. Each of the 4 warps owns 16 query rows of the
// 64-row tile; a thread holds rows lane/4 and lane/4 + 8 of them, so row max and sum need two shuffles. Fragments come
// from shared memory with ldmatrix (V transposed on load). grid (tiles, heads); a tile is up to 64 query rows of one
// sequence: tileRow[t] its first batch row, tileLen[t] its valid rows, tileSeq[t] its sequence (block-table row).
// ---------------------------------------------------------------------------------------------------------------

// Tiles of flash2: 64 query rows (4 warps of 16) against 64-key tiles.
#define FA_BM 64
#define FA_BN 64
#define FA_WARPS 4

__device__ __forceinline__ void ldsm4(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3, const bf16* p) {
    unsigned a = (unsigned) __cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(a));
}

__device__ __forceinline__ void ldsm4t(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3, const bf16* p) {
    unsigned a = (unsigned) __cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(a));
}

__device__ __forceinline__ void mma16816(float* c, unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// 16 bytes global -> shared without a register round trip; with valid false the destination is zero-filled.
__device__ __forceinline__ void cpAsync16(void* dst, const void* src, bool valid) {
    unsigned d = (unsigned) __cvta_generic_to_shared(dst);
    int n = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(n));
}

__device__ __forceinline__ unsigned packBf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&v);
}

template <int HD>
__device__ void flash2(const float* q, int qld, const bf16* kc, const bf16* vc, const int* tileRow, const int* tileLen,
                       const int* tileSeq, const int* rowPos, const int* blockTables, int btStride, int blockSize,
                       int heads, int kvHeads, float scale, float* out, bf16* mirror) {
    constexpr int LD = HD + 8; // 16-byte row padding: ldmatrix's 8 rows land in different banks
    extern __shared__ __align__(128) unsigned char smem[];
    bf16* sQ = (bf16*) smem;
    bf16* sK0 = sQ + FA_BM * LD;                   // two stages of K and V: the next tile streams in (cp.async)
    bf16* sV0 = sK0 + 2 * FA_BN * LD;              // while the current one is computed
    int* sPos = (int*) (sV0 + 2 * FA_BN * LD);

    int t = blockIdx.x, h = blockIdx.y;
    int row0 = tileRow[t], len = tileLen[t];
    int kvh = h / (heads / kvHeads), kvDim = kvHeads * HD;
    const int* bt = blockTables + (long) tileSeq[t] * btStride;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    constexpr int THREADS = FA_WARPS * 32;

    for (int i = threadIdx.x; i < FA_BM * HD; i += THREADS) {
        int rr = i / HD, d = i % HD;
        float v = rr < len ? q[(long) (row0 + rr) * qld + h * HD + d] * scale : 0.f;
        sQ[rr * LD + d] = __float2bfloat16(v);
    }
    for (int i = threadIdx.x; i < FA_BM; i += THREADS) sPos[i] = i < len ? rowPos[row0 + i] : -1;
    __syncthreads();
    int maxPos = sPos[len - 1];
    int keyTiles = maxPos / FA_BN + 1;
    int wr = warp * 16, r0 = lane >> 2, cq = (lane & 3) * 2;
    int pos0 = sPos[wr + r0], pos1 = sPos[wr + r0 + 8];
    int warpMaxPos = max(pos0, pos1);
    for (int o = 16; o > 0; o >>= 1) warpMaxPos = max(warpMaxPos, __shfl_xor_sync(0xffffffffu, warpMaxPos, o));

    float acc[HD / 8][4];
#pragma unroll
    for (int n = 0; n < HD / 8; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
    float m0 = NEG_INF, m1 = NEG_INF, l0 = 0.f, l1 = 0.f;

    // Issues the copies of key tile kt into stage kt & 1; keys past maxPos are zero-filled (and masked below).
    auto loadTile = [&](int kt) {
        int k0 = kt * FA_BN;
        bf16* sK = sK0 + (kt & 1) * FA_BN * LD;
        bf16* sV = sV0 + (kt & 1) * FA_BN * LD;
        constexpr int PER_THREAD = FA_BN * HD / 8 / THREADS;
#pragma unroll
        for (int j = 0; j < PER_THREAD; j++) {
            int i = threadIdx.x + j * THREADS;
            int kr = i / (HD / 8), c8 = (i % (HD / 8)) * 8;
            int p = k0 + kr;
            bool valid = p <= maxPos;
            long base = valid ? ((long) bt[p / blockSize] * blockSize + p % blockSize) * kvDim + (long) kvh * HD + c8 : 0;
            cpAsync16(sK + kr * LD + c8, kc + base, valid);
            cpAsync16(sV + kr * LD + c8, vc + base, valid);
        }
        asm volatile("cp.async.commit_group;\n" ::);
    };
    loadTile(0);
    for (int kt = 0; kt < keyTiles; kt++) {
        int k0 = kt * FA_BN;
        if (kt + 1 < keyTiles) {
            loadTile(kt + 1);
            asm volatile("cp.async.wait_group 1;\n" ::);
        } else {
            asm volatile("cp.async.wait_group 0;\n" ::);
        }
        __syncthreads();
        const bf16* sK = sK0 + (kt & 1) * FA_BN * LD;
        const bf16* sV = sV0 + (kt & 1) * FA_BN * LD;

        if (k0 <= warpMaxPos) { // tiles wholly after this warp's rows are masked out entirely
            float s[FA_BN / 8][4];
#pragma unroll
            for (int n = 0; n < FA_BN / 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < HD / 16; kk++) {
                unsigned a0, a1, a2, a3;
                ldsm4(a0, a1, a2, a3, sQ + (wr + (lane & 15)) * LD + kk * 16 + (lane >> 4) * 8);
#pragma unroll
                for (int n = 0; n < FA_BN / 8; n += 2) {
                    unsigned b0, b1, b2, b3;
                    ldsm4(b0, b1, b2, b3, sK + (n * 8 + (lane & 7) + ((lane >> 4) << 3)) * LD + kk * 16 + ((lane >> 3) & 1) * 8);
                    mma16816(s[n], a0, a1, a2, a3, b0, b1);
                    mma16816(s[n + 1], a0, a1, a2, a3, b2, b3);
                }
            }
            float mx0 = m0, mx1 = m1;
#pragma unroll
            for (int n = 0; n < FA_BN / 8; n++) {
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    int key = k0 + n * 8 + cq + j;
                    if (key > pos0) s[n][j] = NEG_INF;
                    if (key > pos1) s[n][2 + j] = NEG_INF;
                    mx0 = fmaxf(mx0, s[n][j]);
                    mx1 = fmaxf(mx1, s[n][2 + j]);
                }
            }
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
            float corr0 = mx0 == NEG_INF ? 1.f : __expf(m0 - mx0), corr1 = mx1 == NEG_INF ? 1.f : __expf(m1 - mx1);
            float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
            for (int n = 0; n < FA_BN / 8; n++) {
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    s[n][j] = mx0 == NEG_INF ? 0.f : __expf(s[n][j] - mx0);
                    s[n][2 + j] = mx1 == NEG_INF ? 0.f : __expf(s[n][2 + j] - mx1);
                    sum0 += s[n][j];
                    sum1 += s[n][2 + j];
                }
            }
            sum0 += __shfl_xor_sync(0xffffffffu, sum0, 1);
            sum0 += __shfl_xor_sync(0xffffffffu, sum0, 2);
            sum1 += __shfl_xor_sync(0xffffffffu, sum1, 1);
            sum1 += __shfl_xor_sync(0xffffffffu, sum1, 2);
            l0 = l0 * corr0 + sum0;
            l1 = l1 * corr1 + sum1;
            m0 = mx0;
            m1 = mx1;
#pragma unroll
            for (int n = 0; n < HD / 8; n++) {
                acc[n][0] *= corr0;
                acc[n][1] *= corr0;
                acc[n][2] *= corr1;
                acc[n][3] *= corr1;
            }
#pragma unroll
            for (int kk = 0; kk < FA_BN / 16; kk++) {
                unsigned a0 = packBf16(s[2 * kk][0], s[2 * kk][1]), a1 = packBf16(s[2 * kk][2], s[2 * kk][3]);
                unsigned a2 = packBf16(s[2 * kk + 1][0], s[2 * kk + 1][1]), a3 = packBf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
                for (int n = 0; n < HD / 8; n += 2) {
                    unsigned b0, b1, b2, b3;
                    ldsm4t(b0, b1, b2, b3, sV + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + n * 8 + (lane >> 4) * 8);
                    mma16816(acc[n], a0, a1, a2, a3, b0, b1);
                    mma16816(acc[n + 1], a0, a1, a2, a3, b2, b3);
                }
            }
        }
        __syncthreads(); // every warp is done with this stage before it is refilled (tile kt + 2)
    }

    int rowA = wr + r0, rowB = wr + r0 + 8;
#pragma unroll
    for (int n = 0; n < HD / 8; n++) {
#pragma unroll
        for (int j = 0; j < 2; j++) {
            int d = n * 8 + cq + j;
            if (rowA < len) {
                long o = (long) (row0 + rowA) * heads * HD + h * HD + d;
                float v = acc[n][j] / l0;
                out[o] = v;
                if (mirror) mirror[o] = __float2bfloat16(v);
            }
            if (rowB < len) {
                long o = (long) (row0 + rowB) * heads * HD + h * HD + d;
                float v = acc[n][2 + j] / l1;
                out[o] = v;
                if (mirror) mirror[o] = __float2bfloat16(v);
            }
        }
    }
}

#define FLASH2_ENTRY(HD)                                                                                              \
    extern "C" __global__ void __launch_bounds__(FA_WARPS * 32) tdm_flash2_prefill_##HD(                              \
        const float* q, int qld, const bf16* kc, const bf16* vc, const int* tileRow, const int* tileLen,             \
        const int* tileSeq, const int* rowPos, const int* blockTables, int btStride, int blockSize, int heads,        \
        int kvHeads, float scale, float* out, bf16* mirror) {                                                         \
        flash2<HD>(q, qld, kc, vc, tileRow, tileLen, tileSeq, rowPos, blockTables, btStride, blockSize, heads,       \
                   kvHeads, scale, out, mirror);                                                                      \
    }

FLASH2_ENTRY(64)
FLASH2_ENTRY(128)

// ---------------------------------------------------------------------------------------------------------------
// Paged decode attention over bf16 KV, tiled: grid (rows, KV heads, splits), 128 threads; the arguments (hd = HD),
// partials and combine of tdm_attn_split. tdm_attn_split reduces every key's dot product across a warp and keeps only
// a few keys in flight per warp, which leaves most of the memory bandwidth unused on long contexts (0.5 TB/s on an
// H200, from the decode step times of sim/profiles/h200-llama3-8b.csv). Here the block streams DT keys of K and V at
// a time into shared memory (cp.async, two stages: the next tile loads while this one is computed), each thread
// computes whole dot products from shared memory (no per-key warp reduction), the G query heads of the KV head share
// every load, and one warp per head updates the online softmax.
// ---------------------------------------------------------------------------------------------------------------

#define DT 32          // keys per tile (one per lane in the softmax update)
#define DEC_THREADS 128

template <int G, int HD>
__device__ void attnDecode(const float* q, int qld, const bf16* kc, const bf16* vc, const int* rowList, const int* rowSeq,
                           const int* rowPos, const int* blockTables, int btStride, int blockSize, int heads, int kvHeads,
                           float scale, int chunk, float* partO, float* partML, float* out, bf16* mirror) {
    constexpr int LD = HD + 8;                          // padded rows: 8 lanes' 16-byte reads hit different banks
    constexpr int CH = HD / 8;                          // 16-byte pieces per key
    constexpr int PAIRS = G * DT;                       // (head, key) dot products per tile
    constexpr int TPP = PAIRS >= DEC_THREADS ? 1 : DEC_THREADS / PAIRS;   // threads per dot product (G = 1, 2)
    constexpr int DPT = HD / TPP;                       // elements of a dot product per thread
    constexpr int UNITS = G * HD / 4;                   // 4 output elements per unit
    constexpr int NU = (UNITS + DEC_THREADS - 1) / DEC_THREADS;
    __shared__ __align__(16) bf16 sk[2][DT][LD];
    __shared__ __align__(16) bf16 sv[2][DT][LD];
    __shared__ __align__(16) float sq[G][HD];
    __shared__ float sp[G][DT];
    __shared__ float sm[G], sl[G], sc[G];
    int ri = blockIdx.x, kvh = blockIdx.y, s = blockIdx.z, splits = gridDim.z;
    int r = rowList ? rowList[ri] : ri;
    int n = rowPos[r] + 1;
    int start = s * chunk, end = min(n, start + chunk);
    if (start >= end) return;                           // past this row's context: tdm_attn_combine reads no such split
    int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    long kvDim = (long) kvHeads * HD;
    const int* bt = blockTables + (long) rowSeq[r] * btStride;
    for (int i = tid; i < G * HD; i += DEC_THREADS) {
        sq[i / HD][i % HD] = q[(long) r * qld + (long) kvh * G * HD + i] * scale;
    }
    if (tid < G) { sm[tid] = NEG_INF; sl[tid] = 0.f; }
    float acc[NU][4];
#pragma unroll
    for (int j = 0; j < NU; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[j][e] = 0.f;
    int tiles = (end - start + DT - 1) / DT;
    auto load = [&](int stage, int t0) {
        for (int i = tid; i < DT * CH; i += DEC_THREADS) {
            int k = i / CH, c = i % CH;
            int p = t0 + k;
            bool valid = p < end;                       // past the end: zeros (their weight is 0 anyway)
            p = min(p, end - 1);
            long base = ((long) bt[p / blockSize] * blockSize + p % blockSize) * kvDim + (long) kvh * HD + c * 8;
            cpAsync16(&sk[stage][k][c * 8], kc + base, valid);
            cpAsync16(&sv[stage][k][c * 8], vc + base, valid);
        }
        asm volatile("cp.async.commit_group;\n" ::);
    };
    load(0, start);
    for (int t = 0; t < tiles; t++) {
        int t0 = start + t * DT, stage = t & 1;
        if (t + 1 < tiles) {
            load(stage ^ 1, t0 + DT);
            asm volatile("cp.async.wait_group 1;\n" ::);
        } else {
            asm volatile("cp.async.wait_group 0;\n" ::);
        }
        __syncthreads();
        // Scores: TPP threads (adjacent lanes) per (head, key).
        for (int pi = tid / TPP; pi < PAIRS; pi += DEC_THREADS / TPP) {
            int g = pi / DT, k = pi % DT, part = tid % TPP;
            const bf16* kr = &sk[stage][k][part * DPT];
            const float* qr = &sq[g][part * DPT];
            float dot = 0.f;
#pragma unroll
            for (int d = 0; d < DPT; d += 8) {
                float f[8];
                unpack8(*reinterpret_cast<const uint4*>(kr + d), f);
                float4 a = *reinterpret_cast<const float4*>(qr + d);
                float4 b = *reinterpret_cast<const float4*>(qr + d + 4);
                dot += a.x * f[0] + a.y * f[1] + a.z * f[2] + a.w * f[3] + b.x * f[4] + b.y * f[5] + b.z * f[6] + b.w * f[7];
            }
#pragma unroll
            for (int o = TPP / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
            if (part == 0) sp[g][k] = t0 + k < end ? dot : NEG_INF;
        }
        __syncthreads();
        // Online softmax: warp w owns heads w, w + 4, ...; lane = key.
        for (int g = warp; g < G; g += DEC_THREADS / 32) {
            float x = sp[g][lane];
            float mOld = sm[g], mNew = fmaxf(mOld, warpMax(x));   // finite: a tile holds at least one key
            float e = x == NEG_INF ? 0.f : expf(x - mNew);
            float sum = warpSum(e);
            sp[g][lane] = e;
            __syncwarp();
            if (lane == 0) {
                float corr = mOld == NEG_INF ? 0.f : expf(mOld - mNew);
                sc[g] = corr;
                sl[g] = sl[g] * corr + sum;
                sm[g] = mNew;
            }
        }
        __syncthreads();
        // Weighted values: each thread owns 4 consecutive elements of a head's output.
#pragma unroll
        for (int j = 0; j < NU; j++) {
            int u = tid + j * DEC_THREADS;
            if (u < UNITS) {
                int g = u / (HD / 4), d0 = (u % (HD / 4)) * 4;
                float corr = sc[g];
#pragma unroll
                for (int e = 0; e < 4; e++) acc[j][e] *= corr;
#pragma unroll 8
                for (int k = 0; k < DT; k++) {
                    float w = sp[g][k];
                    float v[4];
                    load4(&sv[stage][k][d0], v);
#pragma unroll
                    for (int e = 0; e < 4; e++) acc[j][e] += w * v[e];
                }
            }
        }
        __syncthreads();                                // the stage is reloaded two tiles on
    }
#pragma unroll
    for (int j = 0; j < NU; j++) {
        int u = tid + j * DEC_THREADS;
        if (u >= UNITS) continue;
        int g = u / (HD / 4), d0 = (u % (HD / 4)) * 4, h = kvh * G + g;
        if (splits == 1) {
            float inv = 1.f / sl[g];
            long o = (long) r * heads * HD + (long) h * HD + d0;
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float v = acc[j][e] * inv;
                out[o + e] = v;
                if (mirror) mirror[o + e] = __float2bfloat16(v);
            }
        } else {
            long po = ((long) ri * heads + h) * splits + s;
#pragma unroll
            for (int e = 0; e < 4; e++) partO[po * HD + d0 + e] = acc[j][e];
            if (d0 == 0) {
                partML[po * 2] = sm[g];
                partML[po * 2 + 1] = sl[g];
            }
        }
    }
}

#define DECODE_ENTRY(G, HD)                                                                                           \
    extern "C" __global__ void __launch_bounds__(DEC_THREADS) tdm_attn_decode_g##G##_##HD(                            \
        const float* q, int qld, const bf16* kc, const bf16* vc, const int* rowList, const int* rowSeq,               \
        const int* rowPos, const int* blockTables, int btStride, int blockSize, int heads, int kvHeads, int hd,        \
        float scale, int chunk, float* partO, float* partML, float* out, bf16* mirror) {                              \
        attnDecode<G, HD>(q, qld, kc, vc, rowList, rowSeq, rowPos, blockTables, btStride, blockSize, heads, kvHeads,  \
                          scale, chunk, partO, partML, out, mirror);                                                 \
    }
#define DECODE_GROUPS(HD)                                                                                             \
    DECODE_ENTRY(1, HD) DECODE_ENTRY(2, HD) DECODE_ENTRY(3, HD) DECODE_ENTRY(4, HD) DECODE_ENTRY(5, HD)               \
    DECODE_ENTRY(6, HD) DECODE_ENTRY(7, HD) DECODE_ENTRY(8, HD)
DECODE_GROUPS(64)
DECODE_GROUPS(128)

// ---------------------------------------------------------------------------------------------------------------
// Sampling on the device (one block per row), so that only a token id per sequence crosses PCIe. Per row params:
// [temperature, topK, topP, minP, u] (topK as a float; temperature 0: greedy). The row is overwritten with
// p_i = exp((l_i - max) / T). The kept set is {p >= threshold}: the top-k cut, then the smallest set of largest p
// holding topP of the remaining mass, then p >= minP * max; thresholds are found by bisection on the float bits of
// p (positive floats order as their bits). The token is the one where the running sum in id order passes u * mass:
// the same distribution as the host sampler, drawn in a different order.
// ---------------------------------------------------------------------------------------------------------------

#define SAMPLE_THREADS 1024


// Count (mass == false) or mass (true) of p >= v over the row.
__device__ float keptOver(const float* p, int cols, float v, bool mass) {
    float acc = 0.f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float x = p[c];
        if (x >= v) acc += mass ? x : 1.f;
    }
    return blockSum(acc);
}

extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS) tdm_sample(float* logits, int cols, const float* params, int* out) {
    float* row = logits + (long) blockIdx.x * cols;
    const float* prm = params + blockIdx.x * 5;
    float temperature = prm[0], topP = prm[2], minP = prm[3], u = prm[4];
    int topK = (int) prm[1];
    float mx = NEG_INF;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) mx = fmaxf(mx, row[c]);
    mx = blockMax(mx);
    if (temperature <= 0.f) { // greedy: the lowest id holding the maximum
        int best = 0x7fffffff;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) if (row[c] == mx && c < best) best = c;
        for (int o = 16; o > 0; o >>= 1) best = min(best, __shfl_xor_sync(0xffffffffu, best, o));
        __shared__ int wbest[32];
        __syncthreads();
        if ((threadIdx.x & 31) == 0) wbest[threadIdx.x >> 5] = best;
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int w = 1; w < (int) (blockDim.x >> 5); w++) best = min(best, wbest[w]);
            out[blockIdx.x] = best == 0x7fffffff ? 0 : best;
        }
        return;
    }
    float invT = 1.f / temperature;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) row[c] = expf((row[c] - mx) * invT);
    __syncthreads();
    // Bisection over float bits in [lo, hi]: the largest v whose kept count (or mass) still reaches the target.
    float threshold = 0.f;
    if (topK > 0 && topK < cols) {
        unsigned lo = 0, hi = __float_as_uint(1.f);
        while (lo < hi) {
            unsigned mid = lo + (hi - lo + 1) / 2;
            if (keptOver(row, cols, __uint_as_float(mid), false) >= (float) topK) lo = mid; else hi = mid - 1;
        }
        threshold = __uint_as_float(lo);
    }
    if (topP < 1.f) {
        float target = topP * keptOver(row, cols, threshold, true);
        unsigned lo = __float_as_uint(threshold), hi = __float_as_uint(1.f);
        while (lo < hi) {
            unsigned mid = lo + (hi - lo + 1) / 2;
            if (keptOver(row, cols, __uint_as_float(mid), true) >= target) lo = mid; else hi = mid - 1;
        }
        threshold = __uint_as_float(lo);
    }
    threshold = fmaxf(threshold, minP); // p is relative to the row's maximum (p_max = 1)
    float mass = keptOver(row, cols, threshold, true);
    float target = u * mass;
    // Running sum in id order: each thread owns one contiguous chunk; find the chunk, then the id inside it.
    int chunk = (cols + blockDim.x - 1) / blockDim.x;
    int c0 = threadIdx.x * chunk, c1 = min(cols, c0 + chunk);
    float own = 0.f;
    int lastKept = -1;
    for (int c = c0; c < c1; c++) if (row[c] >= threshold) { own += row[c]; lastKept = c; }
    __shared__ float sums[SAMPLE_THREADS];
    __shared__ int lastIds[SAMPLE_THREADS];
    sums[threadIdx.x] = own;
    lastIds[threadIdx.x] = lastKept;
    __syncthreads();
    if (threadIdx.x == 0) {
        float run = 0.f;
        int pick = -1, fallback = -1;
        for (int t = 0; t < (int) blockDim.x && pick < 0; t++) {
            if (lastIds[t] >= 0) fallback = lastIds[t];
            if (run + sums[t] > target && sums[t] > 0.f) {
                int e0 = t * chunk, e1 = min(cols, e0 + chunk);
                for (int c = e0; c < e1; c++) {
                    if (row[c] < threshold) continue;
                    run += row[c];
                    if (run > target) { pick = c; break; }
                }
                if (pick < 0) pick = lastIds[t]; // rounding left the target past the chunk's end
            } else {
                run += sums[t];
            }
        }
        out[blockIdx.x] = pick >= 0 ? pick : (fallback >= 0 ? fallback : 0);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// GQ4: FlexGen's group-wise 4-bit compression (dev.tandem.core.quant.Gq4Layout has the byte layout). A tensor of
// shape S grouped along S[g] is outer = S[0..g) records; record o holds the nibbles of the padded [padded][inner]
// block (element e = j * inner + i in byte e / 2, low nibble when e is even), then groups * inner fp16 mins, then
// as many fp16 scales (group (k, i) at k * inner + i). x = fma(q, scale, min): the same single rounding as the CPU's
// Math.fma, so both give the same bits; bf16 output is that f32 rounded to nearest even.
// ---------------------------------------------------------------------------------------------------------------

#include <cuda_fp16.h>

struct Gq4 {
    long recordBytes, minsOffset, scalesOffset;
    int len, inner;
};

__device__ __forceinline__ float gq4Value(const unsigned char* rec, const Gq4& l, int j, int i) {
    long e = (long) j * l.inner + i, p = (long) (j >> 6) * l.inner + i;
    int b = rec[e >> 1];
    int q = (e & 1) ? b >> 4 : b & 15;
    float mn = __half2float(*(const __half*) (rec + l.minsOffset + 2 * p));
    float sc = __half2float(*(const __half*) (rec + l.scalesOffset + 2 * p));
    return __fmaf_rn((float) q, sc, mn);
}

// Grouped along the last dimension (inner = 1: the KV cache): one thread per element of the n = outer * len. The
// output may be split into runs of perSeq elements (a sequence's slots), run s written from dst + s * dstStride (the
// offload executor's KV layer, where sequences sit capacity slots apart); perSeq = n, dstStride = 0 is one plain run.
template <typename T>
__device__ void gq4DequantRows(const unsigned char* src, T* dst, Gq4 l, long n, long perSeq, long dstStride) {
    for (long e = blockIdx.x * (long) blockDim.x + threadIdx.x; e < n; e += (long) gridDim.x * blockDim.x) {
        long o = e / l.len, s = e / perSeq;
        int j = (int) (e - o * l.len);
        store(dst + s * dstStride + (e - s * perSeq), gq4Value(src + o * l.recordBytes, l, j, 0));
    }
}

// Grouped along an earlier dimension (weights [out, in] along out): a block per (record, j), threads over inner.
template <typename T>
__device__ void gq4DequantCols(const unsigned char* src, T* dst, Gq4 l) {
    long row = blockIdx.x + (long) blockIdx.y * gridDim.x, o = row / l.len;
    int j = (int) (row - o * l.len);
    const unsigned char* rec = src + o * l.recordBytes;
    for (int i = threadIdx.x; i < l.inner; i += blockDim.x) store(dst + row * l.inner + i, gq4Value(rec, l, j, i));
}

extern "C" __global__ void tdm_gq4_dequant_rows_bf16(const unsigned char* src, bf16* dst, long recordBytes, long minsOffset,
                                                     long scalesOffset, int len, long n) {
    gq4DequantRows(src, dst, Gq4{recordBytes, minsOffset, scalesOffset, len, 1}, n, n, 0);
}

extern "C" __global__ void tdm_gq4_dequant_rows_f32(const unsigned char* src, float* dst, long recordBytes, long minsOffset,
                                                    long scalesOffset, int len, long n) {
    gq4DequantRows(src, dst, Gq4{recordBytes, minsOffset, scalesOffset, len, 1}, n, n, 0);
}

extern "C" __global__ void tdm_gq4_dequant_seqs_bf16(const unsigned char* src, bf16* dst, long recordBytes, long minsOffset,
                                                     long scalesOffset, int len, long n, long perSeq, long dstStride) {
    gq4DequantRows(src, dst, Gq4{recordBytes, minsOffset, scalesOffset, len, 1}, n, perSeq, dstStride);
}

extern "C" __global__ void tdm_gq4_dequant_seqs_f32(const unsigned char* src, float* dst, long recordBytes, long minsOffset,
                                                     long scalesOffset, int len, long n, long perSeq, long dstStride) {
    gq4DequantRows(src, dst, Gq4{recordBytes, minsOffset, scalesOffset, len, 1}, n, perSeq, dstStride);
}

extern "C" __global__ void tdm_gq4_dequant_cols_bf16(const unsigned char* src, bf16* dst, long recordBytes, long minsOffset,
                                                     long scalesOffset, int len, int inner) {
    gq4DequantCols(src, dst, Gq4{recordBytes, minsOffset, scalesOffset, len, inner});
}

extern "C" __global__ void tdm_gq4_dequant_cols_f32(const unsigned char* src, float* dst, long recordBytes, long minsOffset,
                                                    long scalesOffset, int len, int inner) {
    gq4DequantCols(src, dst, Gq4{recordBytes, minsOffset, scalesOffset, len, inner});
}

// Quantize, grouped along the last dimension (the KV cache): one thread per group, which owns its 32 bytes of
// nibbles. The same IEEE operations as Gq4Quantizer and Gq4RangeSearch.refine (GroupQuant4.Range.REFIT: min
// rounded down and scale up to fp16, then up to 4 least-squares refits of (min, scale) while the squared error
// falls; q = floor((x - min) / scale + 0.5) clamped), every one an explicit _rn intrinsic so that nvcc fuses
// nothing, and the sums in index order: the bytes equal the CPU's. Values beyond fp16's range give infinite
// parameters (the CPU quantizer rejects those).
__device__ __forceinline__ float gq4Code(float v, float mn, float sc) {
    return sc != 0.f ? fminf(15.f, fmaxf(0.f, floorf(__fadd_rn(__fdiv_rn(__fsub_rn(v, mn), sc), 0.5f)))) : 0.f;
}

// Squared error of the group through (mn, sc), summed in f32 in index order (Gq4RangeSearch.error).
template <typename T>
__device__ float gq4Error(const T* x, int n, float mn, float sc) {
    float err = 0.f;
    for (int j = 0; j < n; j++) {
        float d = __fsub_rn(__fmaf_rn(gq4Code(load(x + j), mn, sc), sc, mn), load(x + j));
        err = __fadd_rn(err, __fmul_rn(d, d));
    }
    return err;
}

// The least-squares (min, scale) given the codes under (mn16, sc16), as fp16 into them; false where there is none
// (Gq4RangeSearch.refit).
template <typename T>
__device__ bool gq4Refit(const T* x, int n, __half& mn16, __half& sc16) {
    float mn = __half2float(mn16), sc = __half2float(sc16), sq = 0.f, sx = 0.f;
    for (int j = 0; j < n; j++) {
        sq = __fadd_rn(sq, gq4Code(load(x + j), mn, sc));
        sx = __fadd_rn(sx, load(x + j));
    }
    float mq = __fdiv_rn(sq, (float) n), mx = __fdiv_rn(sx, (float) n), cov = 0.f, var = 0.f;
    for (int j = 0; j < n; j++) {
        float dq = __fsub_rn(gq4Code(load(x + j), mn, sc), mq);
        cov = __fadd_rn(cov, __fmul_rn(dq, __fsub_rn(load(x + j), mx)));
        var = __fadd_rn(var, __fmul_rn(dq, dq));
    }
    if (!(var > 0.f) || !(cov > 0.f)) return false;
    float s = __fdiv_rn(cov, var), m = __fsub_rn(mx, __fmul_rn(s, mq));
    __half s16 = __float2half_rn(s), m16 = __float2half_rn(m);
    float s2 = __half2float(s16), m2 = __half2float(m16);
    if (!(s2 > 0.f) || isinf(s2) || isinf(m2)) return false;
    mn16 = m16;
    sc16 = s16;
    return true;
}

// Records come in runs of perSeq (a sequence's slots x heads), run s read from src + s * srcStride (perSeq = outer,
// srcStride = 0: one plain run).
template <typename T>
__device__ void gq4QuantRows(const T* src, unsigned char* dst, Gq4 l, int groups, long n, long perSeq, long srcStride) {
    for (long g = blockIdx.x * (long) blockDim.x + threadIdx.x; g < n; g += (long) gridDim.x * blockDim.x) {
        long o = g / groups, s = o / perSeq;
        int k = (int) (g - o * groups), j0 = k * 64, rows = min(64, l.len - j0);
        const T* x = src + s * srcStride + (o - s * perSeq) * l.len + j0;
        float lo = load(x), hi = lo;
        for (int j = 1; j < rows; j++) {
            float v = load(x + j);
            lo = fminf(lo, v);
            hi = fmaxf(hi, v);
        }
        __half mn16 = __float2half_rd(lo);
        float mn = __half2float(mn16);
        __half sc16 = __float2half_ru(__fdiv_rn(__fsub_rn(hi, mn), 15.f));
        float err = gq4Error(x, rows, mn, __half2float(sc16));
        for (int it = 0; it < 4 && err > 0.f; it++) {
            __half m16 = mn16, s16 = sc16;
            if (!gq4Refit(x, rows, m16, s16)) break;
            float e = gq4Error(x, rows, __half2float(m16), __half2float(s16));
            if (!(e < err)) break;
            err = e;
            mn16 = m16;
            sc16 = s16;
        }
        mn = __half2float(mn16);
        float sc = __half2float(sc16);
        unsigned char* rec = dst + o * l.recordBytes;
        *(__half*) (rec + l.minsOffset + 2L * k) = mn16;
        *(__half*) (rec + l.scalesOffset + 2L * k) = sc16;
        for (int j = 0; j < 64; j += 2) {
            int q[2];
            for (int h = 0; h < 2; h++) {
                float t = 0.f;
                if (j + h < rows) t = gq4Code(load(x + j + h), mn, sc);
                q[h] = (int) t;
            }
            rec[(j0 + j) >> 1] = (unsigned char) (q[0] | q[1] << 4);
        }
    }
}

extern "C" __global__ void tdm_gq4_quant_rows_f32(const float* src, unsigned char* dst, long recordBytes, long minsOffset,
                                                  long scalesOffset, int len, int groups, long n) {
    gq4QuantRows(src, dst, Gq4{recordBytes, minsOffset, scalesOffset, len, 1}, groups, n, n / groups, 0);
}

extern "C" __global__ void tdm_gq4_quant_rows_bf16(const bf16* src, unsigned char* dst, long recordBytes, long minsOffset,
                                                   long scalesOffset, int len, int groups, long n) {
    gq4QuantRows(src, dst, Gq4{recordBytes, minsOffset, scalesOffset, len, 1}, groups, n, n / groups, 0);
}

extern "C" __global__ void tdm_gq4_quant_seqs_bf16(const bf16* src, unsigned char* dst, long recordBytes, long minsOffset,
                                                  long scalesOffset, int len, int groups, long n, long perSeq, long srcStride) {
    gq4QuantRows(src, dst, Gq4{recordBytes, minsOffset, scalesOffset, len, 1}, groups, n, perSeq, srcStride);
}

extern "C" __global__ void tdm_gq4_quant_seqs_f32(const float* src, unsigned char* dst, long recordBytes, long minsOffset,
                                                  long scalesOffset, int len, int groups, long n, long perSeq, long srcStride) {
    gq4QuantRows(src, dst, Gq4{recordBytes, minsOffset, scalesOffset, len, 1}, groups, n, perSeq, srcStride);
}
