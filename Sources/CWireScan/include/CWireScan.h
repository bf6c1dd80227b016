// CWireScan: the inner loop of alstap's wire-format pre-check (ALSTapALS/WireCheck.swift).
//
// Why C: it runs over every field of every entry before protobuf-c unpacks it, and a tight
// C loop costs a third of the Swift one. The schema tables are built in Swift from protobuf-c's
// descriptors; this only walks bytes. No allocation, recursion bounded by `limit`.
#ifndef CWIRESCAN_H
#define CWIRESCAN_H
#include <stddef.h>
#include <stdint.h>

/// For node n, `numbers[first[n] .. first[n + 1]]` are the field numbers to enter and
/// `children[...]` the nodes of their types; entering a node with `counted[n]` is one level.
/// A level takes at least `bytes_per_level` bytes on the wire.
typedef struct {
    const int32_t *first;
    const uint32_t *numbers;
    const int32_t *children;
    const uint8_t *counted;
    int32_t bytes_per_level;
} CWireScanSchema;

enum { CWIRESCAN_OK = 0, CWIRESCAN_TOO_DEEP = 1, CWIRESCAN_MALFORMED = 2 };

/// Checks the message of type `node` in [start, end) at nesting `depth` (levels counted so far,
/// this node's included): the outcome above. A message of L bytes holds at most
/// L / bytes_per_level + 1 more levels, so one that cannot reach `limit` is skipped unread.
int CWireScan_check(const CWireScanSchema *schema, const uint8_t *start, const uint8_t *end, int32_t node,
                    int32_t depth, int32_t limit);
#endif
