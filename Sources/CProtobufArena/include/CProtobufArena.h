// CProtobufArena: a bump allocator for protobuf-c unpacking.
//
// Why: protobuf-c allocates every sub-message, string and repeated array separately (~34
// mallocs per Istio entry). Carving them from one arena that is reset after each gRPC
// message removes malloc from the decode path. One arena per event loop: a message is
// decoded and encoded to bytes before the next one is unpacked, so nothing outlives a reset.
//
// Two more jobs, both for hostile input:
// - A cap on the bytes one message may unpack into (a 2-byte empty sub-message on the wire
//   costs ~50 bytes unpacked); over it, allocation fails, protobuf-c's unpack returns NULL and
//   `CProtobufArena_exhausted` tells that apart from bad protobuf.
// - Every allocation carries its requested size in a header, so a string's real length is
//   known: protobuf-c NUL-terminates strings and drops their length, and a string may hold
//   NUL bytes (`CProtobufArena_string_length`).
#ifndef CPROTOBUFARENA_H
#define CPROTOBUFARENA_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <protobuf-c/protobuf-c.h>

typedef struct CProtobufArena CProtobufArena;

/// A new arena whose first block holds `initial_bytes`, allowing at most `max_bytes` of
/// allocations between resets; NULL if malloc fails.
CProtobufArena *CProtobufArena_create(size_t initial_bytes, size_t max_bytes);
void CProtobufArena_destroy(CProtobufArena *arena);
/// Frees every allocation at once. Blocks added since the last reset are merged into one
/// larger first block (capped), so the steady state needs no malloc at all.
void CProtobufArena_reset(CProtobufArena *arena);
/// The allocator to pass to protobuf_c_message_unpack; valid as long as the arena.
ProtobufCAllocator *CProtobufArena_allocator(CProtobufArena *arena);
/// True when an allocation since the last reset was refused for the cap.
int CProtobufArena_exhausted(const CProtobufArena *arena);

/// Marks an allocation header, so a pointer that did not come from an arena is never misread.
#define CPROTOBUFARENA_MAGIC 0xA11A57A9u

/// The header in front of every allocation (8 bytes, so allocations stay 8-aligned).
typedef struct {
    uint32_t size;
    uint32_t magic;
} CProtobufArenaHeader;

/// The length of a string protobuf-c unpacked into an arena, NUL bytes included: protobuf-c
/// allocates length + 1 bytes for it. The empty default (`protobuf_c_empty_string`) is 0.
/// Precondition: `string` is one of those two (it reads the 8 bytes before it); the magic is a
/// second line of defence, falling back to strlen when the header is not one.
static inline size_t CProtobufArena_string_length(const char *string) {
    if (string == protobuf_c_empty_string) return 0;
    const CProtobufArenaHeader *header = (const CProtobufArenaHeader *)(const void *)string - 1;
    if (header->magic != CPROTOBUFARENA_MAGIC || header->size == 0) return strlen(string);
    return header->size - 1;
}
#endif
