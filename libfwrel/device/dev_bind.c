/*
 * dev_bind.c - the image binding of the device core (fwrel_dev.h; docs/manifest.md section 4
 * step 9): a SHA-256 over the bytes as they arrive, compared with the manifest at the end. The
 * steps and reasons are those of libfwrel's bundle_verify.c (manifest.binds,
 * manifest.signed-image).
 */
#include "dev_util.h"
#include "fwrel_dev.h"

int fwrel_dev_bind_start(fwrel_dev_bind *b, const fwrel_dev_crypto *crypto,
                         const fwrel_dev_manifest *m, int kind)
{
    if (b == NULL || crypto == NULL || m == NULL ||
        (kind != FWREL_DEV_BIND_ENCRYPTED && kind != FWREL_DEV_BIND_SIGNED))
        return FWREL_DEV_EUSAGE;
    dev_memset(b, 0, sizeof(*b));
    b->crypto = crypto;
    b->kind = kind;
    dev_memcpy(&b->want, kind == FWREL_DEV_BIND_ENCRYPTED ? &m->encrypted : &m->signed_image,
               sizeof(b->want));
    if (crypto->sha256_start(&b->sha) != 0)
        return FWREL_DEV_ECRYPTO;
    b->state = 1;
    return FWREL_DEV_OK;
}

int fwrel_dev_bind_update(fwrel_dev_bind *b, const uint8_t *data, size_t len)
{
    if (b == NULL || b->state != 1 || (data == NULL && len > 0))
        return FWREL_DEV_EUSAGE;
    if (len == 0)
        return FWREL_DEV_OK;
    if (b->crypto->sha256_update(&b->sha, data, len) != 0) {
        fwrel_dev_bind_abort(b);
        return FWREL_DEV_ECRYPTO;
    }
    /* A 64-bit count cannot wrap on anything a device downloads. */
    b->got += len;
    return b->got > b->want.size ? FWREL_DEV_EREJECT : FWREL_DEV_OK;
}

void fwrel_dev_bind_abort(fwrel_dev_bind *b)
{
    if (b != NULL && b->state == 1) {
        b->crypto->sha256_abort(&b->sha);
        b->state = 0;
    }
}

int fwrel_dev_bind_finish(fwrel_dev_bind *b, fwrel_dev_result *res, fwrel_dev_step_fn step,
                          void *step_ctx)
{
    char d[FWREL_DEV_DETAIL_MAX];
    dev_sb s;
    int same;
    if (b == NULL || res == NULL || b->state != 1)
        return FWREL_DEV_EUSAGE;
    b->state = 2;
    if (b->crypto->sha256_finish(&b->sha, b->got_sha256) != 0)
        return FWREL_DEV_ECRYPTO;
    same = b->got == b->want.size && dev_memeq(b->got_sha256, b->want.sha256, 32);
    /* bundle_verify.c's wording: the file the device downloads, then the image it decrypts. */
    sb_init(&s, d, sizeof(d));
    if (b->kind == FWREL_DEV_BIND_ENCRYPTED) {
        sb_s(&s, same ? "firmware.enc is the manifest's image (" : "firmware.enc (");
        sb_u(&s, b->got);
        sb_s(&s, " bytes, sha256 ");
        sb_hex(&s, b->got_sha256, 8);
        sb_s(&s, same ? "...)" : "...) is not the image the manifest names (");
    } else {
        sb_s(&s, same ? "the image is the manifest's signed image (" : "the image (");
        sb_u(&s, b->got);
        sb_s(&s, " bytes, sha256 ");
        sb_hex(&s, b->got_sha256, 8);
        sb_s(&s, same ? "...)" : "...) is not the manifest's signed image (");
    }
    if (!same) {
        sb_u(&s, b->want.size);
        sb_s(&s, " bytes, sha256 ");
        sb_hex(&s, b->want.sha256, 8);
        sb_s(&s, "...)");
    }
    const char *name =
        b->kind == FWREL_DEV_BIND_ENCRYPTED ? "manifest.binds" : "manifest.signed-image";
    if (step != NULL)
        step(step_ctx, name, same ? FWREL_DEV_PASS : FWREL_DEV_FAIL, d);
    res->first[0] = '\0';
    if (!same) {
        sb_init(&s, res->first, sizeof(res->first));
        sb_s(&s, name);
        sb_s(&s, ": ");
        sb_s(&s, d);
        return FWREL_DEV_EREJECT;
    }
    return FWREL_DEV_OK;
}
