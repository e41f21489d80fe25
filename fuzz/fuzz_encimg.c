/* fuzz_encimg.c - the esp_encrypted_img header (parse/build round trip) and the device-side
 * decryption of arbitrary bytes with two fixed keys. The seeds in corpus/encimg/ are encrypted
 * to these keys, so mutations reach the key unwrap, the GCM stream and the tag check, not only
 * the magic. Properties: a file of the wrong size or magic is a format error; a success yields
 * exactly the header's size; a failure leaves nothing (no output, no temporary file) in the
 * output directory. */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fwrel/encimg.h"

#include "fuzz.h"

/* Fuzzing-only keys, made once with openssl genpkey for this target: public in this repository,
 * never to be used for anything else. */
static const char RSA_PEM[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIIG/gIBADANBgkqhkiG9w0BAQEFAASCBugwggbkAgEAAoIBgQDJSEWHLIeo1BEl\n"
                              "fY363Ujqf0epb1U7NHtf/f3eAK7dDwQZt+mCjhIeGvy03Ti3JxI1wjI7w3gmZUHN\n"
                              "WhNxrYdUtlNcEYT/o4Sn8bsQZ05WbOhdZ5O63T7iy3cDybj6BYRTcYlAfIBH+yOW\n"
                              "i+C4jumUZY+PQdU5jj63ZiCK5KcSjjeWS8DtotZTrI816dGcpdIYe4lQYIWtJcQk\n"
                              "ahrzLazfWrqd959bTlKA8WJKjv9ayhFdppI+7roBs7kAmtRZ3Z/xgDDr3S44bZtg\n"
                              "YtCrAphGZevk1rXd/O1RbnXTdBcrcM5xXMalmvs1mHBx6kyTzHctf8n8XCYfVz59\n"
                              "s79K46FlzPmjGq4Q3sHo6QHL3euNFe6MDpb85eYOpYnVkrChNYdxYaXmaSpYdUrZ\n"
                              "qA1xhDotpR3Mn0Z/K8ASqmvOyLv8JxnrHZGmaZUhp2Nu0AM8nbHT5b7Z5GSZs1ga\n"
                              "zgjiUrOPjIjrS+WzGS1p+uLqfZl0o1eVTMFKNwP9jj4ZdqtDmGUCAwEAAQKCAYAw\n"
                              "RKiHteICVniWKPm3QwGNWmBw/UXPINLFPj920Wsdj9BH6paQvEkT9xzKspI7OZ9g\n"
                              "TOWG92UEsBuLhyJKjHZ7lg1/cqQWObxCGfHmCR/8EbnXTFNc6FmAQZKU0fcN3ezR\n"
                              "pdRoJnMMz+jE3V5SY9MXxxMaI4tidf4MNO1w4Uw/YuNpo1jso7QJ9MOTBjNCAXHU\n"
                              "dSuEnuDvmLLkmJ1F25otJbDC2PLaDnoyebA8ePY7a2Gmt58ygEUSy2p9/qMVudOH\n"
                              "+EiJYBCPbrVbL9p3Irpa9KBlol6dVUMWK2X9Ks28x+ElQKxxAqKiGicJI5whr4k2\n"
                              "mTf/mFyKX/4b1cXsEpfTjF/rUvwi0Z+F5ZII+++zzTDWXn4nmqyQCexr1dkKqNHv\n"
                              "YkrqGOBkx620W7yoewlMDQHVl7CLDJg793UcbuwqLjgWxJNsk0LVDC47t/ceepUs\n"
                              "f/sLcb/uV/z9ezj/0AZBxn5EXEFpNEF9wukIEqcCw/s4A8WaTF01kRWLaKifkzEC\n"
                              "gcEA9hbbzTfdOOqnFNr5A3Nw3rsHg+5RIPWzbbk9/SgHPtz7cBEAmHnmjmucw8yi\n"
                              "osZ8Bh++117jeYpbxxJmw95HSg+d+B/Y3jcyHCVnJqTSHA9bw/KibSyIus3WXlps\n"
                              "o0ycr07NT3dlDLu63538zxBaKM1b2DODpDTwwOZdTxjFvp4/MbGB0MOqYo7f9WCT\n"
                              "zP0l9BwtFCcWMiQMWUV6Dpj1yGJ61cwleqZDWwtm84oRZulKlJejIQBb+1N3ozTS\n"
                              "KWmTAoHBANFjdc0gCi5e+ZtkkNiJl2Gwkj6XI6bghC1cBCikXf0JI8fdC4u+TybN\n"
                              "z2Qvbk1bBzz3r4VqQ9dPhD0+3Zy1qs1rEvVGrw1Ki5KPvZfEyKbUloC1Y/HmxqQ0\n"
                              "iqYpIo7q/gqGIrs9cSbYV0o5OMR4JX2bAERoiKA9UiUCIhzYJ1m1Ym3lFkQszPcE\n"
                              "IZxjdyZdDMTLNKxQxAKy4dpKGPl/6ey/U/NQ39zgdrLMMGZPF1/4gOqSGjfGymFB\n"
                              "b4j8hV9RJwKBwHgUgV6rEsSSI8NWcknPy9SzOKCU6nuFyO8ShAACxz5SgFKXyU2d\n"
                              "tfXq5szYDsgUyDIIzYu0HpWRAOWrwf9zeB/YbQHFMIKGNmprieDebjQI/oMn40AY\n"
                              "igN1K1RRFU+9s3sLnb1YCjPjavVw1wqG9SeRxW5C/MpkltHZ1tAgy2UPPNDXx/uB\n"
                              "bqO3CetnG9fb8ugh05FQ3VDMLEZnU37J/qyv+TZX7jXh6V4Eu1C9H26zCZRmRdB1\n"
                              "p2yEtw0pWh+hBwKBwQCWLRukT0J+F6g2h15LsANfEWESexwa6BRk5AYnkBvJC/EZ\n"
                              "u7Q4OfpS/nGsjUgzOwJp+8triNe3aVSTCK+xYaprQkyKlnOeuMR6DZYRcBXpcbew\n"
                              "AGj6amY2B2kZ247pqikiKypl2J97GNciaQAKCZH6EF2UstSq+NAdsvX8chtm/+zk\n"
                              "nNXnd6pZ0CC7JaujXEF4M7ZHkHXE6b+K7HIVIGUKY/82F983b9YyTri36Cn/rx/n\n"
                              "HXqoXm9waZoxScvunSkCgcEA8jX7Kp3Kj7NMok1WZz4gv4dbZdIy5pjb6QA8j0mU\n"
                              "TmPL1i07e/CUKJZTmSxabDHmHZ2WjcNmZe6kVw3t2lZuzkQ/zIDW/F/09MfwmKTe\n"
                              "luvB54b4deab5drZVkLNM4aNgMzlpdMzSwrY8/USiaxD/lWS0eAprmK/b15fRtbW\n"
                              "lC/fA6PbQvj/Mf5OP/zNZAW/qVygBYE5hyANwi3YwGyVpauZTVIrsGRXWXQDxuxI\n"
                              "RtBqwjJSMYJmm7lu8OHYdj3j\n"
                              "-----END PRIVATE KEY-----\n";

static const char EC_PEM[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg9d8a0U9vHVmOqrtI\n"
                             "HC3OIwHDe3GIP0wa9gKGXooB1k6hRANCAATtyrA4nHLTto2Jg4N4LxOSsnAQez3G\n"
                             "Ur5NVXmsglvssQvbVA0xWzr/9D51RI6HDD/FqnGDJUDIxp0adsWbxgWT\n"
                             "-----END PRIVATE KEY-----\n";

static fwrel_pkey *rsa, *ec;
static char dir[64], out[96];

static fwrel_pkey *load(const char *pem, const char *name)
{
    char path[128];
    fwrel_pkey *key = NULL;
    fwrel_pass_src none = {0};
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (fwrel_io_write_file(path, pem, strlen(pem), 0, 0600) != 0 ||
        fwrel_key_load_private(&key, path, &none) != 0)
        __builtin_trap();
    unlink(path);
    return key;
}

static void cleanup(void)
{
    rmdir(dir);
}

static void init(void)
{
    snprintf(dir, sizeof(dir), "/tmp/fwrel-fuzz-encimg.XXXXXX");
    if (mkdtemp(dir) == NULL)
        __builtin_trap();
    atexit(cleanup);
    rsa = load(RSA_PEM, "rsa.pem");
    ec = load(EC_PEM, "ec.pem");
    snprintf(out, sizeof(out), "%s/plain.bin", dir);
}

static int dir_entries(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        __builtin_trap();
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void decrypt(const uint8_t *data, size_t size, const fwrel_pkey *key, int well_formed,
                    uint32_t announced)
{
    fwrel_src src;
    struct stat st;
    fwrel_src_mem(&src, data, size);
    int error = fwrel_encimg_decrypt(out, 0, &src, key);
    if (error == 0) {
        if (!well_formed || stat(out, &st) != 0 || (uint64_t)st.st_size != announced)
            __builtin_trap();
        unlink(out);
    } else if (error != fwrel_error_last()->code || (!well_formed && error != FWREL_EFORMAT)) {
        __builtin_trap();
    }
    if (dir_entries() != 0)
        __builtin_trap(); /* a failed decryption left plaintext behind */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fwrel_encimg_header h;
    uint8_t again[FWREL_ENCIMG_HEADER_LEN];
    int well_formed = 0;
    if (rsa == NULL)
        init();
    if (size >= FWREL_ENCIMG_HEADER_LEN) {
        /* Parsing fills every field whatever the magic; building gives the same bytes back. */
        int error = fwrel_encimg_parse_header(&h, data);
        if ((error == 0) != (h.magic == FWREL_ENCIMG_MAGIC))
            __builtin_trap();
        fwrel_encimg_build_header(again, &h);
        if (memcmp(again, data, sizeof(again)) != 0)
            __builtin_trap();
        well_formed = error == 0 && size - FWREL_ENCIMG_HEADER_LEN == h.size;
    }
    decrypt(data, size, rsa, well_formed, well_formed ? h.size : 0);
    decrypt(data, size, ec, well_formed, well_formed ? h.size : 0);
    return 0;
}
