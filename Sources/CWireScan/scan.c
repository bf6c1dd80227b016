#include "CWireScan.h"

// Reads a varint at *p (at most 10 bytes, within end); 0 when it does not end in time.
static inline int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *value) {
    const uint8_t *q = *p;
    if (q < end && *q < 0x80) {
        *value = *q;
        *p = q + 1;
        return 1;
    }
    uint64_t v = 0;
    for (unsigned shift = 0; q < end && shift < 64; shift += 7) {
        uint8_t byte = *q++;
        v |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            *value = v;
            *p = q;
            return 1;
        }
    }
    return 0;
}

int CWireScan_check(const CWireScanSchema *schema, const uint8_t *start, const uint8_t *end, int32_t node,
                    int32_t depth, int32_t limit) {
    if (depth > limit) return CWIRESCAN_TOO_DEEP;
    int32_t lower = schema->first[node], upper = schema->first[node + 1];
    if (lower == upper || depth + (end - start) / schema->bytes_per_level + 1 <= limit) return CWIRESCAN_OK;
    const uint8_t *p = start;
    while (p < end) {
        uint64_t key, value;
        if (!read_varint(&p, end, &key) || (key >> 3) == 0) return CWIRESCAN_MALFORMED;
        switch (key & 7) {
        case 0:
            if (!read_varint(&p, end, &value)) return CWIRESCAN_MALFORMED;
            break;
        case 1:
            if (end - p < 8) return CWIRESCAN_MALFORMED;
            p += 8;
            break;
        case 2: {
            if (!read_varint(&p, end, &value) || value > (uint64_t)(end - p)) return CWIRESCAN_MALFORMED;
            const uint8_t *next = p + value;
            uint64_t number = key >> 3;
            for (int32_t i = lower; i < upper; i++) {
                if (schema->numbers[i] == number) {
                    int32_t child = schema->children[i];
                    int outcome = CWireScan_check(schema, p, next, child, depth + schema->counted[child], limit);
                    if (outcome != CWIRESCAN_OK) return outcome;
                    break;
                }
            }
            p = next;
            break;
        }
        case 5:
            if (end - p < 4) return CWIRESCAN_MALFORMED;
            p += 4;
            break;
        default:
            return CWIRESCAN_MALFORMED;  // groups (3, 4) are not proto3; 6 and 7 do not exist
        }
    }
    return CWIRESCAN_OK;
}
