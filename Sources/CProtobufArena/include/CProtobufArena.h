// CProtobufArena: a bump allocator for protobuf-c unpacking.
//
// Why: protobuf-c allocates every sub-message, string and repeated array separately (~34
// mallocs per Istio entry). Carving them from one arena that is reset after each gRPC
// message removes malloc from the decode path. One arena per event loop: a message is
// decoded and encoded to bytes before the next one is unpacked, so nothing outlives a reset.
#ifndef CPROTOBUFARENA_H
#define CPROTOBUFARENA_H
#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

typedef struct CProtobufArena CProtobufArena;

/// A new arena whose first block holds `initial_bytes`; NULL if malloc fails.
CProtobufArena *CProtobufArena_create(size_t initial_bytes);
void CProtobufArena_destroy(CProtobufArena *arena);
/// Frees every allocation at once. Blocks added since the last reset are merged into one
/// larger first block (capped), so the steady state needs no malloc at all.
void CProtobufArena_reset(CProtobufArena *arena);
/// The allocator to pass to protobuf_c_message_unpack; valid as long as the arena.
ProtobufCAllocator *CProtobufArena_allocator(CProtobufArena *arena);
#endif
