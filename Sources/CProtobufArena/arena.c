#include "CProtobufArena.h"
#include <stdlib.h>
#include <stdint.h>

#define ARENA_ALIGN 8
#define ARENA_MAX_FIRST_BLOCK (8u << 20)

typedef struct Block {
    struct Block *next;
    size_t size;
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
} Block;

struct CProtobufArena {
    ProtobufCAllocator allocator;  // first member: protobuf-c hands us back allocator_data = arena
    Block *head;                   // newest block; the oldest (first) block is at the tail
    size_t allocated;              // bytes of all blocks: the memory the cap bounds
    size_t max_bytes;
    int exhausted;
};

static Block *block_new(size_t size) {
    Block *b = malloc(sizeof(Block) + size);
    if (b == NULL) return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

static void *arena_alloc(void *data, size_t size) {
    CProtobufArena *arena = data;
    size_t need = (sizeof(CProtobufArenaHeader) + size + (ARENA_ALIGN - 1)) & ~(size_t)(ARENA_ALIGN - 1);
    Block *b = arena->head;
    if (b->size - b->used < need) {
        // The cap is checked here, on the rare path: it bounds the blocks, i.e. the memory itself.
        // max_bytes < 4 GiB, so a size too large for the header's 32 bits fails here too.
        size_t want = b->size * 2 > need ? b->size * 2 : need;
        size_t left = arena->max_bytes > arena->allocated ? arena->max_bytes - arena->allocated : 0;
        if (want > left) want = left;  // never a block larger than the cap still allows
        if (need > want) {
            arena->exhausted = 1;
            return NULL;  // protobuf-c turns this into an unpack failure
        }
        Block *nb = block_new(want);
        if (nb == NULL) return NULL;
        nb->next = b;
        arena->head = nb;
        arena->allocated += want;
        b = nb;
    }
    CProtobufArenaHeader *header = (CProtobufArenaHeader *)(void *)(b->data + b->used);
    *header = (CProtobufArenaHeader){.size = (uint32_t)size, .magic = CPROTOBUFARENA_MAGIC};
    b->used += need;
    return header + 1;
}

static void arena_free(void *data, void *pointer) {
    (void)data;
    (void)pointer;  // freed all at once by CProtobufArena_reset
}

CProtobufArena *CProtobufArena_create(size_t initial_bytes, size_t max_bytes) {
    CProtobufArena *arena = malloc(sizeof(CProtobufArena));
    if (arena == NULL) return NULL;
    arena->head = block_new(initial_bytes);
    if (arena->head == NULL) {
        free(arena);
        return NULL;
    }
    arena->allocator.alloc = arena_alloc;
    arena->allocator.free = arena_free;
    arena->allocator.allocator_data = arena;
    arena->max_bytes = max_bytes < UINT32_MAX ? max_bytes : UINT32_MAX;
    arena->allocated = initial_bytes;
    arena->exhausted = 0;
    return arena;
}

void CProtobufArena_reset(CProtobufArena *arena) {
    arena->exhausted = 0;
    Block *b = arena->head;
    if (b->next == NULL) {
        b->used = 0;
        arena->allocated = b->size;
        return;
    }
    size_t total = 0;
    while (b != NULL) {
        Block *next = b->next;
        total += b->size;
        free(b);
        b = next;
    }
    if (total > ARENA_MAX_FIRST_BLOCK) total = ARENA_MAX_FIRST_BLOCK;
    if (total > arena->max_bytes) total = arena->max_bytes;
    arena->head = block_new(total);
    if (arena->head == NULL) {
        // Out of memory: fall back to a minimal block so the arena stays usable.
        total = 4096;
        arena->head = block_new(total);
        if (arena->head == NULL) abort();
    }
    arena->allocated = total;
}

int CProtobufArena_exhausted(const CProtobufArena *arena) { return arena->exhausted; }

void CProtobufArena_destroy(CProtobufArena *arena) {
    Block *b = arena->head;
    while (b != NULL) {
        Block *next = b->next;
        free(b);
        b = next;
    }
    free(arena);
}

ProtobufCAllocator *CProtobufArena_allocator(CProtobufArena *arena) { return &arena->allocator; }
