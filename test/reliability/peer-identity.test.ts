// Connection errors that are not TLS errors at all reach the handshake
// classifier too (a peer proxy that is down refuses the connection); they must
// map to a reason, not take the proxy down.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { classifyTlsError, classifyVerifyError } from "../../proxy/src/tls/peer-identity";

describe("classifying failed peer connections", () => {
  for (const code of ["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "EADDRNOTAVAIL", "SOMETHING_NEW"]) {
    it(`${code} is "other", without recursing`, () => {
      assert.equal(classifyTlsError(code, `connect ${code} 127.0.0.3:4141`), "other");
      assert.equal(classifyVerifyError(code), "other");
    });
  }

  it("still names verification failures", () => {
    assert.equal(classifyTlsError("CERT_HAS_EXPIRED", ""), "expired_certificate");
    assert.equal(classifyVerifyError("UNABLE_TO_VERIFY_LEAF_SIGNATURE"), "untrusted_certificate");
    assert.equal(classifyVerifyError("ERR_SSL_TLSV1_ALERT_UNKNOWN_CA"), "untrusted_certificate");
    assert.equal(classifyTlsError("ECONNRESET", ""), "connection_reset");
  });
});
