// The stream type the launchers take, without CUDA headers: cudaStream_t is a pointer to
// this opaque struct, so callers compiled by the host compiler alone can pass one along.
#ifndef MOESERVE_KERNELS_CUDA_STREAM_H_
#define MOESERVE_KERNELS_CUDA_STREAM_H_

struct CUstream_st;

namespace moeserve::cuda {

using Stream = CUstream_st*;

}  // namespace moeserve::cuda

#endif  // MOESERVE_KERNELS_CUDA_STREAM_H_
