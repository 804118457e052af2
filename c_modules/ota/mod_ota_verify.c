// _iotota: signature verification for OTA updates (ECDSA P-256 over SHA-256, via Mbed TLS).
//
// Python does the streaming SHA-256 (hashlib); this module only answers
// "did the holder of this private key sign this digest?". It runs in C because
// a P-256 verify in pure Python takes minutes on a Cortex-M0+.

#include <string.h>

#include "py/runtime.h"
#include "py/objstr.h"

#if defined(MICROPY_SSL_MBEDTLS) && MICROPY_SSL_MBEDTLS
#define OTA_HAVE_MBEDTLS (1)
#include "mbedtls/pk.h"
#include "mbedtls/ecp.h"
#include "mbedtls/ecdsa.h"
#else
#define OTA_HAVE_MBEDTLS (0)
#endif

// SubjectPublicKeyInfo header for an uncompressed P-256 point: SEQUENCE { SEQUENCE
// { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused bits) }, then the 65-byte point.
static const uint8_t p256_spki_prefix[26] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
};
#define P256_RAW_LEN (65)
#define P256_SPKI_LEN (sizeof(p256_spki_prefix) + P256_RAW_LEN)
#define SHA256_LEN (32)
// A DER ECDSA P-256 signature is at most 72 bytes; refuse anything far off.
#define SIG_DER_MAX (80)

// verify_p256(public_key, sha256_digest, signature_der) -> bool
//   public_key: 65-byte raw uncompressed point (0x04||X||Y) or DER SubjectPublicKeyInfo.
//   Returns False when the signature is well formed but does not match;
//   raises ValueError for a malformed key, digest or signature.
static mp_obj_t ota_verify_p256(mp_obj_t key_in, mp_obj_t digest_in, mp_obj_t sig_in) {
    mp_buffer_info_t key, digest, sig;
    mp_get_buffer_raise(key_in, &key, MP_BUFFER_READ);
    mp_get_buffer_raise(digest_in, &digest, MP_BUFFER_READ);
    mp_get_buffer_raise(sig_in, &sig, MP_BUFFER_READ);
    if (digest.len != SHA256_LEN) {
        mp_raise_ValueError(MP_ERROR_TEXT("digest must be 32 bytes"));
    }
    if (sig.len < 8 || sig.len > SIG_DER_MAX) {
        mp_raise_ValueError(MP_ERROR_TEXT("bad signature length"));
    }
    uint8_t spki[P256_SPKI_LEN];
    const uint8_t *der = key.buf;
    size_t der_len = key.len;
    if (key.len == P256_RAW_LEN) {
        if (((const uint8_t *)key.buf)[0] != 0x04) {
            mp_raise_ValueError(MP_ERROR_TEXT("raw key must be an uncompressed point"));
        }
        memcpy(spki, p256_spki_prefix, sizeof(p256_spki_prefix));
        memcpy(spki + sizeof(p256_spki_prefix), key.buf, P256_RAW_LEN);
        der = spki;
        der_len = P256_SPKI_LEN;
    }
    #if OTA_HAVE_MBEDTLS
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int ret = mbedtls_pk_parse_public_key(&pk, der, der_len);
    if (ret != 0 || mbedtls_pk_get_type(&pk) != MBEDTLS_PK_ECKEY
        || mbedtls_pk_ec(pk)->MBEDTLS_PRIVATE(grp).id != MBEDTLS_ECP_DP_SECP256R1) {
        mbedtls_pk_free(&pk);
        mp_raise_ValueError(MP_ERROR_TEXT("bad P-256 public key"));
    }
    ret = mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, digest.buf, digest.len, sig.buf, sig.len);
    mbedtls_pk_free(&pk);
    if (ret == 0) {
        return mp_const_true;
    }
    if (ret == MBEDTLS_ERR_ECP_VERIFY_FAILED) {
        return mp_const_false;
    }
    mp_raise_ValueError(MP_ERROR_TEXT("bad signature encoding"));
    #else
    (void)der;
    (void)der_len;
    mp_raise_msg(&mp_type_NotImplementedError, MP_ERROR_TEXT("no Mbed TLS in this build"));
    #endif
}
static MP_DEFINE_CONST_FUN_OBJ_3(ota_verify_p256_obj, ota_verify_p256);

static const mp_rom_map_elem_t ota_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__iotota) },
    { MP_ROM_QSTR(MP_QSTR_verify_p256), MP_ROM_PTR(&ota_verify_p256_obj) },
    { MP_ROM_QSTR(MP_QSTR_HAVE_VERIFY), MP_ROM_INT(OTA_HAVE_MBEDTLS) },
};
static MP_DEFINE_CONST_DICT(ota_module_globals, ota_module_globals_table);

const mp_obj_module_t ota_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&ota_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR__iotota, ota_user_cmodule);
