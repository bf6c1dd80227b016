// CNghttp2: nghttp2 (Debian 12 ships 1.52, so the `*2` / nghttp2_ssize API is absent).
#ifndef CNGHTTP2_SHIM_H
#define CNGHTTP2_SHIM_H
#include <nghttp2/nghttp2.h>

// Swift cannot read the anonymous frame-type union fields generically; these keep
// the callback code free of pointer casts.
static inline uint8_t CNghttp2_frame_type(const nghttp2_frame *frame) { return frame->hd.type; }
static inline uint8_t CNghttp2_frame_flags(const nghttp2_frame *frame) { return frame->hd.flags; }
static inline int32_t CNghttp2_frame_stream_id(const nghttp2_frame *frame) { return frame->hd.stream_id; }
static inline int CNghttp2_frame_headers_category(const nghttp2_frame *frame) { return frame->headers.cat; }
#endif
