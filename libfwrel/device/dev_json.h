/*
 * dev_json.h - the device core's reader of canonical JSON (docs/manifest.md section 1): the
 * exact bytes fwrel writes, nothing else. Two passes: cj_validate() checks a whole text once
 * (bounded, iterative, FWREL_DEV_JSON_DEPTH levels); the navigation functions then walk the
 * validated text without checking it again.
 *
 * Canonical: objects with keys in strictly increasing byte order (so no duplicates), no white
 * space, strings of printable ASCII without '"' and '\' (never an escape), numbers
 * non-negative integers without leading zeros and at most 2^63 - 1 (the range checks of each
 * field come later), true, false. No null, no floats, no exponents, no negatives.
 */
#ifndef FWREL_DEV_JSON_H
#define FWREL_DEV_JSON_H

#include <stddef.h>
#include <stdint.h>

/** A value of a validated text: its first byte and its length. */
typedef struct cj_val {
    const char *p;
    size_t n;
} cj_val;

enum { CJ_NONE = 0, CJ_OBJECT, CJ_ARRAY, CJ_STRING, CJ_NUMBER, CJ_BOOL };

/** 0 when text[0..len) is one canonical JSON object or array, -1 otherwise. */
int cj_validate(const char *text, size_t len);

/** The type of a value (CJ_NONE for an absent one, p == NULL). */
int cj_type(cj_val v);

/** Members of an object / items of an array, in order. *it starts at 0. */
int cj_next_member(cj_val obj, size_t *it, cj_val *key, cj_val *val);
int cj_next_item(cj_val arr, size_t *it, cj_val *val);
size_t cj_count(cj_val arr);

/** The member named key (its value), or p == NULL. */
cj_val cj_get(cj_val obj, const char *key);

/** A string's content (without the quotes). */
cj_val cj_str(cj_val v);

/** A number's value (validated: at most 2^63 - 1). */
uint64_t cj_u64(cj_val v);

#endif
